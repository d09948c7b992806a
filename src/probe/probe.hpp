// The TLS prober behind `mailward check DOMAIN`: every MX host and every address of a domain, in
// parallel with bounded time: STARTTLS offered (and an EHLO that looks tampered, e.g. the
// "250-XXXXXXXA" left by STARTTLS-stripping boxes), the TLS session's facts (protocol, cipher,
// chain, name, key, SPKI), TLSA records (secure answers only) and whether they match, each
// address's level, and the weakest host named; the verdict (the strongest level ALL hosts meet)
// is the planner's, policy::hosts_verdict() (RFC 7672, RFC 3207).
// Optionally also whether each address still accepts TLS 1.0 / 1.1 (RFC 8996 deprecates them),
// reported beside the level, never lowering it. Peers are untrusted; their answers are only facts.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hpp"
#include "outbound/smtp_client.hpp"
#include "tls/client.hpp"

namespace mailward::probe {

// The answer of one legacy-version probe: a fresh connection, EHLO, STARTTLS, and a handshake that
// offers only that version (tls::ProtocolCap). refused: the server ended the handshake; unknown:
// the probe could not tell (connection or STARTTLS failed, timed out, or this OpenSSL cannot offer
// the version) and detail says why.
enum class Legacy { not_probed, accepted, refused, unknown };
std::string_view to_string(Legacy l);

struct LegacyCheck {
    Legacy result = Legacy::not_probed;
    std::string detail;  // why unknown; the server's alert when refused
};

struct HostReport {
    std::string host;
    unsigned preference = 0;
    std::string address;
    bool connected = false;
    std::string error;  // why the probe could not finish, "" otherwise
    bool starttls_offered = false;
    bool ehlo_tampered = false;  // an EHLO keyword of X's where STARTTLS usually is
    std::vector<std::string> ehlo;
    tls::PeerFacts tls;
    bool tlsa_secure = false;  // TLSA records from a DNSSEC-secure answer
    std::size_t tlsa_records = 0;
    // Whether the address still accepts TLS 1.0 / TLS 1.1: a reported weakness, never part of the
    // level. Probed (ProbeOptions::legacy) with one more connection per version when STARTTLS is offered.
    LegacyCheck tls10, tls11;
    tls::Level level = tls::Level::none;  // the strongest level this address meets
    std::string why_not_higher;           // what stops the next level up
};

struct DomainReport {
    std::string domain;
    std::string error;  // routing failed (null MX, NXDOMAIN, DNS trouble)
    bool temporary_error = false;
    bool mx_secure = false;
    bool implicit_mx = false;
    std::vector<HostReport> hosts;
    std::string weakest;  // "host [address]" with the lowest level (verdict: policy::hosts_verdict)
};

struct ProbeOptions {
    unsigned short port = 25;
    std::string helo_name = "localhost";
    outbound::ClientTimeouts timeouts;
    bool dane = true;
    bool legacy = false;  // also probe whether TLS 1.0 and 1.1 are still accepted (mailward check)
};

// The legacy versions h accepts, as PeerFacts::protocol names them: {"TLSv1", "TLSv1.1"}.
std::vector<std::string> legacy_protocols(const HostReport& h);

boost::asio::awaitable<DomainReport> probe_domain(dns::Resolver& resolver, tls::ClientContext tls, std::string domain,
                                                  ProbeOptions opts);

}  // namespace mailward::probe
