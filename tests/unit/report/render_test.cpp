// The TLS report's renderings (report/render.cpp): the documented JSON fields, the HTML page (one
// file, no script, no external URL, every data string escaped, one chart segment per non-zero
// count) and the text summary.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "common/timefmt.hpp"
#include "report/report.hpp"

using namespace mailward;
using report::Builder;
using report::Report;

namespace {

report::TimePoint at(const std::string& iso) { return *common::parse_iso8601(iso); }

std::string line(const std::string& time, const std::string& rcpt, const std::string& result, const std::string& tls) {
    nlohmann::json j = {{"time", time}, {"queue_id", "Q"},  {"recipient", rcpt},
                        {"mx", "mx.x"}, {"result", result}, {"tls", nlohmann::json::parse(tls)}};
    return j.dump() + "\n";
}

const std::string kVerify = R"({"protocol":"TLSv1.3","forward_secret":true,"chain_valid":true,"name_matched":true})";
const std::string kHostile = "<script>alert(1)</script>&\"'.example";

Report sample() {
    Builder b("3d", at("2026-12-04T12:00:00Z"), at("2026-12-07T12:00:00Z"));
    std::istringstream in(line("2026-12-05T10:00:00Z", "a@v.example", "delivered", kVerify) +
                          line("2026-12-06T10:00:00Z", "b@v.example", "delivered", kVerify) +
                          line("2026-12-06T11:00:00Z", "c@plain.example", "delivered", "null") +
                          line("2026-12-06T12:00:00Z", "x@" + kHostile, "delivered", "null") + "garbage\n");
    auto scan = delivery::read_log(in, at("2026-12-04T12:00:00Z"), [&](const delivery::LogEntry& e) { b.add(e); });
    EXPECT_TRUE(scan);
    b.add_scan(*scan);
    store::EscrowRecord rec;
    rec.recipient = "y@" + kHostile;
    rec.created = at("2026-12-07T10:00:00Z");
    store::EscrowAuditEntry viewed;
    viewed.event = "viewed";
    b.add_escrow(rec, {viewed});
    store::PolicyIncident inc;
    inc.domain = kHostile;
    inc.at = at("2026-12-06T13:00:00Z");
    inc.kind = "starttls_missing";
    inc.detail = "EHLO <b>without</b> STARTTLS";
    b.add_incident(inc);
    return b.finish();
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

}  // namespace

TEST(ReportRender, JsonFields) {
    const auto j = report::render_json(sample());
    struct Case {
        std::string pointer;
        nlohmann::json want;
    };
    const Case cases[] = {
        {"/since", "3d"},
        {"/from", "2026-12-04T12:00:00Z"},
        {"/to", "2026-12-07T12:00:00Z"},
        {"/log/lines", 5},
        {"/log/skipped", 1},
        {"/log/attempts", 4},
        {"/log/results/delivered", 4},
        {"/messages/delivered", 4},
        {"/messages/by_level/verify", 2},
        {"/messages/by_level/none", 2},
        {"/messages/by_level/dane", 0},
        {"/messages/escrowed", 1},
        {"/domains/total", 3},
        {"/domains/by_level/none", 2},
        {"/domains/by_level/verify", 1},
        {"/domains/unknown", 0},
        {"/days/0/date", "2026-12-04"},
        {"/days/1/delivered/verify", 1},
        {"/days/3/escrowed", 1},
        {"/days/2/domains/none", 2},
        {"/days/2/domains/verify", 1},
        {"/escrow/sealed", 1},
        {"/escrow/read", 1},
        {"/escrow/read_rate", 1.0},
        {"/top_escrow_domains/0/domain", kHostile},
        {"/top_escrow_domains/0/escrowed", 1},
        {"/incidents/0/kind", "starttls_missing"},
        {"/learned/total", 0},
        {"/learned/changes", nlohmann::json::array()},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.pointer);
        ASSERT_TRUE(j.contains(nlohmann::json::json_pointer(c.pointer)));
        EXPECT_EQ(j.at(nlohmann::json::json_pointer(c.pointer)), c.want);
    }
    EXPECT_EQ(j["days"].size(), 4u);
}

TEST(ReportRender, HtmlIsSelfContainedAndEscaped) {
    const auto html = report::render_html(sample());
    EXPECT_NE(html.find("<title>Who supports TLS?"), std::string::npos);
    // Nothing loads from elsewhere and nothing runs.
    for (const char* bad : {"<script", "http://", "https://", "src=", "href=", "url(", "@import"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(html.find(bad), std::string::npos);
    }
    // The hostile domain and incident text appear escaped only.
    EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;.example"), std::string::npos);
    EXPECT_NE(html.find("EHLO &lt;b&gt;without&lt;/b&gt; STARTTLS"), std::string::npos);
    EXPECT_EQ(html.find("<b>without"), std::string::npos);
    // The per-day chart: one group per day, one segment per non-zero (day, level) and escrowed count:
    // 12-05 verify, 12-06 verify + none, 12-07 escrowed.
    const auto chart_start = html.find("<svg id=\"per-day\"");
    ASSERT_NE(chart_start, std::string::npos);
    const auto chart = html.substr(chart_start, html.find("</svg>", chart_start) - chart_start);
    EXPECT_EQ(count(chart, "<g class=\"day\""), 4u);
    EXPECT_EQ(count(chart, "class=\"seg\""), 4u);
    const auto share_start = html.find("<svg id=\"domain-share\"");
    ASSERT_NE(share_start, std::string::npos);
    const auto share = html.substr(share_start, html.find("</svg>", share_start) - share_start);
    EXPECT_EQ(count(share, "class=\"seg\""), 2u);  // none and verify
    EXPECT_NE(html.find("<table id=\"top-escrow\">"), std::string::npos);
    EXPECT_NE(html.find("<table id=\"incidents\">"), std::string::npos);
}

TEST(ReportRender, HtmlOfAnEmptyPeriod) {
    const auto html =
        report::render_html(Builder("1d", at("2026-12-06T12:00:00Z"), at("2026-12-07T12:00:00Z")).finish());
    EXPECT_NE(html.find("no data in the period"), std::string::npos);
    EXPECT_EQ(count(html, "class=\"seg\""), 0u);
    EXPECT_EQ(count(html, "<g class=\"day\""), 2u);
}

TEST(ReportRender, HtmlEscape) {
    const std::pair<std::string, std::string> cases[] = {
        {"", ""}, {"plain.example", "plain.example"}, {"a<b>&\"'", "a&lt;b&gt;&amp;&quot;&#39;"}};
    for (const auto& [in, want] : cases) EXPECT_EQ(report::html_escape(in), want);
}

TEST(ReportRender, TextSummary) {
    const auto text = report::render_text(sample());
    EXPECT_NE(text.find("messages: 4 delivered (none 2, may 0, encrypt 0, verify 2, dane 0), 1 escrowed"),
              std::string::npos);
    EXPECT_NE(text.find("escrow: 1 sealed, 0 opened, 1 read (read rate 100%)"), std::string::npos);
    EXPECT_NE(text.find("1 unreadable skipped"), std::string::npos);
}

TEST(ReportRender, TextEscapesControlCharacters) {
    Builder b("1d", at("2026-12-06T12:00:00Z"), at("2026-12-07T12:00:00Z"));
    std::istringstream in(line("2026-12-07T10:00:00Z", "a@evil\x1b[2J.example", "delivered", "null"));
    ASSERT_TRUE(delivery::read_log(in, at("2026-12-06T12:00:00Z"), [&](const delivery::LogEntry& e) { b.add(e); }));
    store::EscrowRecord rec;
    rec.recipient = "b@evil\x1b[2J.example";
    rec.created = at("2026-12-07T10:00:00Z");
    b.add_escrow(rec, {});
    const auto text = report::render_text(b.finish());
    EXPECT_EQ(text.find('\x1b'), std::string::npos);
    EXPECT_EQ(count(text, "evil\\x1b[2j.example"), 2u);  // the domain row and the top escrow row (lower case)
}
