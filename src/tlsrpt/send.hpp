// TLS-RPT (RFC 8460) sending: once a day (serve) or on demand (`mailward tlsrpt send --now`), for
// each recipient domain with counts of a UTC day: claim the report in the store (each (day, domain)
// goes out once, whichever node or run asks first), look up `_smtp._tls.<domain>` TXT through
// mailward's resolver (section 3), build the JSON report (section 4.4), gzip it and deliver it to
// every rua: mailto: as a message queued into mailward's own queue (section 5.3; delivered under
// the Forced TLS rules and DKIM-signed as mailward's own mail), https: as a POST of
// application/tlsrpt+gzip with libcurl (section 5.2; the host resolved by mailward's resolver and
// pinned, the server certificate verified, a timeout).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "tlsrpt/tlsrpt.hpp"

namespace boost::asio {
class thread_pool;
}
namespace mailward::dns {
class Resolver;
}

namespace mailward::tlsrpt {

struct SendOptions {
    std::string organization;       // organization-name
    std::string contact;            // contact-info
    std::string from;               // From and envelope sender of the report mails
    std::string submitter;          // the submitter's domain (Subject, TLS-Report-Submitter, file name)
    std::string sender_mode;        // the queued report mails' sender mode ([policy] default_mode)
    std::filesystem::path ca_file;  // extra trust anchors for https: ([delivery] ca_file)
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds total_timeout{60'000};
};

// The rows of one day, per policy domain (domain order), as the report's policies.
std::map<std::string, std::vector<PolicySummary>> summarize(const std::vector<store::TlsRptCount>& rows);

// One line per domain and destination, for the log and the CLI:
//   "a.example: sent to mailto:r@x.example (queue id ...)", "b.example: sent to https://... (HTTP 200)",
//   "c.example: already sent", "d.example: not sent: no _smtp._tls record", "e.example: https://...: failed: ..."
struct SendLine {
    std::string domain;
    std::string text;
    bool sent = false;
    bool failed = false;
};

// Sends the reports of day (YYYY-MM-DD). Store calls and curl run on pool; DNS on the caller's
// executor. Never throws.
boost::asio::awaitable<std::vector<SendLine>> send_day(store::Store& st, dns::Resolver& resolver,
                                                       boost::asio::thread_pool& pool, SendOptions options,
                                                       std::string day, std::chrono::system_clock::time_point now);

// How long counts and claims are kept: days before now minus this are purged by the daily run.
inline constexpr int kRetentionDays = 14;

// YYYY-MM-DD of t (UTC), and of the day before.
std::string utc_day(std::chrono::system_clock::time_point t);

}  // namespace mailward::tlsrpt

namespace mailward::config {
struct Config;
}
namespace mailward::tlsrpt {
// [tlsrpt] and its defaults ([server] hostname), [delivery] ca_file and [policy] default_mode.
SendOptions send_options(const config::Config& cfg);
}  // namespace mailward::tlsrpt

namespace mailward::tlsrpt {
// serve's daily run: every kCheckEvery, once the UTC hour is send_hour or later, sends the previous
// day's reports (the store's claims keep a restart or another node from sending them again) and
// purges the days older than kRetentionDays. Each line is logged. start() and stop() on one thread.
class DailySender {
  public:
    static constexpr std::chrono::minutes kCheckEvery{10};
    DailySender(store::Store& st, dns::Resolver& resolver, boost::asio::thread_pool& pool, SendOptions options,
                unsigned send_hour);
    ~DailySender();
    void start(boost::asio::any_io_executor ex);
    void stop();
    struct State;  // the loop's (send.cpp)

  private:
    std::shared_ptr<State> state_;
};
}  // namespace mailward::tlsrpt
