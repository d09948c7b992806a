// MTA-STS (RFC 8461): the _mta-sts TXT record (3.1), the policy file (3.2) and MX pattern matching
// (4.1) as tables; the cache's rules (5, 5.1: ids, refresh, expiry, fetch failures, a vanished
// record) as step-by-step scenarios with FakeResolver, a fake fetcher and an injected clock.
#include "policy/mta_sts.hpp"

#include <gtest/gtest.h>

#include "common/timefmt.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <optional>

#include "policy/mta_sts_fetch.hpp"
#include "support/fake_resolver.hpp"

using namespace mailward;
using namespace mailward::policy;
using Mode = MtaStsPolicy::Mode;

namespace {

// ---- TXT record ----------------------------------------------------------------------------

TEST(MtaStsRecord, Table) {
    struct Case {
        std::vector<std::string> texts;
        std::optional<std::string> id;  // nullopt: error
        MtaStsErrc error = MtaStsErrc::ok;
    };
    const Case cases[] = {
        {{"v=STSv1; id=20160831085700Z;"}, "20160831085700Z"},
        {{"v=STSv1; id=20160831085700Z"}, "20160831085700Z"},
        {{"v=STSv1;id=abc"}, "abc"},
        {{"v=STSv1 ; id=abc ;  "}, "abc"},
        {{"v=STSv1;\tid=abc;\t"}, "abc"},
        {{"v=STSv1; id=abc; ext-1.x=some:value"}, "abc"},
        {{"v=STSv1; ext=1; id=abc"}, "abc"},
        {{"v=STSv1; id=" + std::string(32, 'a')}, std::string(32, 'a')},
        {{"v=spf1 -all", "v=STSv1; id=x1", "other"}, "x1"},  // others are discarded
        // errors
        {{}, std::nullopt, MtaStsErrc::no_record},
        {{"v=spf1 -all"}, std::nullopt, MtaStsErrc::no_record},
        {{"V=STSv1; id=abc"}, std::nullopt, MtaStsErrc::no_record},  // %s: case-sensitive
        {{"v=STSv10; id=abc"}, std::nullopt, MtaStsErrc::no_record},
        {{" v=STSv1; id=abc"}, std::nullopt, MtaStsErrc::no_record},
        {{"v=STSv1; id=a", "v=STSv1; id=b"}, std::nullopt, MtaStsErrc::several_records},
        {{"v=STSv1; id=a", "v=STSv1; id=a"}, std::nullopt, MtaStsErrc::several_records},
        {{"v=STSv1"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1;"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id="}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=" + std::string(33, 'a')}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=abc-def"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=abc def"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=a; id=b"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1 id=abc"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=abc; junk"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=abc; _x=1"}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=abc; x="}, std::nullopt, MtaStsErrc::bad_record},
        {{"v=STSv1; id=abc;; "}, std::nullopt, MtaStsErrc::bad_record},
    };
    for (const auto& c : cases) {
        std::string joined;
        for (const auto& t : c.texts) joined += "[" + t + "]";
        SCOPED_TRACE(joined);
        std::string detail;
        auto r = parse_mta_sts_record(c.texts, detail);
        if (c.id) {
            ASSERT_TRUE(r) << detail;
            EXPECT_EQ(r->id, *c.id);
        } else {
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error(), make_error_code(c.error)) << r.error().message();
            EXPECT_FALSE(detail.empty());
        }
    }
}

// ---- policy file ---------------------------------------------------------------------------

TEST(MtaStsPolicyFile, Table) {
    struct Case {
        const char* name;
        std::string body;
        bool ok;
        Mode mode = Mode::none;
        std::vector<std::string> mx = {};
        long max_age = 0;
        const char* detail = "";  // for errors: part of the detail
    };
    const Case cases[] = {
        {"rfc example",
         "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
         "mx: backupmx.example.com\r\nmax_age: 604800\r\n",
         true,
         Mode::enforce,
         {"mail.example.com", "*.example.net", "backupmx.example.com"},
         604800},
        {"lf lines, no final newline",
         "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400",
         true,
         Mode::testing,
         {"mx.example.org"},
         86400},
        {"order free, spaces",
         "max_age:86400  \nmx:\tMX.Example.ORG.\nmode:   enforce\nversion: STSv1\n",
         true,
         Mode::enforce,
         {"mx.example.org"},
         86400},
        {"unknown keys ignored",
         "version: STSv1\nmode: enforce\nfoo: bar baz\nx_y.z-1: 1\nmx: a.b\nmax_age: 1\n",
         true,
         Mode::enforce,
         {"a.b"},
         1},
        {"blank lines tolerated",
         "\nversion: STSv1\r\n\r\nmode: enforce\n  \nmx: a.b\nmax_age: 0\n\n",
         true,
         Mode::enforce,
         {"a.b"},
         0},
        {"none needs no mx", "version: STSv1\nmode: none\nmax_age: 86400\n", true, Mode::none, {}, 86400},
        {"max_age limit",
         "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557600\n",
         true,
         Mode::enforce,
         {"a.b"},
         31557600},
        {"max_age leading zeros",
         "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 0000000010\n",
         true,
         Mode::enforce,
         {"a.b"},
         10},
        // invalid
        {"empty", "", false, Mode::none, {}, 0, "no version"},
        {"no version", "mode: enforce\nmx: a.b\nmax_age: 1\n", false, Mode::none, {}, 0, "no version"},
        {"bad version", "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n", false, Mode::none, {}, 0, "STSv2"},
        {"version case", "version: stsv1\nmode: enforce\nmx: a.b\nmax_age: 1\n", false, Mode::none, {}, 0, "stsv1"},
        {"key case", "Version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n", false, Mode::none, {}, 0, "no version"},
        {"no mode", "version: STSv1\nmx: a.b\nmax_age: 1\n", false, Mode::none, {}, 0, "no mode"},
        {"bad mode", "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n", false, Mode::none, {}, 0, "Enforce"},
        {"no max_age", "version: STSv1\nmode: enforce\nmx: a.b\n", false, Mode::none, {}, 0, "no max_age"},
        {"max_age too big",
         "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n",
         false,
         Mode::none,
         {},
         0,
         "above"},
        {"max_age 11 digits",
         "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 00000000001\n",
         false,
         Mode::none,
         {},
         0,
         "digits"},
        {"max_age negative",
         "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",
         false,
         Mode::none,
         {},
         0,
         "digits"},
        {"max_age text", "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1d\n", false, Mode::none, {}, 0, "digits"},
        {"max_age empty", "version: STSv1\nmode: enforce\nmx: a.b\nmax_age:\n", false, Mode::none, {}, 0, "digits"},
        {"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", false, Mode::none, {}, 0, "no mx"},
        {"testing without mx", "version: STSv1\nmode: testing\nmax_age: 1\n", false, Mode::none, {}, 0, "no mx"},
        {"bad mx", "version: STSv1\nmode: enforce\nmx: mx example\nmax_age: 1\n", false, Mode::none, {}, 0, "mx"},
        // Found by fuzz_mta_sts: empty labels are not a host name.
        {"mx empty label", "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n", false, Mode::none, {}, 0, "a..b"},
        {"mx two final dots",
         "version: STSv1\nmode: enforce\nmx: *.b..\nmax_age: 1\n",
         false,
         Mode::none,
         {},
         0,
         "*.b.."},
        {"mx only a dot", "version: STSv1\nmode: enforce\nmx: .\nmax_age: 1\n", false, Mode::none, {}, 0, "mx"},
        {"mx inner wildcard",
         "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n",
         false,
         Mode::none,
         {},
         0,
         "a.*.b"},
        {"mx bare wildcard", "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", false, Mode::none, {}, 0, "mx"},
        {"mx empty", "version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n", false, Mode::none, {}, 0, "mx"},
        {"duplicate mode",
         "version: STSv1\nmode: enforce\nmode: none\nmx: a.b\nmax_age: 1\n",
         false,
         Mode::none,
         {},
         0,
         "line 3: mode given twice"},
        {"line without colon",
         "version: STSv1\nmode enforce\nmx: a.b\nmax_age: 1\n",
         false,
         Mode::none,
         {},
         0,
         "line 2"},
        {"indented key",
         "version: STSv1\n mode: enforce\nmx: a.b\nmax_age: 1\n",
         false,
         Mode::none,
         {},
         0,
         "field name"},
        {"html", "<html><body>hello</body></html>\n", false, Mode::none, {}, 0, "line 1"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        std::string detail;
        auto r = parse_mta_sts_policy(c.body, detail);
        if (c.ok) {
            ASSERT_TRUE(r) << detail;
            EXPECT_EQ(r->mode, c.mode);
            EXPECT_EQ(r->mx, c.mx);
            EXPECT_EQ(r->max_age, std::chrono::seconds(c.max_age));
        } else {
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error(), make_error_code(MtaStsErrc::bad_policy));
            EXPECT_NE(detail.find(c.detail), std::string::npos) << detail;
        }
    }
}

TEST(MtaSts, ErrorCategoryAndModeNames) {
    EXPECT_STREQ(mta_sts_category().name(), "mta-sts");
    error_code ec = MtaStsErrc::redirect;
    EXPECT_NE(ec.message().find("redirect"), std::string::npos);
    EXPECT_EQ(to_string(Mode::enforce), "enforce");
    EXPECT_EQ(to_string(Mode::testing), "testing");
    EXPECT_EQ(to_string(Mode::none), "none");
}

// ---- the cache -----------------------------------------------------------------------------

using Clock = std::chrono::system_clock;
using std::chrono::hours;
using std::chrono::seconds;

class FakeFetcher : public MtaStsFetcher {
  public:
    MtaStsFetchResult next;
    int calls = 0;
    std::vector<std::string> domains;
    boost::asio::awaitable<MtaStsFetchResult> fetch(std::string domain) override {
        ++calls;
        domains.push_back(domain);
        co_return next;
    }
};

MtaStsFetchResult fetched(Mode mode, long max_age, std::vector<std::string> mx = {"mx.example.test"}) {
    MtaStsFetchResult r;
    r.policy = MtaStsPolicy{mode, std::move(mx), seconds(max_age)};
    return r;
}

MtaStsFetchResult failed(MtaStsErrc e, std::string detail) {
    MtaStsFetchResult r;
    r.policy = e;
    r.detail = std::move(detail);
    return r;
}

dns::TxtAnswer txt(std::vector<std::string> texts) {
    dns::TxtAnswer a;
    a.texts = std::move(texts);
    a.nodata = a.texts.empty();
    return a;
}

// One step of a scenario: what DNS and the policy host say, when, and what get() must return.
struct Step {
    long at_seconds;                            // now = t0 + at_seconds
    std::optional<Result<dns::TxtAnswer>> txt;  // nullopt: no record (NXDOMAIN)
    std::optional<MtaStsFetchResult> fetch;     // what a fetch would return (nullopt: keep)
    bool want_fetch;                            // get() fetched
    std::optional<Mode> want_mode;              // nullopt: no policy
    MtaStsLookup::Source want_source;
    std::string want_id;
    std::string want_status;  // exact
};

MtaStsLookup run_get(MtaStsCache& cache, const std::string& domain, Clock::time_point now) {
    boost::asio::io_context io;
    auto fut = boost::asio::co_spawn(io, cache.get(domain, now), boost::asio::use_future);
    io.run();
    return fut.get();
}

struct Scenario {
    const char* name;
    std::vector<Step> steps;
};

const Clock::time_point t0 = Clock::from_time_t(1700000000);

Result<dns::TxtAnswer> rec(const std::string& id) { return txt({"v=STSv1; id=" + id + ";"}); }

// The status's "next try after" time for t0 + s.
std::string after(long s) { return common::iso8601(t0 + seconds(s)); }

TEST(MtaStsCache, Scenarios) {
    using S = MtaStsLookup::Source;
    const long day = 86400;
    const Scenario scenarios[] = {
        {"fetch, then cache while the id is unchanged",
         {{0, rec("a1"), fetched(Mode::enforce, 7 * day), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {3600, rec("a1"), std::nullopt, false, Mode::enforce, S::cache, "a1", "mta-sts: enforce (id a1, cached)"},
          {3 * day, rec("a1"), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached)"}}},
        {"a new id fetches again",
         {{0, rec("a1"), fetched(Mode::testing, 7 * day), true, Mode::testing, S::fetched, "a1",
           "mta-sts: testing (id a1, fetched)"},
          {60, rec("a2"), fetched(Mode::enforce, 7 * day), true, Mode::enforce, S::fetched, "a2",
           "mta-sts: enforce (id a2, fetched)"},
          {120, rec("a2"), std::nullopt, false, Mode::enforce, S::cache, "a2", "mta-sts: enforce (id a2, cached)"}}},
        {"fetch failure with a cached policy keeps it (5.1), until it expires",
         {{0, rec("a1"), fetched(Mode::enforce, day), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {60, rec("a2"), failed(MtaStsErrc::tls_failed, "certificate verify failed"), true, Mode::enforce, S::cache,
           "a1", "mta-sts: enforce (id a1, cached; fetch failed: certificate verify failed)"},
          // within the back-off (5 min after the failure): no new fetch, the cached policy stays
          {60 + 299, rec("a2"), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; fetch failed: certificate verify failed; next try after " +
               after(60 + 300) + ")"},
          {day - 1, rec("a2"), std::nullopt, true, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; fetch failed: certificate verify failed)"},
          // the second failure doubled the back-off (10 min); the cached policy has expired meanwhile
          {day, rec("a2"), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: certificate verify failed; next try after " + after(day - 1 + 600)},
          {day - 1 + 600, rec("a2"), std::nullopt, true, std::nullopt, S::none, "",
           "mta-sts: fetch failed: certificate verify failed"}}},
        {"fetch failure without a cached policy: no policy, and no new fetch for every message",
         {{0, rec("a1"), failed(MtaStsErrc::redirect, "HTTP 301 redirect (not followed)"), true, std::nullopt, S::none,
           "", "mta-sts: fetch failed: HTTP 301 redirect (not followed)"},
          {1, rec("a1"), fetched(Mode::enforce, day), false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: HTTP 301 redirect (not followed); next try after " + after(300)},
          {299, rec("a1"), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: HTTP 301 redirect (not followed); next try after " + after(300)},
          {300, rec("a1"), std::nullopt, true, Mode::enforce, S::fetched, "a1", "mta-sts: enforce (id a1, fetched)"}}},
        {"the back-off doubles up to an hour and a success resets it",
         {{0, rec("a1"), failed(MtaStsErrc::connect_failed, "refused"), true, std::nullopt, S::none, "",
           "mta-sts: fetch failed: refused"},
          {300, rec("a1"), std::nullopt, true, std::nullopt, S::none, "", "mta-sts: fetch failed: refused"},
          {301, rec("a1"), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: refused; next try after " + after(300 + 600)},
          {900, rec("a1"), std::nullopt, true, std::nullopt, S::none, "", "mta-sts: fetch failed: refused"},
          {2100, rec("a1"), std::nullopt, true, std::nullopt, S::none, "", "mta-sts: fetch failed: refused"},
          {4500, rec("a1"), std::nullopt, true, std::nullopt, S::none, "", "mta-sts: fetch failed: refused"},
          // 300, 600, 1200, 2400, then capped at 3600
          {4500 + 3599, rec("a1"), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: refused; next try after " + after(4500 + 3600)},
          {4500 + 3600, rec("a1"), std::nullopt, true, std::nullopt, S::none, "", "mta-sts: fetch failed: refused"},
          {4500 + 7200, rec("a1"), fetched(Mode::enforce, 60), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          // after the success, a failure starts again at 5 minutes
          {4500 + 7200 + 60, rec("a1"), failed(MtaStsErrc::connect_failed, "refused"), true, std::nullopt, S::none, "",
           "mta-sts: fetch failed: refused"},
          {4500 + 7200 + 61, rec("a1"), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: refused; next try after " + after(4500 + 7200 + 60 + 300)}}},
        {"a failed fetch without detail says the error",
         {{0, rec("a1"), failed(MtaStsErrc::too_large, ""), true, std::nullopt, S::none, "",
           "mta-sts: fetch failed: policy is too large"}}},
        {"no record",
         {{0, std::nullopt, fetched(Mode::enforce, day), false, std::nullopt, S::none, "", "mta-sts: no record"},
          {1, txt({}), std::nullopt, false, std::nullopt, S::none, "", "mta-sts: no record"},
          {2, txt({"v=spf1 -all"}), std::nullopt, false, std::nullopt, S::none, "", "mta-sts: no record"}}},
        {"invalid and several records are no policy",
         {{0, txt({"v=STSv1; id=a_b"}), fetched(Mode::enforce, day), false, std::nullopt, S::none, "",
           "mta-sts: invalid record: id \"a_b\" is not 1-32 letters and digits"},
          {1, txt({"v=STSv1; id=a", "v=STSv1; id=b"}), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: invalid record: 2 TXT records start with v=STSv1 (exactly one allowed)"}}},
        {"a record that vanishes leaves the cached policy in effect until expiry",
         {{0, rec("a1"), fetched(Mode::enforce, 2 * day), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {day, std::nullopt, std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; no record)"},
          {day + 1, txt({"v=STSv1"}), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; invalid record: no id)"},
          {2 * day, std::nullopt, std::nullopt, false, std::nullopt, S::none, "", "mta-sts: no record"}}},
        {"TXT lookup failure: cached policy, else none",
         {{0, Result<dns::TxtAnswer>(dns::DnsErrc::servfail), fetched(Mode::enforce, day), false, std::nullopt, S::none,
           "", "mta-sts: TXT lookup failed: " + error_code(dns::DnsErrc::servfail).message()},
          {1, rec("a1"), std::nullopt, true, Mode::enforce, S::fetched, "a1", "mta-sts: enforce (id a1, fetched)"},
          {2, Result<dns::TxtAnswer>(dns::DnsErrc::timeout), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; TXT lookup failed: " + error_code(dns::DnsErrc::timeout).message() +
               ")"}}},
        {"refresh at half of max_age with the same id",
         {{0, rec("a1"), fetched(Mode::enforce, 10 * day), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {5 * day - 1, rec("a1"), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached)"},
          {5 * day, rec("a1"), fetched(Mode::enforce, 10 * day), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          // the refresh restarted the clock: expiry is now 15 days, the next refresh at 10 days
          {10 * day - 1, rec("a1"), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached)"}}},
        {"a failed refresh keeps the policy until it expires",
         {{0, rec("a1"), fetched(Mode::enforce, 36 * 3600), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {18 * 3600 - 1, rec("a1"), std::nullopt, false, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached)"},
          {18 * 3600, rec("a1"), failed(MtaStsErrc::connect_failed, "refused"), true, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; fetch failed: refused)"},
          {36 * 3600 - 1, rec("a1"), std::nullopt, true, Mode::enforce, S::cache, "a1",
           "mta-sts: enforce (id a1, cached; fetch failed: refused)"},
          {36 * 3600, rec("a1"), std::nullopt, false, std::nullopt, S::none, "",
           "mta-sts: fetch failed: refused; next try after " + after(36 * 3600 - 1 + 600)}}},
        {"max_age 0 is used once and never cached for later",
         {{0, rec("a1"), fetched(Mode::enforce, 0), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {0, rec("a1"), failed(MtaStsErrc::timeout, "timed out"), true, std::nullopt, S::none, "",
           "mta-sts: fetch failed: timed out"}}},
        {"mode none replaces an enforce policy (10.2)",
         {{0, rec("a1"), fetched(Mode::enforce, day), true, Mode::enforce, S::fetched, "a1",
           "mta-sts: enforce (id a1, fetched)"},
          {60, rec("a2"), fetched(Mode::none, day, {}), true, Mode::none, S::fetched, "a2",
           "mta-sts: none (id a2, fetched)"},
          {120, rec("a2"), std::nullopt, false, Mode::none, S::cache, "a2", "mta-sts: none (id a2, cached)"}}},
        {"an invalid policy is a fetch failure",
         {{0, rec("a1"), failed(MtaStsErrc::bad_policy, "line 1: no ':' in \"<html>\""), true, std::nullopt, S::none,
           "", "mta-sts: fetch failed: line 1: no ':' in \"<html>\""}}},
    };
    for (const auto& sc : scenarios) {
        SCOPED_TRACE(sc.name);
        dns::FakeResolver resolver;
        FakeFetcher fetcher;
        MtaStsCache cache(resolver, fetcher);
        int step_no = 0;
        for (const auto& step : sc.steps) {
            SCOPED_TRACE("step " + std::to_string(++step_no));
            resolver.txt_answers.erase("_mta-sts.example.test");
            if (step.txt) resolver.txt_answers.emplace("_mta-sts.example.test", *step.txt);
            if (step.fetch) fetcher.next = *step.fetch;
            const int before = fetcher.calls;
            auto got = run_get(cache, step_no % 2 ? "Example.Test." : "example.test", t0 + seconds(step.at_seconds));
            EXPECT_EQ(fetcher.calls - before, step.want_fetch ? 1 : 0);
            EXPECT_EQ(got.status, step.want_status);
            EXPECT_EQ(got.source, step.want_source);
            EXPECT_EQ(got.id, step.want_id);
            ASSERT_EQ(got.policy.has_value(), step.want_mode.has_value());
            if (got.policy) {
                EXPECT_EQ(got.policy->mode, *step.want_mode);
            }
            if (got.source == S::none) {
                EXPECT_TRUE(got.error);  // every "no policy" says why
            }
        }
        for (const auto& d : fetcher.domains) EXPECT_EQ(d, "example.test");
    }
}

TEST(MtaStsCache, ExpiryAndPeekAndForget) {
    dns::FakeResolver resolver;
    FakeFetcher fetcher;
    MtaStsCache cache(resolver, fetcher);
    resolver.txt_answers.emplace("_mta-sts.example.test", rec("x9"));
    fetcher.next = fetched(Mode::enforce, 86400, {"*.example.test"});
    auto got = run_get(cache, "example.test", t0);
    ASSERT_TRUE(got.policy);
    EXPECT_EQ(got.expires, t0 + seconds(86400));
    EXPECT_EQ(got.policy->mx, std::vector<std::string>{"*.example.test"});
    auto peeked = cache.peek("EXAMPLE.test");
    ASSERT_TRUE(peeked);
    EXPECT_EQ(peeked->id, "x9");
    EXPECT_EQ(peeked->fetched_at, t0);
    EXPECT_EQ(mta_sts_refresh_at(*peeked), t0 + hours(12));
    EXPECT_EQ(cache.size(), 1u);
    cache.forget("example.test");
    EXPECT_EQ(cache.size(), 0u);
    // put() (e.g. from a store) is honoured like a fetched entry
    cache.put("example.test", CachedMtaStsPolicy{MtaStsPolicy{Mode::testing, {"m.example.test"}, seconds(864000)}, "x9",
                                                 t0, t0 + seconds(864000)});
    got = run_get(cache, "example.test", t0 + hours(1));
    EXPECT_EQ(got.status, "mta-sts: testing (id x9, cached)");
    EXPECT_EQ(fetcher.calls, 1);
    // an invalid domain never reaches DNS
    resolver.queries.clear();
    got = run_get(cache, "exa mple/.test", t0);
    EXPECT_FALSE(got.policy);
    EXPECT_TRUE(resolver.queries.empty());
}

TEST(MtaStsCache, RefreshTimes) {
    auto at = [](long max_age) {
        CachedMtaStsPolicy c{MtaStsPolicy{Mode::enforce, {"a"}, seconds(max_age)}, "i", t0, t0 + seconds(max_age)};
        return std::chrono::duration_cast<seconds>(mta_sts_refresh_at(c) - t0).count();
    };
    EXPECT_EQ(at(0), 0);
    EXPECT_EQ(at(3600), 1800);
    EXPECT_EQ(at(86400), 43200);
    EXPECT_EQ(at(10 * 86400), 5 * 86400);
    EXPECT_EQ(at(31557600), 31557600 / 2);
}

}  // namespace
