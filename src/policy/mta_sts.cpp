// MTA-STS parsing and MX matching (RFC 8461 sections 3.1, 3.2, 4.1). Input is untrusted: the TXT
// strings come from DNS, the policy body from an HTTPS server; both are checked against the RFC's
// ABNF and rejected whole when they do not fit.
#include "policy/mta_sts.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "common/ascii.hpp"

namespace mailward::policy {
namespace {

class MtaStsCategory : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mta-sts"; }
    std::string message(int ev) const override {
        switch (static_cast<MtaStsErrc>(ev)) {
            case MtaStsErrc::ok: return "ok";
            case MtaStsErrc::no_record: return "no MTA-STS TXT record";
            case MtaStsErrc::several_records: return "several MTA-STS TXT records";
            case MtaStsErrc::bad_record: return "invalid MTA-STS TXT record";
            case MtaStsErrc::bad_policy: return "invalid MTA-STS policy";
            case MtaStsErrc::dns_failed: return "DNS lookup failed";
            case MtaStsErrc::no_address: return "policy host has no address";
            case MtaStsErrc::connect_failed: return "cannot connect to the policy host";
            case MtaStsErrc::tls_failed: return "TLS with the policy host failed";
            case MtaStsErrc::timeout: return "policy fetch timed out";
            case MtaStsErrc::redirect: return "policy host redirected (not followed)";
            case MtaStsErrc::http_status: return "policy host answered with an HTTP error";
            case MtaStsErrc::content_type: return "policy is not text/plain";
            case MtaStsErrc::too_large: return "policy is too large";
            case MtaStsErrc::fetch_failed: return "policy fetch failed";
        }
        return "unknown MTA-STS error";
    }
};

using common::ascii::is_alnum;
using common::ascii::is_wsp;
using common::ascii::trim_wsp;

// sts-ext-name / sts-policy-ext-name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
bool is_ext_name(std::string_view s) {
    if (s.empty() || s.size() > 32 || !is_alnum(s.front())) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; });
}

// sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E): VCHAR except ";" and "="
bool is_ext_value(std::string_view s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u >= 0x21 && u <= 0x7e && c != ';' && c != '=';
    });
}

// "v=STSv1" followed by the end, white space or ";": a record section 3.1 keeps.
bool starts_with_version(std::string_view t) {
    constexpr std::string_view v = "v=STSv1";
    if (!t.starts_with(v)) return false;
    return t.size() == v.size() || is_wsp(t[v.size()]) || t[v.size()] == ';';
}

std::string normalize_host(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return common::ascii::lower(s);
}

// sts-policy-mx-value: 1*(ALPHA / DIGIT / "_" / "-" / ".") with an optional leading "*.", and
// (as a host name) no empty label; one final dot (the fully qualified form) is allowed.
bool is_mx_pattern(std::string_view s) {
    if (s.starts_with("*.")) s.remove_prefix(2);
    if (s.ends_with('.')) s.remove_suffix(1);
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '_' || c == '-' || c == '.'; });
}

}  // namespace

const boost::system::error_category& mta_sts_category() noexcept {
    static const MtaStsCategory c;
    return c;
}

std::string_view to_string(MtaStsPolicy::Mode mode) {
    switch (mode) {
        case MtaStsPolicy::Mode::enforce: return "enforce";
        case MtaStsPolicy::Mode::testing: return "testing";
        case MtaStsPolicy::Mode::none: return "none";
    }
    return "none";
}

Result<MtaStsRecord> parse_mta_sts_record(const std::vector<std::string>& texts, std::string& detail) {
    const std::string* found = nullptr;
    std::size_t count = 0;
    for (const auto& t : texts) {
        if (starts_with_version(t)) {
            found = &t;
            ++count;
        }
    }
    if (count == 0) {
        detail = "no TXT record starting with v=STSv1";
        return MtaStsErrc::no_record;
    }
    if (count > 1) {
        detail = std::to_string(count) + " TXT records start with v=STSv1 (exactly one allowed)";
        return MtaStsErrc::several_records;
    }
    std::string_view rest = std::string_view(*found).substr(7);  // after "v=STSv1"
    std::optional<std::string> id;
    while (true) {
        while (!rest.empty() && is_wsp(rest.front())) rest.remove_prefix(1);
        if (rest.empty()) break;
        if (rest.front() != ';') {
            detail = "expected ';' before \"" + std::string(rest) + "\"";
            return MtaStsErrc::bad_record;
        }
        rest.remove_prefix(1);
        while (!rest.empty() && is_wsp(rest.front())) rest.remove_prefix(1);
        if (rest.empty()) break;  // [sts-sep] at the end
        const auto end = std::find_if(rest.begin(), rest.end(), [](char c) { return c == ';' || is_wsp(c); });
        const std::string_view field(rest.begin(), end);
        rest = std::string_view(end, rest.end());
        const auto eq = field.find('=');
        if (eq == std::string_view::npos) {
            detail = "field \"" + std::string(field) + "\" has no '='";
            return MtaStsErrc::bad_record;
        }
        const auto name = field.substr(0, eq), value = field.substr(eq + 1);
        if (name == "id") {
            if (id) {
                detail = "id given twice";
                return MtaStsErrc::bad_record;
            }
            if (value.empty() || value.size() > 32 || !std::all_of(value.begin(), value.end(), is_alnum)) {
                detail = "id \"" + std::string(value) + "\" is not 1-32 letters and digits";
                return MtaStsErrc::bad_record;
            }
            id = std::string(value);
        } else if (!is_ext_name(name) || !is_ext_value(value)) {
            detail = "bad field \"" + std::string(field) + "\"";
            return MtaStsErrc::bad_record;
        }
    }
    if (!id) {
        detail = "no id";
        return MtaStsErrc::bad_record;
    }
    return MtaStsRecord{std::move(*id)};
}

Result<MtaStsPolicy> parse_mta_sts_policy(std::string_view body, std::string& detail) {
    MtaStsPolicy p;
    bool have_version = false, have_mode = false, have_max_age = false;
    std::size_t line_no = 0;
    auto bad = [&](const std::string& why) -> Result<MtaStsPolicy> {
        detail = "line " + std::to_string(line_no) + ": " + why;
        return MtaStsErrc::bad_policy;
    };
    while (!body.empty()) {
        ++line_no;
        const auto nl = body.find('\n');
        std::string_view line = body.substr(0, nl);
        body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (trim_wsp(line).empty()) continue;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return bad("no ':' in \"" + std::string(line) + "\"");
        const auto key = line.substr(0, colon);
        const auto value = trim_wsp(line.substr(colon + 1));
        if (!is_ext_name(key)) return bad("bad field name \"" + std::string(key) + "\"");
        if (key == "version") {
            if (have_version) return bad("version given twice");
            if (value != "STSv1") return bad("version \"" + std::string(value) + "\" is not STSv1");
            have_version = true;
        } else if (key == "mode") {
            if (have_mode) return bad("mode given twice");
            if (value == "enforce") {
                p.mode = MtaStsPolicy::Mode::enforce;
            } else if (value == "testing") {
                p.mode = MtaStsPolicy::Mode::testing;
            } else if (value == "none") {
                p.mode = MtaStsPolicy::Mode::none;
            } else {
                return bad("mode \"" + std::string(value) + "\" is not enforce, testing or none");
            }
            have_mode = true;
        } else if (key == "max_age") {
            if (have_max_age) return bad("max_age given twice");
            std::uint64_t n = 0;
            const auto* first = value.data();
            const auto* last = value.data() + value.size();
            const auto [ptr, ec] = std::from_chars(first, last, n);
            if (value.empty() || value.size() > 10 || ec != std::errc{} || ptr != last ||
                !std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) {
                return bad("max_age \"" + std::string(value) + "\" is not 1-10 digits");
            }
            if (n > static_cast<std::uint64_t>(kMtaStsMaxAgeLimit.count())) {
                return bad("max_age " + std::string(value) + " is above 31557600");
            }
            p.max_age = std::chrono::seconds(static_cast<std::int64_t>(n));
            have_max_age = true;
        } else if (key == "mx") {
            if (!is_mx_pattern(value)) return bad("mx \"" + std::string(value) + "\" is not a host name pattern");
            p.mx.push_back(normalize_host(value));
        }
        // other keys: extensions, ignored (section 3.2)
    }
    const char* missing = !have_version                                          ? "version"
                          : !have_mode                                           ? "mode"
                          : !have_max_age                                        ? "max_age"
                          : (p.mx.empty() && p.mode != MtaStsPolicy::Mode::none) ? "mx"
                                                                                 : nullptr;
    if (missing) {
        detail = std::string("no ") + missing;
        return MtaStsErrc::bad_policy;
    }
    detail.clear();
    return p;
}

bool mx_allowed(const MtaStsPolicy& policy, std::string_view host) {
    return std::any_of(policy.mx.begin(), policy.mx.end(),
                       [&](const std::string& pattern) { return mx_pattern_matches(pattern, host); });
}

}  // namespace mailward::policy
