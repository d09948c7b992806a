// `mailward policy list|show|set|clear|forget|simulate|export`: the learned TLS policy per
// recipient domain (the ratchet), the administrator's overrides with reason, expiry and audit, a
// dry run of a sender mode over recent deliveries, and a Postfix smtp_tls_policy_maps export. Input
// from the command line is untrusted and checked here (domain syntax RFC 1035 2.3.1 / RFC 5890
// A-labels, ISO 8601 dates); the store and the delivery log are mailward's own. simulate asks
// policy::decide() (the one place that decides) what it would do; it does not re-implement the
// rules.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "common/duration.hpp"
#include "common/timefmt.hpp"
#include "policy/decide.hpp"
#include "policy/learned.hpp"
#include "policy/mx_hosts.hpp"
#include "store/store.hpp"

namespace mailward::cli {
namespace {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;
using nlohmann::json;

constexpr std::size_t kMaxReason = 500;
constexpr std::size_t kShownProbes = 10;

// ---- input checks (bad input: exit 2, one line naming the problem) ----

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A host name as a mail domain (RFC 1035 2.3.1 letters, digits, hyphen; labels 1-63 octets, at most
// 253 in all; internationalised names as A-labels, RFC 5890). Lower case, no final dot.
std::string checked_domain(const std::string& raw) {
    std::string d = lower(raw);
    if (!d.empty() && d.back() == '.') d.pop_back();
    auto bad = [&raw](const std::string& why) {
        return Failure("'" + raw + "' is not a domain name (" + why + ")", 2);
    };
    if (d.empty()) throw bad("empty");
    if (d.size() > 253) throw bad("longer than 253 characters");
    std::size_t start = 0;
    std::string last;
    while (start <= d.size()) {
        const auto dot = std::min(d.find('.', start), d.size());
        const std::string label = d.substr(start, dot - start);
        if (label.empty()) throw bad("empty label");
        if (label.size() > 63) throw bad("a label is longer than 63 characters");
        for (char c : label) {
            const auto u = static_cast<unsigned char>(c);
            if (u >= 0x80) throw bad("write internationalised names as A-labels, xn--...");
            if (!std::isalnum(u) && c != '-') throw bad(std::string("'") + c + "' is not allowed");
        }
        if (label.front() == '-' || label.back() == '-')
            throw bad("a label starts or ends with '-'");
        last = label;
        start = dot + 1;
    }
    if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw bad("an address, not a name");
    return d;
}

std::string checked_level(const std::string& raw) {
    std::string l = lower(raw);
    if (!store::level_rank(l))
        throw Failure("unknown level '" + raw + "' (expected none, may, encrypt, verify or dane)",
                      2);
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

// ISO 8601 in UTC unless an offset is given: "2026-12-31" (00:00:00Z that day),
// "2026-12-31T12:00Z", "2026-12-31T12:00:00Z", "2026-12-31T12:00:00.5+02:00". nullopt if malformed.
std::optional<TimePoint> parse_iso8601(std::string_view s) {
    std::size_t pos = 0;
    auto number = [&](std::size_t digits) -> std::optional<int> {
        if (pos + digits > s.size()) return std::nullopt;
        int v = 0;
        for (std::size_t i = 0; i < digits; ++i) {
            const char c = s[pos + i];
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + (c - '0');
        }
        pos += digits;
        return v;
    };
    auto literal = [&](char c) {
        if (pos >= s.size() || s[pos] != c) return false;
        ++pos;
        return true;
    };
    const auto y = number(4);
    if (!y || !literal('-')) return std::nullopt;
    const auto mo = number(2);
    if (!mo || !literal('-')) return std::nullopt;
    const auto d = number(2);
    if (!d) return std::nullopt;
    const std::chrono::year_month_day ymd{std::chrono::year(*y),
                                          std::chrono::month(static_cast<unsigned>(*mo)),
                                          std::chrono::day(static_cast<unsigned>(*d))};
    if (!ymd.ok()) return std::nullopt;
    TimePoint t = std::chrono::sys_days(ymd);
    if (pos == s.size()) return t;
    if (!literal('T') && !literal('t')) return std::nullopt;
    const auto h = number(2);
    if (!h || !literal(':')) return std::nullopt;
    const auto mi = number(2);
    if (!mi) return std::nullopt;
    int sec = 0;
    if (literal(':')) {
        const auto se = number(2);
        if (!se) return std::nullopt;
        sec = *se;
        if (literal('.') || literal(',')) {  // a fraction: kept to the second
            if (!number(1)) return std::nullopt;
            while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
        }
    }
    if (*h > 23 || *mi > 59 || sec > 59) return std::nullopt;
    t += std::chrono::hours(*h) + std::chrono::minutes(*mi) + std::chrono::seconds(sec);
    if (pos == s.size()) return t;
    if (literal('Z') || literal('z')) return pos == s.size() ? std::optional(t) : std::nullopt;
    const bool plus = literal('+');
    if (!plus && !literal('-')) return std::nullopt;
    const auto oh = number(2);
    if (!oh || !literal(':')) return std::nullopt;
    const auto om = number(2);
    if (!om || *oh > 23 || *om > 59 || pos != s.size()) return std::nullopt;
    const auto offset = std::chrono::hours(*oh) + std::chrono::minutes(*om);
    return plus ? t - offset : t + offset;
}

// --expires: an ISO 8601 date or date-time, or a duration from now ("7d", "12h"); in the future.
TimePoint checked_expiry(const std::string& raw, TimePoint now) {
    std::optional<TimePoint> t;
    if (auto d = common::parse_duration(raw)) {
        t = now + std::chrono::duration_cast<Clock::duration>(*d);
    } else {
        t = parse_iso8601(raw);
    }
    if (!t)
        throw Failure(
            "--expires '" + raw +
                "' is not a date (2026-12-31, 2026-12-31T12:00:00Z) or a duration (7d, 12h)",
            2);
    if (*t <= now)
        throw Failure("--expires '" + raw + "' is not in the future (it is " + common::iso8601(*t) +
                          ", now " + common::iso8601(now) + ")",
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
    if (!s)
        throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " +
                      s.error().message());
    return std::move(*s);
}

template <class T>
T must(Result<T> r, const std::string& what) {
    if (!r) throw Failure("cannot read " + what + " from the policy store: " + r.error().message());
    return std::move(*r);
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
    return o.level +
           (o.expires ? " until " + common::iso8601(*o.expires) : std::string(" (no expiry)"));
}

json mx_json(const store::MxEvidence& e) {
    return {{"host", e.host},
            {"address", e.address},
            {"level", e.level},
            {"starttls", e.starttls},
            {"protocol", e.protocol},
            {"cipher", e.cipher},
            {"chain_valid", e.chain_valid},
            {"name_matched", e.name_matched},
            {"spki_sha256", e.spki_sha256},
            {"dane_matched", e.dane_matched},
            {"seen_at", time_json(e.seen_at)}};
}

std::string mx_text(const store::MxEvidence& e) {
    std::string s = e.host + " [" + e.address + "]  " + e.level + "  ";
    if (!e.starttls) return s + "no STARTTLS, seen " + common::iso8601(e.seen_at);
    s += e.protocol.empty() ? std::string("STARTTLS, no TLS session") : e.protocol + " " + e.cipher;
    s += e.chain_valid ? ", chain valid" : ", chain not valid";
    s += e.name_matched ? ", names the host" : ", does not name the host";
    if (e.dane_matched) s += ", DANE matched";
    if (!e.spki_sha256.empty()) s += ", spki " + e.spki_sha256.substr(0, 16) + "...";
    return s + ", seen " + common::iso8601(e.seen_at);
}

json learned_json(const store::LearnedPolicy& p) {
    return {{"domain", p.domain},
            {"level", p.level},
            {"first_seen", time_json(p.first_seen)},
            {"last_confirmed", time_json(p.last_confirmed)},
            {"last_probe", time_json(p.last_probe)},
            {"evidence", report_json(p.evidence)}};
}

// ---- list and show ----

void list(const Options& opts) {
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const auto now = Clock::now();
    struct Row {
        std::optional<store::LearnedPolicy> learned;
        std::optional<store::Override> override;
    };
    std::map<std::string, Row> rows;  // by domain
    for (auto& p : must(ps.list(), "the learned levels")) rows[p.domain].learned = std::move(p);
    for (auto& o : must(ps.overrides(), "the overrides")) rows[o.domain].override = std::move(o);
    if (opts.json) {
        auto arr = json::array();
        for (const auto& [domain, r] : rows) {
            json j = r.learned ? learned_json(*r.learned)
                               : json{{"domain", domain},      {"level", nullptr},
                                      {"first_seen", nullptr}, {"last_confirmed", nullptr},
                                      {"last_probe", nullptr}, {"evidence", nullptr}};
            j["override"] = r.override ? override_json(*r.override, now) : json(nullptr);
            arr.push_back(std::move(j));
        }
        std::cout << arr.dump(2) << "\n";
        return;
    }
    if (rows.empty()) {
        std::cout << "no learned policy and no overrides yet\n";
        return;
    }
    int w = 6;
    for (const auto& [domain, r] : rows) w = std::max(w, static_cast<int>(domain.size()));
    std::printf("%-*s  %-8s  %-20s  %-20s  %s\n", w, "DOMAIN", "LEARNED", "FIRST SEEN",
                "LAST CONFIRMED", "OVERRIDE");
    for (const auto& [domain, r] : rows) {
        std::printf("%-*s  %-8s  %-20s  %-20s  %s\n", w, domain.c_str(),
                    r.learned ? r.learned->level.c_str() : "-",
                    r.learned ? common::iso8601(r.learned->first_seen).c_str() : "-",
                    r.learned ? common::iso8601(r.learned->last_confirmed).c_str() : "-",
                    r.override ? override_text(*r.override, now).c_str() : "-");
    }
}

void show(const Options& opts, const std::string& raw) {
    const std::string d = checked_domain(raw);
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const auto now = Clock::now();
    const auto learned = must(ps.get(d), "the learned level");
    const auto ovr = override_of(ps, d);
    const auto probes = must(ps.probes(d, kShownProbes), "the probes");
    const auto incidents = must(ps.incidents(d), "the incidents");
    const auto audit = must(ps.audit(d), "the audit trail");
    if (!learned && !ovr && probes.empty() && incidents.empty() && audit.empty())
        throw Failure("nothing is known about " + d);

    if (opts.json) {
        json j = learned ? learned_json(*learned)
                         : json{{"domain", d},           {"level", nullptr},
                                {"first_seen", nullptr}, {"last_confirmed", nullptr},
                                {"last_probe", nullptr}, {"evidence", nullptr}};
        auto mx = json::array();
        if (learned)
            for (const auto& e : learned->mx) mx.push_back(mx_json(e));
        j["mx"] = std::move(mx);
        j["override"] = ovr ? override_json(*ovr, now) : json(nullptr);
        auto pj = json::array(), ij = json::array(), aj = json::array();
        for (const auto& p : probes)
            pj.push_back(
                {{"at", time_json(p.at)}, {"level", p.level}, {"report", report_json(p.report)}});
        for (const auto& i : incidents) {
            ij.push_back({{"at", time_json(i.at)},
                          {"kind", i.kind},
                          {"detail", i.detail},
                          {"host", i.host},
                          {"address", i.address},
                          {"raw_evidence", i.raw_evidence}});
        }
        for (const auto& a : audit) {
            aj.push_back({{"at", time_json(a.at)},
                          {"who", a.who},
                          {"action", a.action},
                          {"level", a.level},
                          {"detail", a.detail}});
        }
        j["probes"] = std::move(pj);
        j["incidents"] = std::move(ij);
        j["audit"] = std::move(aj);
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << "domain:          " << d << "\n";
    if (learned) {
        std::cout << "learned level:   " << learned->level << "\n"
                  << "first seen:      " << common::iso8601(learned->first_seen) << "\n"
                  << "last confirmed:  " << common::iso8601(learned->last_confirmed) << "\n"
                  << "last probe:      "
                  << (learned->last_probe ? common::iso8601(*learned->last_probe) : "-") << "\n"
                  << "evidence:        " << learned->evidence << "\n";
        if (!learned->mx.empty()) std::cout << "MX evidence:\n";
        for (const auto& e : learned->mx) std::cout << "  " << mx_text(e) << "\n";
    } else {
        std::cout << "learned level:   none learned\n";
    }
    if (ovr) {
        std::cout << "override:        " << override_text(*ovr, now) << ", set by " << ovr->set_by
                  << " at " << common::iso8601(ovr->set_at) << ": " << ovr->reason << "\n";
    } else {
        std::cout << "override:        -\n";
    }
    if (!probes.empty()) std::cout << "probes (newest first):\n";
    for (const auto& p : probes)
        std::cout << "  " << common::iso8601(p.at) << "  " << p.level << "\n";
    if (!incidents.empty()) std::cout << "incidents:\n";
    for (const auto& i : incidents) {
        std::cout << "  incident " << common::iso8601(i.at) << "  " << i.kind;
        if (!i.host.empty())
            std::cout << "  " << i.host << (i.address.empty() ? "" : " [" + i.address + "]");
        std::cout << ": " << i.detail << "\n";
    }
    if (!audit.empty()) std::cout << "audit:\n";
    for (const auto& a : audit) {
        std::cout << "  " << common::iso8601(a.at) << "  " << a.who << "  " << a.action
                  << (a.level.empty() ? "" : " " + a.level)
                  << (a.detail.empty() ? "" : ": " + a.detail) << "\n";
    }
}

// ---- set, clear, forget ----

struct SetArgs {
    std::string domain, level, reason, expires;
};

void set(const Options& opts, const SetArgs& a) {
    const auto now = Clock::now();
    const std::string d = checked_domain(a.domain);
    const std::string level = checked_level(a.level);
    const std::string reason = checked_reason(a.reason);
    std::optional<TimePoint> expires;
    if (!a.expires.empty()) expires = checked_expiry(a.expires, now);
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const std::string who = who_am_i();
    if (auto r = ps.set_override(d, level, reason, expires, now, who); !r)
        throw Failure("cannot set the override for " + d + ": " + r.error().message());
    const auto learned = must(ps.get(d), "the learned level");
    store::Override o{d, level, reason, expires, now, who};
    if (opts.json) {
        json j = override_json(o, now);
        j["domain"] = d;
        j["learned"] = learned ? json(learned->level) : json(nullptr);
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << d << ": override " << override_text(o, now) << " set by " << who << ": " << reason
              << "\n";
    if (learned && *store::level_rank(level) < *store::level_rank(learned->level))
        std::cout << "note: this lowers the learned level " << learned->level
                  << " for every sender\n";
}

void clear(const Options& opts, const std::string& raw) {
    const std::string d = checked_domain(raw);
    auto st = open_store(load_config(opts));
    const std::string who = who_am_i();
    auto r = st->policy().clear_override(d, who, Clock::now());
    if (!r && r.error() == common::Errc::not_found) throw Failure("there is no override for " + d);
    if (!r) throw Failure("cannot clear the override for " + d + ": " + r.error().message());
    if (opts.json) {
        std::cout << json{{"domain", d}, {"action", "clear_override"}, {"who", who}}.dump() << "\n";
    } else {
        std::cout << d << ": override cleared by " << who << "\n";
    }
}

void forget(const Options& opts, const std::string& raw) {
    const std::string d = checked_domain(raw);
    auto st = open_store(load_config(opts));
    const std::string who = who_am_i();
    auto r = st->policy().forget(d, who, Clock::now());
    if (!r && r.error() == common::Errc::not_found) throw Failure("nothing is learned about " + d);
    if (!r) throw Failure("cannot forget " + d + ": " + r.error().message());
    if (opts.json) {
        std::cout << json{{"domain", d}, {"action", "forget"}, {"who", who}}.dump() << "\n";
    } else {
        std::cout << d << ": learned policy forgotten by " << who
                  << " (probes, incidents and audit stay)\n";
    }
}

// ---- simulate ----

// What the delivery log shows of one domain in the window.
struct Seen {
    std::size_t attempts = 0;
    TimePoint last{};
    std::string last_result;
    json last_tls;                                  // the newest session's TLS facts (null: no TLS)
    bool had_session = false;                       // some line names an MX host
    std::map<std::string, tls::Level> host_levels;  // newest telling line per MX host
};

// The level an MX host showed in one log line, when the line tells: a TLS session (its facts), a
// plaintext delivery or a TLS policy failure (no TLS). Connection failures tell nothing.
std::optional<tls::Level> level_seen(const json& line) {
    const auto& t = line.value("tls", json(nullptr));
    const std::string result = line.value("result", "");
    if (!t.is_object()) {
        if (result == "delivered" || result == "deferred-tls-policy") return tls::Level::none;
        return std::nullopt;
    }
    const std::string proto = t.value("protocol", "");
    if ((proto != "TLSv1.2" && proto != "TLSv1.3") || !t.value("forward_secret", true))
        return tls::Level::may;
    if (t.value("dane_matched", false)) return tls::Level::dane;
    if (t.value("chain_valid", false) && t.value("name_matched", false)) return tls::Level::verify;
    return tls::Level::encrypt;
}

struct LogScan {
    std::map<std::string, Seen> domains;
    std::size_t skipped = 0;  // lines that are not JSON or lack a time or recipient
};

LogScan scan_log(const std::filesystem::path& path, TimePoint from) {
    LogScan out;
    std::ifstream in(path);
    if (!in) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) return out;  // nothing delivered yet
        throw Failure("cannot read the delivery log " + path.string());
    }
    std::string text;
    while (std::getline(in, text)) {
        if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
        const auto line = json::parse(text, nullptr, false);
        std::optional<TimePoint> at;
        std::string rcpt;
        if (line.is_object() && line.contains("time") && line["time"].is_string() &&
            line.contains("recipient") && line["recipient"].is_string()) {
            at = parse_iso8601(line["time"].get<std::string>());
            rcpt = line["recipient"].get<std::string>();
        }
        const auto atsign = rcpt.rfind('@');
        if (!at || atsign == std::string::npos || atsign + 1 == rcpt.size()) {
            ++out.skipped;
            continue;
        }
        if (*at < from) continue;
        auto& s = out.domains[lower(rcpt.substr(atsign + 1))];
        ++s.attempts;
        s.last = std::max(s.last, *at);
        s.last_result = line.value("result", "");
        const auto& mx = line.value("mx", json(""));
        if (mx.is_string() && !mx.get<std::string>().empty()) {
            s.had_session = true;
            s.last_tls = line.value("tls", json(nullptr));
            if (auto l = level_seen(line)) s.host_levels[lower(mx.get<std::string>())] = *l;
        }
    }
    return out;
}

struct Verdict {
    std::string outcome;  // ok | plaintext | escrow | bounce | unknown
    bool would_fail = false;
    std::string text;  // for the table
    policy::DomainCapability capability = policy::DomainCapability::unknown;
    policy::Decision decision;
};

// A simulated message: does it carry "TLS-Required: No", and may its sender use it.
struct SimMessage {
    bool tls_required_no = false;
    policy::TlsOptionalRight right;
};

Verdict judge(const config::Config& cfg, config::SenderMode mode, const SimMessage& msg,
              const std::string& domain, const std::optional<policy::LearnedPolicy>& learned,
              const std::optional<policy::Override>& ovr, const Seen& seen, TimePoint now) {
    using policy::DomainCapability;
    Verdict v;
    // What is known of the MX hosts, as the delivery engine sees it: the learned evidence first; a
    // learned level without evidence; else what the delivery log showed.
    if (learned && !learned->evidence.empty()) {
        v.capability = policy::capability_of(policy::facts_from_evidence(learned->evidence));
    } else if (learned) {
        v.capability = learned->level >= tls::Level::encrypt ? DomainCapability::tls_capable
                                                             : DomainCapability::no_tls;
    } else {
        std::vector<policy::MxFact> facts;
        for (const auto& [host, level] : seen.host_levels) facts.push_back({host, level});
        v.capability = policy::capability_of(facts);
    }
    policy::PolicyInputs in;
    in.domain = domain;
    in.static_level = policy::static_level(cfg.policy, domain);
    in.learned = learned;
    in.mode = mode;
    in.override = ovr;
    in.tls_required_no = msg.tls_required_no;
    in.tls_optional = msg.right;
    in.escrow_after = cfg.policy.escrow_after;
    in.max_queue_lifetime = cfg.delivery.max_queue_lifetime;
    v.decision = policy::decide(in, policy::BeforeAttempt{v.capability}, now);
    const auto& d = v.decision;
    const bool escrow_mode = mode == config::SenderMode::escrow_always;
    auto fail = [&](const policy::Decision& x, const std::string& prefix) {
        v.outcome = std::string(policy::to_string(x.action));
        v.would_fail = !escrow_mode;
        v.text = escrow_mode ? "escrow"
                             : prefix + v.outcome + (x.status.empty() ? "" : " (" + x.status + ")");
    };
    switch (d.action) {
        case policy::Action::escrow:
        case policy::Action::bounce:
            fail(d, "would fail: ");
            break;
        case policy::Action::defer:
            v.outcome = "unknown";
            v.text = d.probe_needed ? "unknown: would probe first" : "unknown: deferred";
            break;
        case policy::Action::deliver:
            if (d.level <= tls::Level::may) {
                v.outcome = "plaintext";
                v.text = "ok, plaintext allowed";
            } else if (v.capability == DomainCapability::no_tls) {
                // TLS is required but the hosts did not do it: the attempt fails, then the mode's
                // answer once retries run out.
                const auto later =
                    now + std::max(cfg.policy.escrow_after, cfg.delivery.max_queue_lifetime);
                auto after = policy::decide(in, policy::AfterTlsFailure{now, now}, later);
                fail(after, "would fail: deferred, then ");
                v.decision.reasons.push_back("after the TLS failure: " + after.summary);
                v.decision.summary += "; after the TLS failure: " + after.summary;
            } else if (v.capability == DomainCapability::unknown) {
                v.outcome = "unknown";
                v.text = "unknown: TLS required at " + std::string(tls::to_string(d.level)) +
                         ", TLS not yet seen";
            } else {
                v.outcome = "ok";
                v.text = "ok (TLS at " + std::string(tls::to_string(d.level)) + ")";
            }
            break;
    }
    return v;
}

void simulate(const Options& opts, const std::string& mode_name, const std::string& since_text,
              bool tls_required_no, const std::string& user) {
    const auto cfg = load_config(opts);
    config::SenderMode mode = cfg.policy.default_mode;
    auto st = open_store(cfg);
    // The simulated message's sender: an account (its mode and its right to TLS-Required: No) or
    // an unauthenticated trusted-network client.
    SimMessage msg;
    msg.tls_required_no = tls_required_no;
    if (!user.empty()) {
        auto u = st->users().get(user);
        if (!u && u.error() == common::Errc::not_found) throw Failure("no user '" + user + "'", 2);
        if (!u) throw Failure("cannot read user '" + user + "': " + u.error().message());
        if (auto m = config::parse_sender_mode(u->mode)) mode = *m;
        msg.right = policy::tls_optional_right(user, u->allow_tls_optional,
                                               cfg.policy.tls_optional_trusted_networks);
    } else {
        msg.right = policy::tls_optional_right("", std::nullopt, cfg.policy.tls_optional_trusted_networks);
    }
    if (!mode_name.empty()) {
        auto m = config::parse_sender_mode(mode_name);
        if (!m)
            throw Failure(
                "unknown mode '" + mode_name +
                    "' (expected tls-only, tls-or-escrow, escrow-always or opportunistic)",
                2);
        mode = *m;
    }
    const auto since = common::parse_duration(since_text);
    if (!since || since->count() <= 0)
        throw Failure("--since '" + since_text + "' is not a duration (e.g. 7d, 12h)", 2);
    const auto now = Clock::now();
    const auto from = now - std::chrono::duration_cast<Clock::duration>(*since);
    const auto scan = scan_log(cfg.server.data_dir / "delivery.log", from);
    auto& ps = st->policy();
    std::map<std::string, store::Override> overrides;
    for (auto& o : must(ps.overrides(), "the overrides")) overrides.emplace(o.domain, std::move(o));

    std::map<std::string, std::size_t> counts{
        {"ok", 0}, {"plaintext", 0}, {"escrow", 0}, {"bounce", 0}, {"unknown", 0}};
    std::size_t failing = 0;
    auto rows = json::array();
    std::vector<std::string> tls_texts;  // the LAST TLS column
    for (const auto& [domain, seen] : scan.domains) {
        std::optional<policy::LearnedPolicy> learned;
        if (auto l = must(ps.get(domain), "the learned level of " + domain)) {
            auto conv = policy::from_store(*l);
            if (!conv)
                throw Failure("the learned level of " + domain +
                              " is not on the ladder: " + l->level);
            learned = std::move(*conv);
        }
        std::optional<policy::Override> ovr;
        if (auto it = overrides.find(domain); it != overrides.end()) {
            if (auto conv = policy::from_store(it->second)) ovr = std::move(*conv);
        }
        const auto v = judge(cfg, mode, msg, domain, learned, ovr, seen, now);
        ++counts[v.outcome];
        failing += v.would_fail ? 1 : 0;
        json tls_seen = nullptr;  // the newest session's TLS, null: no session, or one without TLS
        std::string tls_text = "-";
        if (seen.last_tls.is_object()) {
            tls_seen = {{"protocol", seen.last_tls.value("protocol", "")},
                        {"cipher", seen.last_tls.value("cipher", "")}};
            tls_text = tls_seen["protocol"].get<std::string>();
        } else if (seen.had_session) {
            tls_text = "none";
        }
        tls_texts.push_back(tls_text);
        rows.push_back(
            {{"domain", domain},
             {"learned",
              learned ? json(std::string(tls::to_string(learned->level))) : json(nullptr)},
             {"override", ovr && ovr->active(now) ? json(std::string(tls::to_string(ovr->level)))
                                                  : json(nullptr)},
             {"attempts", seen.attempts},
             {"last_attempt", time_json(seen.last)},
             {"last_result", seen.last_result},
             {"last_tls", tls_seen},
             {"capability", std::string(policy::to_string(v.capability))},
             {"required_level", std::string(tls::to_string(v.decision.level))},
             {"action", std::string(policy::to_string(v.decision.action))},
             {"outcome", v.outcome},
             {"would_fail", v.would_fail},
             {"verdict", v.text},
             {"tls_required_no_ignored", v.decision.tls_required_no_ignored},
             {"reasons", v.decision.reasons}});
    }
    const std::string mode_str(config::to_string(mode));
    std::string summary =
        std::to_string(scan.domains.size()) + " domain" + (scan.domains.size() == 1 ? "" : "s") +
        " in the last " + since_text + " under " + mode_str + ": " + std::to_string(counts["ok"]) +
        " ok, " + std::to_string(counts["plaintext"]) + " plaintext allowed, " +
        std::to_string(failing) + " would fail (" + std::to_string(counts["bounce"]) + " bounce, " +
        std::to_string(counts["escrow"]) + " escrow), " + std::to_string(counts["unknown"]) +
        " unknown";
    if (scan.skipped)
        summary += "; " + std::to_string(scan.skipped) + " unreadable log lines skipped";
    if (tls_required_no)
        summary += std::string("; TLS-Required: No ") +
                   (msg.right.allowed ? "honoured (never below an admin override or static policy): "
                                      : "ignored: ") +
                   msg.right.why;
    if (opts.json) {
        json j = {{"mode", mode_str},
                  {"since", since_text},
                  {"from", time_json(from)},
                  {"domains", rows},
                  {"summary",
                   {{"domains", scan.domains.size()},
                    {"ok", counts["ok"]},
                    {"plaintext", counts["plaintext"]},
                    {"bounce", counts["bounce"]},
                    {"escrow", counts["escrow"]},
                    {"unknown", counts["unknown"]},
                    {"would_fail", failing},
                    {"skipped_lines", scan.skipped}}}};
        j["tls_required_no"] = tls_required_no
                                   ? json{{"allowed", msg.right.allowed}, {"why", msg.right.why}}
                                   : json(nullptr);
        std::cout << j.dump(2) << "\n";
        return;
    }
    if (!rows.empty()) {
        int w = 6;
        for (const auto& r : rows)
            w = std::max(w, static_cast<int>(r["domain"].get<std::string>().size()));
        std::printf("%-*s  %-8s  %-8s  %8s  %-16s  %s\n", w, "DOMAIN", "LEARNED", "OVERRIDE",
                    "ATTEMPTS", "LAST TLS", "VERDICT");
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const auto& r = rows[i];
            std::printf("%-*s  %-8s  %-8s  %8zu  %-16s  %s\n", w,
                        r["domain"].get<std::string>().c_str(),
                        r["learned"].is_null() ? "-" : r["learned"].get<std::string>().c_str(),
                        r["override"].is_null() ? "-" : r["override"].get<std::string>().c_str(),
                        r["attempts"].get<std::size_t>(), tls_texts[i].c_str(),
                        r["verdict"].get<std::string>().c_str());
        }
    }
    std::cout << "summary: " << summary << "\n";
}

// ---- export ----

// mailward level -> Postfix smtp_tls_policy_maps entry (postconf(5), TLS_README). Postfix's
// "verify" trusts the MX host name (match=hostname), which is what mailward's verify checks;
// "secure" would match the next-hop domain instead (smtp_tls_secure_cert_match = nexthop,
// dot-nexthop) and refuse certificates that name only the MX host. match=hostname is written
// out so a site's smtp_tls_verify_cert_match cannot change the meaning. mailward's encrypt and
// above require TLS 1.2 or newer.
std::string postfix_entry(const std::string& level) {
    static const std::string kProtocols = " protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1";
    if (level == "none" || level == "may") return level;
    if (level == "encrypt") return "encrypt" + kProtocols;
    if (level == "verify") return "verify match=hostname" + kProtocols;
    return "dane-only" + kProtocols;  // dane: TLSA must match, no fallback (RFC 7672)
}

void export_policy(const Options& opts, const std::string& format, const std::string& out_path) {
    if (format != "postfix")
        throw Failure("unknown export format '" + format + "' (expected postfix)", 2);
    auto st = open_store(load_config(opts));
    auto& ps = st->policy();
    const auto now = Clock::now();
    struct Entry {
        std::string level, comment;
    };
    std::map<std::string, Entry> entries;  // sorted by domain
    for (const auto& p : must(ps.list(), "the learned levels"))
        entries[p.domain] = {
            p.level, "learned " + p.level + ", confirmed " + common::iso8601(p.last_confirmed)};
    for (const auto& o : must(ps.overrides(), "the overrides")) {
        if (!o.active(now)) continue;
        entries[o.domain] = {
            o.level, "override " + override_text(o, now) + " by " + o.set_by + ": " + o.reason};
    }
    std::string text =
        "# Postfix smtp_tls_policy_maps table generated by `mailward policy export` at " +
        common::iso8601(now) +
        ".\n"
        "# Every domain with a learned level or an active admin override (the override wins).\n"
        "# Do not edit: export again. Use: smtp_tls_policy_maps = "
        "hash:/etc/postfix/mailward_tls_policy\n"
        "# and run `postmap` on the file after each export.\n"
        "# Levels: none -> none, may -> may, encrypt -> encrypt, verify -> verify match=hostname "
        "(the\n"
        "# certificate must name the MX host, as mailward checks; not `secure`, which matches the\n"
        "# next-hop domain), dane -> dane-only (needs smtp_dns_support_level = dnssec).\n"
        "# encrypt and above also require TLS 1.2 or newer; restrict ciphers to forward-secret "
        "AEAD\n"
        "# with smtp_tls_mandatory_ciphers / smtp_tls_mandatory_exclude_ciphers.\n";
    for (const auto& [domain, e] : entries)
        text += "# " + e.comment + "\n" + domain + "\t" + postfix_entry(e.level) + "\n";

    if (out_path.empty()) {
        std::cout << text;
        return;
    }
    // Written next to the target and renamed over it: a reader never sees half a table.
    const std::filesystem::path target(out_path);
    const auto tmp = std::filesystem::path(out_path + ".tmp");
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!(f << text) || !f.flush()) throw Failure("cannot write " + tmp.string());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, target, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw Failure("cannot write " + target.string() + ": " + ec.message());
    }
    if (opts.json) {
        std::cout << json{{"file", target.string()},
                          {"format", format},
                          {"entries", entries.size()}}
                         .dump()
                  << "\n";
    } else {
        std::cout << "wrote " << entries.size() << " entr" << (entries.size() == 1 ? "y" : "ies")
                  << " to " << target.string() << "\n";
    }
}

}  // namespace

void add_policy(CLI::App& app, Options& opts) {
    auto* p =
        app.add_subcommand("policy", "learned TLS policy and admin overrides per recipient domain");
    p->require_subcommand(1);
    static std::string domain;

    auto* l = p->add_subcommand("list", "domains with a learned level or an override");
    add_common(l, opts, true);
    l->callback([&opts] { list(opts); });

    auto* s = p->add_subcommand(
        "show", "a domain's learned level, evidence, override, probes, incidents, audit");
    add_common(s, opts, true);
    s->add_option("DOMAIN", domain, "recipient domain")->required();
    s->callback([&opts] { show(opts, domain); });

    static SetArgs set_args;
    auto* st =
        p->add_subcommand("set", "admin override: the level a domain requires, with a reason");
    add_common(st, opts, true);
    st->add_option("DOMAIN", set_args.domain, "recipient domain")->required();
    st->add_option("LEVEL", set_args.level, "none, may, encrypt, verify or dane")->required();
    st->add_option("--reason", set_args.reason, "why (kept in the audit trail)")->required();
    st->add_option("--expires", set_args.expires,
                   "ISO 8601 date or date-time (UTC unless an offset), or 7d, 12h");
    st->callback([&opts] { set(opts, set_args); });

    auto* c = p->add_subcommand("clear", "remove a domain's override");
    add_common(c, opts, true);
    c->add_option("DOMAIN", domain, "recipient domain")->required();
    c->callback([&opts] { clear(opts, domain); });

    auto* f = p->add_subcommand("forget", "drop what was learned about a domain (history stays)");
    add_common(f, opts, true);
    f->add_option("DOMAIN", domain, "recipient domain")->required();
    f->callback([&opts] { forget(opts, domain); });

    static std::string mode, since = "7d", sim_user;
    static bool sim_header = false;
    auto* sim = p->add_subcommand("simulate", "what a sender mode would do to recent destinations");
    add_common(sim, opts, true);
    sim->add_option(
        "--mode", mode,
        "tls-only, tls-or-escrow, escrow-always or opportunistic (default: [policy] default_mode)");
    sim->add_option("--since", since, "delivery log window, a duration (default 7d)");
    sim->add_option("--user", sim_user,
                    "the sender is this account (its mode and its right to TLS-Required: No); "
                    "default: an unauthenticated trusted-network client");
    sim->add_flag("--tls-required-no", sim_header,
                  "the message carries the header TLS-Required: No (RFC 8689 section 5)");
    sim->callback([&opts] { simulate(opts, mode, since, sim_header, sim_user); });

    static std::string format, out;
    auto* ex = p->add_subcommand("export", "the policy as a Postfix smtp_tls_policy_maps table");
    add_common(ex, opts, true);
    ex->add_option("--format", format, "postfix")->required();
    ex->add_option("-o,--output", out, "file to write (default: standard output)");
    ex->callback([&opts] { export_policy(opts, format, out); });
}

}  // namespace mailward::cli
