// TLS-RPT (RFC 8460 section 4.3) at delivery: the one mapping from the SMTP client's report of a
// session to a result type, the session's policy (section 4.4 policy-string: the MTA-STS policy's
// lines, or the TLSA records in presentation form), and the store recorder. See tlsrpt_step.hpp.
#include "delivery/tlsrpt_step.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "policy/mta_sts.hpp"

namespace mailward::delivery {
using outbound::TlsFault;
using tlsrpt::ResultType;

namespace {

// A TLS session that came about but does not meet the level: what its facts say is wrong.
ResultType from_facts(const tls::PeerFacts& f, tls::Level level) {
    if (level == tls::Level::dane && f.dane_checked && !f.dane_matched) return ResultType::tlsa_invalid;
    if (!f.chain_valid) {
        if (f.verify_error.find("expired") != std::string::npos) return ResultType::certificate_expired;
        return ResultType::certificate_not_trusted;
    }
    if (!f.name_matched) return ResultType::certificate_host_mismatch;
    return ResultType::validation_failure;
}

std::string hex(const std::vector<std::uint8_t>& data) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (auto b : data) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : "\n") + s;
    return out;
}

class StoreRecorder final : public TlsRptRecorder {
  public:
    StoreRecorder(store::PolicyStore& ps, boost::asio::thread_pool& pool) : ps_(ps), pool_(pool) {}
    void record(const tlsrpt::Session& s, std::chrono::system_clock::time_point at) override {
        boost::asio::post(pool_, [&ps = ps_, row = tlsrpt_row(s, at)] {
            if (auto r = ps.add_tlsrpt({row}); !r) {
                spdlog::warn("tlsrpt: cannot record a session of {}: {}", row.policy_domain, r.error().message());
            }
        });
    }

  private:
    store::PolicyStore& ps_;
    boost::asio::thread_pool& pool_;
};

}  // namespace

TlsRptVerdict tlsrpt_verdict(const outbound::SessionError* err, const tls::PeerFacts* facts, bool starttls_offered,
                             tls::Level level) {
    if (level == tls::Level::none) return {};  // TLS was not asked for: no negotiation
    if (!err) {
        if (facts && facts->established) return {true, std::nullopt};
        // Plaintext at may: STARTTLS not offered, refused (454), or a broken handshake retried in
        // plaintext. All of them are a session without TLS.
        (void)starttls_offered;
        return {true, ResultType::starttls_not_supported};
    }
    switch (err->tls_fault) {
        case TlsFault::starttls_missing:
        case TlsFault::starttls_refused: return {true, ResultType::starttls_not_supported};
        case TlsFault::no_session: return {true, ResultType::validation_failure};
        case TlsFault::below_level:
            // No session: the TLSA records offered nothing usable (prepare failed before STARTTLS).
            if (!err->tls || !err->tls->established) return {true, ResultType::tlsa_invalid};
            return {true, from_facts(*err->tls, level)};
        case TlsFault::certificate_changed: return {true, ResultType::validation_failure};
        case TlsFault::none: break;
    }
    // Not a TLS fault: a session that failed after TLS came about (AUTH, EHLO again) was a
    // successful negotiation; one that failed before STARTTLS (connect, greeting, EHLO) is none.
    if (err->tls && err->tls->established) return {true, std::nullopt};
    return {};
}

tlsrpt::Policy tlsrpt_policy(const std::string& domain, const std::optional<policy::MtaStsPolicy>& sts,
                             const std::vector<dns::TlsaRecord>& tlsa, tls::Level level) {
    tlsrpt::Policy p;
    p.domain = domain;
    if (level == tls::Level::dane && !tlsa.empty()) {
        p.type = tlsrpt::PolicyType::tlsa;
        for (const auto& r : tlsa) {
            p.strings.push_back(std::to_string(r.usage) + " " + std::to_string(r.selector) + " " +
                                std::to_string(r.matching_type) + " " + hex(r.data));
        }
        return p;
    }
    if (sts && sts->mode != policy::MtaStsPolicy::Mode::none) {
        p.type = tlsrpt::PolicyType::sts;
        p.strings.push_back("version: STSv1");
        p.strings.push_back("mode: " + std::string(policy::to_string(sts->mode)));
        for (const auto& mx : sts->mx) p.strings.push_back("mx: " + mx);
        p.strings.push_back("max_age: " + std::to_string(sts->max_age.count()));
        p.mx_hosts = sts->mx;
        return p;
    }
    return p;
}

store::TlsRptCount tlsrpt_row(const tlsrpt::Session& s, std::chrono::system_clock::time_point at) {
    store::TlsRptCount c;
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(at)};
    char day[16];
    std::snprintf(day, sizeof day, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()));
    c.day = day;
    c.policy_domain = s.policy.domain;
    c.policy_type = std::string(tlsrpt::to_string(s.policy.type));
    c.policy_strings = join(s.policy.strings);
    c.mx_hosts = join(s.policy.mx_hosts);
    if (s.result) {
        c.result_type = std::string(tlsrpt::to_string(*s.result));
        c.sending_ip = s.sending_ip;
        c.receiving_mx = s.receiving_mx;
        c.receiving_ip = s.receiving_ip;
    }
    c.count = 1;
    return c;
}

std::shared_ptr<TlsRptRecorder> store_recorder(store::PolicyStore& ps, boost::asio::thread_pool& pool) {
    return std::make_shared<StoreRecorder>(ps, pool);
}

}  // namespace mailward::delivery
