// The route a recipient took ([[delivery.routes]]) in the delivery records (delivery_log.hpp):
// the delivery log's "route" key (present only when a route applied) read back by the reader that
// `policy simulate`, `report` and `queue show` use, and ", route=NAME" in the main log's outcome line.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "delivery/delivery_log.hpp"

using namespace mailward;
using delivery::AttemptLine;

TEST(RouteLine, TheAttemptLineNamesTheRouteAndTheReaderReadsIt) {
    AttemptLine base;
    base.time = std::chrono::system_clock::time_point(std::chrono::seconds(1796637600));  // 2026-12-07
    base.queue_id = "Q1";
    base.recipient = "bob@routed.example";
    base.mx = "smarthost.example";
    base.address = "192.0.2.9";
    base.required_level = tls::Level::verify;
    base.level_reasons = {"route smarthost: TLS at least verify"};
    base.tls = nullptr;
    base.result = "delivered";
    base.status = "2.0.0";
    base.reply = "smtp; 250 2.0.0 Ok";
    struct Case {
        std::string name, route;
    };
    const Case cases[] = {{"routed", "smarthost"}, {"not routed", ""}, {"odd name", "relay \"eu\"\n"}};
    for (const auto& c : cases) {
        AttemptLine a = base;
        a.route = c.route;
        const auto text = delivery::format_attempt(a);
        EXPECT_EQ(text.find('\n'), std::string::npos) << c.name;
        const auto j = nlohmann::json::parse(text);
        if (c.route.empty()) {
            EXPECT_FALSE(j.contains("route")) << c.name << ": " << text;
        } else {
            EXPECT_EQ(j.at("route"), c.route) << c.name;
        }
        EXPECT_EQ(j.at("mx"), "smarthost.example") << c.name;
        EXPECT_EQ(j.at("required_level"), "verify") << c.name;
        EXPECT_EQ(j.at("level_reasons").size(), 1u) << c.name;
        EXPECT_EQ(j.at("result"), "delivered") << c.name;
        const auto e = delivery::parse_log_line(text);
        ASSERT_TRUE(e) << c.name << ": " << text;
        EXPECT_EQ(e->route, c.route) << c.name;
        EXPECT_EQ(e->domain, "routed.example") << c.name;
        EXPECT_EQ(e->queue_id, "Q1") << c.name;
        EXPECT_EQ(e->time, a.time) << c.name;
    }
}

TEST(RouteLine, TheOutcomeLineNamesTheRoute) {
    delivery::OutcomeLine o{"Q1",
                            "bob@routed.example",
                            "smarthost.example",
                            "192.0.2.9",
                            587,
                            0.5,
                            "verify",
                            "TLSv1.3",
                            "X",
                            "sent",
                            "250 Ok",
                            ""};
    struct Case {
        std::string route, want;
    };
    const Case cases[] = {
        {"",
         "Q1: to=<bob@routed.example>, relay=smarthost.example[192.0.2.9]:587, delay=0.50, "
         "tls=verify/TLSv1.3/X, status=sent (250 Ok)"},
        {"smarthost",
         "Q1: to=<bob@routed.example>, relay=smarthost.example[192.0.2.9]:587, route=smarthost, delay=0.50, "
         "tls=verify/TLSv1.3/X, status=sent (250 Ok)"},
        {"a\nb",
         "Q1: to=<bob@routed.example>, relay=smarthost.example[192.0.2.9]:587, route=a\\x0ab, delay=0.50, "
         "tls=verify/TLSv1.3/X, status=sent (250 Ok)"},
    };
    for (const auto& c : cases) {
        o.route = c.route;
        EXPECT_EQ(delivery::format_outcome(o), c.want);
    }
}
