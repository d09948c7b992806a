// The learned policy's typed view: the store's level names agree with tls::Level, rows convert (an
// unknown level is corrupt, never guessed), the typed store calls round-trip through a real SQLite
// store in a temp dir, and downgrade detection names what changed (issue 4, item 5).
#include "policy/learned.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "config/config.hpp"
#include "store/store.hpp"

using namespace mailward;
using namespace mailward::policy;
using namespace std::chrono_literals;
using tls::Level;

namespace {

const TimePoint t0 = TimePoint(std::chrono::milliseconds(1'800'000'000'000));

TEST(Learned, StoreLadderMatchesTlsLevels) {
    for (auto l : {Level::none, Level::may, Level::encrypt, Level::verify, Level::dane})
        EXPECT_EQ(store::level_rank(tls::to_string(l)), static_cast<int>(l)) << tls::to_string(l);
    EXPECT_FALSE(store::level_rank("strong"));
    EXPECT_FALSE(store::level_rank(""));
}

TEST(Learned, FromStoreChecksLevels) {
    store::LearnedPolicy row;
    row.domain = "example.org";
    row.level = "verify";
    row.first_seen = t0;
    row.last_confirmed = t0 + 1h;
    row.last_probe = t0 + 2h;
    MxEvidence e;
    e.host = "mx1.example.org";
    e.level = "verify";
    row.mx = {e, e};
    row.mx[1].address = "192.0.2.1";
    auto p = from_store(row);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->level, Level::verify);
    EXPECT_EQ(p->last_confirmed, t0 + 1h);
    EXPECT_EQ(p->last_probe, t0 + 2h);
    EXPECT_EQ(p->evidence.size(), 2u);
    EXPECT_EQ(p->mx_hosts(), 1u);

    row.level = "excellent";
    auto bad = from_store(row);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), common::Errc::corrupt);

    store::Override o;
    o.domain = "example.org";
    o.level = "may";
    o.reason = "r";
    o.expires = t0;
    auto ov = from_store(o);
    ASSERT_TRUE(ov);
    EXPECT_EQ(ov->level, Level::may);
    EXPECT_TRUE(ov->active(t0 - 1ms));
    EXPECT_FALSE(ov->active(t0));
    o.level = "";
    EXPECT_FALSE(from_store(o));
}

class TempStore {
  public:
    TempStore() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "mailward-policy-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        config::Config cfg;
        cfg.server.data_dir = dir_;
        auto s = store::open(cfg);
        if (!s) throw std::runtime_error("store::open: " + s.error().message());
        store_ = std::move(*s);
    }
    ~TempStore() {
        store_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    store::PolicyStore& policy() { return store_->policy(); }

  private:
    std::filesystem::path dir_;
    std::unique_ptr<store::Store> store_;
};

TEST(Learned, TypedStoreAccessRoundTrips) {
    TempStore ts;
    auto& s = ts.policy();
    auto none = load_learned(s, "example.org");
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->has_value());

    MxEvidence e;
    e.host = "mx1.example.org";
    e.address = "192.0.2.1";
    e.level = "verify";
    e.starttls = true;
    auto r = raise(s, "example.org", Level::verify, {e}, "{\"verdict\":\"verify\"}", t0);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    auto lower = raise(s, "example.org", Level::encrypt, {}, "{}", t0 + 1h);  // the ratchet
    ASSERT_TRUE(lower);
    EXPECT_FALSE(*lower);
    ASSERT_TRUE(record_probe(s, "example.org", Level::verify, "{}", t0 + 2h));

    auto got = load_learned(s, "example.org");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->level, Level::verify);
    EXPECT_EQ((*got)->last_confirmed, t0);
    EXPECT_EQ((*got)->last_probe, t0 + 2h);
    EXPECT_EQ((*got)->mx_hosts(), 1u);

    ASSERT_TRUE(set_override(s, "example.org", Level::may, "partner fixing TLS", t0 + 24h, t0, "alice"));
    auto ov = load_override(s, "example.org", t0 + 1h);
    ASSERT_TRUE(ov && ov->has_value());
    EXPECT_EQ((*ov)->level, Level::may);
    EXPECT_EQ((*ov)->set_by, "alice");
    auto expired = load_override(s, "example.org", t0 + 24h);
    ASSERT_TRUE(expired);
    EXPECT_FALSE(expired->has_value());
}

MxEvidence seen(std::string host, std::string address, Level level, std::string spki, bool valid_chain) {
    MxEvidence e;
    e.host = std::move(host);
    e.address = std::move(address);
    e.level = std::string(tls::to_string(level));
    e.starttls = level >= Level::encrypt;
    e.protocol = e.starttls ? "TLSv1.3" : "";
    e.spki_sha256 = std::move(spki);
    e.chain_valid = e.name_matched = valid_chain;
    return e;
}

TEST(Learned, DowngradeIncidentsTable) {
    LearnedPolicy known;
    known.domain = "example.org";
    known.level = Level::encrypt;
    known.evidence = {seen("mx1.example.org", "192.0.2.1", Level::encrypt, "aaaa", false),
                      seen("mx2.example.org", "192.0.2.2", Level::verify, "bbbb", true)};
    struct Case {
        const char* name;
        Level learned;
        MxEvidence now_seen;
        const char* kind;  // "" = no incident
        const char* detail_has;
    };
    const Case cases[] = {
        {"same facts", Level::encrypt, seen("mx1.example.org", "192.0.2.1", Level::encrypt, "aaaa", false), "", ""},
        {"STARTTLS stripped", Level::encrypt, seen("mx1.example.org", "192.0.2.1", Level::may, "", false),
         "starttls_missing", "possible STARTTLS downgrade attack"},
        {"self-signed key changed", Level::encrypt, seen("mx1.example.org", "192.0.2.1", Level::encrypt, "cccc", false),
         "certificate_changed", "SPKI aaaa -> cccc"},
        {"STARTTLS offered but refused (454): no session, no certificate", Level::encrypt,
         [] {
             auto e = seen("mx1.example.org", "192.0.2.1", Level::may, "", false);
             e.starttls = true;
             return e;
         }(),
         "handshake_failed", "no TLS session could be established"},
        {"a known host answering from a new address with another key", Level::encrypt,
         seen("mx1.example.org", "192.0.2.99", Level::encrypt, "ffff", false), "certificate_changed",
         "SPKI aaaa -> ffff"},
        {"a known host's known key at a new address: fine", Level::encrypt,
         seen("mx1.example.org", "192.0.2.98", Level::encrypt, "aaaa", false), "", ""},
        {"renewed with a valid chain: fine", Level::encrypt,
         seen("mx2.example.org", "192.0.2.2", Level::verify, "dddd", true), "", ""},
        {"chain no longer valid at verify", Level::verify,
         seen("mx2.example.org", "192.0.2.2", Level::encrypt, "bbbb", false), "level_not_met", "meets only encrypt"},
        {"new address below the level", Level::verify,
         seen("mx3.example.org", "192.0.2.3", Level::encrypt, "eeee", false), "level_not_met",
         "mx3.example.org [192.0.2.3]"},
        {"new address at the level", Level::encrypt,
         seen("mx3.example.org", "192.0.2.3", Level::encrypt, "eeee", false), "", ""},
        {"domain learned below encrypt: nothing to defend", Level::may,
         seen("mx1.example.org", "192.0.2.1", Level::none, "", false), "", ""},
    };
    for (const auto& c : cases) {
        known.level = c.learned;
        const auto inc = downgrade_incidents(known, {c.now_seen}, t0);
        if (std::string(c.kind).empty()) {
            EXPECT_TRUE(inc.empty()) << c.name;
            continue;
        }
        ASSERT_EQ(inc.size(), 1u) << c.name;
        EXPECT_EQ(inc[0].kind, c.kind) << c.name;
        EXPECT_EQ(inc[0].domain, "example.org");
        EXPECT_EQ(inc[0].host, c.now_seen.host);
        EXPECT_EQ(inc[0].address, c.now_seen.address);
        EXPECT_EQ(inc[0].at, t0);
        EXPECT_NE(inc[0].detail.find(c.detail_has), std::string::npos) << c.name << ": " << inc[0].detail;
        EXPECT_NE(inc[0].raw_evidence.find("starttls="), std::string::npos) << c.name;
    }
    // One incident per address that looks wrong; good ones add nothing.
    known.level = Level::encrypt;
    const auto two = downgrade_incidents(known,
                                         {seen("mx1.example.org", "192.0.2.1", Level::none, "", false),
                                          seen("mx2.example.org", "192.0.2.2", Level::verify, "bbbb", true),
                                          seen("mx2.example.org", "192.0.2.22", Level::none, "", false)},
                                         t0);
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0].address, "192.0.2.1");
    EXPECT_EQ(two[1].address, "192.0.2.22");
}

}  // namespace
