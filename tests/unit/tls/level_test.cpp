// The level ladder: names round-trip, order is none < may < encrypt < verify < dane, and meets()
// accepts a session only when every requirement of the level holds.
#include <gtest/gtest.h>

#include "tls/client.hpp"
#include "tls/level.hpp"

using namespace mailward::tls;

TEST(Level, NamesAndOrder) {
    const Level all[] = {Level::none, Level::may, Level::encrypt, Level::verify, Level::dane};
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(parse_level(to_string(all[i])), all[i]);
        if (i > 0) {
            EXPECT_LT(all[i - 1], all[i]);
        }
    }
    for (const char* bad : {"", "strong", "VERIFY", "secure", "dane "}) EXPECT_FALSE(parse_level(bad)) << bad;
}

TEST(Level, MeetsTable) {
    PeerFacts good;
    good.established = true;
    good.protocol = "TLSv1.3";
    good.cipher = "TLS_AES_256_GCM_SHA384";
    good.forward_secret = good.aead = true;
    good.chain_valid = good.name_matched = true;

    auto with = [&](auto change) {
        PeerFacts f = good;
        change(f);
        return f;
    };
    struct Case {
        const char* name;
        PeerFacts facts;
        bool may, encrypt, verify, dane;
    };
    const Case cases[] = {
        {"verified TLS 1.3", good, true, true, true, false},
        {"no TLS", PeerFacts{}, true, false, false, false},
        {"TLS 1.1", with([](PeerFacts& f) { f.protocol = "TLSv1.1"; }), true, false, false, false},
        {"TLS 1.2 non-AEAD", with([](PeerFacts& f) {
             f.protocol = "TLSv1.2";
             f.aead = false;
         }),
         true, false, false, false},
        {"no forward secrecy", with([](PeerFacts& f) { f.forward_secret = false; }), true, false, false, false},
        {"self-signed", with([](PeerFacts& f) {
             f.chain_valid = false;
             f.verify_error = "self-signed";
         }),
         true, true, false, false},
        {"wrong name", with([](PeerFacts& f) { f.name_matched = false; }), true, true, false, false},
        {"DANE match", with([](PeerFacts& f) {
             f.dane_checked = f.dane_matched = true;
             f.chain_valid = false;
         }),
         true, true, false, true},
        {"DANE mismatch", with([](PeerFacts& f) { f.dane_checked = true; }), true, true, true, false},
    };
    for (const auto& c : cases) {
        std::string why;
        EXPECT_EQ(meets(Level::may, c.facts, why), c.may) << c.name;
        EXPECT_EQ(meets(Level::encrypt, c.facts, why), c.encrypt) << c.name;
        EXPECT_EQ(meets(Level::verify, c.facts, why), c.verify) << c.name;
        why.clear();
        EXPECT_EQ(meets(Level::dane, c.facts, why), c.dane) << c.name;
        if (!c.dane) {
            EXPECT_FALSE(why.empty()) << c.name;
        }
    }
}
