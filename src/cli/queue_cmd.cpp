// `mailward queue list|show ID|retry ID|delete ID|flush|hold ID|release ID [--json]`: read and act on
// the durable queue (the listing is in queue_list.cpp). Hold, release and flush are Postfix's
// postsuper -h / -H and postqueue -f; a running serve sees them within its idle poll (5 seconds).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>

#include "cli/queue_internal.hpp"
#include "common/ascii.hpp"
#include "common/ids.hpp"
#include "common/timefmt.hpp"
#include "delivery/delivery_log.hpp"
#include "policy/plan.hpp"
#include "policy/tls_optional.hpp"
#include "store/store.hpp"

namespace mailward::cli {
namespace queue_cli {

std::unique_ptr<store::Store> open_store(const config::Config& cfg) {
    auto s = store::open(cfg);
    if (!s) throw Failure("cannot open the store in " + cfg.server.data_dir.string() + ": " + s.error().message());
    return std::move(*s);
}

}  // namespace queue_cli

namespace {

using queue_cli::open_store;

std::string iso_time(store::TimePoint t) { return common::iso8601(t); }

std::string checked_id(const std::string& id) {
    if (!common::is_queue_id(id))
        throw Failure("'" + id + "' is not a queue id (18 characters, e.g. from 'queue list')");
    return id;
}

void not_found_or_fail(const error_code& ec, const std::string& id) {
    if (ec == common::Errc::not_found) throw Failure("no message " + id + " in the queue");
    throw Failure("queue " + id + ": " + ec.message());
}

// "TLS-Required: No" (RFC 8689 section 5): whether the message has it and what it does, as the
// delivery engine sees it at its next attempt (the sender's right is read from the account now).
// nullopt: no such header, or the body is gone (delivered, escrowed, bounced).
std::optional<policy::TlsRequiredNoEffect> header_effect(store::Store& st, const config::Config& cfg,
                                                         const store::Envelope& env) {
    auto b = st.queue().body(env.id);
    if (!b || !policy::has_tls_required_no(std::string_view(b->data(), b->size()))) return std::nullopt;
    std::optional<bool> account;
    if (!env.auth_user.empty()) {
        auto u = st.users().get(env.auth_user);
        if (u) {
            account = u->allow_tls_optional;
        } else if (u.error() != common::Errc::not_found) {
            throw Failure("cannot read account " + env.auth_user + ": " + u.error().message());
        }
    }
    policy::MessageFacts m;
    m.requiretls = env.requiretls;
    m.tls_required_no = true;
    m.tls_optional = policy::tls_optional_right(env.auth_user, account, cfg.policy.tls_optional_trusted_networks);
    return policy::tls_required_no_of(m);  // the planner's rule
}

// The [[delivery.routes]] name each recipient's last attempt used, from the delivery log's lines of
// this message (the store does not record it); "" when the last line named none. A log that cannot
// be read leaves the map empty: queue show still shows what the store knows.
std::map<std::string, std::string> last_routes(const config::Config& cfg, const store::Envelope& env) {
    std::map<std::string, std::string> routes;
    // The log's times have whole seconds: a line of the second of receipt is not "before" it.
    (void)delivery::read_log(cfg.server.data_dir / "delivery.log", env.received_at - std::chrono::seconds(1),
                             [&](const delivery::LogEntry& e) {
                                 if (e.queue_id == env.id) routes[e.recipient] = e.route;
                             });
    return routes;
}

// The route the next attempt of a recipient takes: the config's route for its domain, "" none.
std::string next_route(const config::Config& cfg, const std::string& address) {
    const auto at = address.rfind('@');
    if (at == std::string::npos) return {};
    const auto* r = config::find_route(cfg.delivery.routes, common::ascii::lower(address.substr(at + 1)));
    return r ? r->name : std::string();
}

nlohmann::json name_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

void show(const Options& opts, const std::string& raw_id, bool body) {
    auto id = checked_id(raw_id);
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    if (body) {  // the message exactly as stored, for inspection and tests
        auto b = st->queue().body(id);
        if (!b) not_found_or_fail(b.error(), id);
        std::fwrite(b->data(), 1, b->size(), stdout);
        return;
    }
    auto env = st->queue().envelope(id);
    if (!env) not_found_or_fail(env.error(), id);
    const auto header = header_effect(*st, cfg, *env);
    const auto routes = last_routes(cfg, *env);
    auto last_route = [&routes](const std::string& address) {
        auto it = routes.find(address);
        return it == routes.end() ? std::string() : it->second;
    };
    if (opts.json) {
        auto rcpts = nlohmann::json::array();
        for (const auto& r : env->recipients) {
            const bool pending = r.state == store::RcptState::queued;
            rcpts.push_back(
                {{"address", r.address},
                 {"route", name_or_null(last_route(r.address))},
                 {"next_route", pending ? name_or_null(next_route(cfg, r.address)) : nlohmann::json(nullptr)},
                 {"state", store::to_string(r.state)},
                 {"attempts", r.attempts},
                 {"next_attempt", iso_time(r.next_attempt)},
                 {"last_error", r.last_error},
                 {"orcpt", r.orcpt},
                 {"notify", r.notify}});
        }
        nlohmann::json j = {{"id", env->id},
                            {"sender", env->sender},
                            {"received_at", iso_time(env->received_at)},
                            {"size", env->size},
                            {"auth_user", env->auth_user},
                            {"client_address", env->client_address},
                            {"client_helo", env->client_helo},
                            {"sender_mode", env->sender_mode},
                            {"requiretls", env->requiretls},
                            {"smtputf8", env->smtputf8},
                            {"envid", env->envid},
                            {"held", env->held},
                            {"recipients", rcpts}};
        j["tls_required_no"] =
            header ? nlohmann::json{{"honoured", header->honoured}, {"why", header->why}} : nlohmann::json(nullptr);
        std::cout << j.dump(2) << "\n";
        return;
    }
    std::cout << "id:          " << env->id << "\n"
              << "sender:      <" << env->sender << ">\n"
              << "received:    " << iso_time(env->received_at) << " from " << env->client_helo << " ["
              << env->client_address << "]" << (env->auth_user.empty() ? "" : " user " + env->auth_user) << "\n"
              << "size:        " << env->size << " octets\n"
              << "sender mode: " << env->sender_mode << (env->requiretls ? ", REQUIRETLS" : "") << "\n";
    if (env->held) std::cout << "on hold:     yes (never delivered until 'mailward queue release " << env->id << "')\n";
    if (header) {
        std::cout << "TLS-Required: No " << (header->honoured ? "honoured" : "ignored") << ": " << header->why
                  << (header->honoured ? " (never below an admin override or static policy)" : "") << "\n";
    }
    std::cout << "recipients:\n";
    for (const auto& r : env->recipients) {
        std::cout << "  <" << r.address << ">  "
                  << (r.state == store::RcptState::awaiting_escrow ? std::string_view("awaiting escrow")
                                                                   : store::to_string(r.state))
                  << ", " << r.attempts << " attempts";
        if (r.state == store::RcptState::queued) std::cout << ", next " << iso_time(r.next_attempt);
        std::cout << "\n";
        if (!r.last_error.empty()) std::cout << "      last error: " << r.last_error << "\n";
        if (const auto used = last_route(r.address); !used.empty())
            std::cout << "      route:      " << used << " (last attempt)\n";
        if (r.state == store::RcptState::queued) {
            if (const auto next = next_route(cfg, r.address); !next.empty())
                std::cout << "      next route: " << next << " (the config's route for the next attempt)\n";
        }
    }
}

void act(const Options& opts, const std::string& raw_id, bool remove) {
    auto id = checked_id(raw_id);
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto r = remove ? st->queue().remove(id) : st->queue().retry_now(id);
    if (!r) not_found_or_fail(r.error(), id);
    if (opts.json) {
        std::cout << nlohmann::json{{"id", id}, {"action", remove ? "deleted" : "retry"}}.dump() << "\n";
    } else {
        std::cout << id << (remove ? ": deleted\n" : ": scheduled for retry now\n");
    }
}

// hold / release one message (Postfix's postsuper -h / -H).
void hold(const Options& opts, const std::string& raw_id, bool on) {
    auto id = checked_id(raw_id);
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto r = on ? st->queue().hold(id) : st->queue().release(id);
    if (!r && r.error() == common::Errc::invalid_argument) {
        throw Failure(on ? "message " + id + " has nothing left to deliver (nothing to hold)"
                         : "message " + id + " is not on hold");
    }
    if (!r) not_found_or_fail(r.error(), id);
    if (opts.json) {
        std::cout << nlohmann::json{{"id", id}, {"action", on ? "held" : "released"}}.dump() << "\n";
    } else {
        std::cout << id << (on ? ": on hold (never delivered until released)\n" : ": released, due now\n");
    }
}

// Every message waiting for a later attempt becomes due now (Postfix's postqueue -f / sendmail -q).
void flush(const Options& opts) {
    auto cfg = load_config(opts);
    auto st = open_store(cfg);
    auto n = st->queue().flush(store::Clock::now());
    if (!n) throw Failure("cannot flush the queue: " + n.error().message());
    if (opts.json) {
        std::cout << nlohmann::json{{"action", "flush"}, {"messages", *n}}.dump() << "\n";
    } else {
        std::cout << *n << " message" << (*n == 1 ? "" : "s")
                  << " due now; a running 'mailward serve' starts them within 5 seconds\n";
    }
}

}  // namespace

void add_queue(CLI::App& app, Options& opts) {
    auto* q = app.add_subcommand("queue", "inspect and manage the queue");
    q->require_subcommand(1);
    static std::string id;
    auto* l = q->add_subcommand("list", "list queued messages with each recipient's state and delay reason (mailq)");
    add_common(l, opts, true);
    static queue_cli::ListFilter filter;
    l->add_option("--domain", filter.domain, "only recipients at this domain");
    l->add_option("--state", filter.state,
                  "only recipients in this state: held, active, deferred, queued, awaiting_escrow");
    l->callback([&opts] { queue_cli::list(opts, filter); });
    auto* s = q->add_subcommand("show", "show one message with per-recipient state");
    add_common(s, opts, true);
    s->add_option("ID", id, "queue id")->required();
    static bool body = false;
    s->add_flag("--body", body, "print the stored message (our Received: header, then the data as received)");
    s->callback([&opts] { show(opts, id, body); });
    auto* r = q->add_subcommand("retry", "retry a message now");
    add_common(r, opts, true);
    r->add_option("ID", id, "queue id")->required();
    r->callback([&opts] { act(opts, id, false); });
    auto* d = q->add_subcommand("delete", "delete a message (no bounce is sent)");
    add_common(d, opts, true);
    d->add_option("ID", id, "queue id")->required();
    d->callback([&opts] { act(opts, id, true); });
    auto* f = q->add_subcommand("flush", "make every deferred message due now (postqueue -f)");
    add_common(f, opts, true);
    f->callback([&opts] { flush(opts); });
    auto* h = q->add_subcommand("hold", "put a message on hold: never delivered until released");
    add_common(h, opts, true);
    h->add_option("ID", id, "queue id")->required();
    h->callback([&opts] { hold(opts, id, true); });
    auto* rl = q->add_subcommand("release", "release a held message (due now)");
    add_common(rl, opts, true);
    rl->add_option("ID", id, "queue id")->required();
    rl->callback([&opts] { hold(opts, id, false); });
}

}  // namespace mailward::cli
