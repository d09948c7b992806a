// `mailward sendmail` (and the binary called as `sendmail`): the sendmail command line that local
// programs (cron, PHP's mail(), git send-email) use. Reads one message on stdin, completes its
// header (From, Date, Message-ID: RFC 5322 3.6), takes recipients from the arguments and with -t
// from To/Cc/Bcc (Bcc removed), and hands it to the running server over the [sendmail] socket in
// ESMTP (RFC 5321; the server knows the user from the socket). Exit codes are sendmail's
// (sysexits.h); every failure prints one line. Input (stdin, arguments, replies) is untrusted.
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "common/ids.hpp"
#include "common/timefmt.hpp"
#include "server/header_scan.hpp"
#include "smtp/address.hpp"
#include "smtp/sasl.hpp"

namespace mailward::cli {
namespace {

// sysexits.h
constexpr int kOk = 0;
constexpr int kUsage = 64;
constexpr int kDataErr = 65;
constexpr int kNoUser = 67;
constexpr int kUnavailable = 69;
constexpr int kSoftware = 70;
constexpr int kTempFail = 75;
constexpr int kNoPerm = 77;
constexpr int kConfig = 78;

constexpr const char* kPackagedConfig = "/etc/mailward/mailward.toml";
constexpr std::size_t kMaxLine = 998;  // octets without CRLF (RFC 5322 2.1.1)

struct Stop {
    int code;
    std::string what;
};

struct Args {
    bool extract = false;                  // -t
    bool ignore_dots = false;              // -i, -oi
    std::optional<std::string> sender;     // -f, -r
    std::optional<std::string> full_name;  // -F
    std::string config;                    // -c
    std::vector<std::string> recipients;
    bool help = false;
};

const char* const kUsageText =
    "usage: mailward sendmail [-t] [-i] [-f ADDR] [-F NAME] [-c FILE] [RCPT...] < message\n"
    "  -t        also send to the To:, Cc: and Bcc: addresses (Bcc: is removed)\n"
    "  -i, -oi   a line with a single '.' does not end the message\n"
    "  -f ADDR   envelope sender (root, the server's user and [sendmail] trusted_users only)\n"
    "  -F NAME   full name for the From: line added when the message has none\n"
    "  -c FILE   configuration (default /etc/mailward/mailward.toml, else the built-in defaults)\n"
    "Accepted and ignored: -odi -odb -odq -oem -oee -oep -oeq -oew -om -bm -v -U -B TYPE\n"
    "Exit codes (sysexits.h): 0 queued, 64 usage, 65 bad message or address, 67 unknown user,\n"
    "69 refused, 70 internal error, 75 server not running or busy (try later), 77 not permitted\n";

// The option's value: the rest of the word ("-fADDR") or the next argument ("-f ADDR").
std::string value_of(const std::vector<std::string>& a, std::size_t& i, std::size_t at) {
    if (a[i].size() > at) return a[i].substr(at);
    if (i + 1 >= a.size()) throw Stop{kUsage, "option " + a[i] + " needs a value"};
    return a[++i];
}

Args parse_args(const std::vector<std::string>& a) {
    static const char* const ignored[] = {"-odi", "-odb", "-odq", "-oem", "-oee", "-oep", "-oeq",
                                          "-oew", "-om",  "-bm",  "-v",   "-U",   "-oi"};
    Args r;
    std::size_t i = 0;
    for (; i < a.size(); ++i) {
        const std::string& w = a[i];
        if (w == "--") {
            ++i;
            break;
        }
        if (w.empty() || w[0] != '-' || w == "-") break;
        if (w == "-h" || w == "--help") {
            r.help = true;
        } else if (w == "-t") {
            r.extract = true;
        } else if (w == "-i" || w == "-oi") {
            r.ignore_dots = true;
        } else if (w.rfind("-f", 0) == 0 || w.rfind("-r", 0) == 0) {
            r.sender = value_of(a, i, 2);
        } else if (w.rfind("-F", 0) == 0) {
            r.full_name = value_of(a, i, 2);
        } else if (w == "-c" || w == "--config") {
            r.config = value_of(a, i, w.size());
        } else if (w.rfind("-B", 0) == 0) {
            value_of(a, i, 2);  // body type: the server sees 8-bit data itself
        } else if (std::find(std::begin(ignored), std::end(ignored), w) == std::end(ignored)) {
            throw Stop{kUsage, "unsupported option " + w + " (see mailward sendmail --help)"};
        }
    }
    for (; i < a.size(); ++i) r.recipients.push_back(a[i]);
    return r;
}

config::Config client_config(const std::string& file) {
    std::string path = file;
    if (path.empty()) {
        std::error_code ec;
        if (!std::filesystem::exists(kPackagedConfig, ec)) return config::defaults();
        path = kPackagedConfig;
    }
    config::ConfigError err;
    auto cfg = config::load_without_file_checks(path, err);
    if (!cfg) throw Stop{kConfig, err.message.empty() ? path + ": cannot load" : err.message};
    return std::move(*cfg);
}

// The message on stdin as CRLF lines; without ignore_dots a line "." ends it (sendmail).
std::string read_message(bool ignore_dots, std::size_t max_size) {
    std::string msg;
    std::string line;
    std::size_t lineno = 0;
    int c;
    bool eof = false;
    while (!eof) {
        line.clear();
        while ((c = std::getchar()) != EOF && c != '\n') line.push_back(static_cast<char>(c));
        if (c == EOF) {
            eof = true;
            if (line.empty()) break;
        }
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!ignore_dots && line == ".") break;
        if (line.find('\0') != std::string::npos) {
            throw Stop{kDataErr, "the message has a NUL octet (line " + std::to_string(lineno) + ")"};
        }
        if (line.find('\r') != std::string::npos) {
            throw Stop{kDataErr, "the message has a bare CR (line " + std::to_string(lineno) + ")"};
        }
        if (line.size() > kMaxLine) {
            throw Stop{kDataErr, "line " + std::to_string(lineno) + " is longer than 998 octets (RFC 5322 2.1.1)"};
        }
        if (lineno == 1 && line.rfind("From ", 0) == 0) continue;  // an mbox separator
        msg += line;
        msg += "\r\n";
        if (msg.size() > max_size) {
            throw Stop{kDataErr,
                       "the message is larger than the server's limit of " + std::to_string(max_size) + " octets"};
        }
    }
    return msg;
}

// Where the header section ends (the offset of its empty line, which is inserted when the first
// line that is not a header field is not empty).
std::size_t header_end(std::string& msg) {
    std::size_t pos = 0;
    bool first = true;
    while (pos < msg.size()) {
        const std::size_t eol = msg.find("\r\n", pos);
        const std::string_view line(msg.data() + pos, eol - pos);
        if (line.empty()) return pos;
        const bool continuation = !first && (line[0] == ' ' || line[0] == '\t');
        std::size_t n = 0;
        while (n < line.size() && line[n] > ' ' && line[n] < 127 && line[n] != ':') ++n;
        const bool field = n > 0 && n < line.size() && line[n] == ':';
        if (!continuation && !field) {
            msg.insert(pos, "\r\n");
            return pos;
        }
        first = false;
        pos = eol + 2;
    }
    msg += "\r\n";
    return pos;
}

bool has_field(std::string_view headers, std::string_view name) {
    std::size_t pos = 0;
    while (pos < headers.size()) {
        const std::size_t eol = headers.find("\r\n", pos);
        const std::string_view line = headers.substr(pos, eol - pos);
        if (line.size() > name.size() && line[name.size()] == ':' &&
            std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
            })) {
            return true;
        }
        pos = eol + 2;
    }
    return false;
}

// Removes every Bcc: field (with its continuation lines) from the header section [0, end).
std::size_t remove_bcc(std::string& msg, std::size_t end) {
    std::size_t pos = 0;
    while (pos < end) {
        std::size_t eol = msg.find("\r\n", pos);
        if (has_field(std::string_view(msg).substr(pos, eol + 2 - pos), "bcc")) {
            std::size_t stop = eol + 2;
            while (stop < end && (msg[stop] == ' ' || msg[stop] == '\t')) stop = msg.find("\r\n", stop) + 2;
            msg.erase(pos, stop - pos);
            end -= stop - pos;
            continue;
        }
        pos = eol + 2;
    }
    return end;
}

// "Full Name" for a From: field: a quoted-string, or RFC 2047 encoded-word when not ASCII.
std::string display_name(const std::string& name) {
    bool ascii = true;
    for (unsigned char ch : name) ascii = ascii && ch >= 32 && ch < 127;
    if (!ascii) return "=?UTF-8?B?" + smtp::base64_encode(name) + "?=";
    std::string q = "\"";
    for (char ch : name) {
        if (ch == '"' || ch == '\\') q += '\\';
        q += ch;
    }
    return q + "\"";
}

// addr-specs of every mailbox in text (a command-line argument, "a@b, Name <c@d>").
std::vector<std::string> addresses_of(const std::string& text, const std::string& what) {
    auto r = server::field_addresses("To: " + text + "\r\n\r\n", {"to"});
    if (r.malformed || r.addresses.empty()) {
        const bool unqualified = r.addresses.empty() && text.find('@') == std::string::npos &&
                                 text.find_first_of(" \t,<>()\"") == std::string::npos && !text.empty();
        if (unqualified) {
            throw Stop{kNoUser,
                       "recipient " + text +
                           " has no domain: mailward relays to user@domain addresses only (no local delivery)"};
        }
        throw Stop{kDataErr, what + " \"" + text + "\" is not a valid address"};
    }
    return r.addresses;
}

std::optional<std::string> reply_line(int fd, std::string& buf, int& code) {
    // One complete reply; its last line is returned, code set.
    for (;;) {
        std::size_t eol;
        while ((eol = buf.find("\r\n")) == std::string::npos) {
            char chunk[4096];
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return std::nullopt;
            buf.append(chunk, static_cast<std::size_t>(n));
            if (buf.size() > 65536) return std::nullopt;
        }
        std::string line = buf.substr(0, eol);
        buf.erase(0, eol + 2);
        if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0]))) return std::nullopt;
        if (line.size() > 3 && line[3] == '-') continue;
        code = std::stoi(line.substr(0, 3));
        return line;
    }
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// The exit code for a refusal: 4xx try later, 5.7.x not permitted, 5.1.1 no such user, other
// address and message problems bad data, the rest unavailable.
int code_for(int code, const std::string& line) {
    if (code >= 400 && code < 500) return kTempFail;
    const std::string enh = line.size() > 4 ? line.substr(4, line.find(' ', 4) - 4) : "";
    if (enh.rfind("5.7.", 0) == 0) return kNoPerm;
    if (enh == "5.1.1") return kNoUser;
    if (enh.rfind("5.1.", 0) == 0 || enh.rfind("5.6.", 0) == 0 || enh == "5.3.4" || enh.rfind("5.5.4", 0) == 0) {
        return kDataErr;
    }
    return kUnavailable;
}

class Connection {
  public:
    explicit Connection(const std::filesystem::path& path, std::chrono::seconds timeout) : path_(path.string()) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw Stop{kSoftware, std::string("cannot make a socket: ") + std::strerror(errno)};
        struct timeval tv {};
        tv.tv_sec = static_cast<time_t>(timeout.count());
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        if (path_.size() >= sizeof sa.sun_path) throw Stop{kConfig, "[sendmail] socket " + path_ + " is too long"};
        std::memcpy(sa.sun_path, path_.c_str(), path_.size() + 1);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            const int e = errno;
            const std::string why = "cannot reach the mail server at " + path_ + ": " + std::strerror(e);
            if (e == EACCES || e == EPERM) throw Stop{kNoPerm, why};
            throw Stop{kTempFail, why + " (is mailward serve running?)"};
        }
    }
    ~Connection() { ::close(fd_); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Sends data (if any) and reads the reply; a reply not in the 2xx/3xx class ends the command.
    void step(std::string_view data, std::string_view what, int want_class = 2) {
        if (!data.empty() && !send_all(fd_, data)) {
            throw Stop{kTempFail, "the mail server at " + path_ + " closed the connection (" + std::string(what) + ")"};
        }
        int code = 0;
        auto line = reply_line(fd_, buf_, code);
        if (!line) {
            throw Stop{kTempFail, "no reply from the mail server at " + path_ + " (" + std::string(what) + ")"};
        }
        if (code / 100 != want_class) {
            send_all(fd_, "QUIT\r\n");
            throw Stop{code_for(code, *line), "the mail server refused " + std::string(what) + ": " + *line};
        }
    }

    void quit() { send_all(fd_, "QUIT\r\n"); }  // the message is queued: the reply does not matter

  private:
    std::string path_;
    int fd_ = -1;
    std::string buf_;
};

bool non_ascii(std::string_view s) {
    for (unsigned char ch : s) {
        if (ch >= 128) return true;
    }
    return false;
}

int sendmail(const std::vector<std::string>& argv) {
    Args args = parse_args(argv);
    if (args.help) {
        std::cout << kUsageText;
        return kOk;
    }
    const config::Config cfg = client_config(args.config);
    if (cfg.sendmail.socket.empty()) throw Stop{kUnavailable, "[sendmail] socket is \"\": local submission is off"};

    std::vector<char> pwbuf(16384);
    struct passwd pw {};
    struct passwd* me = nullptr;
    if (::getpwuid_r(::getuid(), &pw, pwbuf.data(), pwbuf.size(), &me) != 0 || me == nullptr) {
        throw Stop{kNoUser, "uid " + std::to_string(::getuid()) + " has no user name"};
    }
    const std::string own = std::string(me->pw_name) + "@" + cfg.server.hostname;

    std::string sender = own;
    if (args.sender) {
        std::string s = *args.sender;
        if (s == "<>") s.clear();
        if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
        if (!s.empty() && !smtp::parse_mailbox(s, true))
            throw Stop{kDataErr, "sender \"" + s + "\" is not a valid address"};
        sender = s;
    }

    std::vector<std::string> rcpts;
    for (const auto& r : args.recipients) {
        for (auto& a : addresses_of(r, "recipient")) rcpts.push_back(std::move(a));
    }

    std::string msg = read_message(args.ignore_dots, cfg.submission.max_message_size);
    std::size_t end = header_end(msg);
    if (args.extract) {
        auto found = server::field_addresses(std::string_view(msg).substr(0, end + 2), {"to", "cc", "bcc"});
        if (found.malformed) throw Stop{kDataErr, "a To:, Cc: or Bcc: field has an address that cannot be read"};
        for (auto& a : found.addresses) rcpts.push_back(std::move(a));
        end = remove_bcc(msg, end);
    }
    if (rcpts.empty()) {
        throw Stop{kUsage, args.extract ? "no recipients: none given and none in To:, Cc: or Bcc:"
                                        : "no recipients given (name them, or use -t)"};
    }
    for (const auto& r : rcpts) {
        if (r.find('@') == std::string::npos) throw Stop{kNoUser, "recipient " + r + " has no domain"};
        if (!smtp::parse_mailbox(r, true)) throw Stop{kDataErr, "recipient \"" + r + "\" is not a valid address"};
    }

    // The fields RFC 5322 3.6 requires, added at the end of the header section when missing.
    std::string add;
    const std::string_view headers = std::string_view(msg).substr(0, end);
    if (!has_field(headers, "from")) {
        std::string name = args.full_name.value_or("");
        if (!args.full_name && me->pw_gecos != nullptr) {
            name = me->pw_gecos;
            name = name.substr(0, name.find(','));
        }
        const std::string addr = sender.empty() ? own : sender;
        add += name.empty() ? "From: <" + addr + ">\r\n" : "From: " + display_name(name) + " <" + addr + ">\r\n";
    }
    if (!has_field(headers, "date")) add += "Date: " + common::rfc5322_date(std::chrono::system_clock::now()) + "\r\n";
    if (!has_field(headers, "message-id")) {
        add += "Message-ID: <" + common::new_queue_id() + "." + common::random_token(5) + "@" + cfg.server.hostname +
               ">\r\n";
    }
    msg.insert(end, add);

    // The dialogue: ESMTP over the local socket, the message dot-stuffed (RFC 5321 4.5.2).
    bool utf8 = non_ascii(sender);
    for (const auto& r : rcpts) utf8 = utf8 || non_ascii(r);
    std::string mail = "MAIL FROM:<" + sender + ">";
    if (non_ascii(msg)) mail += " BODY=8BITMIME";
    if (utf8) mail += " SMTPUTF8";
    const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(cfg.submission.data_timeout);
    Connection c(cfg.sendmail.socket, timeout);
    c.step("", "the connection");
    c.step("EHLO localhost\r\n", "EHLO");
    c.step(mail + "\r\n", "sender <" + sender + ">");
    for (const auto& r : rcpts) c.step("RCPT TO:<" + r + ">\r\n", "recipient <" + r + ">");
    c.step("DATA\r\n", "DATA", 3);
    std::string wire;
    wire.reserve(msg.size() + msg.size() / 64 + 8);
    std::size_t pos = 0;
    while (pos < msg.size()) {
        const std::size_t eol = msg.find("\r\n", pos) + 2;
        if (msg[pos] == '.') wire += '.';
        wire.append(msg, pos, eol - pos);
        pos = eol;
    }
    wire += ".\r\n";
    c.step(wire, "the message");
    c.quit();
    return kOk;
}

}  // namespace

void add_sendmail_help(CLI::App& app) {
    // Never parsed by CLI11 (main() hands `sendmail` to run_sendmail first); here for --help.
    auto* cmd = app.add_subcommand("sendmail", "hand a message on stdin to the running server (sendmail -t -i -f -F)");
    cmd->allow_extras();
}

int run_sendmail(const std::vector<std::string>& args) {
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return sendmail(args);
    } catch (const Stop& s) {
        std::cerr << "mailward sendmail: " << s.what << "\n";
        return s.code;
    } catch (const std::exception& e) {
        std::cerr << "mailward sendmail: internal error: " << e.what() << "\n";
        return kSoftware;
    }
}

}  // namespace mailward::cli
