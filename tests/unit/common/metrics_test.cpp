// The counters and their Prometheus text rendering (label escaping, HELP/TYPE once per family).
#include "common/metrics.hpp"

#include <gtest/gtest.h>

using namespace mailward::common;

TEST(Metrics, CountsPerLabelAndRendersPrometheusText) {
    metrics::inc("mw_test_incidents_total", "Test incidents.", "kind", "starttls_missing");
    metrics::inc("mw_test_incidents_total", "Test incidents.", "kind", "starttls_missing");
    metrics::inc("mw_test_incidents_total", "Test incidents.", "kind", "certificate_changed", 5);
    metrics::inc("mw_test_plain_total", "No labels.");
    EXPECT_EQ(metrics::value("mw_test_incidents_total", "kind", "starttls_missing"), 2u);
    EXPECT_EQ(metrics::value("mw_test_incidents_total", "kind", "certificate_changed"), 5u);
    EXPECT_EQ(metrics::value("mw_test_incidents_total", "kind", "never"), 0u);
    EXPECT_EQ(metrics::value("mw_test_unknown_total"), 0u);
    const auto text = metrics::render();
    EXPECT_NE(text.find("# HELP mw_test_incidents_total Test incidents.\n# TYPE mw_test_incidents_total counter\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("mw_test_incidents_total{kind=\"starttls_missing\"} 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("mw_test_incidents_total{kind=\"certificate_changed\"} 5\n"), std::string::npos) << text;
    EXPECT_NE(text.find("mw_test_plain_total 1\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("# HELP mw_test_incidents_total", text.find("# HELP mw_test_incidents_total") + 1),
              std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
    metrics::inc("mw_test_escape_total", "Escaping.", "v", "a\"b\\c\nd");
    EXPECT_NE(metrics::render().find("mw_test_escape_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos);
}
