// Builds the Received: header for submitted messages.
#include "server/received.hpp"

#include "common/timefmt.hpp"

namespace mailward::server {
namespace {

// Keeps a client-supplied HELO from breaking the header: printable ASCII only, bounded length.
std::string sanitize(const std::string& s) {
    std::string out;
    for (char c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u > 32 && u < 127 && c != '(' && c != ')' && c != '\\') out.push_back(c);
        else out.push_back('?');
        if (out.size() >= 255) break;
    }
    return out.empty() ? "unknown" : out;
}

}  // namespace

std::string received_header(const ReceivedInfo& info) {
    std::string proto = info.smtputf8 ? "UTF8SMTP" : (info.esmtp ? "ESMTP" : "SMTP");
    if (info.esmtp || info.smtputf8) {
        if (info.tls) proto += "S";
        if (info.authenticated) proto += "A";
    }
    std::string h;
    if (info.local) {
        // As Postfix's pickup: "by HOST (..., from userid N)", no from-domain and no protocol.
        h = "Received: by " + info.by_host + " (mailward, from uid " + std::to_string(info.local_uid) + " user " +
            sanitize(info.local_user) + ")\r\n\tid " + info.queue_id;
    } else {
        h = "Received: from " + sanitize(info.helo) + " ([" + info.client_address + "])\r\n";
        h += "\tby " + info.by_host + " (mailward) with " + proto + " id " + info.queue_id;
    }
    if (info.tls) {
        h += "\r\n\t(using " + info.tls_protocol + " with cipher " + info.tls_cipher + " (" +
             std::to_string(info.tls_bits) + "/" + std::to_string(info.tls_bits) + " bits))";
    }
    if (!info.single_recipient.empty()) h += "\r\n\tfor <" + info.single_recipient + ">";
    h += "; " + common::rfc5322_date(info.when) + "\r\n";
    return h;
}

}  // namespace mailward::server
