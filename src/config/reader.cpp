// Typed reads of TOML nodes for the config loader, with messages that name the file, line and key.
// Input is an untrusted parsed TOML tree; values are checked for type, range and syntax here, and
// relations between keys are checked by the caller (config.cpp).
#include "config/reader.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "common/domain.hpp"
#include "common/log_escape.hpp"
#include "config/net_detail.hpp"

namespace mailward::config::detail {
namespace {

constexpr std::string_view kEndpointExpected =
    "expected \"host:port\" or \"[v6]:port\" with an IP address and port 1-65535";
constexpr std::string_view kDurationExpected =
    "expected an integer and a unit ms, s, m, h, d or w, e.g. \"90s\" or \"5d\"";

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            out += '?';  // keep messages on one line
        } else {
            out += c;
        }
    }
    return out + "\"";
}

}  // namespace

std::size_t line_of(const toml::node& n) { return n.source().begin.line; }

std::string_view type_name(const toml::node& n) {
    switch (n.type()) {
        case toml::node_type::table: return "table";
        case toml::node_type::array: return "array";
        case toml::node_type::string: return "string";
        case toml::node_type::integer: return "integer";
        case toml::node_type::floating_point: return "float";
        case toml::node_type::boolean: return "boolean";
        case toml::node_type::date: return "date";
        case toml::node_type::time: return "time";
        case toml::node_type::date_time: return "date-time";
        default: return "nothing";
    }
}

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
// neighbours ("dns" for "dsn" is one edit).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t w = b.size() + 1;
    std::vector<std::size_t> d((a.size() + 1) * w);
    for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            std::size_t v = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                v = std::min(v, d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    return d[a.size() * w + b.size()];
}

Reader::Reader(std::string name, std::filesystem::path base_dir)
    : name_(std::move(name)), base_dir_(std::move(base_dir)) {}

void Reader::problem(std::size_t line, std::string what) {
    std::string msg = name_;
    if (line != 0) msg += ":" + std::to_string(line);
    // One printable line whatever the file holds (a key or value with control characters).
    problems_.push_back({line, common::log_escape(msg + ": " + what)});
}

void Reader::key_problem(std::size_t line, std::string_view key, std::string_view what) {
    problem(line, "key '" + std::string(key) + "': " + std::string(what));
}

ConfigError Reader::error() const {
    std::vector<Problem> sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) { return a.line < b.line; });
    ConfigError e;
    for (auto& p : sorted) e.problems.push_back(p.message);
    if (!e.problems.empty()) e.message = e.problems.front();
    return e;
}

void Reader::begin_key(std::string key, std::size_t line) {
    lines_[key] = line;
    key_ = std::move(key);
}

std::size_t Reader::line_of(std::string_view key) const {
    auto it = lines_.find(key);
    return it == lines_.end() ? 0 : it->second;
}

void Reader::wrong_type(const toml::node& n, std::string_view expected, std::string_view element) {
    std::string what = element.empty() ? "wrong type: got " : std::string(element) + " has wrong type: got ";
    what += type_name(n);
    what += " (expected ";
    what += expected;
    what += ")";
    key_problem(detail::line_of(n), key_, what);
}

void Reader::bad_value(const toml::node& n, std::string_view what, std::string_view expected) {
    key_problem(detail::line_of(n), key_, std::string(what) + " (" + std::string(expected) + ")");
}

const std::string* Reader::string_of(const toml::node& n, std::string_view expected, std::string_view element) {
    if (const auto* s = n.as_string()) return &s->get();
    wrong_type(n, expected, element);
    return nullptr;
}

bool Reader::read_string(const toml::node& n, std::string& out, std::string_view expected) {
    const std::string* s = string_of(n, expected);
    if (s == nullptr) return false;
    if (s->empty()) {
        bad_value(n, "empty string", expected);
        return false;
    }
    out = *s;
    return true;
}

bool Reader::read_choice(const toml::node& n, std::string& out, std::span<const std::string_view> choices) {
    std::string one_of = "one of";
    for (std::size_t i = 0; i < choices.size(); ++i) {
        one_of += (i == 0 ? " " : ", ");
        one_of += choices[i];
    }
    const std::string* s = string_of(n, "a string: " + one_of);
    if (s == nullptr) return false;
    if (std::find(choices.begin(), choices.end(), *s) == choices.end()) {
        bad_value(n, "unknown value " + quote(*s), "expected " + one_of);
        return false;
    }
    out = *s;
    return true;
}

bool Reader::read_choices(const toml::node& n, std::vector<std::string>& out,
                          std::span<const std::string_view> choices) {
    const auto* arr = n.as_array();
    if (arr == nullptr) {
        wrong_type(n, "an array of strings, each one of the allowed values");
        return false;
    }
    std::vector<std::string> result;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        std::string s;
        if (!read_choice(el, s, choices)) {
            ok = false;
            continue;
        }
        if (std::find(result.begin(), result.end(), s) != result.end()) {
            bad_value(el, quote(s) + " is listed twice", "list each value once");
            ok = false;
            continue;
        }
        result.push_back(s);
    }
    if (ok) out = std::move(result);
    return ok;
}

bool Reader::read_hostname(const toml::node& n, std::string& out) {
    constexpr std::string_view expected = "expected a domain name, e.g. \"relay.example.com\"";
    const std::string* s = string_of(n, "a domain name string, e.g. \"relay.example.com\"");
    if (s == nullptr) return false;
    if (!common::DomainName::parse(*s, {.final_dot = false})) {  // RFC 1035 2.3.1, common/domain.hpp
        bad_value(n, "bad host name " + quote(*s), expected);
        return false;
    }
    out = *s;
    return true;
}

bool Reader::read_bool(const toml::node& n, bool& out) {
    if (const auto* b = n.as_boolean()) {
        out = b->get();
        return true;
    }
    wrong_type(n, "true or false");
    return false;
}

bool Reader::read_count(const toml::node& n, std::size_t& out) {
    const auto* i = n.as_integer();
    if (i == nullptr) {
        wrong_type(n, "a positive integer");
        return false;
    }
    if (i->get() <= 0) {
        bad_value(n, "value " + std::to_string(i->get()) + " is not positive", "expected an integer >= 1");
        return false;
    }
    out = static_cast<std::size_t>(i->get());
    return true;
}

bool Reader::read_hour(const toml::node& n, unsigned& out) {
    const auto* i = n.as_integer();
    if (i == nullptr) {
        wrong_type(n, "an integer 0-23 (an hour of the day, UTC)");
        return false;
    }
    if (i->get() < 0 || i->get() > 23) {
        bad_value(n, "hour " + std::to_string(i->get()) + " is out of range", "expected an integer 0-23");
        return false;
    }
    out = static_cast<unsigned>(i->get());
    return true;
}

bool Reader::read_mail_address(const toml::node& n, std::string& out) {
    constexpr std::string_view expected = "expected a mail address (local@domain)";
    const std::string* s = string_of(n, expected);
    if (s == nullptr) return false;
    const auto at = s->rfind('@');
    bool ok = at != std::string::npos && at > 0 && at + 1 < s->size() && s->size() <= 254;
    for (unsigned char c : *s) {
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '\\') ok = false;
    }
    if (!ok) {
        bad_value(n, "\"" + *s + "\" is not a plain mail address", expected);
        return false;
    }
    out = *s;
    return true;
}

bool Reader::read_prefix_length(const toml::node& n, unsigned& out, unsigned max) {
    const auto* i = n.as_integer();
    if (i == nullptr) {
        wrong_type(n, "an integer 1-" + std::to_string(max));
        return false;
    }
    if (i->get() < 1 || i->get() > static_cast<std::int64_t>(max)) {
        bad_value(n, "prefix length " + std::to_string(i->get()) + " is out of range",
                  "expected an integer 1-" + std::to_string(max));
        return false;
    }
    out = static_cast<unsigned>(i->get());
    return true;
}

// A plain system user name (useradd's rules): letters, digits, '_', '-', '.', not starting with '-'.
bool is_user_name(std::string_view u) {
    bool ok = !u.empty() && u.size() <= 32 && u[0] != '-';
    for (char ch : u)
        ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '-' || ch == '.');
    return ok;
}

bool Reader::read_user_names(const toml::node& n, std::vector<std::string>& out) {
    const auto* arr = n.as_array();
    if (arr == nullptr) {
        wrong_type(n, "an array of user names, e.g. [\"www-data\"]");
        return false;
    }
    std::vector<std::string> result;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        const std::string* s = string_of(el, "a user name string", "element " + std::to_string(i + 1));
        if (s == nullptr) {
            ok = false;
            continue;
        }
        if (!is_user_name(*s)) {
            bad_value(el, "bad user name " + quote(*s), "expected letters, digits, '_', '-', '.', e.g. \"www-data\"");
            ok = false;
            continue;
        }
        result.push_back(*s);
    }
    if (ok) out = std::move(result);
    return ok;
}

bool Reader::read_senders(const toml::node& n, std::vector<std::string>& out) {
    const auto* arr = n.as_array();
    if (arr == nullptr) {
        wrong_type(n, "an array of sender patterns, e.g. [\"app@example.com\", \"@example.com\"]");
        return false;
    }
    std::vector<std::string> result;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        const std::string* s = string_of(el, "a string such as \"@example.com\"", "element " + std::to_string(i + 1));
        if (s == nullptr) {
            ok = false;
            continue;
        }
        auto p = parse_sender_pattern(*s, true);
        if (!p) {
            bad_value(el, "bad sender pattern " + quote(*s), "expected \"local@domain\", \"@domain\" or \"*\"");
            ok = false;
            continue;
        }
        result.push_back(std::move(*p));
    }
    if (ok) out = std::move(result);
    return ok;
}

bool Reader::read_port(const toml::node& n, unsigned short& out) {
    const auto* i = n.as_integer();
    if (i == nullptr) {
        wrong_type(n, "an integer port 1-65535");
        return false;
    }
    if (i->get() < 1 || i->get() > 65535) {
        bad_value(n, "port " + std::to_string(i->get()) + " is out of range", "expected 1-65535");
        return false;
    }
    out = static_cast<unsigned short>(i->get());
    return true;
}

bool Reader::read_duration(const toml::node& n, Duration& out, bool allow_zero) {
    const std::string* s = string_of(n, "a duration string, e.g. \"90s\"");
    if (s == nullptr) return false;
    auto d = common::parse_duration(*s);
    if (!d) {
        bad_value(n, "bad duration " + quote(*s), kDurationExpected);
        return false;
    }
    if (!allow_zero && d->count() == 0) {
        bad_value(n, "duration " + quote(*s) + " is zero", "expected a duration greater than zero");
        return false;
    }
    out = *d;
    return true;
}

bool Reader::read_durations(const toml::node& n, std::vector<Duration>& out) {
    const auto* arr = n.as_array();
    if (arr == nullptr) {
        wrong_type(n, "an array of duration strings, e.g. [\"1m\", \"5m\", \"1h\"]");
        return false;
    }
    if (arr->empty()) {
        bad_value(n, "empty list", "expected at least one duration, e.g. [\"1m\", \"5m\", \"1h\"]");
        return false;
    }
    std::vector<Duration> result;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        Duration d{};
        if (!el.is_string()) {
            wrong_type(el, "a duration string, e.g. \"90s\"", "element " + std::to_string(i + 1));
            ok = false;
        } else if (read_duration(el, d, false)) {
            result.push_back(d);
        } else {
            ok = false;
        }
    }
    if (ok) out = std::move(result);
    return ok;
}

bool Reader::read_endpoint(const toml::node& n, Endpoint& out, unsigned short default_port) {
    const std::string* s = string_of(n, "a string such as \"127.0.0.1:2525\"");
    if (s == nullptr) return false;
    std::string why;
    auto ep = parse_endpoint(*s, default_port, why);
    if (!ep) {
        std::string expected(kEndpointExpected);
        if (default_port != 0) expected += "; the port may be left out for " + std::to_string(default_port);
        bad_value(n, "bad endpoint " + quote(*s) + ": " + why, expected);
        return false;
    }
    out = std::move(*ep);
    return true;
}

bool Reader::read_endpoints(const toml::node& n, std::vector<Endpoint>& out, unsigned short default_port) {
    const auto* arr = n.as_array();
    if (arr == nullptr) {
        wrong_type(n, "an array of endpoint strings, e.g. [\"127.0.0.1:2525\", \"[::1]:2525\"]");
        return false;
    }
    std::vector<Endpoint> result;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        Endpoint ep;
        if (!el.is_string()) {
            wrong_type(el, "a string such as \"127.0.0.1:2525\"", "element " + std::to_string(i + 1));
            ok = false;
        } else if (read_endpoint(el, ep, default_port)) {
            result.push_back(std::move(ep));
        } else {
            ok = false;
        }
    }
    if (ok) out = std::move(result);
    return ok;
}

bool Reader::read_networks(const toml::node& n, std::vector<Network>& out) {
    const auto* arr = n.as_array();
    if (arr == nullptr) {
        wrong_type(n, "an array of networks, e.g. [\"127.0.0.0/8\", \"::1/128\"]");
        return false;
    }
    std::vector<Network> result;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        const std::string* s = string_of(el, "a string such as \"10.0.0.0/8\"", "element " + std::to_string(i + 1));
        if (s == nullptr) {
            ok = false;
            continue;
        }
        std::string why;
        auto net = parse_network(*s, why);
        if (!net) {
            bad_value(el, "bad network " + quote(*s) + ": " + why,
                      "expected \"address/prefix\" such as \"10.0.0.0/8\" or \"2001:db8::/32\", or "
                      "an address");
            ok = false;
            continue;
        }
        result.push_back(std::move(*net));
    }
    if (ok) out = std::move(result);
    return ok;
}

bool Reader::read_bind_address(const toml::node& n, std::string& out, bool v6) {
    const char* example = v6 ? "an IPv6 address such as \"2001:db8::25\"" : "an IPv4 address such as \"192.0.2.25\"";
    const std::string* s = string_of(n, std::string("a string: ") + example + ", or \"\"");
    if (s == nullptr) return false;
    if (s->empty()) {
        out.clear();
        return true;
    }
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN];
    const int af = v6 ? AF_INET6 : AF_INET;
    if (::inet_pton(af, s->c_str(), buf) != 1 || ::inet_ntop(af, buf, text, sizeof text) == nullptr) {
        bad_value(n, "bad address " + quote(*s), std::string("expected ") + example);
        return false;
    }
    out = text;
    return true;
}

bool Reader::read_https_url(const toml::node& n, std::string& out) {
    constexpr std::string_view expected = "expected an https:// URL, e.g. \"https://portal.example.com:8443\"";
    const std::string* s = string_of(n, "an https:// URL string");
    if (s == nullptr) return false;
    constexpr std::string_view scheme = "https://";
    bool ok = s->size() > scheme.size() && s->compare(0, scheme.size(), scheme) == 0 && (*s)[scheme.size()] != '/';
    for (char c : *s) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
    if (!ok) {
        bad_value(n, "bad URL " + quote(*s), expected);
        return false;
    }
    out = *s;
    return true;
}

bool Reader::read_path(const toml::node& n, std::filesystem::path& out) {
    constexpr std::string_view expected = "expected a file path; leave the key out for the default";
    const std::string* s = string_of(n, "a string with a file path");
    if (s == nullptr) return false;
    if (s->empty() || s->find('\0') != std::string::npos) {
        bad_value(n, "bad path " + quote(*s), expected);
        return false;
    }
    std::filesystem::path p(*s);
    if (p.is_relative() && !base_dir_.empty()) p = base_dir_ / p;
    out = p.lexically_normal();
    return true;
}

}  // namespace mailward::config::detail
