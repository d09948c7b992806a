// TLS-RPT at delivery (delivery/tlsrpt_step.hpp): the one table from what the SMTP client reports
// about a new session to RFC 8460 result types (and which sessions are no TLS outcome at all), the
// policy a session was held to, and the store row of one session.
#include <gtest/gtest.h>

#include "delivery/tlsrpt_step.hpp"

using namespace mailward;
using namespace mailward::delivery;
using outbound::SessionError;
using outbound::Stage;
using outbound::TlsFault;
using tlsrpt::ResultType;

namespace {

tls::PeerFacts facts(bool chain, bool name, std::string verify = "", bool dane_checked = false, bool dane = false) {
    tls::PeerFacts f;
    f.established = true;
    f.chain_valid = chain;
    f.name_matched = name;
    f.verify_error = std::move(verify);
    f.dane_checked = dane_checked;
    f.dane_matched = dane;
    return f;
}

SessionError err(Stage s, TlsFault f, std::optional<tls::PeerFacts> t = std::nullopt) {
    SessionError e;
    e.stage = s;
    e.tls_fault = f;
    e.tls = std::move(t);
    return e;
}

}  // namespace

TEST(TlsRptVerdict, EverySessionReportMapsToOneResult) {
    const auto plain = tls::PeerFacts{};
    const auto good = facts(true, true);
    struct Case {
        const char* name;
        std::optional<SessionError> error;  // nullopt: the session opened
        tls::PeerFacts session;             // the client's facts when it opened
        bool starttls_offered;
        tls::Level level;
        bool counted;
        std::optional<ResultType> want;
    };
    const Case cases[] = {
        {"TLS session", std::nullopt, good, true, tls::Level::may, true, std::nullopt},
        {"TLS session at verify", std::nullopt, good, true, tls::Level::verify, true, std::nullopt},
        {"plaintext at may, no STARTTLS", std::nullopt, plain, false, tls::Level::may, true,
         ResultType::starttls_not_supported},
        {"plaintext at may, STARTTLS refused", std::nullopt, plain, true, tls::Level::may, true,
         ResultType::starttls_not_supported},
        {"level none: no negotiation", std::nullopt, plain, false, tls::Level::none, false, std::nullopt},
        {"STARTTLS missing at encrypt", err(Stage::tls_policy, TlsFault::starttls_missing), plain, false,
         tls::Level::encrypt, true, ResultType::starttls_not_supported},
        {"STARTTLS 454 at encrypt", err(Stage::starttls, TlsFault::starttls_refused), plain, true, tls::Level::encrypt,
         true, ResultType::starttls_not_supported},
        {"handshake failed", err(Stage::tls_handshake, TlsFault::no_session), plain, true, tls::Level::verify, true,
         ResultType::validation_failure},
        {"wrong name at verify", err(Stage::tls_policy, TlsFault::below_level, facts(true, false)), plain, true,
         tls::Level::verify, true, ResultType::certificate_host_mismatch},
        {"untrusted chain", err(Stage::tls_policy, TlsFault::below_level, facts(false, true, "self-signed")), plain,
         true, tls::Level::verify, true, ResultType::certificate_not_trusted},
        {"expired", err(Stage::tls_policy, TlsFault::below_level, facts(false, true, "certificate has expired")), plain,
         true, tls::Level::verify, true, ResultType::certificate_expired},
        {"DANE mismatch", err(Stage::tls_policy, TlsFault::below_level, facts(true, true, "", true, false)), plain,
         true, tls::Level::dane, true, ResultType::tlsa_invalid},
        {"no usable TLSA record", err(Stage::tls_policy, TlsFault::below_level), plain, true, tls::Level::dane, true,
         ResultType::tlsa_invalid},
        {"below level, facts fine (protocol)", err(Stage::tls_policy, TlsFault::below_level, good), plain, true,
         tls::Level::encrypt, true, ResultType::validation_failure},
        {"certificate changed", err(Stage::tls_policy, TlsFault::certificate_changed, facts(false, false)), plain, true,
         tls::Level::encrypt, true, ResultType::validation_failure},
        {"connection refused: not TLS", err(Stage::connect, TlsFault::none), plain, false, tls::Level::verify, false,
         std::nullopt},
        {"greeting 554: not TLS", err(Stage::greeting, TlsFault::none), plain, false, tls::Level::verify, false,
         std::nullopt},
        {"AUTH after TLS: the TLS part succeeded", err(Stage::auth, TlsFault::none, good), plain, true,
         tls::Level::encrypt, true, std::nullopt},
    };
    for (const auto& c : cases) {
        const auto v =
            tlsrpt_verdict(c.error ? &*c.error : nullptr, c.error ? nullptr : &c.session, c.starttls_offered, c.level);
        EXPECT_EQ(v.counted, c.counted) << c.name;
        EXPECT_EQ(v.failure, c.want) << c.name << ": got "
                                     << (v.failure ? tlsrpt::to_string(*v.failure) : std::string_view("success"));
    }
}

TEST(TlsRptVerdict, PolicyTypeFollowsWhatApplied) {
    policy::MtaStsPolicy enforce{
        policy::MtaStsPolicy::Mode::enforce, {"mx.a.example", "*.b.example"}, std::chrono::seconds(86400)};
    policy::MtaStsPolicy none{policy::MtaStsPolicy::Mode::none, {}, std::chrono::seconds(60)};
    const std::vector<dns::TlsaRecord> tlsa = {{3, 1, 1, {0xab, 0x01}}};
    auto sts = tlsrpt_policy("a.example", enforce, {}, tls::Level::verify);
    EXPECT_EQ(sts.type, tlsrpt::PolicyType::sts);
    EXPECT_EQ(sts.strings, (std::vector<std::string>{"version: STSv1", "mode: enforce", "mx: mx.a.example",
                                                     "mx: *.b.example", "max_age: 86400"}));
    EXPECT_EQ(sts.mx_hosts, enforce.mx);
    auto dane = tlsrpt_policy("a.example", enforce, tlsa, tls::Level::dane);
    EXPECT_EQ(dane.type, tlsrpt::PolicyType::tlsa) << "DANE takes precedence (RFC 8461 2)";
    EXPECT_EQ(dane.strings, (std::vector<std::string>{"3 1 1 ab01"}));
    EXPECT_TRUE(dane.mx_hosts.empty());
    EXPECT_EQ(tlsrpt_policy("a.example", none, {}, tls::Level::may).type, tlsrpt::PolicyType::no_policy_found);
    EXPECT_EQ(tlsrpt_policy("a.example", std::nullopt, {}, tls::Level::may).type, tlsrpt::PolicyType::no_policy_found);
}

TEST(TlsRptVerdict, RowIsOneSessionOnItsUtcDay) {
    tlsrpt::Session s;
    s.policy = tlsrpt_policy("a.example", std::nullopt, {}, tls::Level::may);
    s.result = ResultType::starttls_not_supported;
    s.sending_ip = "127.0.0.1";
    s.receiving_mx = "mx.a.example";
    s.receiving_ip = "127.0.0.9";
    const auto at =
        std::chrono::sys_days{std::chrono::year{2026} / 12 / 6} + std::chrono::hours(23) + std::chrono::minutes(59);
    auto row = tlsrpt_row(s, at);
    EXPECT_EQ(row.day, "2026-12-06");
    EXPECT_EQ(row.policy_type, "no-policy-found");
    EXPECT_EQ(row.result_type, "starttls-not-supported");
    EXPECT_EQ(row.receiving_ip, "127.0.0.9");
    EXPECT_EQ(row.count, 1);
    EXPECT_TRUE(store::valid_tlsrpt(row));
    s.result.reset();
    auto ok = tlsrpt_row(s, at + std::chrono::minutes(1));
    EXPECT_EQ(ok.day, "2026-12-07");
    EXPECT_EQ(ok.result_type, "");
    EXPECT_EQ(ok.receiving_mx, "") << "successes are counted per policy, not per host";
}
