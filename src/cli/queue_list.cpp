// `mailward queue list [--domain D] [--state S] [--json]`: every message with pending recipients,
// each recipient with its state and the reason it waits. The text is mailq's layout (Postfix's
// showq: queue id with '*' active / '!' held, size, arrival time, sender; per recipient the reason
// in parentheses, then the address indented); --json prints one object per line per message in the
// shape of Postfix's `postqueue -j`, plus mailward's own fields (docs/operations.md "The queue").
#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <optional>

#include "cli/queue_internal.hpp"
#include "common/ascii.hpp"
#include "common/log_escape.hpp"
#include "common/timefmt.hpp"

namespace mailward::cli::queue_cli {
namespace {

// The states `queue list` shows and --state takes, most pressing first (a message shows its
// recipients' first): held by the administrator; an attempt under way (leased); deferred (tried
// and failed for now); queued (not tried yet); waiting to be sealed in escrow.
constexpr std::array<std::string_view, 5> kStates = {"held", "active", "deferred", "queued", "awaiting_escrow"};

std::string_view rcpt_state(const store::QueueListing& m, const store::Recipient& r) {
    if (r.state == store::RcptState::awaiting_escrow) return "awaiting_escrow";  // sealed even when held
    if (m.envelope.held) return "held";
    if (m.leased) return "active";
    return r.attempts > 0 ? "deferred" : "queued";
}

// Postfix's queue names for postqueue -j's queue_name.
std::string_view queue_name(std::string_view state) {
    if (state == "held") return "hold";
    if (state == "active") return "active";
    if (state == "queued") return "incoming";
    return "deferred";  // deferred, awaiting_escrow
}

// Why the recipient waits, one line (delay_reason).
std::string delay_reason(std::string_view state, const store::Recipient& r) {
    const std::string last = r.last_error.empty() ? "" : "; last attempt: " + r.last_error;
    if (state == "held") return "on hold by the administrator (mailward queue release)" + last;
    if (state == "active") return "delivery under way" + last;
    if (state == "awaiting_escrow")
        return "awaiting escrow: the policy chose escrow, the message is being sealed" +
               (r.last_error.empty() ? std::string() : " (" + r.last_error + ")");
    if (state == "queued") return "waiting for its first attempt";
    return r.last_error.empty() ? std::string("deferred") : r.last_error;
}

std::string domain_of(const std::string& address) {
    auto at = address.rfind('@');
    return at == std::string::npos ? std::string() : common::ascii::lower(address.substr(at + 1));
}

// What the store knows of a destination's TLS before any DNS lookup: the static policy, the learned
// level and an active override (the planner decides from these plus DANE, MTA-STS and the preload
// list at the attempt; the delivery log says what an attempt used).
struct TlsFacts {
    std::optional<std::string> static_level, learned, override_level;
};

class TlsLookup {
  public:
    TlsLookup(store::Store& st, const config::Config& cfg) : st_(st), cfg_(cfg) {}
    const TlsFacts& of(const std::string& domain, store::TimePoint now) {
        auto it = cache_.find(domain);
        if (it != cache_.end()) return it->second;
        TlsFacts f;
        if (auto s = cfg_.policy.domains.find(domain); s != cfg_.policy.domains.end()) f.static_level = s->second;
        if (auto l = st_.policy().get(domain); l && *l) f.learned = (*l)->level;
        if (auto o = st_.policy().active_override(domain, now); o && *o) f.override_level = (*o)->level;
        return cache_.emplace(domain, std::move(f)).first->second;
    }

  private:
    store::Store& st_;
    const config::Config& cfg_;
    std::map<std::string, TlsFacts> cache_;
};

nlohmann::json opt_json(const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

// "Mon Dec  7 10:09:21" in local time, as mailq prints the arrival time.
std::string mailq_time(store::TimePoint t) {
    const std::time_t tt = store::Clock::to_time_t(t);
    std::tm tm{};
    localtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S", &tm);
    return buf;
}

std::string checked_state(const std::string& raw) {
    if (raw.empty()) return raw;
    for (auto s : kStates)
        if (s == raw) return raw;
    std::string valid;
    for (auto s : kStates) valid += (valid.empty() ? "" : ", ") + std::string(s);
    throw Failure("unknown queue state '" + raw + "' (valid: " + valid + ")", 2);
}

}  // namespace

void list(const Options& opts, const ListFilter& raw_filter) {
    const std::string state_filter = checked_state(raw_filter.state);
    std::string domain_filter = common::ascii::lower(raw_filter.domain);
    while (!domain_filter.empty() && domain_filter.back() == '.') domain_filter.pop_back();
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    const auto now = store::Clock::now();
    auto listing = st->queue().listing(now);
    if (!listing) throw Failure("cannot list the queue: " + listing.error().message());
    TlsLookup tls(*st, cfg);

    std::uint64_t total_size = 0;
    std::size_t shown = 0;
    bool header = false;
    for (const auto& m : *listing) {
        const auto& env = m.envelope;
        // The recipients that pass the filters; a message with none is not shown.
        std::vector<std::pair<const store::Recipient*, std::string_view>> rcpts;
        for (const auto& r : env.recipients) {
            const auto state = rcpt_state(m, r);
            if (!state_filter.empty() && state != state_filter) continue;
            if (!domain_filter.empty() && domain_of(r.address) != domain_filter) continue;
            rcpts.emplace_back(&r, state);
        }
        if (rcpts.empty()) continue;
        std::string_view msg_state = kStates.back();
        for (const auto& r : env.recipients) {
            const auto s = rcpt_state(m, r);
            for (auto k : kStates) {
                if (k == msg_state) break;
                if (k == s) msg_state = k;
            }
        }
        store::TimePoint next{};
        for (const auto& r : env.recipients)
            if (r.state == store::RcptState::queued && (next == store::TimePoint{} || r.next_attempt < next))
                next = r.next_attempt;
        ++shown;
        total_size += env.size;

        if (opts.json) {
            auto arr = nlohmann::json::array();
            for (const auto& [r, state] : rcpts) {
                const auto& f = tls.of(domain_of(r->address), now);
                arr.push_back({{"address", r->address},
                               {"delay_reason", delay_reason(state, *r)},
                               {"state", state},
                               {"attempts", r->attempts},
                               {"next_attempt", r->state == store::RcptState::queued
                                                    ? nlohmann::json(common::iso8601(r->next_attempt))
                                                    : nlohmann::json()},
                               {"tls",
                                {{"static", opt_json(f.static_level)},
                                 {"learned", opt_json(f.learned)},
                                 {"override", opt_json(f.override_level)}}}});
            }
            nlohmann::json j = {
                {"queue_name", queue_name(msg_state)},
                {"queue_id", env.id},
                {"arrival_time",
                 std::chrono::duration_cast<std::chrono::seconds>(env.received_at.time_since_epoch()).count()},
                {"message_size", env.size},
                {"forced_expire", false},
                {"sender", env.sender},
                {"recipients", arr},
                {"state", msg_state},
                {"held", env.held},
                {"requiretls", env.requiretls},
                {"sender_mode", env.sender_mode},
                {"next_attempt", next == store::TimePoint{} ? nlohmann::json() : nlohmann::json(common::iso8601(next))},
            };
            std::cout << j.dump() << "\n";  // one object per line, as postqueue -j
            continue;
        }
        if (!header) {
            std::printf("%-19s %8s %-20s %s\n", "-Queue ID-", "--Size--", "----Arrival Time----",
                        "-Sender/Recipient-------");
            header = true;
        }
        const char mark = msg_state == "held" ? '!' : msg_state == "active" ? '*' : ' ';
        std::printf("%s%c %8llu %-20s %s\n", env.id.c_str(), mark, static_cast<unsigned long long>(env.size),
                    mailq_time(env.received_at).c_str(),
                    env.sender.empty() ? "MAILER-DAEMON" : common::log_escape(env.sender).c_str());
        for (const auto& [r, state] : rcpts) {
            std::string reason = std::string(state) + ": " + delay_reason(state, *r);
            if (state == "deferred" || state == "queued")
                reason += "; next attempt " + common::iso8601(r->next_attempt);
            std::printf("(%s)\n%-50s%s\n", common::log_escape(reason).c_str(), "",
                        common::log_escape(r->address).c_str());
        }
        std::printf("\n");
    }
    if (opts.json) return;
    if (shown == 0) {
        std::cout << (listing->empty() ? "queue is empty\n" : "no message matches\n");
        return;
    }
    std::printf("-- %llu Kbytes in %zu Request%s.\n", static_cast<unsigned long long>((total_size + 1023) / 1024),
                shown, shown == 1 ? "" : "s");
}

}  // namespace mailward::cli::queue_cli
