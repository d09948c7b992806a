// The MTA-STS policy cache (RFC 8461 section 5.1; the rules are in mta_sts_fetch.hpp, at
// MtaStsCache): one fetch per domain at a time, back-off after failures, and the store shared by
// every node (mta_sts_store.hpp), asked before fetching and before giving up on a domain.
#include <algorithm>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>

#include "common/blocking.hpp"
#include "common/timefmt.hpp"
#include "dns/resolver.hpp"
#include "policy/mta_sts_fetch.hpp"

namespace mailward::policy {
namespace {

using Clock = std::chrono::system_clock;
using detail::is_plain_domain;
using detail::normalize_domain;

std::string mode_line(const CachedMtaStsPolicy& c, std::string_view how) {
    return "mta-sts: " + std::string(to_string(c.policy.mode)) + " (id " + c.id + ", " + std::string(how) + ")";
}

}  // namespace

MtaStsFact to_fact(const MtaStsLookup& l) { return {l.policy, l.status}; }

MtaStsFact cached_fact(const CachedMtaStsPolicy& c, Clock::time_point now) {
    if (now >= c.expires) return {std::nullopt, "mta-sts: cached policy (id " + c.id + ") expired"};
    return {c.policy, mode_line(c, "cached")};
}

// ---- MtaStsCache ----------------------------------------------------------------------------

Clock::time_point mta_sts_refresh_at(const CachedMtaStsPolicy& c) {
    return c.fetched_at + std::chrono::duration_cast<Clock::duration>(c.policy.max_age) / 2;
}

struct MtaStsCache::Inflight {
    std::optional<MtaStsFetchResult> result;  // set once the fetch is done
    std::vector<std::function<void(MtaStsFetchResult)>> waiters;
};

MtaStsCache::MtaStsCache(dns::Resolver& resolver, MtaStsFetcher& fetcher, MtaStsCacheStore* store,
                         boost::asio::thread_pool* blocking)
    : resolver_(resolver), fetcher_(fetcher), store_(store), blocking_(blocking) {
    if (store_) {
        for (auto& [domain, entry] : store_->load()) entries_[normalize_domain(domain)] = std::move(entry);
    }
}

MtaStsCache::~MtaStsCache() = default;

std::optional<CachedMtaStsPolicy> MtaStsCache::peek(const std::string& domain) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(normalize_domain(domain));
    if (it == entries_.end()) return std::nullopt;
    return it->second;
}

void MtaStsCache::put(const std::string& domain, CachedMtaStsPolicy entry) {
    std::lock_guard lock(mutex_);
    entries_[normalize_domain(domain)] = std::move(entry);
}

void MtaStsCache::forget(const std::string& domain) {
    std::lock_guard lock(mutex_);
    entries_.erase(normalize_domain(domain));
    backoff_.erase(normalize_domain(domain));
    store_asked_.erase(normalize_domain(domain));
}

boost::asio::awaitable<std::optional<CachedMtaStsPolicy>> MtaStsCache::newer_in_store(
    const std::string& domain, const std::optional<CachedMtaStsPolicy>& cached, Clock::time_point now) {
    if (!store_) co_return std::nullopt;
    {
        std::lock_guard lock(mutex_);
        if (auto it = store_asked_.find(domain); it != store_asked_.end() && now < it->second + kMtaStsStoreRecheck)
            co_return std::nullopt;
    }
    std::optional<CachedMtaStsPolicy> found;
    auto* store = store_;
    auto find = [store, &domain]() { return store->find(domain); };
    if (blocking_) {
        found = co_await common::run_blocking<std::optional<CachedMtaStsPolicy>>(*blocking_, find);
    } else {
        found = find();
    }
    std::lock_guard lock(mutex_);
    if (found && now < found->expires && (!cached || found->fetched_at > cached->fetched_at)) {
        store_asked_.erase(domain);
        entries_[domain] = *found;
        co_return found;
    }
    if (store_asked_.size() >= 100'000) store_asked_.clear();  // a bound, not a policy: asking again is safe
    store_asked_[domain] = now;
    co_return std::nullopt;
}

boost::asio::awaitable<void> MtaStsCache::save(const std::string& domain, CachedMtaStsPolicy entry) {
    if (!store_) co_return;
    auto* store = store_;
    auto write = [store, &domain, &entry]() {
        store->save(domain, entry);
        return true;
    };
    if (blocking_) {
        co_await common::run_blocking<bool>(*blocking_, write);
    } else {
        write();
    }
}

std::size_t MtaStsCache::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

// One fetch per domain at a time: the first caller fetches, later ones wait for its result.
boost::asio::awaitable<MtaStsFetchResult> MtaStsCache::fetch_shared(std::string domain) {
    std::shared_ptr<Inflight> theirs, mine;
    {
        std::lock_guard lock(mutex_);
        if (auto it = inflight_.find(domain); it != inflight_.end()) {
            theirs = it->second;
        } else {
            mine = std::make_shared<Inflight>();
            inflight_[domain] = mine;
        }
    }
    if (theirs) {
        auto wait = [this, theirs](auto done) {
            std::unique_lock lock(mutex_);
            if (theirs->result) {
                auto r = *theirs->result;
                lock.unlock();
                done(std::move(r));
            } else {
                theirs->waiters.push_back(std::move(done));
            }
        };
        co_return co_await common::await_callback<MtaStsFetchResult>(wait);
    }
    auto fetched = co_await fetcher_.fetch(domain);
    std::vector<std::function<void(MtaStsFetchResult)>> waiters;
    {
        std::lock_guard lock(mutex_);
        mine->result = fetched;
        waiters = std::move(mine->waiters);
        inflight_.erase(domain);
    }
    for (auto& w : waiters) w(fetched);
    co_return fetched;
}

boost::asio::awaitable<MtaStsLookup> MtaStsCache::get(std::string domain, Clock::time_point now) {
    domain = normalize_domain(std::move(domain));
    MtaStsLookup out;
    if (!is_plain_domain(domain)) {
        out.status = "mta-sts: invalid domain";
        out.error = MtaStsErrc::no_record;
        co_return out;
    }
    std::optional<CachedMtaStsPolicy> cached;
    std::optional<Backoff> backoff;
    {
        std::lock_guard lock(mutex_);
        if (auto it = entries_.find(domain); it != entries_.end()) {
            if (now < it->second.expires) {
                cached = it->second;
            } else {
                entries_.erase(it);  // a policy expires after max_age (section 5); the store's row too, at start
            }
        }
        if (auto it = backoff_.find(domain); it != backoff_.end() && now < it->second.next_try) backoff = it->second;
    }
    auto use_cache = [&](const std::string& why) {
        out.policy = cached->policy;
        out.source = MtaStsLookup::Source::cache;
        out.id = cached->id;
        out.expires = cached->expires;
        out.status = mode_line(*cached, why.empty() ? "cached" : "cached; " + why);
    };

    // 1. The TXT record.
    std::optional<std::string> id;
    std::string problem;
    auto txt = co_await resolver_.txt("_mta-sts." + domain);
    if (!txt) {
        if (txt.error() == dns::DnsErrc::nxdomain) {
            out.error = MtaStsErrc::no_record;
            problem = "no record";
        } else {
            out.error = MtaStsErrc::dns_failed;
            problem = "TXT lookup failed: " + txt.error().message();
        }
    } else {
        std::string detail;
        auto record = parse_mta_sts_record(txt->texts, detail);
        if (record) {
            id = record->id;
        } else {
            out.error = record.error();
            problem = record.error() == MtaStsErrc::no_record ? "no record" : "invalid record: " + detail;
        }
    }
    if (!id) {
        // Nothing current here: another node may have fetched a policy that this one never saw
        // (the record stripped on this node's path only must not hide it).
        if (auto newer = co_await newer_in_store(domain, cached, now)) cached = std::move(newer);
        if (cached) {
            use_cache(problem);
        } else {
            out.status = "mta-sts: " + problem;
        }
        co_return out;
    }

    // 2. Same id and not yet due for a refresh: the cache (or a later fetch another node stored).
    auto current = [&] { return cached && cached->id == *id && now < mta_sts_refresh_at(*cached); };
    if (!current())
        if (auto newer = co_await newer_in_store(domain, cached, now)) cached = std::move(newer);
    if (current()) {
        use_cache("");
        co_return out;
    }

    // 3. A fetch failed not long ago: no new try before the back-off ends (a host that is down is
    //    not asked again for every message).
    if (backoff) {
        out.error = backoff->error;
        const std::string why =
            "fetch failed: " + backoff->detail + "; next try after " + common::iso8601(backoff->next_try);
        if (cached) {
            use_cache(why);
        } else {
            out.status = "mta-sts: " + why;
        }
        co_return out;
    }

    // 4. New id, nothing cached, or refresh due: fetch (once, whoever else asks meanwhile).
    auto fetched = co_await fetch_shared(domain);
    if (!fetched.policy) {
        out.error = fetched.policy.error();
        const std::string detail = fetched.detail.empty() ? out.error.message() : fetched.detail;
        {
            std::lock_guard lock(mutex_);
            auto& b = backoff_[domain];
            b.delay = b.delay.count() == 0 ? kMtaStsFirstBackoff : std::min(b.delay * 2, kMtaStsMaxBackoff);
            b.next_try = now + b.delay;
            b.error = out.error;
            b.detail = detail;
        }
        const std::string why = "fetch failed: " + detail;
        if (cached) {
            use_cache(why);  // section 5.1: an unexpired cached policy stays in effect
        } else {
            out.status = "mta-sts: " + why;
        }
        co_return out;
    }
    CachedMtaStsPolicy entry;
    entry.policy = *fetched.policy;
    entry.id = *id;
    entry.fetched_at = now;
    entry.expires = now + std::chrono::duration_cast<Clock::duration>(entry.policy.max_age);
    out.policy = entry.policy;
    out.source = MtaStsLookup::Source::fetched;
    out.id = entry.id;
    out.expires = entry.expires;
    out.status = mode_line(entry, "fetched");
    {
        std::lock_guard lock(mutex_);
        backoff_.erase(domain);
        store_asked_.erase(domain);
        entries_[domain] = entry;
    }
    co_await save(domain, std::move(entry));
    co_return out;
}

}  // namespace mailward::policy
