// The TLS prober behind `mailward check DOMAIN`: every MX host and every address of a domain, in
// parallel with bounded time: STARTTLS offered (and an EHLO that looks tampered, e.g. the
// "250-XXXXXXXA" left by STARTTLS-stripping boxes), the TLS session's facts (protocol, cipher,
// chain, name, key, SPKI), TLSA records (secure answers only) and whether they match. The verdict
// is the strongest level that ALL hosts meet, with the weakest host named (RFC 7672, RFC 3207).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "delivery/smtp_client.hpp"
#include "dns/resolver.hpp"
#include "tls/client.hpp"

namespace mailward::probe {

struct HostReport {
    std::string host;
    unsigned preference = 0;
    std::string address;
    bool connected = false;
    std::string error;                    // why the probe could not finish, "" otherwise
    bool starttls_offered = false;
    bool ehlo_tampered = false;           // an EHLO keyword of X's where STARTTLS usually is
    std::vector<std::string> ehlo;
    tls::PeerFacts tls;
    bool tlsa_secure = false;             // TLSA records from a DNSSEC-secure answer
    std::size_t tlsa_records = 0;
    tls::Level level = tls::Level::none;  // the strongest level this address meets
    std::string why_not_higher;           // what stops the next level up
};

struct DomainReport {
    std::string domain;
    std::string error;                    // routing failed (null MX, NXDOMAIN, DNS trouble)
    bool temporary_error = false;
    bool mx_secure = false;
    bool implicit_mx = false;
    std::vector<HostReport> hosts;
    tls::Level verdict = tls::Level::none;  // strongest level every host meets
    std::string weakest;                  // "host [address]" that sets the verdict
    bool tls_capable() const { return error.empty() && verdict >= tls::Level::encrypt; }
};

struct ProbeOptions {
    unsigned short port = 25;
    std::string helo_name = "localhost";
    delivery::ClientTimeouts timeouts;
    bool dane = true;
};

boost::asio::awaitable<DomainReport> probe_domain(dns::Resolver& resolver, tls::ClientContext tls, std::string domain,
                                                  ProbeOptions opts);

}  // namespace mailward::probe
