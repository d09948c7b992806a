// TLS-RPT sending (RFC 8460 sections 3, 5.2 and 5.3): see send.hpp. A report is claimed in the
// store before it is sent, so it goes out at most once (a failed delivery is logged, not retried:
// the RFC makes reports best effort, section 5.4 asks senders not to retry indefinitely).
#include "tlsrpt/send.hpp"

#include <curl/curl.h>
#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <mutex>
#include <optional>
#include <spdlog/spdlog.h>

#include "common/blocking.hpp"
#include "common/ids.hpp"
#include "common/timefmt.hpp"
#include "common/wait_callback.hpp"
#include "config/config.hpp"
#include "dns/resolver.hpp"

namespace mailward::tlsrpt {
namespace {

using Clock = std::chrono::system_clock;

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        const auto p = s.find('\n', start);
        out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
        if (p == std::string::npos) break;
        start = p + 1;
    }
    return out;
}

CURLcode add_ca_file(CURL*, void* ssl_ctx, void* user) {
    const auto* file = static_cast<const std::string*>(user);
    if (SSL_CTX_load_verify_locations(static_cast<SSL_CTX*>(ssl_ctx), file->c_str(), nullptr) != 1) {
        return CURLE_SSL_CACERT_BADFILE;
    }
    return CURLE_OK;
}

std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }

struct PostSpec {
    std::string url;
    std::string resolve;  // "host:port:addr,...", "" for an address literal
    std::string ca_file;
    std::string body;
    SendOptions options;
};

// The blocking POST (pool): "" on a 2xx, else why not.
std::string post(const PostSpec& spec, long& status) {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
    if (!easy) return "curl_easy_init failed";
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve(
        spec.resolve.empty() ? nullptr : curl_slist_append(nullptr, spec.resolve.c_str()), curl_slist_free_all);
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
        curl_slist_append(nullptr, "Content-Type: application/tlsrpt+gzip"), curl_slist_free_all);
    char errbuf[CURL_ERROR_SIZE] = {};
    CURL* h = easy.get();
    curl_easy_setopt(h, CURLOPT_URL, spec.url.c_str());
    if (resolve) curl_easy_setopt(h, CURLOPT_RESOLVE, resolve.get());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
#if LIBCURL_VERSION_NUM >= 0x075700
    curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
    if (!spec.ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
        curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &spec.ca_file);
    }
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(spec.options.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(spec.options.total_timeout.count()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, spec.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(spec.body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mailward (TLS-RPT, RFC 8460)");
    const CURLcode code = curl_easy_perform(h);
    if (code != CURLE_OK) return errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(code));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return "HTTP " + std::to_string(status);
    return {};
}

std::once_flag curl_init_once;

// https://HOST[:PORT]/... -> host, port ("" when the URL has none).
bool split_url(const std::string& url, std::string& host, std::string& port) {
    const auto rest = url.substr(8);
    const auto end = rest.find_first_of("/?#");
    const std::string authority = rest.substr(0, end);
    if (authority.empty() || authority.find('@') != std::string::npos) return false;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string::npos) return false;
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return false;
            port = authority.substr(close + 2);
        }
        return true;
    }
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
    for (char c : port)
        if (c < '0' || c > '9') return false;
    return !host.empty();
}

bool is_ip_literal(const std::string& h) {
    if (h.find(':') != std::string::npos) return true;
    for (char c : h)
        if ((c < '0' || c > '9') && c != '.') return false;
    return true;
}

boost::asio::awaitable<std::string> send_https(dns::Resolver& resolver, boost::asio::thread_pool& pool,
                                               const SendOptions& o, const std::string& url, const std::string& gz) {
    std::string host, port;
    if (!split_url(url, host, port)) co_return "not a usable https URL";
    PostSpec spec;
    spec.url = url;
    spec.ca_file = o.ca_file.string();
    spec.body = gz;
    spec.options = o;
    if (!is_ip_literal(host)) {
        std::vector<std::string> addresses;
        auto a = co_await resolver.a(host);
        if (a) addresses.insert(addresses.end(), a->addresses.begin(), a->addresses.end());
        auto aaaa = co_await resolver.aaaa(host);
        if (aaaa) addresses.insert(addresses.end(), aaaa->addresses.begin(), aaaa->addresses.end());
        if (addresses.empty()) co_return host + " has no address";
        spec.resolve = host + ":" + (port.empty() ? "443" : port) + ":";
        for (std::size_t i = 0; i < addresses.size(); ++i) {
            const auto& addr = addresses[i];
            spec.resolve += (i ? "," : "") + (addr.find(':') != std::string::npos ? "[" + addr + "]" : addr);
        }
    }
    long status = 0;
    auto transfer = [&spec, &status] { return post(spec, status); };
    auto why = co_await common::run_blocking<std::string>(pool, transfer);
    if (why.empty()) co_return std::string();
    co_return why;
}

}  // namespace

SendOptions send_options(const config::Config& cfg) {
    SendOptions o;
    o.organization = config::tlsrpt_organization(cfg);
    o.contact = config::tlsrpt_contact(cfg);
    o.from = config::tlsrpt_from(cfg);
    const auto at = o.from.rfind('@');
    o.submitter = at == std::string::npos ? cfg.server.hostname : o.from.substr(at + 1);
    o.sender_mode = std::string(config::to_string(cfg.policy.default_mode));
    o.ca_file = cfg.delivery.ca_file;
    return o;
}

std::string utc_day(Clock::time_point t) {
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
    char day[16];
    std::snprintf(day, sizeof day, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()));
    return day;
}

std::map<std::string, std::vector<PolicySummary>> summarize(const std::vector<store::TlsRptCount>& rows) {
    std::map<std::string, std::vector<PolicySummary>> out;
    for (const auto& r : rows) {
        auto& list = out[r.policy_domain];
        const auto type = parse_policy_type(r.policy_type).value_or(PolicyType::no_policy_found);
        const auto strings = lines(r.policy_strings);
        const auto mx = lines(r.mx_hosts);
        PolicySummary* p = nullptr;
        for (auto& s : list)
            if (s.policy.type == type && s.policy.strings == strings && s.policy.mx_hosts == mx) p = &s;
        if (!p) {
            list.push_back({Policy{type, strings, r.policy_domain, mx}, 0, {}});
            p = &list.back();
        }
        if (r.result_type.empty()) {
            p->successes += static_cast<std::uint64_t>(r.count);
            continue;
        }
        const auto result = parse_result_type(r.result_type).value_or(ResultType::validation_failure);
        p->failures.push_back(
            {result, r.sending_ip, r.receiving_mx, r.receiving_ip, static_cast<std::uint64_t>(r.count)});
    }
    return out;
}

boost::asio::awaitable<std::vector<SendLine>> send_day(store::Store& st, dns::Resolver& resolver,
                                                       boost::asio::thread_pool& pool, SendOptions o, std::string day,
                                                       Clock::time_point now) {
    std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    std::vector<SendLine> out;
    const auto begin = day_start(day);
    if (!begin) {
        out.push_back({"", "not a day (YYYY-MM-DD): " + day, false, true});
        co_return out;
    }
    auto read = [&st, &day] { return st.policy().tlsrpt_day(day); };
    auto rows = co_await common::run_blocking<Result<std::vector<store::TlsRptCount>>>(pool, read);
    if (!rows) {
        out.push_back({"", "cannot read the counts of " + day + ": " + rows.error().message(), false, true});
        co_return out;
    }
    const auto domains = summarize(*rows);
    for (const auto& entry : domains) {
        const std::string& domain = entry.first;
        const std::vector<PolicySummary>& policies = entry.second;
        // One report id per (day, domain): a claim by another node or an earlier run wins.
        const std::string report_id = day + "." + domain + "@" + o.submitter;
        auto claim = [&st, &day, &domain, &report_id, now] {
            return st.policy().claim_tlsrpt(day, domain, report_id, now);
        };
        auto claimed = co_await common::run_blocking<Result<bool>>(pool, claim);
        if (!claimed) {
            out.push_back({domain, domain + ": cannot claim the report: " + claimed.error().message(), false, true});
            continue;
        }
        if (!*claimed) {
            out.push_back({domain, domain + ": already sent", false, false});
            continue;
        }
        auto txt = co_await resolver.txt("_smtp._tls." + domain);
        std::string detail;
        Result<std::vector<Rua>> ruas = common::Errc::not_found;
        if (!txt) {
            detail = "_smtp._tls." + domain + " TXT: " + txt.error().message();
        } else {
            ruas = parse_record(txt->texts, detail);
        }
        if (!ruas) {
            out.push_back({domain, domain + ": not sent: " + detail, false, false});
            continue;
        }
        const auto json = report_json({o.organization, o.contact, report_id, day}, policies);
        auto gz = gzip(json);
        if (!gz) {
            out.push_back({domain, domain + ": gzip failed", false, true});
            continue;
        }
        const std::string file = report_file_name(o.submitter, domain, *begin, *begin + 86400, report_id);
        for (const auto& rua : *ruas) {
            if (rua.scheme == Rua::Scheme::https) {
                auto why = co_await send_https(resolver, pool, o, rua.uri, *gz);
                if (why.empty()) {
                    out.push_back({domain, domain + ": sent to " + rua.uri, true, false});
                } else {
                    out.push_back({domain, domain + ": " + rua.uri + ": failed: " + why, false, true});
                }
                continue;
            }
            store::StoredMessage m;
            m.envelope.id = common::new_queue_id(now);
            m.envelope.sender = o.from;
            store::Recipient r;
            r.address = rua.address;
            r.next_attempt = now;
            m.envelope.recipients.push_back(std::move(r));
            m.envelope.body_type = store::BodyType::seven_bit;
            m.envelope.sender_mode = o.sender_mode;
            m.envelope.client_address = "127.0.0.1";
            m.envelope.client_helo = "tlsrpt";  // own mail (delivery/dkim_step.hpp is_own_mail)
            m.envelope.received_at = now;
            MailParts parts{o.from,
                            rua.address,
                            o.submitter,
                            domain,
                            report_id,
                            file,
                            common::rfc5322_date(now),
                            m.envelope.id + "." + report_id,
                            o.organization};
            m.body = report_mail(parts, *gz);
            const std::string qid = m.envelope.id;
            auto submit = [&st, &m] {
                return common::wait_callback<Result<void>>(
                    [&st, &m](auto done) { st.queue().submit(std::move(m), std::move(done)); });
            };
            auto r2 = co_await common::run_blocking<Result<void>>(pool, submit);
            if (r2) {
                out.push_back({domain, domain + ": sent to " + rua.uri + " (queue id " + qid + ")", true, false});
            } else {
                out.push_back(
                    {domain, domain + ": " + rua.uri + ": cannot queue: " + r2.error().message(), false, true});
            }
        }
    }
    co_return out;
}

struct DailySender::State {
    store::Store& st;
    dns::Resolver& resolver;
    boost::asio::thread_pool& pool;
    SendOptions options;
    unsigned send_hour;
    std::optional<boost::asio::steady_timer> timer;
    bool stopped = false;
    std::string done_day;  // the last day this process sent
};

namespace {

boost::asio::awaitable<void> daily_loop(std::shared_ptr<DailySender::State> s) {
    while (!s->stopped) {
        const auto now = Clock::now();
        const auto since_midnight = now - std::chrono::floor<std::chrono::days>(now);
        const std::string yesterday = utc_day(now - std::chrono::hours(24));
        if (since_midnight >= std::chrono::hours(s->send_hour) && s->done_day != yesterday) {
            auto lines = co_await send_day(s->st, s->resolver, s->pool, s->options, yesterday, now);
            for (const auto& l : lines) {
                if (l.failed) {
                    spdlog::warn("tlsrpt: {}: {}", yesterday, l.text);
                } else {
                    spdlog::info("tlsrpt: {}: {}", yesterday, l.text);
                }
            }
            s->done_day = yesterday;
            const std::string cut = utc_day(now - std::chrono::hours(24 * kRetentionDays));
            auto purge = [&s, &cut] { return s->st.policy().purge_tlsrpt(cut); };
            auto n = co_await common::run_blocking<Result<std::size_t>>(s->pool, purge);
            if (!n) spdlog::warn("tlsrpt: cannot purge the counts before {}: {}", cut, n.error().message());
        }
        if (s->stopped) break;
        s->timer->expires_after(DailySender::kCheckEvery);
        auto [ec] = co_await s->timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) break;
    }
}

}  // namespace

DailySender::DailySender(store::Store& st, dns::Resolver& resolver, boost::asio::thread_pool& pool, SendOptions options,
                         unsigned send_hour)
    : state_(
          std::make_shared<State>(State{st, resolver, pool, std::move(options), send_hour, std::nullopt, false, {}})) {}

DailySender::~DailySender() { stop(); }

void DailySender::start(boost::asio::any_io_executor ex) {
    state_->timer.emplace(ex);
    boost::asio::co_spawn(ex, daily_loop(state_), boost::asio::detached);
}

void DailySender::stop() {
    state_->stopped = true;
    if (state_->timer) state_->timer->cancel();
}

}  // namespace mailward::tlsrpt
