// What the `mailward policy` subcommands share: checks of untrusted command-line input (domain
// syntax RFC 1035 2.3.1 / RFC 5890 A-labels, levels, one-line reasons, ISO 8601 dates and
// durations for --expires), opening the store and reading the policy store, and the text and JSON
// forms of overrides and learned levels. Bad input ends the command with exit code 2.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "cli/policy_internal.hpp"
#include "common/ascii.hpp"
#include "common/domain.hpp"
#include "common/duration.hpp"
#include "common/timefmt.hpp"

namespace mailward::cli::policy_cli {
namespace {

constexpr std::size_t kMaxReason = 500;

}  // namespace

// ---- input checks (bad input: exit 2, one line naming the problem) ----

std::string lower(std::string s) { return common::ascii::lower(s); }

// A host name as a mail domain (common/domain.hpp: RFC 1035 2.3.1 letters, digits, hyphen; labels
// 1-63 octets, at most 253 in all; internationalised names as A-labels, RFC 5890). Lower case, no
// final dot.
std::string checked_domain(const std::string& raw) {
    auto d = common::DomainName::parse(raw);
    if (!d) throw Failure("'" + raw + "' is not a domain name (" + common::domain_problem(raw) + ")", 2);
    return d->str();
}

std::string checked_level(const std::string& raw) {
    std::string l = lower(raw);
    if (!store::level_rank(l))
        throw Failure("unknown level '" + raw + "' (expected none, may, encrypt, verify or dane)", 2);
    return l;
}

std::string checked_reason(const std::string& raw) {
    if (raw.find_first_not_of(" \t") == std::string::npos)
        throw Failure("--reason must not be empty: say why the override is needed", 2);
    for (char c : raw) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            throw Failure("--reason must be one line of text (no control characters)", 2);
    }
    if (raw.size() > kMaxReason)
        throw Failure("--reason is longer than " + std::to_string(kMaxReason) + " characters", 2);
    return raw;
}

// --expires: an ISO 8601 date or date-time, or a duration from now ("7d", "12h"); in the future.
TimePoint checked_expiry(const std::string& raw, TimePoint now) {
    std::optional<TimePoint> t;
    if (auto d = common::parse_duration(raw)) {
        t = now + std::chrono::duration_cast<Clock::duration>(*d);
    } else {
        t = common::parse_iso8601(raw);
    }
    if (!t)
        throw Failure(
            "--expires '" + raw + "' is not a date (2026-12-31, 2026-12-31T12:00:00Z) or a duration (7d, 12h)", 2);
    if (*t <= now)
        throw Failure("--expires '" + raw + "' is not in the future (it is " + common::iso8601(*t) + ", now " +
                          common::iso8601(now) + ")",
                      2);
    return *t;
}

std::string who_am_i() {
    for (const char* var : {"SUDO_USER", "USER"}) {
        const char* v = std::getenv(var);
        if (v && *v) return v;
    }
    return "admin";
}

// ---- reading the store ----

std::unique_ptr<store::Store> open_store(const config::Config& cfg) {
    auto s = store::open(cfg);
    if (!s) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + s.error().message());
    return std::move(*s);
}

std::optional<store::Override> override_of(store::PolicyStore& ps, const std::string& domain) {
    for (auto& o : must(ps.overrides(), "the overrides")) {
        if (o.domain == domain) return std::move(o);
    }
    return std::nullopt;
}

// ---- presentation ----

json time_json(TimePoint t) { return t == TimePoint{} ? json(nullptr) : json(common::iso8601(t)); }
json time_json(const std::optional<TimePoint>& t) { return t ? time_json(*t) : json(nullptr); }

json report_json(const std::string& text) {  // stored reports are JSON; anything else as a string
    auto j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json(text) : j;
}

json override_json(const store::Override& o, TimePoint now) {
    return {{"level", o.level},
            {"reason", o.reason},
            {"expires", time_json(o.expires)},
            {"set_at", time_json(o.set_at)},
            {"set_by", o.set_by},
            {"expired", !o.active(now)}};
}

std::string override_text(const store::Override& o, TimePoint now) {
    if (!o.active(now)) return o.level + " (expired " + common::iso8601(*o.expires) + ")";
    return o.level + (o.expires ? " until " + common::iso8601(*o.expires) : std::string(" (no expiry)"));
}

json learned_json(const store::LearnedPolicy& p) {
    return {{"domain", p.domain},
            {"level", p.level},
            {"first_seen", time_json(p.first_seen)},
            {"last_confirmed", time_json(p.last_confirmed)},
            {"last_probe", time_json(p.last_probe)},
            {"evidence", report_json(p.evidence)}};
}

}  // namespace mailward::cli::policy_cli
