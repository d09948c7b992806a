// The names of the SMTP client's failure stages and refusals (for logs and reasons), and the
// connection pool's reuse key (smtp_client.hpp): pure functions of a session's inputs, kept apart
// from the session's I/O.
#include <algorithm>
#include <functional>

#include "outbound/smtp_client.hpp"

namespace mailward::outbound {

std::string_view to_string(Stage s) {
    switch (s) {
        case Stage::connect: return "connect";
        case Stage::greeting: return "greeting";
        case Stage::ehlo: return "EHLO";
        case Stage::starttls: return "STARTTLS";
        case Stage::tls_handshake: return "TLS handshake";
        case Stage::tls_policy: return "TLS policy";
        case Stage::auth: return "AUTH";
        case Stage::mail: return "MAIL FROM";
        case Stage::rcpt: return "RCPT TO";
        case Stage::data: return "DATA";
        case Stage::data_done: return "end of data";
        case Stage::quit: return "QUIT";
    }
    return "?";
}

std::string_view to_string(Refusal r) {
    switch (r) {
        case Refusal::none: return "none";
        case Refusal::size_exceeded: return "size exceeded";
        case Refusal::no_8bitmime: return "no 8BITMIME";
        case Refusal::no_smtputf8: return "no SMTPUTF8";
        case Refusal::no_requiretls: return "no REQUIRETLS";
        case Refusal::nul_octet: return "NUL octet";
    }
    return "?";
}

std::string reuse_key(const Target& t, bool requiretls) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::vector<std::string> tlsa;
    for (const auto& r : t.tlsa) {
        std::string x =
            std::to_string(r.usage) + " " + std::to_string(r.selector) + " " + std::to_string(r.matching_type) + " ";
        for (auto b : r.data) {
            x.push_back(kHex[b >> 4]);
            x.push_back(kHex[b & 15]);
        }
        tlsa.push_back(std::move(x));
    }
    std::sort(tlsa.begin(), tlsa.end());
    tlsa.erase(std::unique(tlsa.begin(), tlsa.end()), tlsa.end());
    std::vector<std::string> spki = t.known_spki;
    std::sort(spki.begin(), spki.end());
    spki.erase(std::unique(spki.begin(), spki.end()), spki.end());
    // Fields are separated by '|' and list items by ','; none of them can hold either.
    std::string k = t.address + "|" + std::to_string(t.port) + "|" + t.mx_host + "|" +
                    std::string(tls::to_string(t.level)) + "|" + t.helo_name +
                    "|requiretls=" + (requiretls ? "1" : "0") + "|tlsa=";
    for (const auto& x : tlsa) k += x + ",";
    k += "|spki=";
    for (const auto& x : spki) k += x + ",";
    // A session authenticated with one set of credentials is never handed to a route with other
    // ones (or none): the user and a hash of the password (the key is in memory only; a route
    // whose password was wrong must not ride on a session another route opened).
    k += "|bind=" + t.bind_address;
    k += "|auth=" + t.auth_user;
    if (!t.auth_user.empty()) k += "/" + std::to_string(std::hash<std::string>{}(t.auth_password));
    return k;
}

}  // namespace mailward::outbound
