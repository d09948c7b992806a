// TLS-RPT (RFC 8460): result types, the `_smtp._tls` record, the JSON report, gzip, the file name
// and the report mail. See tlsrpt.hpp.
#include "tlsrpt/tlsrpt.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/ascii.hpp"

namespace mailward::tlsrpt {
namespace {

constexpr std::pair<PolicyType, std::string_view> kPolicyTypes[] = {
    {PolicyType::sts, "sts"}, {PolicyType::tlsa, "tlsa"}, {PolicyType::no_policy_found, "no-policy-found"}};

constexpr std::pair<ResultType, std::string_view> kResultTypes[] = {
    {ResultType::starttls_not_supported, "starttls-not-supported"},
    {ResultType::certificate_host_mismatch, "certificate-host-mismatch"},
    {ResultType::certificate_expired, "certificate-expired"},
    {ResultType::certificate_not_trusted, "certificate-not-trusted"},
    {ResultType::validation_failure, "validation-failure"},
    {ResultType::tlsa_invalid, "tlsa-invalid"},
    {ResultType::dnssec_invalid, "dnssec-invalid"},
    {ResultType::dane_required, "dane-required"},
    {ResultType::sts_policy_fetch_error, "sts-policy-fetch-error"},
    {ResultType::sts_policy_invalid, "sts-policy-invalid"},
    {ResultType::sts_webpki_invalid, "sts-webpki-invalid"},
};

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto p = s.find(sep);
        out.push_back(trim(s.substr(0, p)));
        if (p == std::string_view::npos) break;
        s.remove_prefix(p + 1);
    }
    return out;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(c | 0x20);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int h = hex(s[i + 1]), l = hex(s[i + 2]);
        if (h < 0 || l < 0) return std::nullopt;
        out += static_cast<char>(h * 16 + l);
        i += 2;
    }
    return out;
}

// URI characters (RFC 3986 unreserved, reserved and '%'), no spaces or controls.
bool uri_chars(std::string_view s) {
    for (unsigned char c : s) {
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
            c == '{' || c == '|' || c == '}')
            return false;
    }
    return true;
}

bool plain_address(std::string_view a) {
    const auto at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= a.size()) return false;
    for (unsigned char c : a) {
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '\\')
            return false;
    }
    return true;
}

std::string base64_lines(std::string_view data) {
    std::string out;
    for (std::size_t i = 0; i < data.size(); i += 57) {  // 76 characters a line
        const std::size_t n = std::min<std::size_t>(57, data.size() - i);
        unsigned char buf[80];
        const int len =
            EVP_EncodeBlock(buf, reinterpret_cast<const unsigned char*>(data.data() + i), static_cast<int>(n));
        out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(len));
        out += "\r\n";
    }
    return out;
}

}  // namespace

std::string_view to_string(PolicyType t) {
    for (const auto& [k, v] : kPolicyTypes)
        if (k == t) return v;
    return "no-policy-found";
}

std::optional<PolicyType> parse_policy_type(std::string_view s) {
    for (const auto& [k, v] : kPolicyTypes)
        if (v == s) return k;
    return std::nullopt;
}

std::string_view to_string(ResultType r) {
    for (const auto& [k, v] : kResultTypes)
        if (k == r) return v;
    return "validation-failure";
}

std::optional<ResultType> parse_result_type(std::string_view s) {
    for (const auto& [k, v] : kResultTypes)
        if (v == s) return k;
    return std::nullopt;
}

std::optional<std::int64_t> day_start(std::string_view day) {
    if (day.size() != 10 || day[4] != '-' || day[7] != '-') return std::nullopt;
    int y = 0, m = 0, d = 0;
    for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u})
        if (day[i] < '0' || day[i] > '9') return std::nullopt;
    y = std::stoi(std::string(day.substr(0, 4)));
    m = std::stoi(std::string(day.substr(5, 2)));
    d = std::stoi(std::string(day.substr(8, 2)));
    const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                          std::chrono::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::sys_days{ymd}.time_since_epoch()).count();
}

std::string report_json(const ReportMeta& meta, const std::vector<PolicySummary>& policies) {
    using nlohmann::json;
    const std::string& day = meta.day;
    json j;
    j["organization-name"] = meta.organization;
    j["date-range"] = {{"start-datetime", day + "T00:00:00Z"}, {"end-datetime", day + "T23:59:59Z"}};
    j["contact-info"] = meta.contact;
    j["report-id"] = meta.report_id;
    json ps = json::array();
    for (const auto& p : policies) {
        json pol = {{"policy-type", to_string(p.policy.type)}, {"policy-domain", p.policy.domain}};
        if (!p.policy.strings.empty()) pol["policy-string"] = p.policy.strings;
        if (!p.policy.mx_hosts.empty()) pol["mx-host"] = p.policy.mx_hosts;
        std::uint64_t failed = 0;
        json details = json::array();
        for (const auto& f : p.failures) {
            failed += f.count;
            json d = {{"result-type", to_string(f.result)}, {"failed-session-count", f.count}};
            if (!f.sending_ip.empty()) d["sending-mta-ip"] = f.sending_ip;
            if (!f.receiving_mx.empty()) d["receiving-mx-hostname"] = f.receiving_mx;
            if (!f.receiving_ip.empty()) d["receiving-ip"] = f.receiving_ip;
            details.push_back(std::move(d));
        }
        json entry = {
            {"policy", pol},
            {"summary", {{"total-successful-session-count", p.successes}, {"total-failure-session-count", failed}}}};
        if (!details.empty()) entry["failure-details"] = std::move(details);
        ps.push_back(std::move(entry));
    }
    j["policies"] = std::move(ps);
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> gzip(std::string_view data) {
    z_stream z{};
    // windowBits 15 + 16: a gzip header and trailer (RFC 1952), not a zlib one.
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return common::Errc::io_error;
    }
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    const auto produced = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return common::Errc::io_error;
    out.resize(produced);
    return out;
}

Result<std::string> gunzip(std::string_view data) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return common::Errc::io_error;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buf[16384];
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf, sizeof buf - z.avail_out);
        if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
        if (out.size() > 64u * 1024 * 1024) break;
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) return common::Errc::invalid_argument;
    return out;
}

std::string report_file_name(std::string_view submitter, std::string_view policy_domain, std::int64_t begin,
                             std::int64_t end, std::string_view unique_id) {
    std::string n;
    n.append(submitter).append("!").append(policy_domain).append("!");
    n += std::to_string(begin) + "!" + std::to_string(end);
    if (!unique_id.empty()) n.append("!").append(unique_id);
    return n + ".json.gz";
}

Result<std::vector<Rua>> parse_record(const std::vector<std::string>& texts, std::string& detail) {
    const std::string_view version = "v=TLSRPTv1";
    std::vector<std::string_view> records;
    for (const auto& t : texts) {
        const std::string_view s(t);
        if (s.substr(0, version.size()) != version) continue;
        const auto rest = s.substr(version.size());
        if (!rest.empty() && rest.front() != ';' && !is_wsp(rest.front())) continue;  // "v=TLSRPTv10" is another
        records.push_back(s);
    }
    if (records.empty()) {
        detail = "no TXT record starting with v=TLSRPTv1";
        return common::Errc::not_found;
    }
    if (records.size() > 1) {
        detail = std::to_string(records.size()) + " TXT records start with v=TLSRPTv1 (RFC 8460 3: exactly one)";
        return common::Errc::invalid_argument;
    }
    auto fields = split(records[0], ';');
    if (trim(fields[0]) != version) {
        detail = "the record does not begin with \"v=TLSRPTv1;\"";
        return common::Errc::invalid_argument;
    }
    if (fields.size() > 1 && fields.back().empty()) fields.pop_back();  // a final ";"
    std::optional<std::string_view> rua;
    for (std::size_t i = 1; i < fields.size(); ++i) {
        const auto f = fields[i];
        const auto eq = f.find('=');
        if (f.empty() || eq == std::string_view::npos || eq == 0) {
            detail = "field \"" + std::string(f) + "\" is not name=value";
            return common::Errc::invalid_argument;
        }
        const auto name = trim(f.substr(0, eq));
        if (name == "rua") {
            if (rua) {
                detail = "rua given twice";
                return common::Errc::invalid_argument;
            }
            rua = trim(f.substr(eq + 1));
        }
    }
    if (!rua || rua->empty()) {
        detail = "no rua= field";
        return common::Errc::invalid_argument;
    }
    std::vector<Rua> out;
    std::string skipped;
    for (const auto u : split(*rua, ',')) {
        if (u.empty() || !uri_chars(u)) {
            detail = "rua URI \"" + std::string(u) + "\" is not a URI";
            return common::Errc::invalid_argument;
        }
        const std::string lower = common::ascii::lower(std::string(u.substr(0, 8)));
        if (lower.rfind("mailto:", 0) == 0) {
            auto addr = percent_decode(
                u.substr(7, u.find('?') == std::string_view::npos ? std::string_view::npos : u.find('?') - 7));
            if (!addr || !plain_address(*addr)) {
                detail = "rua URI \"" + std::string(u) + "\" has no usable mail address";
                return common::Errc::invalid_argument;
            }
            out.push_back({Rua::Scheme::mailto, std::string(u), *addr});
        } else if (lower == "https://") {
            if (u.size() <= 8 || u[8] == '/') {
                detail = "rua URI \"" + std::string(u) + "\" has no host";
                return common::Errc::invalid_argument;
            }
            out.push_back({Rua::Scheme::https, std::string(u), {}});
        } else {
            skipped += (skipped.empty() ? "" : ", ") + std::string(u);
        }
    }
    if (out.empty()) {
        detail = "no mailto: or https: URI in rua (" + skipped + ")";
        return common::Errc::invalid_argument;
    }
    return out;
}

std::string report_mail(const MailParts& p, std::string_view gz) {
    const std::string boundary = "=_tlsrpt_" + p.report_id.substr(0, 20) + "_" + std::to_string(gz.size());
    std::string m;
    auto h = [&m](std::string_view name, const std::string& value) {
        m.append(name).append(": ").append(value) += "\r\n";
    };
    h("From", "<" + p.from + ">");
    h("To", "<" + p.to + ">");
    h("Date", p.date);
    h("Message-ID", "<" + p.message_id + ">");
    h("Subject",
      "Report Domain: " + p.policy_domain + " Submitter: " + p.submitter + " Report-ID: <" + p.report_id + ">");
    h("TLS-Report-Domain", p.policy_domain);
    h("TLS-Report-Submitter", p.submitter);
    h("MIME-Version", "1.0");
    h("Auto-Submitted", "auto-generated");
    h("Content-Type", "multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"" + boundary + "\"");
    m += "\r\n";
    m += "This is a multipart message in MIME format.\r\n\r\n";
    m += "--" + boundary + "\r\n";
    m += "Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\n";
    m += "This is an aggregate TLS report (RFC 8460) from " + p.organization + " for " + p.policy_domain +
         ".\r\nReport-ID: " + p.report_id + "\r\n\r\n";
    m += "--" + boundary + "\r\n";
    m += "Content-Type: application/tlsrpt+gzip\r\n";
    m += "Content-Transfer-Encoding: base64\r\n";
    m += "Content-Disposition: attachment;\r\n\tfilename=\"" + p.file_name + "\"\r\n\r\n";
    m += base64_lines(gz);
    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

}  // namespace mailward::tlsrpt
