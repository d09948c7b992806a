// MTA-STS policy discovery (RFC 8461 sections 3.3, 5 and 5.1): the HTTPS fetch of
// https://mta-sts.<domain>/.well-known/mta-sts.txt (libcurl on a thread pool; the policy host is
// resolved by mailward's own dns::Resolver and pinned into curl, curl never resolves a name; PKIX
// validation against the system store plus [delivery] ca_file, name check, no redirects, 200 +
// text/plain only, 64 KiB, timeouts) and a cache that follows the RFC's rules for ids, refresh,
// expiry and fetch failures. Fetched bodies are untrusted and parsed by mta_sts.hpp.
// The cache persists through an MtaStsCacheStore (the store's rows, shared by every node:
// mta_sts_store.hpp).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "policy/decide.hpp"
#include "policy/mta_sts.hpp"
#include "policy/plan.hpp"

namespace boost::asio {
class thread_pool;
}
namespace mailward::dns {
class Resolver;
}

namespace mailward::policy {

struct MtaStsFetchOptions {
    std::filesystem::path ca_file;  // extra trust anchors ([delivery] ca_file); the system store always
    unsigned short port = 443;      // HTTPS port of the policy host (a lab uses a high port)
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds total_timeout{60'000};  // the whole fetch, DNS excluded
    std::size_t max_size = 64 * 1024;                 // largest body accepted
};

// One fetch: the parsed policy, or an MtaStsErrc with a one-line detail.
struct MtaStsFetchResult {
    Result<MtaStsPolicy> policy = MtaStsErrc::fetch_failed;
    std::string detail;   // why it failed ("" on success)
    std::string address;  // the address curl connected to ("" if none)
};

// The seam between the cache and HTTPS (unit tests use a fake).
class MtaStsFetcher {
  public:
    virtual ~MtaStsFetcher() = default;
    // GET and parse the policy of domain (lower case, no trailing dot).
    virtual boost::asio::awaitable<MtaStsFetchResult> fetch(std::string domain) = 0;
};

// The real fetcher. resolver and pool must outlive it; the blocking curl transfer runs on pool,
// the A/AAAA lookups of mta-sts.<domain> on the caller's executor.
class CurlMtaStsFetcher : public MtaStsFetcher {
  public:
    CurlMtaStsFetcher(dns::Resolver& resolver, boost::asio::thread_pool& pool, MtaStsFetchOptions options);
    boost::asio::awaitable<MtaStsFetchResult> fetch(std::string domain) override;

  private:
    dns::Resolver& resolver_;
    boost::asio::thread_pool& pool_;
    MtaStsFetchOptions options_;
};

// A policy in the cache: the id of the TXT record it was fetched under, when, and until when it
// may be used (fetched_at + max_age).
struct CachedMtaStsPolicy {
    MtaStsPolicy policy;
    std::string id;
    std::chrono::system_clock::time_point fetched_at{};
    std::chrono::system_clock::time_point expires{};
};

// What get() found for a domain.
struct MtaStsLookup {
    enum class Source { none, cache, fetched };
    std::optional<MtaStsPolicy> policy;  // the policy in effect (unexpired), if any; may be mode none
    Source source = Source::none;
    std::string id;  // the id of the policy in effect
    std::chrono::system_clock::time_point expires{};
    // One line for the decision's reasons: "mta-sts: enforce (id X, cached)", "mta-sts: enforce (id
    // X, fetched)", "mta-sts: no record", "mta-sts: fetch failed: <why>", "mta-sts: testing (id X,
    // cached; fetch failed: <why>)", ...
    std::string status;
    error_code error;  // the last failure (no record, DNS, fetch), if any
};

namespace detail {
std::string normalize_domain(std::string d);  // the cache key: lower case, no final dot
// A host name that may go into a URL and a CURLOPT_RESOLVE entry: a mail domain (common/domain.hpp).
bool is_plain_domain(const std::string& d);
}  // namespace detail

// The lookup as plan() takes it (the policy in effect and the status line).
MtaStsFact to_fact(const MtaStsLookup& l);
// What a cached entry alone says (`policy simulate` reads the cache file; no DNS, no fetch): the
// policy while unexpired, with the status "mta-sts: MODE (id X, cached)"; expired: no policy.
MtaStsFact cached_fact(const CachedMtaStsPolicy& c, std::chrono::system_clock::time_point now);

// When a cached policy is refreshed although the TXT id did not change: after half of its max_age
// (section 5: refresh before expiry, so that a policy host that goes away for a while does not leave
// the domain unprotected; the second half of max_age is the margin for failed refreshes - a day or
// more for max_age >= 2 days. "One day before expiry" would refetch a max_age=86400 policy, the
// most common, on every message).
std::chrono::system_clock::time_point mta_sts_refresh_at(const CachedMtaStsPolicy& c);

// Where the cache keeps its policies across restarts and shares them with other nodes (RFC 8461
// section 5.1: a sender that forgot an enforce policy at every restart would give an attacker a
// window each time). Every call may block; the cache runs find() and save() on its pool.
class MtaStsCacheStore {
  public:
    virtual ~MtaStsCacheStore() = default;
    virtual std::map<std::string, CachedMtaStsPolicy> load() = 0;  // every usable policy, at start
    // domain's policy as this or another node stored it, if usable now.
    virtual std::optional<CachedMtaStsPolicy> find(const std::string& domain) = 0;
    // Keeps entry unless a later fetch of domain is stored already.
    virtual void save(const std::string& domain, const CachedMtaStsPolicy& entry) = 0;
};

// How long after asking the store about a domain and finding nothing newer the cache asks again
// (a policy another node fetched is used here at most this long after it was stored).
inline constexpr std::chrono::seconds kMtaStsStoreRecheck{10};

// Failed fetches back off per domain: 5 minutes, doubling, at most an hour; reset by a success.
inline constexpr std::chrono::seconds kMtaStsFirstBackoff{300};
inline constexpr std::chrono::seconds kMtaStsMaxBackoff{3600};

// The policy cache (RFC 8461 section 5.1). get() for a domain:
//  1. drops an expired cached policy;
//  2. looks up the TXT record at _mta-sts.<domain>;
//  3. a valid record whose id equals the cached policy's id, before its refresh time: the cache;
//  4. within the back-off after a failed fetch: no fetch (the cached policy, if any, stays);
//  5. a valid record with a new id, no cached policy, or refresh time reached: fetch - one fetch per
//     domain at a time, concurrent callers share its result; a valid fetched policy replaces the
//     cached one (expires after its max_age); a failed fetch keeps an unexpired cached policy in
//     use and starts or doubles the back-off;
//  6. no record, an invalid record or a failed TXT lookup: an unexpired cached policy stays in use
//     until it expires (section 10.2: a domain removes MTA-STS by publishing mode none); without
//     one there is no policy.
// With a store, before 3 (a cached policy that is not current) and before 6 (nothing cached), the
// cache asks the store whether another node stored a later fetch, at most once per domain every
// kMtaStsStoreRecheck, and uses it as its own (a policy fetched by one node is enforced by all,
// even when an attacker strips the TXT record on the way to another); a fetched policy is saved.
// now is passed in (injectable clock). Thread-safe: the maps are guarded by a mutex that is never
// held across a co_await. Store calls run on blocking (inline without one: tests).
class MtaStsCache {
  public:
    MtaStsCache(dns::Resolver& resolver, MtaStsFetcher& fetcher, MtaStsCacheStore* store = nullptr,
                boost::asio::thread_pool* blocking = nullptr);
    ~MtaStsCache();
    // domain: the recipient domain; case and a trailing dot do not matter.
    boost::asio::awaitable<MtaStsLookup> get(std::string domain, std::chrono::system_clock::time_point now);

    std::optional<CachedMtaStsPolicy> peek(const std::string& domain) const;  // no I/O, expired included
    void put(const std::string& domain, CachedMtaStsPolicy entry);            // memory only (tests)
    void forget(const std::string& domain);                                   // memory only
    std::size_t size() const;

  private:
    struct Inflight;
    struct Backoff {
        std::chrono::system_clock::time_point next_try{};
        std::chrono::seconds delay{0};
        error_code error;
        std::string detail;
    };
    boost::asio::awaitable<MtaStsFetchResult> fetch_shared(std::string domain);
    // What the store has for domain when it is a later fetch than cached (then also in entries_),
    // or nullopt; asks at most once per kMtaStsStoreRecheck while it finds nothing newer.
    boost::asio::awaitable<std::optional<CachedMtaStsPolicy>> newer_in_store(
        const std::string& domain, const std::optional<CachedMtaStsPolicy>& cached,
        std::chrono::system_clock::time_point now);
    boost::asio::awaitable<void> save(const std::string& domain, CachedMtaStsPolicy entry);

    dns::Resolver& resolver_;
    MtaStsFetcher& fetcher_;
    MtaStsCacheStore* store_;
    boost::asio::thread_pool* blocking_;
    mutable std::mutex mutex_;
    std::map<std::string, CachedMtaStsPolicy> entries_;
    std::map<std::string, Backoff> backoff_;
    std::map<std::string, std::shared_ptr<Inflight>> inflight_;
    std::map<std::string, std::chrono::system_clock::time_point> store_asked_;  // found nothing newer then
};

}  // namespace mailward::policy
