// The trace header mailward prepends on submission (RFC 5321 4.4, RFC 5322 3.6.7), naming the
// protocol as in RFC 3848 / RFC 6531 (ESMTP, ESMTPS, ESMTPSA, UTF8SMTPSA, ...) and the TLS used.
#pragma once

#include <chrono>
#include <string>

namespace mailward::server {

struct ReceivedInfo {
    std::string helo;            // what the client said in EHLO/HELO
    std::string client_address;  // IP literal
    std::string by_host;         // our hostname
    std::string queue_id;
    bool esmtp = true;
    bool tls = false;
    bool authenticated = false;
    bool smtputf8 = false;
    std::string tls_protocol;  // "TLSv1.3"
    std::string tls_cipher;
    int tls_bits = 0;
    bool local = false;  // from a local program over the [sendmail] socket: no HELO, no address
    unsigned local_uid = 0;
    std::string local_user;
    std::string single_recipient;  // "for <...>" only when there is exactly one
    std::chrono::system_clock::time_point when;
};

// The complete header field, folded, ending in CRLF.
std::string received_header(const ReceivedInfo& info);

}  // namespace mailward::server
