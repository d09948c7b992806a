// The classification table: every kind of evidence maps to exactly one outcome, status and
// "try the next host" decision. A TLS failure at encrypt or higher must never read as a plain
// network error (that would retry forever without saying why) nor as deliverable.
#include "delivery/classify.hpp"

#include <gtest/gtest.h>

#include "dns/resolver.hpp"
#include "outbound/route.hpp"

using namespace mailward;
using namespace mailward::delivery;
using namespace mailward::outbound;

namespace {

Evidence session(Stage stage, std::optional<smtp::Reply> reply, tls::Level level = tls::Level::may, error_code ec = {},
                 std::string detail = "") {
    Evidence e;
    SessionError s;
    s.stage = stage;
    s.reply = std::move(reply);
    s.ec = ec;
    s.detail = std::move(detail);
    e.session = s;
    e.required = level;
    e.host = "mx.example.test";
    return e;
}

Evidence rcpt(int code, const char* enh, bool accepted) {
    Evidence e;
    RecipientResult r;
    r.reply = smtp::Reply(code, enh, "text");
    r.accepted = accepted;
    e.recipient = r;
    e.host = "mx.example.test";
    return e;
}

Evidence route(error_code ec) {
    Evidence e;
    e.route_error = ec;
    return e;
}

}  // namespace

TEST(Classify, Table) {
    using enum Outcome;
    const error_code refused = boost::asio::error::connection_refused;
    const error_code reset = boost::asio::error::connection_reset;
    const error_code timed_out = boost::asio::error::timed_out;
    struct Case {
        const char* name;
        Evidence e;
        Outcome want;
        const char* status;
        bool next_host;
    };
    const Case cases[] = {
        {"rcpt accepted", rcpt(250, "2.0.0", true), delivered, "2.0.0", false},
        {"rcpt 4xx", rcpt(450, "4.2.0", false), temporary, "4.2.0", false},
        {"rcpt 5xx", rcpt(550, "5.1.1", false), permanent, "5.1.1", false},
        {"rcpt 5xx no enhanced", rcpt(550, "", false), permanent, "5.0.0", false},
        {"null mx", route(RouteErrc::null_mx), permanent, "5.1.10", false},
        {"nxdomain", route(RouteErrc::no_such_domain), permanent, "5.1.2", false},
        {"no addresses", route(RouteErrc::no_addresses), permanent, "5.4.4", false},
        {"dns temporary", route(RouteErrc::dns_temporary), temporary, "4.4.3", false},
        {"connect refused", session(Stage::connect, {}, tls::Level::may, refused), temporary, "4.4.1", true},
        {"connect timeout at encrypt", session(Stage::connect, {}, tls::Level::encrypt, timed_out), temporary, "4.4.1",
         true},
        {"greeting 554", session(Stage::greeting, smtp::Reply(554, "5.7.1", "go away")), temporary, "5.7.1", true},
        {"greeting 421", session(Stage::greeting, smtp::Reply(421, "4.3.2", "busy")), temporary, "4.3.2", true},
        {"no STARTTLS at encrypt", session(Stage::tls_policy, {}, tls::Level::encrypt, {}, "STARTTLS not offered"),
         tls_policy, "4.7.5", true},
        {"454 at verify", session(Stage::starttls, smtp::Reply(454, "4.7.0", "TLS not available"), tls::Level::verify),
         tls_policy, "4.7.5", true},
        {"handshake reset at dane", session(Stage::tls_handshake, {}, tls::Level::dane, reset), tls_policy, "4.7.5",
         true},
        {"name mismatch at verify",
         session(Stage::tls_policy, {}, tls::Level::verify, {}, "certificate does not name the host"), tls_policy,
         "4.7.5", true},
        {"handshake failure at may", session(Stage::tls_handshake, {}, tls::Level::may, reset), temporary, "4.7.0",
         true},
        {"MAIL 552 size", session(Stage::mail, smtp::Reply(552, "5.3.4", "too big")), permanent, "5.3.4", false},
        {"MAIL 451", session(Stage::mail, smtp::Reply(451, "4.3.0", "later")), temporary, "4.3.0", true},
        {"DATA 554", session(Stage::data_done, smtp::Reply(554, "5.6.0", "rejected")), permanent, "5.6.0", false},
        {"reset during DATA", session(Stage::data, {}, tls::Level::encrypt, reset), temporary, "4.4.2", false},
    };
    for (const auto& c : cases) {
        auto got = classify(c.e);
        EXPECT_EQ(got.outcome, c.want) << c.name << ": " << got.reason;
        EXPECT_EQ(got.status, c.status) << c.name;
        EXPECT_EQ(got.try_next_host, c.next_host) << c.name;
        EXPECT_FALSE(got.reason.empty()) << c.name;
    }
}

TEST(Classify, TlsPolicyReasonNamesLevelAndCause) {
    auto got = classify(session(Stage::tls_policy, {}, tls::Level::verify, {}, "certificate does not name the host"));
    EXPECT_NE(got.reason.find("verify"), std::string::npos) << got.reason;
    EXPECT_NE(got.reason.find("certificate does not name the host"), std::string::npos) << got.reason;
    EXPECT_NE(got.reason.find("mx.example.test"), std::string::npos) << got.reason;
}
