// The libunbound resolver: validating (DNSSEC, RFC 4033-4035), asynchronous. libunbound runs its
// own resolving thread (ub_ctx_async); its result pipe (ub_fd) is watched on the io_context and
// ub_process() runs the callbacks, which hand each answer to the waiting coroutine through its
// common::await_callback completion (resumed on that coroutine's executor). Each query has a deadline ([dns] timeout);
// a late query is cancelled (ub_cancel). Answers come from the network: rdata is decoded with bounds checks
// (rdata.hpp). Configuration (forwarders, special-use names, anchors) is in unbound_config.cpp.
// Destroy the resolver before its io_context; queries still waiting complete with shutting_down.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <spdlog/spdlog.h>
#include <unbound.h>

#include "common/blocking.hpp"
#include "config/config.hpp"
#include "dns/rdata.hpp"
#include "dns/resolver.hpp"
#include "dns/unbound_config.hpp"

namespace mailward::dns {
namespace asio = boost::asio;
using asio::use_awaitable;

namespace {

constexpr int kTypeA = 1, kTypeMx = 15, kTypeTxt = 16, kTypeAaaa = 28, kTypeTlsa = 52;
constexpr int kClassIn = 1;
constexpr int kRcodeNoerror = 0, kRcodeServfail = 2, kRcodeNxdomain = 3, kRcodeRefused = 5;

// What one query produced, before typing.
struct Raw {
    int rcode = 0;
    bool secure = false, bogus = false, nxdomain = false;
    std::string why_bogus;
    std::vector<std::string> rdata;
};

class UnboundResolver;

// One query in flight. Every field is guarded by the resolver's mutex until `finished` is set and
// `done` has been called; after that only the waiting coroutine reads it.
struct Pending {
    UnboundResolver* owner = nullptr;
    int async_id = 0;
    bool finished = false;
    error_code ec;  // how it finished: ok (raw is the answer), timeout, servfail, shutting_down
    Raw raw;
    std::function<void()> done;  // resumes the waiting coroutine (common::await_callback)
};

// Types a raw answer: every rdata through parse into (answer.*field); one malformed record fails all.
template <class Answer, class Parse, class Item>
Result<Answer> typed(const Raw& raw, Parse parse, std::vector<Item> Answer::*field) {
    Answer a;
    a.security = raw.secure ? Security::secure : Security::insecure;
    for (const auto& d : raw.rdata) {
        auto r = parse(d);
        if (!r) return DnsErrc::bad_response;
        (a.*field).push_back(std::move(*r));
    }
    a.nodata = (a.*field).empty();
    return a;
}

// The outcome of a finished query as an error or the raw answer (rcode, bogus, libunbound errors).
Result<Raw> classify(const std::string& name, int type, const Pending& p) {
    if (p.ec) return p.ec;
    const Raw& r = p.raw;
    if (r.bogus) {
        spdlog::warn("dns: {} type {}: DNSSEC bogus: {}", name, type, r.why_bogus);
        return DnsErrc::bogus;
    }
    if (r.nxdomain || r.rcode == kRcodeNxdomain) return DnsErrc::nxdomain;
    if (r.rcode == kRcodeServfail) return DnsErrc::servfail;
    if (r.rcode == kRcodeRefused) return DnsErrc::refused;
    if (r.rcode != kRcodeNoerror) return DnsErrc::servfail;
    return r;
}

class UnboundResolver final : public Resolver, public std::enable_shared_from_this<UnboundResolver> {
  public:
    UnboundResolver(asio::io_context& io, ub_ctx* ctx, std::chrono::milliseconds timeout)
        : ctx_(ctx), fd_(io, ub_fd(ctx)), timeout_(timeout) {}

    // Queries still waiting complete with shutting_down; libunbound's thread is stopped and joined.
    ~UnboundResolver() override {
        std::lock_guard lk(mu_);
        boost::system::error_code ec;
        fd_.cancel(ec);
        fd_.release();  // the descriptor belongs to libunbound
        for (auto& [raw, p] : pending_) complete(*p, common::Errc::shutting_down);
        ub_ctx_delete(ctx_);
        pending_.clear();
    }

    void start() {
        std::lock_guard lk(mu_);
        watch();
    }

    asio::awaitable<Result<MxAnswer>> mx(std::string domain) override {
        auto raw = co_await query(domain, kTypeMx);
        if (!raw) co_return raw.error();
        co_return typed<MxAnswer>(*raw, rdata::mx, &MxAnswer::records);
    }
    asio::awaitable<Result<AddressAnswer>> a(std::string host) override {
        auto raw = co_await query(host, kTypeA);
        if (!raw) co_return raw.error();
        co_return typed<AddressAnswer>(*raw, rdata::a, &AddressAnswer::addresses);
    }
    asio::awaitable<Result<AddressAnswer>> aaaa(std::string host) override {
        auto raw = co_await query(host, kTypeAaaa);
        if (!raw) co_return raw.error();
        co_return typed<AddressAnswer>(*raw, rdata::aaaa, &AddressAnswer::addresses);
    }
    asio::awaitable<Result<TlsaAnswer>> tlsa(std::string name) override {
        auto raw = co_await query(name, kTypeTlsa);
        if (!raw) co_return raw.error();
        co_return typed<TlsaAnswer>(*raw, rdata::tlsa, &TlsaAnswer::records);
    }
    asio::awaitable<Result<TxtAnswer>> txt(std::string name) override {
        auto raw = co_await query(name, kTypeTxt);
        if (!raw) co_return raw.error();
        co_return typed<TxtAnswer>(*raw, rdata::txt, &TxtAnswer::texts);
    }

  private:
    // Fires at the deadline: cancels the query unless it has finished.
    struct Expire {
        std::weak_ptr<UnboundResolver> resolver;
        std::shared_ptr<Pending> p;
        void operator()(const error_code& ec) const {
            if (ec) return;  // the timer was cancelled: the answer came first
            if (auto r = resolver.lock()) r->expire(*p);
        }
    };

    // A non-coroutine (see common/blocking.hpp). Stores the waiting coroutine's completion in p, or
    // calls it at once if p has finished already. Completes with no arguments (an error_code
    // argument would make use_awaitable throw); the outcome is in p->ec.
    asio::awaitable<void> wait_for(const std::shared_ptr<Pending>& p) {
        return common::await_callback<void>([self = this, p](auto done) {
            std::lock_guard lk(self->mu_);
            p->done = std::move(done);
            if (p->finished) wake(*p);
        });
    }

    // After the co_await on wait_for() this coroutine touches only p and its locals: the resolver
    // may have been destroyed meanwhile (its destructor completes p with shutting_down).
    asio::awaitable<Result<Raw>> query(std::string name, int type) {
        auto ex = co_await asio::this_coro::executor;
        auto p = std::make_shared<Pending>();
        p->owner = this;
        {
            std::lock_guard lk(mu_);
            int rc = ub_resolve_async(ctx_, name.c_str(), type, kClassIn, p.get(), &UnboundResolver::on_result,
                                      &p->async_id);
            if (rc != 0) {
                spdlog::warn("dns: cannot start query {} type {}: {}", name, type, ub_strerror(rc));
                co_return DnsErrc::servfail;
            }
            pending_.emplace(p.get(), p);
        }
        asio::steady_timer deadline(ex, timeout_);
        Expire expire{weak_from_this(), p};
        deadline.async_wait(expire);
        co_await wait_for(p);
        deadline.cancel();
        co_return classify(name, type, *p);
    }

    // libunbound's callback, run by ub_process() under mu_. A query that was cancelled successfully
    // gets no callback, so mydata always names an entry of pending_.
    static void on_result(void* mydata, int err, ub_result* result) {
        std::unique_ptr<ub_result, void (*)(ub_result*)> owned(result, ub_resolve_free);
        auto* raw = static_cast<Pending*>(mydata);
        UnboundResolver* self = raw->owner;
        auto it = self->pending_.find(raw);
        if (it == self->pending_.end()) return;
        std::shared_ptr<Pending> p = std::move(it->second);
        self->pending_.erase(it);
        if (p->finished) return;  // timed out, but ub_cancel did not take: drop the late answer
        if (err != 0 || !result) {
            spdlog::warn("dns: query failed in libunbound: {}", ub_strerror(err));
            complete(*p, DnsErrc::servfail);
            return;
        }
        p->raw.rcode = result->rcode;
        p->raw.secure = result->secure != 0;
        p->raw.bogus = result->bogus != 0;
        p->raw.nxdomain = result->nxdomain != 0;
        if (result->why_bogus) p->raw.why_bogus = result->why_bogus;
        for (int i = 0; result->data && result->data[i]; ++i) {
            p->raw.rdata.emplace_back(result->data[i], static_cast<std::size_t>(result->len[i]));
        }
        complete(*p, {});
    }

    void expire(Pending& p) {
        std::lock_guard lk(mu_);
        if (p.finished) return;
        int rc = ub_cancel(ctx_, p.async_id);
        if (rc == 0) {
            pending_.erase(&p);  // no callback will come
        } else {
            spdlog::warn("dns: cannot cancel a timed-out query: {}", ub_strerror(rc));
        }
        complete(p, DnsErrc::timeout);
    }

    // Under mu_: marks p finished and wakes its coroutine if it waits already.
    static void complete(Pending& p, error_code ec) {
        if (p.finished) return;
        p.finished = true;
        p.ec = ec;
        if (p.done) wake(p);
    }

    // Under mu_: resumes p's coroutine (on its own executor) once.
    static void wake(Pending& p) {
        auto done = std::move(p.done);
        p.done = nullptr;
        done();
    }

    // Under mu_: waits for libunbound's result pipe, then lets ub_process() run the callbacks and
    // waits again. A callback chain, not a coroutine, so that every use of fd_ happens under mu_
    // (the destructor may run on another thread); it holds the resolver only weakly.
    void watch() {
        fd_.async_wait(asio::posix::descriptor_base::wait_read, [weak = weak_from_this()](const error_code& ec) {
            if (ec) return;  // cancelled: the resolver is going away
            auto self = weak.lock();
            if (!self) return;
            std::lock_guard lk(self->mu_);
            if (int rc = ub_process(self->ctx_); rc != 0) {
                // The pipe to libunbound's thread is broken: no answer will come; queries time out.
                spdlog::error("dns: libunbound stopped answering: {}", ub_strerror(rc));
                return;
            }
            self->watch();
        });
    }

    std::mutex mu_;
    ub_ctx* ctx_;
    asio::posix::stream_descriptor fd_;
    std::chrono::milliseconds timeout_;
    std::map<Pending*, std::shared_ptr<Pending>> pending_;  // queries libunbound may still call back
};

// The Resolver handed out owns the shared resolver (its fd watch and deadlines hold weak references).
class OwningResolver final : public Resolver {
  public:
    explicit OwningResolver(std::shared_ptr<UnboundResolver> r) : r_(std::move(r)) {}
    asio::awaitable<Result<MxAnswer>> mx(std::string d) override { return r_->mx(std::move(d)); }
    asio::awaitable<Result<AddressAnswer>> a(std::string h) override { return r_->a(std::move(h)); }
    asio::awaitable<Result<AddressAnswer>> aaaa(std::string h) override { return r_->aaaa(std::move(h)); }
    asio::awaitable<Result<TlsaAnswer>> tlsa(std::string n) override { return r_->tlsa(std::move(n)); }
    asio::awaitable<Result<TxtAnswer>> txt(std::string n) override { return r_->txt(std::move(n)); }

  private:
    std::shared_ptr<UnboundResolver> r_;
};

}  // namespace

Result<std::unique_ptr<Resolver>> make_unbound_resolver(asio::io_context& io, const config::DnsConfig& cfg,
                                                        std::string& error) {
    ub_ctx* ctx = ub_ctx_create();
    if (!ctx) {
        error = "cannot create the libunbound context";
        return common::Errc::io_error;
    }
    if (!configure(ctx, cfg, error) || ub_fd(ctx) < 0) {
        if (error.empty()) error = "libunbound has no result descriptor";
        ub_ctx_delete(ctx);
        return common::Errc::invalid_argument;
    }
    auto r = std::make_shared<UnboundResolver>(io, ctx, cfg.timeout);
    r->start();
    return std::unique_ptr<Resolver>(std::make_unique<OwningResolver>(std::move(r)));
}

}  // namespace mailward::dns
