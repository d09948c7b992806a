// IncidentTracker as a table: an incident is new unless the same domain, kind and address was seen
// within the quiet period (15 minutes by default) before it; after the quiet period it is new again;
// count_incident() counts by kind.
#include "delivery/incidents.hpp"

#include <gtest/gtest.h>

#include "common/metrics.hpp"

using namespace mailward;
using namespace mailward::delivery;
using namespace std::chrono_literals;

namespace {

store::PolicyIncident incident(std::string domain, std::string kind, std::string address,
                               std::chrono::system_clock::duration at) {
    store::PolicyIncident i;
    i.domain = std::move(domain);
    i.kind = std::move(kind);
    i.address = std::move(address);
    i.at = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000)) + at;
    return i;
}

}  // namespace

TEST(IncidentTracker, OncePerQuietPeriod) {
    struct Step {
        const char* name;
        store::PolicyIncident incident;
        bool is_new;
    };
    const Step steps[] = {
        {"first", incident("a.test", "starttls_missing", "127.0.0.1", 0min), true},
        {"again at once", incident("a.test", "starttls_missing", "127.0.0.1", 1min), false},
        {"another address", incident("a.test", "starttls_missing", "127.0.0.2", 2min), true},
        {"another kind", incident("a.test", "certificate_changed", "127.0.0.1", 3min), true},
        {"another domain", incident("b.test", "starttls_missing", "127.0.0.1", 4min), true},
        {"just inside the quiet period", incident("a.test", "starttls_missing", "127.0.0.1", 14min + 59s), false},
        {"at the end of the quiet period", incident("a.test", "starttls_missing", "127.0.0.1", 15min), true},
        {"quiet again after it", incident("a.test", "starttls_missing", "127.0.0.1", 20min), false},
        {"long after", incident("a.test", "starttls_missing", "127.0.0.1", 2h), true},
    };
    IncidentTracker t;
    for (const auto& s : steps) {
        EXPECT_EQ(t.is_new(s.incident), s.is_new) << s.name;
    }
}

TEST(IncidentTracker, TheQuietPeriodIsTheTrackers) {
    struct Case {
        std::chrono::system_clock::duration quiet, gap;
        bool second_is_new;
    };
    const Case cases[] = {{1min, 30s, false}, {1min, 1min, true}, {1h, 30min, false}, {1h, 61min, true}};
    for (const auto& c : cases) {
        IncidentTracker t(c.quiet);
        ASSERT_TRUE(t.is_new(incident("a.test", "handshake_failed", "127.0.0.1", 0s)));
        EXPECT_EQ(t.is_new(incident("a.test", "handshake_failed", "127.0.0.1", c.gap)), c.second_is_new)
            << "quiet " << c.quiet.count() << ", gap " << c.gap.count();
    }
}

TEST(IncidentTracker, CountIncidentCountsByKind) {
    const auto metric = "mailward_policy_incidents_total";
    const auto before_cert = common::metrics::value(metric, "kind", "certificate_changed");
    const auto before_454 = common::metrics::value(metric, "kind", "starttls_454");
    count_incident("certificate_changed");
    count_incident("certificate_changed");
    count_incident("starttls_454");
    EXPECT_EQ(common::metrics::value(metric, "kind", "certificate_changed"), before_cert + 2);
    EXPECT_EQ(common::metrics::value(metric, "kind", "starttls_454"), before_454 + 1);
}
