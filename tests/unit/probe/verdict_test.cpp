// probe::to_verdict as a table: which hosts are evidence (only those that answered), the level all
// of them meet, when the verdict is usable (ok), and the JSON report naming the weakest host.
#include "probe/verdict.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace mailward;
using tls::Level;

namespace {

probe::HostReport host(std::string name, std::string address, bool connected, Level level) {
    probe::HostReport h;
    h.host = std::move(name);
    h.address = std::move(address);
    h.connected = connected;
    h.level = level;
    h.starttls_offered = level >= Level::may;
    if (level >= Level::encrypt) {
        h.tls.established = true;
        h.tls.protocol = "TLSv1.3";
        h.tls.cipher = "TLS_AES_256_GCM_SHA384";
        h.tls.spki_sha256 = "ab" + h.address;
    }
    h.tls.chain_valid = level >= Level::verify;
    h.tls.name_matched = level >= Level::verify;
    h.tls.dane_matched = level >= Level::dane;
    return h;
}

}  // namespace

TEST(ProbeVerdict, MapsAnsweringHostsToEvidenceAndTheWeakestLevel) {
    struct Case {
        const char* name;
        std::string error;
        std::vector<probe::HostReport> hosts;
        bool ok;
        Level level;
        std::size_t answered;
        std::string weakest;
    };
    const std::vector<Case> cases = {
        {"one verify host",
         "",
         {host("mx1.example", "127.0.0.1", true, Level::verify)},
         true,
         Level::verify,
         1,
         "mx1.example [127.0.0.1]"},
        {"weakest of two sets the level",
         "",
         {host("mx1.example", "127.0.0.1", true, Level::dane), host("mx2.example", "127.0.0.2", true, Level::encrypt)},
         true,
         Level::encrypt,
         2,
         "mx2.example [127.0.0.2]"},
        {"first of equals is named",
         "",
         {host("mx1.example", "127.0.0.1", true, Level::may), host("mx2.example", "::1", true, Level::may)},
         true,
         Level::may,
         2,
         "mx1.example [127.0.0.1]"},
        {"unreachable host is not evidence",
         "",
         {host("mx1.example", "127.0.0.1", false, Level::none), host("mx2.example", "127.0.0.2", true, Level::verify)},
         true,
         Level::verify,
         1,
         "mx2.example [127.0.0.2]"},
        {"no host answered", "", {host("mx1.example", "127.0.0.1", false, Level::none)}, false, Level::none, 0, ""},
        {"no hosts at all", "", {}, false, Level::none, 0, ""},
        {"a host with no TLS is evidence of none",
         "",
         {host("mx1.example", "127.0.0.1", true, Level::none), host("mx2.example", "127.0.0.2", true, Level::verify)},
         true,
         Level::none,
         2,
         "mx1.example [127.0.0.1]"},
        {"routing error: not ok even with answers",
         "no MX",
         {host("mx1.example", "127.0.0.1", true, Level::verify)},
         false,
         Level::verify,
         1,
         "mx1.example [127.0.0.1]"},
    };
    const auto seen = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        probe::DomainReport rep;
        rep.domain = "example";
        rep.error = c.error;
        rep.hosts = c.hosts;
        const auto v = probe::to_verdict(rep, seen);
        EXPECT_EQ(v.ok, c.ok);
        EXPECT_EQ(v.level, c.level);
        ASSERT_EQ(v.evidence.size(), c.answered);
        std::size_t i = 0;
        for (const auto& h : c.hosts) {
            if (!h.connected) continue;
            const auto& e = v.evidence[i++];
            EXPECT_EQ(e.host, h.host);
            EXPECT_EQ(e.address, h.address);
            EXPECT_EQ(e.level, tls::to_string(h.level));
            EXPECT_EQ(e.starttls, h.starttls_offered);
            EXPECT_EQ(e.protocol, h.tls.protocol);
            EXPECT_EQ(e.cipher, h.tls.cipher);
            EXPECT_EQ(e.chain_valid, h.tls.chain_valid);
            EXPECT_EQ(e.name_matched, h.tls.name_matched);
            EXPECT_EQ(e.spki_sha256, h.tls.spki_sha256);
            EXPECT_EQ(e.dane_matched, h.tls.dane_matched);
            EXPECT_EQ(e.seen_at, seen);
        }
        const auto report = nlohmann::json::parse(v.report);
        EXPECT_EQ(report.at("verdict"), tls::to_string(c.level));
        EXPECT_EQ(report.at("weakest"), c.weakest);
        EXPECT_EQ(report.at("hosts"), c.hosts.size());
        EXPECT_EQ(report.at("answered"), c.answered);
        EXPECT_EQ(report.at("error"), c.error);
    }
}

TEST(ProbeVerdict, ReportSurvivesBytesThatAreNotUtf8) {
    probe::DomainReport rep;
    rep.error = "bad \xff byte";
    rep.hosts = {host("mx\xfe.example", "127.0.0.1", true, Level::may)};
    const auto v = probe::to_verdict(rep, {});
    const auto report = nlohmann::json::parse(v.report);  // valid JSON: invalid bytes replaced
    EXPECT_EQ(report.at("error"), "bad \xEF\xBF\xBD byte");
    EXPECT_FALSE(v.ok);
}
