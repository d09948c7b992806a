// Parses one SMTP command line (RFC 5321 4.1.1, verbs case-insensitive) into a Command, or into the
// reply that says what is wrong with it. MAIL/RCPT parameters: SIZE (RFC 1870), BODY (RFC 6152,
// RFC 3030), SMTPUTF8 (RFC 6531 3.4), REQUIRETLS (RFC 8689), RET/ENVID/NOTIFY/ORCPT (RFC 3461 4),
// AUTH= (RFC 4954 5). The line is untrusted, without CRLF; its length was checked by the caller.
// Reply texts never echo client octets other than a short, printable verb.
#include "smtp/command.hpp"

#include "common/ascii.hpp"
#include "smtp/utf8.hpp"

namespace mailward::smtp {
namespace {

constexpr std::size_t kMaxEnvid = 100;  // RFC 3461 4.4
constexpr std::size_t kMaxOrcpt = 500;  // RFC 3461 4.2
constexpr std::size_t kMaxAuthParam = 500;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char to_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

using common::ascii::iequals;
using common::ascii::istarts_with;

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = to_upper(c);
    return out;
}

std::string_view trim_spaces(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
}

// 1*20DIGIT into a uint64; nullopt when not digits, too many of them, or out of range.
std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (!is_digit(c)) return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

Reply syntax(std::string text) { return Reply(501, "5.5.4", std::move(text)); }
Reply unsupported(std::string text) { return Reply(555, "5.5.4", std::move(text)); }

constexpr struct {
    std::string_view name;
    Verb verb;
} kVerbs[] = {
    {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail}, {"RCPT", Verb::rcpt},
    {"DATA", Verb::data}, {"RSET", Verb::rset}, {"NOOP", Verb::noop}, {"QUIT", Verb::quit},
    {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn}, {"HELP", Verb::help}, {"STARTTLS", Verb::starttls},
    {"AUTH", Verb::auth}, {"BDAT", Verb::bdat},
};

std::optional<Verb> find_verb(std::string_view word) {
    for (const auto& v : kVerbs) {
        if (iequals(word, v.name)) return v.verb;
    }
    return std::nullopt;
}

// The first control octet of the line, if any (HT counts: commands are separated by SP only).
std::optional<unsigned char> control_octet(std::string_view line) {
    for (char ch : line) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return c;
    }
    return std::nullopt;
}

std::string control_text(unsigned char c) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string name = c == 0 ? "NUL" : c == '\r' ? "CR" : c == '\n' ? "LF" : c == '\t' ? "TAB" : "";
    std::string text = "Command contains a control character (";
    if (name.empty()) name = std::string("0x") + kHex[c >> 4] + kHex[c & 0x0F];
    return text + name + "); commands are printable text ending in CRLF";
}

// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
bool valid_keyword(std::string_view k) {
    if (k.empty() || !(is_alpha(k.front()) || is_digit(k.front()))) return false;
    for (char c : k) {
        if (!(is_alpha(c) || is_digit(c) || c == '-')) return false;
    }
    return true;
}

// esmtp-value = 1*(%d33-60 / %d62-126)
bool valid_value(std::string_view v) {
    if (v.empty()) return false;
    for (char c : v) {
        if (c < 33 || c > 126 || c == '=') return false;
    }
    return true;
}

bool has_control(std::string_view s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return true;
    }
    return false;
}

struct Param {
    std::string keyword;  // upper case
    std::string_view value;
    bool has_value = false;
};

// One parameter per call; false when none is left. Parameters are separated by one or more SP.
bool next_param(std::string_view& rest, Param& p, std::optional<Reply>& error) {
    rest = trim_spaces(rest);
    if (rest.empty()) return false;
    const std::size_t sp = rest.find(' ');
    const std::string_view token = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp);
    const std::size_t eq = token.find('=');
    const std::string_view keyword = token.substr(0, eq);
    if (!valid_keyword(keyword)) {
        error = syntax("Malformed parameter: a keyword is letters, digits and '-', then optionally =value");
        return false;
    }
    p.keyword = upper(keyword.substr(0, 40));
    p.has_value = eq != std::string_view::npos;
    p.value = p.has_value ? token.substr(eq + 1) : std::string_view();
    if (p.has_value && !valid_value(p.value)) {
        error = syntax("Parameter " + p.keyword + " has an empty or malformed value");
        return false;
    }
    return true;
}

std::optional<Reply> want_value(const Param& p) {
    if (!p.has_value) return syntax("Parameter " + p.keyword + " requires a value (" + p.keyword + "=...)");
    return std::nullopt;
}

std::optional<Reply> want_no_value(const Param& p) {
    if (p.has_value) return syntax("Parameter " + p.keyword + " takes no value");
    return std::nullopt;
}

std::optional<Reply> mail_param(const Param& p, const ParseOptions& opts, MailParams& m, unsigned& seen) {
    enum : unsigned { size = 1, body = 2, utf8 = 4, reqtls = 8, ret = 16, envid = 32, auth = 64 };
    const auto once = [&seen, &p](unsigned bit) -> std::optional<Reply> {
        if (seen & bit) return syntax("Duplicate MAIL parameter " + p.keyword);
        seen |= bit;
        return std::nullopt;
    };
    const std::string& k = p.keyword;
    std::optional<Reply> r;
    if (k == "SIZE") {
        if ((r = once(size)) || (r = want_value(p))) return r;
        const bool digits = p.value.size() <= 20 && p.value.find_first_not_of("0123456789") == std::string_view::npos;
        if (!digits) return syntax("SIZE must be a decimal number of octets (at most 20 digits)");
        auto v = parse_decimal(p.value);
        if (!v && opts.max_size == 0) return syntax("SIZE value is out of range");
        m.size = v.value_or(UINT64_MAX);  // too large for 64 bits: over any limit, reported below
    } else if (k == "BODY" && opts.eight_bit_mime) {
        if ((r = once(body)) || (r = want_value(p))) return r;
        if (iequals(p.value, "7BIT")) m.body = Body::seven_bit;
        else if (iequals(p.value, "8BITMIME")) m.body = Body::eight_bit_mime;
        else if (iequals(p.value, "BINARYMIME")) m.body = Body::binary_mime;
        else return syntax("BODY must be 7BIT, 8BITMIME or BINARYMIME");
    } else if (k == "SMTPUTF8" && opts.smtputf8) {
        if ((r = once(utf8)) || (r = want_no_value(p))) return r;
        m.smtputf8 = true;
    } else if (k == "REQUIRETLS" && opts.requiretls) {
        if ((r = once(reqtls)) || (r = want_no_value(p))) return r;
        m.requiretls = true;
    } else if (k == "RET" && opts.dsn) {
        if ((r = once(ret)) || (r = want_value(p))) return r;
        if (iequals(p.value, "FULL")) m.ret = Ret::full;
        else if (iequals(p.value, "HDRS")) m.ret = Ret::hdrs;
        else return syntax("RET must be FULL or HDRS");
    } else if (k == "ENVID" && opts.dsn) {
        if ((r = once(envid)) || (r = want_value(p))) return r;
        if (p.value.size() > kMaxEnvid) return syntax("ENVID is longer than 100 characters");
        auto d = xtext_decode(p.value);
        if (!d) return syntax("ENVID is not valid xtext (use +XX with upper-case hex for special octets)");
        if (has_control(*d) || detail::has_8bit(*d)) return syntax("ENVID must decode to printable ASCII");
        m.envid = std::move(*d);
    } else if (k == "AUTH" && opts.auth) {
        if ((r = once(auth)) || (r = want_value(p))) return r;
        if (p.value.size() > kMaxAuthParam) return syntax("AUTH= is longer than 500 characters");
        if (p.value == "<>") {
            m.auth = "<>";
        } else {
            auto d = xtext_decode(p.value);
            if (!d || d->empty()) return syntax("AUTH= must be <> or an xtext-encoded mailbox");
            if (has_control(*d)) return syntax("AUTH= must not decode to control characters");
            m.auth = std::move(*d);
        }
    } else {
        return unsupported("MAIL parameter " + k + " is not supported");
    }
    return std::nullopt;
}

std::optional<Reply> rcpt_param(const Param& p, const ParseOptions& opts, RcptParams& rc, unsigned& seen) {
    enum : unsigned { notify = 1, orcpt = 2 };
    const std::string& k = p.keyword;
    if (!opts.dsn || (k != "NOTIFY" && k != "ORCPT")) return unsupported("RCPT parameter " + k + " is not supported");
    const unsigned bit = k == "NOTIFY" ? notify : orcpt;
    if (seen & bit) return syntax("Duplicate RCPT parameter " + k);
    seen |= bit;
    if (auto r = want_value(p)) return r;
    if (bit == notify) {
        // NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ); bits as in store.hpp
        // NotifyBits.
        std::string_view list = p.value;
        unsigned bits = 0;
        while (true) {
            const std::size_t comma = list.find(',');
            const std::string_view item = list.substr(0, comma);
            unsigned b = 0;
            if (iequals(item, "NEVER")) b = 1;
            else if (iequals(item, "SUCCESS")) b = 2;
            else if (iequals(item, "FAILURE")) b = 4;
            else if (iequals(item, "DELAY")) b = 8;
            else return syntax("NOTIFY must be NEVER, or a list of SUCCESS, FAILURE, DELAY");
            if (bits & b) return syntax("NOTIFY lists a value twice");
            bits |= b;
            if (comma == std::string_view::npos) break;
            list.remove_prefix(comma + 1);
        }
        if ((bits & 1) && bits != 1) return syntax("NOTIFY=NEVER cannot be combined with other values");
        rc.notify = bits;
        return std::nullopt;
    }
    // ORCPT = addr-type ";" xtext
    if (p.value.size() > kMaxOrcpt) return syntax("ORCPT is longer than 500 characters");
    const std::size_t semi = p.value.find(';');
    const std::string_view type = p.value.substr(0, semi);
    if (semi == std::string_view::npos || !valid_keyword(type)) {
        return syntax("ORCPT must be addr-type;xtext, e.g. ORCPT=rfc822;user@example.com");
    }
    auto addr = xtext_decode(p.value.substr(semi + 1));
    if (!addr || addr->empty()) return syntax("ORCPT address is empty or not valid xtext");
    if (has_control(*addr)) return syntax("ORCPT address must not decode to control characters");
    rc.orcpt = std::string(type) + ";" + *addr;
    return std::nullopt;
}

Reply address_reply(AddressError e, bool sender) {
    if (e == AddressError::utf8_not_allowed) {
        return Reply(
            553, "5.6.7",
            std::string(sender ? "Sender" : "Recipient") + " address contains non-ASCII octets, which need SMTPUTF8");
    }
    const std::string what = sender ? "Bad sender address: " : "Bad recipient address: ";
    return Reply(501, sender ? "5.1.7" : "5.1.3", what + make_error_code(e).message());
}

// "MAIL FROM:" [SP] Reverse-path [SP Mail-parameters] / "RCPT TO:" [SP] Forward-path [SP ...].
ParseResult parse_transaction(Command cmd, std::string_view rest, const ParseOptions& opts) {
    const bool mail = cmd.verb == Verb::mail;
    const std::string_view prefix = mail ? "FROM:" : "TO:";
    const std::string usage =
        mail ? "Syntax: MAIL FROM:<address> [parameters]" : "Syntax: RCPT TO:<address> [parameters]";
    if (!istarts_with(rest, prefix)) return syntax(usage);
    rest.remove_prefix(prefix.size());
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);  // "MAIL FROM: <a@b>" as clients send
    if (rest.empty() || rest.front() == ' ') return syntax(usage);

    std::size_t used = 0;
    auto path = parse_path(rest, mail, opts.smtputf8, &used);
    if (!path) {
        const auto e = static_cast<AddressError>(path.error().value());
        if (e == AddressError::null_not_allowed)
            return Reply(501, "5.1.3", "The null address <> is not a valid recipient");
        // Invalid UTF-8 from a client that did not ask for SMTPUTF8 is 8-bit text: RFC 6531 3.4.
        const bool utf8_asked = mail ? upper(rest).find(" SMTPUTF8") != std::string::npos : opts.transaction_smtputf8;
        if (e == AddressError::bad_utf8 && !utf8_asked) return address_reply(AddressError::utf8_not_allowed, mail);
        return address_reply(e, mail);
    }
    cmd.path = std::move(*path);
    std::string_view params = rest.substr(used);
    if (!params.empty() && params.front() != ' ') {
        return syntax("Unexpected text after the address; parameters must be separated by a space");
    }
    if (detail::has_8bit(params)) return Reply(553, "5.6.7", "Parameters must be ASCII");

    unsigned seen = 0;
    Param p;
    std::optional<Reply> error;
    while (next_param(params, p, error)) {
        error = mail ? mail_param(p, opts, cmd.mail, seen) : rcpt_param(p, opts, cmd.rcpt, seen);
        if (error) break;
    }
    if (error) return *error;

    const bool utf8_path = detail::has_8bit(rest.substr(0, used));
    if (utf8_path && mail && !cmd.mail.smtputf8) {
        return Reply(553, "5.6.7", "Sender address contains UTF-8 but MAIL FROM has no SMTPUTF8 parameter");
    }
    if (utf8_path && !mail && !opts.transaction_smtputf8) {
        return Reply(553, "5.6.7", "Recipient address contains UTF-8 but MAIL FROM had no SMTPUTF8 parameter");
    }
    if (mail && cmd.mail.size && opts.max_size != 0 && *cmd.mail.size > opts.max_size) {
        return Reply(552, "5.3.4", "Message size exceeds the limit of " + std::to_string(opts.max_size) + " octets");
    }
    return cmd;
}

// AUTH SP sasl-mech [SP initial-response] (RFC 4954 4); the response is checked as base64 later.
ParseResult parse_auth(Command cmd, std::string_view rest) {
    if (rest.empty()) return syntax("AUTH requires a mechanism name, e.g. AUTH PLAIN");
    const std::size_t sp = rest.find(' ');
    const std::string_view mech = rest.substr(0, sp);
    if (mech.size() > 20) return syntax("AUTH mechanism name is longer than 20 characters");
    for (char c : mech) {
        if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) return syntax("AUTH mechanism name is malformed");
    }
    if (sp != std::string_view::npos) {
        const std::string_view initial = rest.substr(sp + 1);
        if (initial.empty() || initial.find(' ') != std::string_view::npos) {
            return syntax("AUTH takes a mechanism and at most one initial response");
        }
        for (char c : initial) {
            if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=')) {
                return syntax("AUTH initial response is not base64");
            }
        }
    }
    cmd.argument = std::string(rest);
    return cmd;
}

// BDAT SP chunk-size [SP end-marker] (RFC 3030 2).
ParseResult parse_bdat(Command cmd, std::string_view rest) {
    const std::size_t sp = rest.find(' ');
    if (!parse_decimal(rest.substr(0, sp))) return syntax("Syntax: BDAT <chunk-size> [LAST]");
    if (sp != std::string_view::npos && !iequals(rest.substr(sp + 1), "LAST")) {
        return syntax("Syntax: BDAT <chunk-size> [LAST]");
    }
    cmd.argument = std::string(rest);
    return cmd;
}

}  // namespace

ParseResult parse_command(std::string_view line, const ParseOptions& opts) {
    if (auto c = control_octet(line)) return Reply(500, "5.5.2", control_text(*c));
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    if (line.empty()) return Reply(500, "5.5.2", "Empty command");
    const std::size_t sp = line.find(' ');
    const std::string_view word = line.substr(0, sp);
    const auto verb = find_verb(word);
    if (!verb) {
        if (word.empty()) return Reply(500, "5.5.2", "Command line must not start with a space");
        bool plain = word.size() <= 12;
        for (char c : word) plain = plain && (is_alpha(c) || is_digit(c));
        if (!plain) return Reply(500, "5.5.2", "Command not recognized");
        return Reply(500, "5.5.2", "Command not recognized: " + upper(word));
    }
    const std::string name = upper(word);
    const std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);

    Command cmd;
    cmd.verb = *verb;
    if (cmd.verb == Verb::mail || cmd.verb == Verb::rcpt) return parse_transaction(std::move(cmd), rest, opts);
    if (detail::has_8bit(rest)) {
        return Reply(553, "5.6.7",
                     name +
                         " arguments must be ASCII (non-ASCII is allowed only in MAIL and RCPT "
                         "addresses with SMTPUTF8)");
    }
    const std::string_view arg = trim_spaces(rest);
    switch (cmd.verb) {
        case Verb::helo:
        case Verb::ehlo:
            if (arg.empty()) return syntax(name + " requires a domain name or address literal");
            break;
        case Verb::data:
        case Verb::rset:
        case Verb::quit:
        case Verb::starttls:
            if (!arg.empty()) return syntax(name + " takes no arguments");
            break;
        case Verb::vrfy:
        case Verb::expn:
            if (arg.empty()) return syntax(name + " requires an argument");
            break;
        case Verb::auth: return parse_auth(std::move(cmd), arg);
        case Verb::bdat: return parse_bdat(std::move(cmd), arg);
        default: break;  // NOOP and HELP take optional free text
    }
    cmd.argument = std::string(arg);
    return cmd;
}

}  // namespace mailward::smtp
