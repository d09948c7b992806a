// MTA-STS (RFC 8461), the pure part: the `_mta-sts.<domain>` TXT record (section 3.1), the policy
// file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (section 3.2) and MX host
// matching against the policy's "mx" patterns (section 4.1). Input is untrusted (DNS, HTTPS body):
// everything is validated against the RFC's grammar; no I/O, no clock. Fetching and caching live
// in mta_sts_fetch.hpp.
#pragma once

#include <boost/system/error_category.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "policy/decide.hpp"
#include "policy/mx_hosts.hpp"

namespace mailward::policy {

// Largest max_age a policy may carry (RFC 8461 section 3.2: about one year, in seconds).
inline constexpr std::chrono::seconds kMtaStsMaxAgeLimit{31557600};

// Why MTA-STS gave no policy. The parse errors are final for that input; the fetch and DNS errors
// (see mta_sts_fetch.hpp) may go away on a later try.
enum class MtaStsErrc {
    ok = 0,
    no_record = 1,    // no TXT record starting with "v=STSv1" at _mta-sts.<domain>
    several_records,  // more than one such record (section 3.1: treated as none)
    bad_record,       // the one "v=STSv1" record is not valid (no or bad id, bad syntax)
    bad_policy,       // the policy file is not a valid STSv1 policy
    dns_failed,       // TXT or A/AAAA lookup failed (SERVFAIL, timeout, bogus)
    no_address,       // mta-sts.<domain> has no A/AAAA record
    connect_failed,   // could not connect to the policy host
    tls_failed,       // TLS handshake or certificate validation (chain, name) failed
    timeout,          // the HTTPS fetch ran out of time
    redirect,         // the policy host answered with a 3xx (section 3.3: never followed)
    http_status,      // a status other than 200
    content_type,     // a media type other than text/plain
    too_large,        // the body is larger than the limit (64 KiB)
    fetch_failed,     // any other HTTPS failure
};
const boost::system::error_category& mta_sts_category() noexcept;
inline error_code make_error_code(MtaStsErrc e) noexcept { return {static_cast<int>(e), mta_sts_category()}; }

// The TXT record: its id (1-32 letters and digits) identifies the current policy.
struct MtaStsRecord {
    std::string id;
};

// Section 3.1: of all the TXT strings at _mta-sts.<domain>, those that do not begin with
// "v=STSv1" are discarded; exactly one must remain and it must be valid
// ("v=STSv1; id=20160831085700Z;", extensions "name=value" allowed). Errors: no_record,
// several_records, bad_record; detail says what was wrong.
Result<MtaStsRecord> parse_mta_sts_record(const std::vector<std::string>& texts, std::string& detail);

// Section 3.2: "key: value" lines separated by LF or CRLF; version (STSv1), mode (enforce |
// testing | none) and max_age (0..31557600, at most 10 digits) exactly once; mx at least once
// unless mode is none (patterns kept lower case, without a trailing dot); unknown keys ignored;
// blank lines tolerated. Field names and values are case-sensitive. Error: bad_policy, detail
// names the line.
Result<MtaStsPolicy> parse_mta_sts_policy(std::string_view body, std::string& detail);

// mx_pattern_matches (RFC 8461 section 4.1) is in policy/mx_hosts.hpp.

// True when host matches one of policy.mx.
bool mx_allowed(const MtaStsPolicy& policy, std::string_view host);

std::string_view to_string(MtaStsPolicy::Mode mode);

}  // namespace mailward::policy

namespace boost::system {
template <>
struct is_error_code_enum<mailward::policy::MtaStsErrc> : std::true_type {};
}  // namespace boost::system
