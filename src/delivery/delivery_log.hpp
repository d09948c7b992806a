// The delivery records: the structured delivery log (one JSON object per line per recipient per
// attempt, in <data_dir>/delivery.log: queue id, recipient, MX host and address, TLS facts, the
// required level and why, the result and the remote reply), and the one line per recipient and
// outcome in the main log that an operator greps (Postfix's "status=sent" line is the model):
//   QUEUEID: to=<rcpt>, relay=host[ip]:port, delay=1.2, tls=verify/TLSv1.3/CIPHER, status=sent (reply)
// A routed recipient's lines name the [[delivery.routes]] entry used ("route"; absent otherwise).
// The reader below is the one scanner of the delivery log (`policy simulate`, `report`, `queue show`).
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <istream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "tls/level.hpp"

namespace mailward::delivery {

class DeliveryLog {
  public:
    DeliveryLog() = default;
    ~DeliveryLog();
    DeliveryLog(const DeliveryLog&) = delete;
    DeliveryLog& operator=(const DeliveryLog&) = delete;

    // Appends to path (created 0600). False if it cannot be opened (lines then go to the error log).
    bool open(const std::filesystem::path& path);
    // Writes one line (a serialized JSON object without newline) and flushes it.
    void write(const std::string& json_line);

  private:
    std::mutex mu_;
    std::FILE* f_ = nullptr;
};

// One line of the delivery log: one recipient's attempt.
struct AttemptLine {
    std::chrono::system_clock::time_point time{};
    std::string queue_id;
    std::string recipient;
    std::string route;  // the [[delivery.routes]] name used; "" when none applied (key left out)
    std::string mx;     // the host tried, "" when none was
    std::string address;
    tls::Level required_level = tls::Level::may;
    std::vector<std::string> level_reasons;
    nlohmann::json tls;  // the session's TLS facts, null without a TLS session
    std::string result;  // delivered, deferred, ...
    std::string status;  // the enhanced status code
    std::string reply;   // the remote reply
    std::string reason;
};

// The line as written (serialized JSON, no newline; invalid UTF-8 replaced).
std::string format_attempt(const AttemptLine& a);

// One recipient's outcome, as the main log's line says it.
struct OutcomeLine {
    std::string queue_id;
    std::string recipient;
    std::string relay_host;     // "" when no host was tried (relay=none)
    std::string relay_address;  // "" when the host had no address tried
    unsigned short port = 25;
    double delay_seconds = 0;  // since the message was received
    std::string level;         // the TLS level required ("none", "may", ... "dane"); "" unknown
    std::string tls_version;   // "TLSv1.3"; "" when no TLS session was made
    std::string tls_cipher;
    std::string status;  // sent, deferred, bounced, escrowed, held
    std::string text;    // the remote reply (sent) or the reason (every other status)
    std::string route;   // the [[delivery.routes]] name used; "" when none applied
};

// The line, untrusted values escaped (common::log_escape):
// "ID: to=<a@b>, relay=mx.b[192.0.2.1]:25, delay=0.42, tls=verify/TLSv1.3/TLS_AES_256_GCM_SHA384,
// status=sent (250 2.0.0 Ok)"; a routed recipient has ", route=NAME" after relay. tls=LEVEL/none: no TLS session;
// tls=none: no level decided.
std::string format_outcome(const OutcomeLine& o);

// ---- reading the delivery log ----

// One line of the delivery log as a reader needs it (the fields DeliveryLog's writer puts there).
struct LogEntry {
    std::chrono::system_clock::time_point time{};
    std::string queue_id;
    std::string recipient;
    std::string domain;  // the recipient's domain, lower case
    std::string route;   // the [[delivery.routes]] name the attempt used, "" when none
    std::string mx;      // the MX host tried, "" when none was (policy held, routing failed)
    std::string result;  // delivered, deferred, bounced, deferred-tls-policy, awaiting-escrow, loop, ...
    nlohmann::json tls;  // the session's TLS facts, null without a TLS session
    // The level the MX host showed, when the line tells: a TLS session (its facts), a plaintext
    // delivery or a TLS policy failure at a host (no TLS). Connection failures tell nothing.
    std::optional<tls::Level> level_seen;
};

// One line; nullopt unless it is a JSON object with an ISO 8601 "time" and a "recipient" that has
// a domain.
std::optional<LogEntry> parse_log_line(std::string_view text);

struct LogScan {
    std::size_t lines = 0;    // lines read (blank ones not counted)
    std::size_t skipped = 0;  // lines parse_log_line() refused
    std::size_t before = 0;   // readable lines older than the window
};

// Calls each for every readable line at or after from, in file order. io_error when the stream
// fails (not at its end).
Result<LogScan> read_log(std::istream& in, std::chrono::system_clock::time_point from,
                         const std::function<void(const LogEntry&)>& each);
// The same for a file: an absent file is an empty log (nothing delivered yet); one that cannot be
// read (no permission, a directory) is io_error.
Result<LogScan> read_log(const std::filesystem::path& path, std::chrono::system_clock::time_point from,
                         const std::function<void(const LogEntry&)>& each);

}  // namespace mailward::delivery
