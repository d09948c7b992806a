// The TLS report's aggregation (report/report.hpp) as tables: log lines (parsed by the delivery
// log's reader, as the command does) and store rows in, the Report's counts out.
#include <gtest/gtest.h>

#include <sstream>

#include "common/timefmt.hpp"
#include "report/report.hpp"

using namespace mailward;
using report::Builder;
using report::LevelCounts;
using report::Report;
using tls::Level;

namespace {

report::TimePoint at(const std::string& iso) { return *common::parse_iso8601(iso); }

const report::TimePoint kFrom = at("2026-12-05T12:00:00Z");
const report::TimePoint kTo = at("2026-12-07T12:00:00Z");

std::string tls_of(Level l) {
    switch (l) {
        case Level::none: return "null";
        case Level::may: return R"({"protocol":"TLSv1"})";
        case Level::encrypt: return R"({"protocol":"TLSv1.3","forward_secret":true})";
        case Level::verify:
            return R"({"protocol":"TLSv1.3","forward_secret":true,"chain_valid":true,"name_matched":true})";
        case Level::dane: return R"({"protocol":"TLSv1.3","forward_secret":true,"dane_matched":true})";
    }
    return "null";
}

std::string line(const std::string& time, const std::string& rcpt, const std::string& result, Level l) {
    return R"({"time":")" + time + R"(","queue_id":"Q","recipient":")" + rcpt + R"(","mx":"mx.x","result":")" + result +
           R"(","tls":)" + tls_of(l) + "}\n";
}

// Feeds a log text to a Builder the way `mailward report` does.
Report from_log(const std::string& text) {
    Builder b("2d", kFrom, kTo);
    std::istringstream in(text);
    auto scan = delivery::read_log(in, kFrom, [&](const delivery::LogEntry& e) { b.add(e); });
    EXPECT_TRUE(scan);
    if (scan) b.add_scan(*scan);
    return b.finish();
}

LevelCounts counts(std::size_t none, std::size_t may, std::size_t encrypt, std::size_t verify, std::size_t dane) {
    return {none, may, encrypt, verify, dane};
}

store::EscrowRecord escrow(const std::string& rcpt, const std::string& created, store::EscrowState state) {
    store::EscrowRecord r;
    r.id = "00000000000000" + std::to_string(rcpt.size() % 100);
    r.recipient = rcpt;
    r.created = at(created);
    r.state = state;
    return r;
}

std::vector<store::EscrowAuditEntry> events(std::initializer_list<std::string_view> names) {
    std::vector<store::EscrowAuditEntry> out;
    for (auto n : names) {
        store::EscrowAuditEntry e;
        e.event = std::string(n);
        out.push_back(e);
    }
    return out;
}

}  // namespace

TEST(Report, DeliveryLogTable) {
    struct Case {
        std::string name, log;
        LevelCounts messages, domains;
        std::size_t unknown, attempts, skipped, before, lines;
    };
    const Case cases[] = {
        {"empty log", "", {}, {}, 0, 0, 0, 0, 0},
        {"one verify delivery", line("2026-12-06T10:00:00Z", "a@v.example", "delivered", Level::verify),
         counts(0, 0, 0, 1, 0), counts(0, 0, 0, 1, 0), 0, 1, 0, 0, 1},
        {"lines outside the period are not counted",
         line("2026-12-05T11:59:59Z", "a@v.example", "delivered", Level::verify) +
             line("2026-12-06T10:00:00Z", "a@d.example", "delivered", Level::dane),
         counts(0, 0, 0, 0, 1), counts(0, 0, 0, 0, 1), 0, 1, 0, 1, 2},
        {"malformed lines counted and skipped",
         "not json\n{\"time\":\"2026-12-06T10:00:00Z\"}\n" +
             line("2026-12-06T10:00:00Z", "a@n.example", "delivered", Level::none),
         counts(1, 0, 0, 0, 0), counts(1, 0, 0, 0, 0), 0, 1, 2, 0, 3},
        {"a domain seen at several levels counts once, at its weakest",
         line("2026-12-06T10:00:00Z", "a@m.example", "delivered", Level::verify) +
             line("2026-12-06T11:00:00Z", "b@M.example", "delivered", Level::encrypt) +
             line("2026-12-07T10:00:00Z", "c@m.example", "deferred-tls-policy", Level::none),
         counts(0, 0, 1, 1, 0), counts(1, 0, 0, 0, 0), 0, 3, 0, 0, 3},
        {"a domain no line tells about is unknown",
         line("2026-12-06T10:00:00Z", "a@u.example", "deferred", Level::none), counts(0, 0, 0, 0, 0),
         counts(0, 0, 0, 0, 0), 1, 1, 0, 0, 1},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto r = from_log(c.log);
        EXPECT_EQ(r.messages, c.messages);
        EXPECT_EQ(r.domains, c.domains);
        EXPECT_EQ(r.domains_unknown, c.unknown);
        EXPECT_EQ(r.attempts, c.attempts);
        EXPECT_EQ(r.skipped_lines, c.skipped);
        EXPECT_EQ(r.before_period, c.before);
        EXPECT_EQ(r.log_lines, c.lines);
        EXPECT_EQ(r.days.size(), 3u);  // 12-05, 12-06, 12-07: every day, quiet ones too
    }
}

TEST(Report, SeveralLevelsPerDomainRow) {
    const auto r = from_log(line("2026-12-06T10:00:00Z", "a@m.example", "delivered", Level::dane) +
                            line("2026-12-06T11:00:00Z", "b@m.example", "delivered", Level::may) +
                            line("2026-12-06T12:00:00Z", "c@m.example", "deferred", Level::none));
    ASSERT_EQ(r.domain_rows.size(), 1u);
    const auto& d = r.domain_rows[0];
    EXPECT_EQ(d.domain, "m.example");
    EXPECT_EQ(d.attempts, 3u);
    EXPECT_EQ(d.delivered, counts(0, 1, 0, 0, 1));
    EXPECT_EQ(d.weakest, Level::may);
    EXPECT_EQ(d.strongest, Level::dane);
    EXPECT_EQ(r.results.at("delivered"), 2u);
    EXPECT_EQ(r.results.at("deferred"), 1u);
}

TEST(Report, PerDayBuckets) {
    const auto r = from_log(line("2026-12-05T13:00:00Z", "a@v.example", "delivered", Level::verify) +
                            line("2026-12-07T01:00:00Z", "a@v.example", "delivered", Level::verify) +
                            line("2026-12-07T02:00:00Z", "b@n.example", "delivered", Level::none) +
                            line("2026-12-07T03:00:00Z", "c@n.example", "deferred-tls-policy", Level::dane));
    ASSERT_EQ(r.days.size(), 3u);
    EXPECT_EQ(r.days[0].date, "2026-12-05");
    EXPECT_EQ(r.days[0].delivered, counts(0, 0, 0, 1, 0));
    EXPECT_EQ(r.days[1].date, "2026-12-06");
    EXPECT_EQ(r.days[1].delivered, counts(0, 0, 0, 0, 0));
    EXPECT_EQ(r.days[2].date, "2026-12-07");
    EXPECT_EQ(r.days[2].delivered, counts(1, 0, 0, 1, 0));
    // Domains per day, each once at its weakest that day: v.example verify on 12-05; on 12-07
    // v.example verify and n.example none; a later n.example line at DANE does not lift it.
    EXPECT_EQ(r.days[0].domains, counts(0, 0, 0, 1, 0));
    EXPECT_EQ(r.days[1].domains, counts(0, 0, 0, 0, 0));
    EXPECT_EQ(r.days[2].domains, counts(1, 0, 0, 1, 0));
}

TEST(Report, EscrowUsageAndTopDomains) {
    using S = store::EscrowState;
    struct Row {
        std::string rcpt, created;
        S state;
        std::vector<store::EscrowAuditEntry> audit;
    };
    const std::vector<Row> rows = {
        {"a@plain.example", "2026-12-06T10:00:00Z", S::active, events({"sealed", "link_opened", "viewed"})},
        {"b@plain.example", "2026-12-06T11:00:00Z", S::active, events({"sealed", "link_opened"})},
        {"c@plain.example", "2026-12-07T11:00:00Z", S::revoked, events({"sealed", "revoked"})},
        {"d@other.example", "2026-12-06T11:00:00Z", S::expired, events({"sealed", "expired"})},
        {"e@other.example", "2026-12-06T11:00:00Z", S::purged, events({"sealed", "viewed", "expired", "purged"})},
        {"f@third.example", "2026-12-06T11:00:00Z", S::purged, events({"sealed", "revoked", "purged"})},
        {"g@old.example", "2026-12-01T11:00:00Z", S::active, events({"sealed", "viewed"})},  // before the period
    };
    Builder b("2d", kFrom, kTo);
    for (const auto& r : rows) b.add_escrow(escrow(r.rcpt, r.created, r.state), r.audit);
    const auto r = b.finish();
    EXPECT_EQ(r.escrow.sealed, 6u);
    EXPECT_EQ(r.escrow.opened, 2u);
    EXPECT_EQ(r.escrow.read, 2u);
    EXPECT_EQ(r.escrow.expired, 2u);
    EXPECT_EQ(r.escrow.revoked, 2u);
    EXPECT_EQ(r.escrow.active, 2u);
    ASSERT_TRUE(r.escrow.read_rate());
    EXPECT_DOUBLE_EQ(*r.escrow.read_rate(), 2.0 / 6.0);
    EXPECT_EQ(r.messages_escrowed, 6u);
    using P = std::pair<std::string, std::size_t>;
    EXPECT_EQ(r.top_escrow_domains, (std::vector<P>{{"plain.example", 3}, {"other.example", 2}, {"third.example", 1}}));
    EXPECT_EQ(r.days[0].escrowed, 0u);
    EXPECT_EQ(r.days[1].escrowed, 5u);
    EXPECT_EQ(r.days[2].escrowed, 1u);
    EXPECT_FALSE(Builder("2d", kFrom, kTo).finish().escrow.read_rate());  // nothing sealed: no rate
}

TEST(Report, TopEscrowDomainsAreAtMostTen) {
    Builder b("2d", kFrom, kTo);
    for (int i = 0; i < 12; ++i)
        for (int n = 0; n <= i; ++n)
            b.add_escrow(
                escrow("x@d" + std::to_string(i) + ".example", "2026-12-06T10:00:00Z", store::EscrowState::active), {});
    const auto r = b.finish();
    ASSERT_EQ(r.top_escrow_domains.size(), 10u);
    EXPECT_EQ(r.top_escrow_domains.front(), (std::pair<std::string, std::size_t>{"d11.example", 12}));
    EXPECT_EQ(r.top_escrow_domains.back().second, 3u);
}

TEST(Report, LearnedRaisedAndIncidents) {
    auto audit = [](const std::string& when, const std::string& action, const std::string& domain,
                    const std::string& level, const std::string& detail) {
        store::PolicyAudit a;
        a.at = at(when);
        a.action = action;
        a.domain = domain;
        a.level = level;
        a.detail = detail;
        return a;
    };
    Builder b("2d", kFrom, kTo);
    for (const auto& [d, l] : std::vector<std::pair<std::string, std::string>>{
             {"a.example", "verify"}, {"b.example", "dane"}, {"c.example", "encrypt"}, {"bad.example", "bogus"}}) {
        store::LearnedPolicy p;
        p.domain = d;
        p.level = l;
        b.add_learned(p);
    }
    const std::vector<store::PolicyAudit> rows = {
        audit("2026-12-01T00:00:00Z", "raise", "c.example", "encrypt", "learned"),  // before the period
        audit("2026-12-07T09:00:00Z", "raise", "b.example", "dane", "raised from verify"),
        audit("2026-12-06T09:00:00Z", "raise", "a.example", "verify", "learned"),
        audit("2026-12-06T10:00:00Z", "set_override", "a.example", "none", "broken MX"),  // not a ratchet change
    };
    for (const auto& a : rows) b.add_audit(a);
    for (const auto& [when, domain] :
         std::vector<std::pair<std::string, std::string>>{{"2026-12-07T08:00:00Z", "b.example"},
                                                          {"2026-12-06T08:00:00Z", "a.example"},
                                                          {"2026-11-01T00:00:00Z", "c.example"}}) {
        store::PolicyIncident i;
        i.at = at(when);
        i.domain = domain;
        i.kind = "starttls_missing";
        b.add_incident(i);
    }
    const auto r = b.finish();
    EXPECT_EQ(r.learned_total, 3u);  // a level not on the ladder is not counted
    EXPECT_EQ(r.learned, counts(0, 0, 1, 1, 1));
    ASSERT_EQ(r.changes.size(), 2u);
    EXPECT_EQ(r.changes[0].domain, "a.example");
    EXPECT_FALSE(r.changes[0].raised);
    EXPECT_EQ(r.changes[1].domain, "b.example");
    EXPECT_TRUE(r.changes[1].raised);
    EXPECT_EQ(r.changes[1].from_level, "verify");
    ASSERT_EQ(r.incidents.size(), 2u);
    EXPECT_EQ(r.incidents[0].domain, "a.example");  // oldest first
    EXPECT_EQ(r.incidents[1].domain, "b.example");
}
