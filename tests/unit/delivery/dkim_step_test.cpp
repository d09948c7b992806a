// DKIM at delivery (delivery/dkim_step.hpp): which envelopes count as mailward's own mail (signed even
// with sign_relayed = false), and dkim_sign_for_delivery() signing the body in place or leaving it.
#include <gtest/gtest.h>

#include "delivery/dkim_step.hpp"

namespace mailward::delivery {
namespace {

store::Envelope envelope(std::string sender, std::string helo, std::string address, std::string auth) {
    store::Envelope e;
    e.id = "q1";
    e.sender = std::move(sender);
    e.client_helo = std::move(helo);
    e.client_address = std::move(address);
    e.auth_user = std::move(auth);
    return e;
}

TEST(DkimStep, OwnMail) {
    struct Case {
        const char* name;
        store::Envelope env;
        bool own;
    } cases[] = {
        {"DSN (null sender)", envelope("", "relay.example.test", "127.0.0.1", ""), true},
        {"escrow notice / code mail", envelope("notice@relay.test", "escrow", "127.0.0.1", ""), true},
        {"TLS-RPT report", envelope("postmaster@relay.test", "tlsrpt", "127.0.0.1", ""), true},
        {"HELO tlsrpt from elsewhere", envelope("a@example.org", "tlsrpt", "192.0.2.7", ""), false},
        {"portal reply", envelope("bob@x.test", "", "192.0.2.1", "portal:abcd"), true},
        {"relayed from a trusted network", envelope("a@example.org", "app.example.org", "127.0.0.1", ""), false},
        {"authenticated user", envelope("a@example.org", "laptop", "192.0.2.7", "alice"), false},
        {"HELO escrow from elsewhere", envelope("a@example.org", "escrow", "192.0.2.7", ""), false},
        {"HELO escrow, authenticated", envelope("a@example.org", "escrow", "127.0.0.1", "alice"), false},
    };
    for (const auto& c : cases) EXPECT_EQ(is_own_mail(c.env), c.own) << c.name;
}

TEST(DkimStep, SignsOnlyWhatTheEntryAllows) {
    auto key = dkim::generate_key(dkim::Algorithm::rsa_sha256, 1024);
    ASSERT_TRUE(key.has_value());
    dkim::Signer signer({{"example.org", "s1", dkim::Algorithm::rsa_sha256, key->pem, false}});
    const std::string body = "From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n";
    std::string relayed = body;
    dkim_sign_for_delivery(signer, envelope("a@example.org", "app", "127.0.0.1", ""), relayed);
    EXPECT_EQ(relayed, body);  // sign_relayed = false
    std::string own = body;
    dkim_sign_for_delivery(signer, envelope("", "relay", "127.0.0.1", ""), own);
    ASSERT_EQ(own.rfind("DKIM-Signature: ", 0), 0u);
    EXPECT_TRUE(dkim::verify(own, key->record).has_value());
}

}  // namespace
}  // namespace mailward::delivery
