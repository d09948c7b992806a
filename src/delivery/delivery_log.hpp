// The delivery records: the structured delivery log (one JSON object per line per recipient per
// attempt, in <data_dir>/delivery.log: queue id, recipient, MX host and address, TLS facts, the
// required level and why, the result and the remote reply), and the one line per recipient and
// outcome in the main log that an operator greps (Postfix's "status=sent" line is the model):
//   QUEUEID: to=<rcpt>, relay=host[ip]:port, delay=1.2, tls=verify/TLSv1.3/CIPHER, status=sent (reply)
#pragma once

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>

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
};

// The line, untrusted values escaped (common::log_escape):
// "ID: to=<a@b>, relay=mx.b[192.0.2.1]:25, delay=0.42, tls=verify/TLSv1.3/TLS_AES_256_GCM_SHA384,
// status=sent (250 2.0.0 Ok)". tls=LEVEL/none: no TLS session; tls=none: no level decided.
std::string format_outcome(const OutcomeLine& o);

}  // namespace mailward::delivery
