// The libunbound resolver: validating (DNSSEC, RFC 4033-4035), asynchronous. libunbound runs its
// own resolving thread (ub_ctx_async); its result pipe (ub_fd) is watched on the io_context and
// ub_process() runs the callbacks, which complete the waiting coroutines through a timer of their
// own executor. Each query has a deadline ([dns] timeout); a late answer is cancelled (ub_cancel).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <mutex>
#include <spdlog/spdlog.h>
#include <unbound.h>

#include "config/config.hpp"
#include "dns/rdata.hpp"
#include "dns/resolver.hpp"

namespace mailward::dns {
namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

constexpr int kTypeA = 1, kTypeMx = 15, kTypeTxt = 16, kTypeAaaa = 28, kTypeTlsa = 52;
constexpr int kRcodeServfail = 2, kRcodeNxdomain = 3, kRcodeRefused = 5;

// The root zone's trust anchors (KSK-2017 and KSK-2024, IANA), used when no file is configured
// and Debian's dns-root-data file is missing.
constexpr const char* kRootAnchors[] = {
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
};

// What one query produced, before typing.
struct Raw {
    int rcode = 0;
    bool secure = false, bogus = false, nxdomain = false;
    std::string why_bogus;
    std::vector<std::string> rdata;
};

struct Pending {
    explicit Pending(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;  // guarded by the resolver's mutex
    int async_id = 0;
    int err = 0;        // libunbound error code
    Raw raw;
    std::shared_ptr<Pending>* holder = nullptr;
};

void on_result(void* mydata, int err, ub_result* result) {
    auto* holder = static_cast<std::shared_ptr<Pending>*>(mydata);
    std::shared_ptr<Pending> p = *holder;
    delete holder;
    p->holder = nullptr;
    p->err = err;
    if (err == 0 && result) {
        p->raw.rcode = result->rcode;
        p->raw.secure = result->secure != 0;
        p->raw.bogus = result->bogus != 0;
        p->raw.nxdomain = result->nxdomain != 0;
        if (result->why_bogus) p->raw.why_bogus = result->why_bogus;
        for (int i = 0; result->data && result->data[i]; ++i) {
            p->raw.rdata.emplace_back(result->data[i], static_cast<std::size_t>(result->len[i]));
        }
    }
    if (result) ub_resolve_free(result);
    p->done = true;
    asio::post(p->timer.get_executor(), [p] { p->timer.cancel(); });
}

// Types a raw answer: every rdata through parse into (answer.*field); one malformed record fails all.
template <class Answer, class Parse, class Item>
Result<Answer> typed(const struct Raw& raw, Parse parse, std::vector<Item> Answer::*field) {
    Answer a;
    a.security = raw.secure ? Security::secure : Security::insecure;
    for (const auto& d : raw.rdata) {
        auto r = parse(d);
        if (!r) return DnsErrc::bad_response;
        (a.*field).push_back(*r);
    }
    a.nodata = (a.*field).empty();
    return a;
}

class UnboundResolver final : public Resolver, public std::enable_shared_from_this<UnboundResolver> {
public:
    UnboundResolver(asio::io_context& io, ub_ctx* ctx, std::chrono::milliseconds timeout)
        : ctx_(ctx), fd_(io, ub_fd(ctx)), timeout_(timeout) {}

    ~UnboundResolver() override {
        boost::system::error_code ec;
        fd_.cancel(ec);
        fd_.release();  // the descriptor belongs to libunbound
        std::lock_guard lk(mu_);
        ub_ctx_delete(ctx_);
    }

    void start() { asio::co_spawn(fd_.get_executor(), pump(weak_from_this()), asio::detached); }

    asio::awaitable<Result<MxAnswer>> mx(std::string domain) override {
        auto raw = co_await query(domain, kTypeMx);
        if (!raw) co_return raw.error();
        co_return typed<MxAnswer>(*raw, rdata::mx, &MxAnswer::records);
    }
    asio::awaitable<Result<AddressAnswer>> a(std::string host) override { return addresses(std::move(host), kTypeA); }
    asio::awaitable<Result<AddressAnswer>> aaaa(std::string host) override {
        return addresses(std::move(host), kTypeAaaa);
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
    asio::awaitable<Result<AddressAnswer>> addresses(std::string host, int type) {
        auto raw = co_await query(host, type);
        if (!raw) co_return raw.error();
        co_return type == kTypeA ? typed<AddressAnswer>(*raw, rdata::a, &AddressAnswer::addresses)
                                 : typed<AddressAnswer>(*raw, rdata::aaaa, &AddressAnswer::addresses);
    }

    asio::awaitable<Result<Raw>> query(std::string name, int type) {
        auto ex = co_await asio::this_coro::executor;
        auto p = std::make_shared<Pending>(ex);
        p->timer.expires_after(timeout_);
        {
            std::lock_guard lk(mu_);
            p->holder = new std::shared_ptr<Pending>(p);
            int rc = ub_resolve_async(ctx_, name.c_str(), type, 1, p->holder, on_result, &p->async_id);
            if (rc != 0) {
                delete p->holder;
                spdlog::warn("dns: cannot start query {} type {}: {}", name, type, ub_strerror(rc));
                co_return DnsErrc::servfail;
            }
        }
        co_await p->timer.async_wait(as_tuple(use_awaitable));
        {
            std::lock_guard lk(mu_);
            if (!p->done) {
                ub_cancel(ctx_, p->async_id);
                delete p->holder;
                p->holder = nullptr;
                co_return DnsErrc::timeout;
            }
        }
        if (p->err != 0) {
            spdlog::warn("dns: {} type {}: {}", name, type, ub_strerror(p->err));
            co_return DnsErrc::servfail;
        }
        const Raw& r = p->raw;
        if (r.bogus) {
            spdlog::warn("dns: {} type {}: DNSSEC bogus: {}", name, type, r.why_bogus);
            co_return DnsErrc::bogus;
        }
        if (r.nxdomain || r.rcode == kRcodeNxdomain) co_return DnsErrc::nxdomain;
        if (r.rcode == kRcodeServfail) co_return DnsErrc::servfail;
        if (r.rcode == kRcodeRefused) co_return DnsErrc::refused;
        if (r.rcode != 0) co_return DnsErrc::servfail;
        co_return r;
    }

    static asio::awaitable<void> pump(std::weak_ptr<UnboundResolver> weak) {
        for (;;) {
            auto self = weak.lock();
            if (!self) co_return;
            auto& fd = self->fd_;
            self.reset();  // do not keep the resolver alive while waiting
            auto [ec] = co_await fd.async_wait(asio::posix::descriptor_base::wait_read, as_tuple(use_awaitable));
            if (ec) co_return;
            self = weak.lock();
            if (!self) co_return;
            std::lock_guard lk(self->mu_);
            int rc = ub_process(self->ctx_);
            if (rc != 0) spdlog::warn("dns: ub_process: {}", ub_strerror(rc));
        }
    }

    std::mutex mu_;
    ub_ctx* ctx_;
    asio::posix::stream_descriptor fd_;
    std::chrono::milliseconds timeout_;
};

// The Resolver handed out owns the shared resolver (its pump holds only a weak reference).
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

bool set_option(ub_ctx* ctx, const char* opt, const std::string& value, std::string& error) {
    int rc = ub_ctx_set_option(ctx, opt, value.c_str());
    if (rc != 0) {
        error = std::string("libunbound option ") + opt + " " + value + ": " + ub_strerror(rc);
        return false;
    }
    return true;
}

}  // namespace

Result<std::unique_ptr<Resolver>> make_unbound_resolver(asio::io_context& io, const config::DnsConfig& cfg,
                                                        std::string& error) {
    ub_ctx* ctx = ub_ctx_create();
    if (!ctx) {
        error = "cannot create the libunbound context";
        return common::Errc::io_error;
    }
    auto fail = [&](std::string why) -> Result<std::unique_ptr<Resolver>> {
        error = std::move(why);
        ub_ctx_delete(ctx);
        return common::Errc::invalid_argument;
    };
    int rc = ub_ctx_async(ctx, 1);
    if (rc != 0) return fail(std::string("libunbound: ") + ub_strerror(rc));
    if (!cfg.servers.empty()) {
        // Every query goes to these servers, special-use names included (PRODUCT.md [dns] servers).
        std::string why;
        if (!set_option(ctx, "do-not-query-localhost:", "no", why)) return fail(why);
        // libunbound answers special-use names itself (RFC 6761). "nodefault" does not undo that in
        // libunbound 1.17 (seen: NXDOMAIN still); "transparent" does: no local data, so the query
        // goes to the forwarders.
        for (const char* zone : {"test.", "invalid.", "onion.", "localhost.", "home.arpa."}) {
            if (!set_option(ctx, "local-zone:", std::string(zone) + " transparent", why)) return fail(why);
        }
        for (const auto& s : cfg.servers) {
            std::string fwd = s.host + "@" + std::to_string(s.port);
            rc = ub_ctx_set_fwd(ctx, fwd.c_str());
            if (rc != 0) return fail("[dns] servers: " + fwd + ": " + ub_strerror(rc));
        }
    } else {
        rc = ub_ctx_resolvconf(ctx, nullptr);
        if (rc != 0) return fail(std::string("/etc/resolv.conf: ") + ub_strerror(rc));
    }
    if (!cfg.trust_anchor_file.empty()) {
        rc = ub_ctx_add_ta_file(ctx, cfg.trust_anchor_file.c_str());
        if (rc != 0) return fail(cfg.trust_anchor_file.string() + ": cannot load trust anchors: " + ub_strerror(rc));
    } else if (std::filesystem::exists("/usr/share/dns/root.key")) {
        rc = ub_ctx_add_ta_file(ctx, "/usr/share/dns/root.key");
        if (rc != 0) return fail(std::string("/usr/share/dns/root.key: ") + ub_strerror(rc));
    } else {
        for (const char* ta : kRootAnchors) {
            rc = ub_ctx_add_ta(ctx, ta);
            if (rc != 0) return fail(std::string("root trust anchor: ") + ub_strerror(rc));
        }
    }
    auto r = std::make_shared<UnboundResolver>(io, ctx, cfg.timeout);
    r->start();
    return std::unique_ptr<Resolver>(std::make_unique<OwningResolver>(std::move(r)));
}

}  // namespace mailward::dns
