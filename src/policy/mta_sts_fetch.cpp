// MTA-STS policy fetch with libcurl (RFC 8461 sections 3.3 and 5; the cache: mta_sts_cache.cpp). The policy host
// mta-sts.<domain> is resolved through dns::Resolver and pinned with CURLOPT_RESOLVE: curl never
// resolves a name itself, proxies are off and redirects are not followed, so every byte comes from an
// address mailward's own (DNSSEC-aware) resolver chose. Fetched bodies are untrusted.
#include "policy/mta_sts_fetch.hpp"

#include <curl/curl.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <mutex>

#include "common/ascii.hpp"
#include "common/blocking.hpp"
#include "common/domain.hpp"
#include "common/timefmt.hpp"
#include "dns/resolver.hpp"

namespace mailward::policy {

// The cache key: lower case, no final dot (the check is is_plain_domain's).
std::string detail::normalize_domain(std::string d) {
    if (!d.empty() && d.back() == '.') d.pop_back();
    return common::ascii::lower(d);
}

// A host name that may go into a URL and a CURLOPT_RESOLVE entry: a mail domain (common/domain.hpp:
// letters, digits, '-' in labels of 1-63, at most 253 in all).
bool detail::is_plain_domain(const std::string& d) {
    return common::DomainName::parse(d, {.final_dot = false}).has_value();
}

namespace {

using detail::is_plain_domain;
using detail::normalize_domain;

using Clock = std::chrono::system_clock;

// ---- the blocking transfer (runs on the thread pool) ----------------------------------------

struct TransferSpec {
    std::string url;
    std::string resolve;  // "host:port:addr[,addr]..."
    std::string ca_file;
    MtaStsFetchOptions options;
};

struct Sink {
    std::string body;
    std::size_t limit = 0;
    bool too_large = false;
};

std::size_t on_data(char* data, std::size_t size, std::size_t n, void* user) {
    auto* sink = static_cast<Sink*>(user);
    const std::size_t len = size * n;
    if (sink->body.size() + len > sink->limit) {
        sink->too_large = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    sink->body.append(data, len);
    return len;
}

// Adds [delivery] ca_file to the trust store curl loaded from the system (CURLOPT_CAINFO would
// replace the system store instead of adding to it).
CURLcode add_ca_file(CURL*, void* ssl_ctx, void* user) {
    const auto* file = static_cast<const std::string*>(user);
    if (SSL_CTX_load_verify_locations(static_cast<SSL_CTX*>(ssl_ctx), file->c_str(), nullptr) != 1) {
        return CURLE_SSL_CACERT_BADFILE;
    }
    return CURLE_OK;
}

MtaStsErrc classify_curl(CURLcode code, bool too_large) {
    switch (code) {
        case CURLE_OPERATION_TIMEDOUT: return MtaStsErrc::timeout;
        case CURLE_COULDNT_CONNECT: return MtaStsErrc::connect_failed;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return MtaStsErrc::tls_failed;
        case CURLE_FILESIZE_EXCEEDED: return MtaStsErrc::too_large;
        case CURLE_WRITE_ERROR: return too_large ? MtaStsErrc::too_large : MtaStsErrc::fetch_failed;
        default: return MtaStsErrc::fetch_failed;
    }
}

std::string media_type(const char* content_type) {
    if (!content_type) return {};
    const std::string_view t(content_type);
    return common::ascii::lower(common::ascii::trim_wsp(t.substr(0, t.find(';'))));
}

MtaStsFetchResult fail(MtaStsErrc e, std::string detail) {
    MtaStsFetchResult r;
    r.policy = e;
    r.detail = std::move(detail);
    return r;
}

MtaStsFetchResult run_transfer(const TransferSpec& spec) {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
    if (!easy) return fail(MtaStsErrc::fetch_failed, "curl_easy_init failed");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve(
        curl_slist_append(nullptr, spec.resolve.c_str()), curl_slist_free_all);
    if (!resolve) return fail(MtaStsErrc::fetch_failed, "curl_slist_append failed");
    Sink sink;
    sink.limit = spec.options.max_size;
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* h = easy.get();
    curl_easy_setopt(h, CURLOPT_URL, spec.url.c_str());
    curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
#if LIBCURL_VERSION_NUM >= 0x075700
    curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);  // the extra CA goes into this handle's store only
#endif
    if (!spec.ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &spec.ca_file);
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(spec.options.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(spec.options.total_timeout.count()));
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(spec.options.max_size));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mailward (MTA-STS, RFC 8461)");

    const CURLcode code = curl_easy_perform(h);
    MtaStsFetchResult out;
    if (char* ip = nullptr; curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip) out.address = ip;
    if (code != CURLE_OK) {
        const auto e = classify_curl(code, sink.too_large);
        std::string why = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(code));
        if (e == MtaStsErrc::too_large) why = "body larger than " + std::to_string(spec.options.max_size) + " bytes";
        auto r = fail(e, spec.url + ": " + why);
        r.address = out.address;
        return r;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        MtaStsFetchResult r;
        if (status >= 300 && status < 400) {
            char* location = nullptr;
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location);
            r = fail(MtaStsErrc::redirect, spec.url + ": HTTP " + std::to_string(status) + " redirect" +
                                               (location ? std::string(" to ") + location : std::string()) +
                                               " (not followed)");
        } else {
            r = fail(MtaStsErrc::http_status, spec.url + ": HTTP " + std::to_string(status));
        }
        r.address = out.address;
        return r;
    }
    char* content_type = nullptr;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &content_type);
    if (const auto mt = media_type(content_type); mt != "text/plain") {
        auto r = fail(MtaStsErrc::content_type,
                      spec.url + ": media type \"" + (content_type ? content_type : "") + "\" is not text/plain");
        r.address = out.address;
        return r;
    }
    std::string detail;
    out.policy = parse_mta_sts_policy(sink.body, detail);
    if (!out.policy) out.detail = spec.url + ": " + detail;
    return out;
}

std::once_flag curl_init_once;

}  // namespace

// ---- CurlMtaStsFetcher ----------------------------------------------------------------------

CurlMtaStsFetcher::CurlMtaStsFetcher(dns::Resolver& resolver, boost::asio::thread_pool& pool,
                                     MtaStsFetchOptions options)
    : resolver_(resolver), pool_(pool), options_(std::move(options)) {
    std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

boost::asio::awaitable<MtaStsFetchResult> CurlMtaStsFetcher::fetch(std::string domain) {
    domain = normalize_domain(std::move(domain));
    if (!is_plain_domain(domain)) co_return fail(MtaStsErrc::fetch_failed, "invalid domain \"" + domain + "\"");
    const std::string host = "mta-sts." + domain;

    // A and AAAA through mailward's resolver; curl gets the addresses, never the job of resolving.
    std::vector<std::string> addresses;
    std::string dns_problem;
    auto a = co_await resolver_.a(host);
    if (a) {
        addresses.insert(addresses.end(), a->addresses.begin(), a->addresses.end());
    } else if (dns::is_temporary(a.error())) {
        dns_problem = host + " A: " + a.error().message();
    }
    auto aaaa = co_await resolver_.aaaa(host);
    if (aaaa) {
        addresses.insert(addresses.end(), aaaa->addresses.begin(), aaaa->addresses.end());
    } else if (dns::is_temporary(aaaa.error()) && dns_problem.empty()) {
        dns_problem = host + " AAAA: " + aaaa.error().message();
    }
    if (addresses.empty()) {
        if (!dns_problem.empty()) co_return fail(MtaStsErrc::dns_failed, dns_problem);
        co_return fail(MtaStsErrc::no_address, host + " has no A or AAAA record");
    }

    TransferSpec spec;
    spec.options = options_;
    spec.ca_file = options_.ca_file.string();
    const std::string port = std::to_string(options_.port);
    spec.url = "https://" + host + (options_.port == 443 ? std::string() : ":" + port) + "/.well-known/mta-sts.txt";
    spec.resolve = host + ":" + port + ":";
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        const auto& addr = addresses[i];
        if (i) spec.resolve += ",";
        spec.resolve += addr.find(':') != std::string::npos ? "[" + addr + "]" : addr;
    }
    auto transfer = [&spec] { return run_transfer(spec); };
    auto result = co_await common::run_blocking<MtaStsFetchResult>(pool_, transfer);
    co_return result;
}

}  // namespace mailward::policy
