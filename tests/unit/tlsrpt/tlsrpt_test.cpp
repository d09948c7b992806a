// TLS-RPT (RFC 8460): the _smtp._tls record parser (good and bad records: clear errors, never a
// crash), the JSON report of section 4.4 built from summaries, gzip round trips, the file name of
// section 5.1, the report mail's headers (section 5.3), and the store rows summed per domain and policy.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tlsrpt/send.hpp"
#include "tlsrpt/tlsrpt.hpp"

using namespace mailward;
using namespace mailward::tlsrpt;

TEST(TlsRptRecord, GoodRecordsGiveTheirUris) {
    struct Case {
        const char* name;
        std::vector<std::string> texts;
        std::vector<std::pair<Rua::Scheme, std::string>> want;  // scheme, address or uri
    };
    const Case cases[] = {
        {"mailto", {"v=TLSRPTv1; rua=mailto:reports@example.com"}, {{Rua::Scheme::mailto, "reports@example.com"}}},
        {"https",
         {"v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt"},
         {{Rua::Scheme::https, "https://reporting.example.com/v1/tlsrpt"}}},
        {"both, spaces, final ;",
         {"v=TLSRPTv1 ; rua=mailto:a@x.example , https://r.example/x ;"},
         {{Rua::Scheme::mailto, "a@x.example"}, {Rua::Scheme::https, "https://r.example/x"}}},
        {"other TXT ignored, extension kept out",
         {"v=spf1 -all", "v=TLSRPTv1; ext=1; rua=mailto:r%40d@x.example?subject=hi"},
         {{Rua::Scheme::mailto, "r@d@x.example"}}},
        {"unknown scheme skipped",
         {"v=TLSRPTv1; rua=ftp://x.example/a,MAILTO:b@y.example"},
         {{Rua::Scheme::mailto, "b@y.example"}}},
    };
    for (const auto& c : cases) {
        std::string detail;
        auto r = parse_record(c.texts, detail);
        ASSERT_TRUE(r) << c.name << ": " << detail;
        ASSERT_EQ(r->size(), c.want.size()) << c.name;
        for (std::size_t i = 0; i < c.want.size(); ++i) {
            EXPECT_EQ((*r)[i].scheme, c.want[i].first) << c.name;
            EXPECT_EQ(c.want[i].first == Rua::Scheme::mailto ? (*r)[i].address : (*r)[i].uri, c.want[i].second)
                << c.name;
        }
    }
}

TEST(TlsRptRecord, BadRecordsAreClearErrors) {
    struct Case {
        const char* name;
        std::vector<std::string> texts;
        common::Errc want;
        const char* detail;  // a part of the detail
    };
    const Case cases[] = {
        {"none", {}, common::Errc::not_found, "no TXT record"},
        {"other version", {"v=TLSRPTv10; rua=mailto:a@b.example"}, common::Errc::not_found, "no TXT record"},
        {"two records",
         {"v=TLSRPTv1; rua=mailto:a@b.example", "v=TLSRPTv1; rua=mailto:c@d.example"},
         common::Errc::invalid_argument,
         "2 TXT records"},
        {"no rua", {"v=TLSRPTv1; ruf=mailto:a@b.example"}, common::Errc::invalid_argument, "no rua"},
        {"empty rua", {"v=TLSRPTv1; rua="}, common::Errc::invalid_argument, "no rua"},
        {"rua twice",
         {"v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example"},
         common::Errc::invalid_argument,
         "twice"},
        {"not name=value",
         {"v=TLSRPTv1; garbage; rua=mailto:a@b.example"},
         common::Errc::invalid_argument,
         "not name=value"},
        {"mailto without @", {"v=TLSRPTv1; rua=mailto:nobody"}, common::Errc::invalid_argument, "no usable mail"},
        {"bad percent", {"v=TLSRPTv1; rua=mailto:a%4@b.example"}, common::Errc::invalid_argument, "no usable mail"},
        {"truncated percent",
         {"v=TLSRPTv1; rua=mailto:a@b.example%"},
         common::Errc::invalid_argument,
         "no usable mail"},
        {"https without host", {"v=TLSRPTv1; rua=https:///x"}, common::Errc::invalid_argument, "no host"},
        {"space in URI", {"v=TLSRPTv1; rua=mailto:a b@c.example"}, common::Errc::invalid_argument, "not a URI"},
        {"only unknown schemes",
         {"v=TLSRPTv1; rua=ftp://x.example/"},
         common::Errc::invalid_argument,
         "no mailto: or https:"},
        {"control byte",
         {std::string("v=TLSRPTv1; rua=mailto:a@b.example\x01", 35)},
         common::Errc::invalid_argument,
         "not a URI"},
    };
    for (const auto& c : cases) {
        std::string detail;
        auto r = parse_record(c.texts, detail);
        ASSERT_FALSE(r) << c.name;
        EXPECT_EQ(r.error(), c.want) << c.name;
        EXPECT_NE(detail.find(c.detail), std::string::npos) << c.name << ": " << detail;
    }
}

TEST(TlsRptReport, JsonFollowsSection44) {
    PolicySummary sts;
    sts.policy = {PolicyType::sts,
                  {"version: STSv1", "mode: enforce", "mx: mx.a.example", "max_age: 86400"},
                  "a.example",
                  {"mx.a.example"}};
    sts.successes = 3;
    sts.failures = {{ResultType::certificate_host_mismatch, "127.0.0.1", "mx.a.example", "127.0.0.5", 2},
                    {ResultType::starttls_not_supported, "", "mx.a.example", "127.0.0.6", 1}};
    PolicySummary none;
    none.policy.domain = "b.example";
    none.successes = 4;
    const auto text = report_json({"Example Org", "mailto:postmaster@x.example", "rid-1", "2026-12-06"}, {sts, none});
    const auto j = nlohmann::json::parse(text);
    EXPECT_EQ(j["organization-name"], "Example Org");
    EXPECT_EQ(j["contact-info"], "mailto:postmaster@x.example");
    EXPECT_EQ(j["report-id"], "rid-1");
    EXPECT_EQ(j["date-range"]["start-datetime"], "2026-12-06T00:00:00Z");
    EXPECT_EQ(j["date-range"]["end-datetime"], "2026-12-06T23:59:59Z");
    ASSERT_EQ(j["policies"].size(), 2u);
    const auto& p0 = j["policies"][0];
    EXPECT_EQ(p0["policy"]["policy-type"], "sts");
    EXPECT_EQ(p0["policy"]["policy-domain"], "a.example");
    EXPECT_EQ(p0["policy"]["policy-string"].size(), 4u);
    EXPECT_EQ(p0["policy"]["mx-host"][0], "mx.a.example");
    EXPECT_EQ(p0["summary"]["total-successful-session-count"], 3);
    EXPECT_EQ(p0["summary"]["total-failure-session-count"], 3);
    ASSERT_EQ(p0["failure-details"].size(), 2u);
    EXPECT_EQ(p0["failure-details"][0]["result-type"], "certificate-host-mismatch");
    EXPECT_EQ(p0["failure-details"][0]["sending-mta-ip"], "127.0.0.1");
    EXPECT_EQ(p0["failure-details"][0]["receiving-ip"], "127.0.0.5");
    EXPECT_EQ(p0["failure-details"][0]["failed-session-count"], 2);
    EXPECT_FALSE(p0["failure-details"][1].contains("sending-mta-ip")) << "unknown fields are left out";
    const auto& p1 = j["policies"][1];
    EXPECT_EQ(p1["policy"]["policy-type"], "no-policy-found");
    EXPECT_FALSE(p1["policy"].contains("policy-string"));
    EXPECT_FALSE(p1.contains("failure-details"));
    EXPECT_EQ(p1["summary"]["total-failure-session-count"], 0);
}

TEST(TlsRptReport, NamesParseBothWays) {
    for (auto t : {PolicyType::sts, PolicyType::tlsa, PolicyType::no_policy_found})
        EXPECT_EQ(parse_policy_type(to_string(t)), t);
    for (auto r : {ResultType::starttls_not_supported, ResultType::certificate_host_mismatch,
                   ResultType::certificate_expired, ResultType::certificate_not_trusted, ResultType::validation_failure,
                   ResultType::tlsa_invalid, ResultType::dnssec_invalid, ResultType::dane_required,
                   ResultType::sts_policy_fetch_error, ResultType::sts_policy_invalid, ResultType::sts_webpki_invalid})
        EXPECT_EQ(parse_result_type(to_string(r)), r) << to_string(r);
    EXPECT_FALSE(parse_result_type("success"));
    EXPECT_EQ(to_string(ResultType::sts_webpki_invalid), "sts-webpki-invalid");
}

TEST(TlsRptReport, GzipRoundTripsAndCorruptInputIsAnError) {
    const std::string text = std::string(5000, 'x') + "{\"a\":1}";
    auto gz = gzip(text);
    ASSERT_TRUE(gz);
    ASSERT_GE(gz->size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);  // RFC 1952 magic
    EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
    EXPECT_LT(gz->size(), text.size());
    auto back = gunzip(*gz);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, text);
    for (std::string bad : {std::string("not gzip"), gz->substr(0, gz->size() / 2), std::string()}) {
        auto r = gunzip(bad);
        EXPECT_FALSE(r);
    }
}

TEST(TlsRptReport, DayStartAndFileName) {
    EXPECT_EQ(day_start("1970-01-02"), 86400);
    EXPECT_EQ(day_start("2026-12-06"), 1796515200);
    for (const char* bad : {"2026-02-30", "2026-1-06", "20261206xx", "", "abcd-ef-gh"})
        EXPECT_FALSE(day_start(bad)) << bad;
    EXPECT_EQ(report_file_name("mail.sender.example", "example.com", 1470013207, 1470186007, "u1"),
              "mail.sender.example!example.com!1470013207!1470186007!u1.json.gz");
}

TEST(TlsRptReport, MailHasTheSection53Headers) {
    MailParts p{"tlsrpt@x.example",
                "reports@a.example",
                "x.example",
                "a.example",
                "rid-9",
                "x.example!a.example!1!2!rid-9.json.gz",
                "Mon, 7 Dec 2026 00:00:00 +0000",
                "m1@x.example",
                "Org"};
    const std::string gz = "\x1f\x8b binary";
    const auto m = report_mail(p, gz);
    for (const char* want :
         {"Subject: Report Domain: a.example Submitter: x.example Report-ID: <rid-9>\r\n",
          "TLS-Report-Domain: a.example\r\n", "TLS-Report-Submitter: x.example\r\n",
          "Content-Type: multipart/report; report-type=\"tlsrpt\";", "Content-Type: application/tlsrpt+gzip\r\n",
          "filename=\"x.example!a.example!1!2!rid-9.json.gz\"", "From: <tlsrpt@x.example>\r\n", "H4sgYmluYXJ5\r\n"})
        EXPECT_NE(m.find(want), std::string::npos) << want;
    EXPECT_EQ(m.find("\n\n"), std::string::npos) << "CRLF lines only";
}

TEST(TlsRptReport, StoreRowsSumUpPerDomainAndPolicy) {
    using store::TlsRptCount;
    const std::vector<TlsRptCount> rows = {
        {"2026-12-06", "a.example", "sts", "version: STSv1\nmode: enforce", "mx.a.example", "", "", "", "", 3},
        {"2026-12-06", "a.example", "sts", "version: STSv1\nmode: enforce", "mx.a.example", "certificate-host-mismatch",
         "127.0.0.1", "mx.a.example", "127.0.0.5", 2},
        {"2026-12-06", "a.example", "no-policy-found", "", "", "", "", "", "", 1},
        {"2026-12-06", "b.example", "tlsa", "3 1 1 ab", "", "tlsa-invalid", "127.0.0.1", "mx.b.example", "::1", 4},
    };
    const auto by_domain = summarize(rows);
    ASSERT_EQ(by_domain.size(), 2u);
    const auto& a = by_domain.at("a.example");
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].policy.type, PolicyType::sts);
    EXPECT_EQ(a[0].policy.strings, (std::vector<std::string>{"version: STSv1", "mode: enforce"}));
    EXPECT_EQ(a[0].policy.mx_hosts, std::vector<std::string>{"mx.a.example"});
    EXPECT_EQ(a[0].successes, 3u);
    ASSERT_EQ(a[0].failures.size(), 1u);
    EXPECT_EQ(a[0].failures[0].result, ResultType::certificate_host_mismatch);
    EXPECT_EQ(a[0].failures[0].count, 2u);
    EXPECT_EQ(a[1].policy.type, PolicyType::no_policy_found);
    EXPECT_TRUE(a[1].policy.strings.empty());
    EXPECT_EQ(a[1].successes, 1u);
    const auto& b = by_domain.at("b.example");
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].successes, 0u);
    EXPECT_EQ(b[0].failures[0].receiving_ip, "::1");
    EXPECT_EQ(utc_day(std::chrono::sys_days{std::chrono::year{2026} / 12 / 6} + std::chrono::hours(23)), "2026-12-06");
}
