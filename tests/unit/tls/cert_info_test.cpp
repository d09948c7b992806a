// tls::inspect_certificate (what `mailward config check` reports): the chain is read and counted,
// the leaf's names and validity come out, the key is compared with the leaf's, names are matched
// as TLS clients match them, and unreadable input is an error text, never a crash.
#include "tls/cert_info.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "test_pki.hpp"

using namespace mailward;
using mailward::testing::TempDir;
using mailward::testing::TestCa;

TEST(CertInfo, ReadsChainNamesValidityAndKeyMatch) {
    TestCa ca;
    TempDir dir;
    const auto pair =
        ca.issue({"relay.example.test", "portal.example.test"}, mailward::testing::KeyKind::ec_p256, true);
    const auto other = ca.issue({"other.example.test"});
    const auto cert = dir.write("relay.crt", pair.chain);
    const auto key = dir.write("relay.key", pair.key);
    const auto wrong_key = dir.write("other.key", other.key);

    struct Case {
        const char* name;
        std::filesystem::path key;
        std::optional<bool> matches;
    };
    const Case cases[] = {{"its own key", key, true}, {"another key", wrong_key, false}, {"no key", {}, std::nullopt}};
    for (const auto& c : cases) {
        auto info = tls::inspect_certificate(
            cert, c.key,
            {"relay.example.test", "PORTAL.example.test", "mail.example.test", "example.test", "127.0.0.1"});
        ASSERT_EQ(info.error, "") << c.name;
        EXPECT_EQ(info.count, 2u) << c.name;  // the leaf and the CA
        EXPECT_EQ(info.names, (std::vector<std::string>{"relay.example.test", "portal.example.test"})) << c.name;
        EXPECT_NE(info.subject.find("relay.example.test"), std::string::npos) << info.subject;
        EXPECT_EQ(info.covers, (std::vector<bool>{true, true, false, false, false})) << c.name;
        const auto now = std::chrono::system_clock::now();
        EXPECT_LT(info.not_before, now + std::chrono::minutes(5)) << c.name;
        EXPECT_GT(info.not_after, now) << c.name;
        EXPECT_EQ(info.key_matches, c.matches) << c.name;
        EXPECT_EQ(info.key_error, "") << c.name;
    }
}

TEST(CertInfo, BadInputIsAnErrorText) {
    TempDir dir;
    TestCa ca;
    const auto pair = ca.issue({"relay.example.test"});
    const auto cert = dir.write("relay.crt", pair.chain);
    struct Case {
        const char* name;
        std::filesystem::path cert, key;
        bool cert_error, key_error;
    };
    const Case cases[] = {
        {"missing certificate file", dir.path() / "nope.crt", {}, true, false},
        {"not PEM", dir.write("junk.crt", "hello\n"), {}, true, false},
        {"a key where the certificate should be", dir.write("k.crt", pair.key), {}, true, false},
        {"missing key file", cert, dir.path() / "nope.key", false, true},
        {"a certificate where the key should be", cert, cert, false, true},
    };
    for (const auto& c : cases) {
        auto info = tls::inspect_certificate(c.cert, c.key);
        EXPECT_EQ(!info.error.empty(), c.cert_error) << c.name << ": " << info.error;
        EXPECT_EQ(!info.key_error.empty(), c.key_error) << c.name << ": " << info.key_error;
        if (c.key_error) {
            EXPECT_FALSE(info.key_matches.has_value()) << c.name;
        }
    }
}
