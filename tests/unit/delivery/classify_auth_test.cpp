// A next hop's AUTH stage (RFC 4954, [[delivery.routes]] auth_user) as the engine classifies it:
// whatever went wrong - no mechanism we use offered, the credentials refused (535), a plaintext
// session, the connection lost - the recipient is deferred (4.7.0), never bounced, the next
// address may be tried, and the reason says what happened.
#include <gtest/gtest.h>

#include "delivery/classify.hpp"

using namespace mailward;
using namespace mailward::delivery;
using namespace mailward::outbound;

TEST(ClassifyAuth, EveryAuthFailureDefersWith470) {
    struct Case {
        std::string name, detail;
        std::optional<smtp::Reply> reply;
        std::string reason_has;
    };
    const Case cases[] = {
        {"no PLAIN or LOGIN", "smart.example offers neither AUTH PLAIN nor AUTH LOGIN", std::nullopt,
         "offers neither AUTH PLAIN nor AUTH LOGIN"},
        {"credentials refused", "AUTH as relay refused", smtp::Reply(535, "5.7.8", "bad credentials"),
         "AUTH as relay refused: 535 5.7.8 bad credentials"},
        {"plaintext session", "AUTH refused: no TLS session with smart.example (credentials only inside TLS)",
         std::nullopt, "credentials only inside TLS"},
        {"no detail", "", std::nullopt, "AUTH failed"},
    };
    for (const auto& c : cases) {
        Evidence e;
        SessionError s;
        s.stage = Stage::auth;
        s.detail = c.detail;
        s.reply = c.reply;
        e.session = s;
        e.required = tls::Level::verify;
        e.host = "smart.example";
        const auto cl = classify(e);
        EXPECT_EQ(cl.outcome, Outcome::temporary) << c.name;
        EXPECT_EQ(cl.status, "4.7.0") << c.name;
        EXPECT_TRUE(cl.try_next_host) << c.name;
        EXPECT_NE(cl.reason.find(c.reason_has), std::string::npos) << c.name << ": " << cl.reason;
        EXPECT_EQ(cl.reason.rfind("smart.example: ", 0), 0u) << c.name << ": " << cl.reason;
    }
}
