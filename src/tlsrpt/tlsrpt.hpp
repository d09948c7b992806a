// SMTP TLS Reporting (RFC 8460), the pure part: the result types of section 4.3, the policy-record
// `_smtp._tls.<domain>` TXT (section 3: "v=TLSRPTv1; rua=..."), the aggregate report as JSON
// (section 4.4), its gzip form and file name (section 5.1 and 5.3) and the report mail
// (section 5.3: multipart/report; report-type="tlsrpt"). Record input is untrusted DNS data:
// checked against the grammar, never a crash. No I/O, no clock (send.hpp does the sending).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::tlsrpt {

enum class PolicyType { sts, tlsa, no_policy_found };
std::string_view to_string(PolicyType t);  // "sts", "tlsa", "no-policy-found"
std::optional<PolicyType> parse_policy_type(std::string_view s);

// Section 4.3 result types.
enum class ResultType {
    starttls_not_supported,
    certificate_host_mismatch,
    certificate_expired,
    certificate_not_trusted,
    validation_failure,
    tlsa_invalid,
    dnssec_invalid,
    dane_required,
    sts_policy_fetch_error,
    sts_policy_invalid,
    sts_webpki_invalid,
};
std::string_view to_string(ResultType r);  // "starttls-not-supported", ...
std::optional<ResultType> parse_result_type(std::string_view s);

// The policy a session was held to (section 4.4 "policy").
struct Policy {
    PolicyType type = PolicyType::no_policy_found;
    std::vector<std::string> strings;   // MTA-STS policy lines, or TLSA records in presentation form
    std::string domain;                 // the policy domain (the recipient domain)
    std::vector<std::string> mx_hosts;  // MTA-STS "mx" patterns (sts only)
};

// One TLS negotiation (or its absence): result nullopt is a success.
struct Session {
    Policy policy;
    std::optional<ResultType> result;
    std::string sending_ip;    // our side of the connection ("" when unknown)
    std::string receiving_mx;  // the MX host name
    std::string receiving_ip;  // the MX address
};

// What a day's records add up to, per policy.
struct FailureDetail {
    ResultType result = ResultType::validation_failure;
    std::string sending_ip;
    std::string receiving_mx;
    std::string receiving_ip;
    std::uint64_t count = 0;
};
struct PolicySummary {
    Policy policy;
    std::uint64_t successes = 0;
    std::vector<FailureDetail> failures;
};

struct ReportMeta {
    std::string organization;  // organization-name
    std::string contact;       // contact-info
    std::string report_id;
    std::string day;  // YYYY-MM-DD (UTC): date-range is this whole day
};

// Unix seconds of 00:00:00Z of day (YYYY-MM-DD), nullopt when day is not a valid date.
std::optional<std::int64_t> day_start(std::string_view day);

// The section 4.4 JSON (one line). Empty optional fields (sending-mta-ip, receiving-ip, ...) are left out.
std::string report_json(const ReportMeta& meta, const std::vector<PolicySummary>& policies);

// gzip (RFC 1952) with zlib; gunzip for tests and the CLI. invalid_argument on a corrupt input.
Result<std::string> gzip(std::string_view data);
Result<std::string> gunzip(std::string_view data);

// Section 5.1: "submitter!policy-domain!begin!end!unique-id.json.gz".
std::string report_file_name(std::string_view submitter, std::string_view policy_domain, std::int64_t begin,
                             std::int64_t end, std::string_view unique_id);

// A reporting URI of the record (section 3): mailto:ADDRESS or https://...
struct Rua {
    enum class Scheme { mailto, https };
    Scheme scheme = Scheme::mailto;
    std::string uri;      // as published
    std::string address;  // mailto: the address (percent-decoded, before any "?")
};

// Section 3: of the TXT strings at _smtp._tls.<domain>, those not starting with "v=TLSRPTv1" are
// ignored; exactly one must remain ("v=TLSRPTv1; rua=mailto:a@b.example,https://r.example/x",
// extensions "name=value" allowed). URIs of other schemes are skipped; none usable is an error.
// Errors: not_found (no record), invalid_argument (several records, bad syntax, no usable rua);
// detail says which.
Result<std::vector<Rua>> parse_record(const std::vector<std::string>& texts, std::string& detail);

// Section 5.3: the report mail, CRLF lines, ready to queue (the report attached as
// application/tlsrpt+gzip, base64). date: an RFC 5322 date; message_id without angle brackets.
struct MailParts {
    std::string from;       // addr-spec
    std::string to;         // addr-spec
    std::string submitter;  // domain of the submitter
    std::string policy_domain;
    std::string report_id;
    std::string file_name;
    std::string date;
    std::string message_id;
    std::string organization;
};
std::string report_mail(const MailParts& p, std::string_view gz);

}  // namespace mailward::tlsrpt
