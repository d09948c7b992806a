// The outbound SMTP client (RFC 5321), shared by the delivery engine and the prober: connect to
// one MX address, read the greeting, EHLO (HELO fallback), STARTTLS (RFC 3207) as the required
// tls::Level demands, then one or more mail transactions on the same connection (reuse), with
// PIPELINING (RFC 2920), SIZE (RFC 1870) checked before DATA, 8BITMIME (RFC 6152) and SMTPUTF8
// (RFC 6531) honoured, DSN parameters passed on (RFC 3461), per-recipient replies, and RFC 5321
// 4.5.3.2 timeouts. At encrypt or higher, no message byte is sent unless TLS was established and
// meets the level.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "dns/resolver.hpp"
#include "smtp/reply.hpp"
#include "store/store.hpp"
#include "tls/client.hpp"

namespace mailward::outbound {

struct ClientTimeouts {
    std::chrono::milliseconds connect{30000}, greeting{300000}, command{300000}, data_init{120000}, data_block{180000},
        data_done{600000};
};

struct Target {
    std::string mx_host;  // the MX name (for SNI, name checks, logs); for implicit MX, the domain
    std::string address;  // IP literal to connect to
    unsigned short port = 25;
    tls::Level level = tls::Level::may;
    std::vector<dns::TlsaRecord> tlsa;  // for dane: records from a secure answer
    std::string helo_name;              // our EHLO name ([server] hostname)
    // The leaf keys (SPKI SHA-256, hex) learned for this MX host (any of its addresses). When set, a session whose key
    // is none of them and whose certificate is not both chain-valid and naming the host fails with Stage::tls_policy
    // "certificate changed" before any MAIL: a new key that a valid chain does not explain may be an interceptor (a
    // renewed, valid certificate passes).
    std::vector<std::string> known_spki;
    // SASL AUTH (RFC 4954, PLAIN of RFC 4616 or LOGIN) after STARTTLS, for a smarthost route: sent
    // only inside a TLS session that met level; "" for none. Never logged.
    std::string auth_user;
    std::string auth_password;
    // The local address to connect from (of address's family); "" = the system's choice.
    std::string bind_address;
};

// The connection pool's key: every input of the checks a connection passed when it was opened
// (address, port, MX host name, required level, DANE TLSA set, learned keys, EHLO name) and the
// REQUIRETLS of the message. A pooled connection is reused only for a Target (and REQUIRETLS)
// with the same key, so a destination whose checks differ (another pinned key, a stricter level,
// other TLSA records) never gets a session that was opened under laxer ones. Lists are taken as
// sets (order does not matter).
std::string reuse_key(const Target& t, bool requiretls);

// Why a connection-level step failed. The delivery classifier turns these into outcomes.
enum class Stage {
    connect,
    greeting,
    ehlo,
    starttls,
    tls_handshake,
    tls_policy,
    auth,
    mail,
    rcpt,
    data,
    data_done,
    quit
};
std::string_view to_string(Stage s);

// What went wrong with TLS, set where the client finds it (none for every other failure).
enum class TlsFault {
    none,
    starttls_missing,     // the EHLO reply did not offer STARTTLS
    starttls_refused,     // STARTTLS answered with other than 220 (454 and the like)
    no_session,           // STARTTLS offered, but no TLS session came of it (I/O, handshake, injection)
    below_level,          // a TLS session (or its preparation) that does not meet the level
    certificate_changed,  // the known_spki check failed
};

// Why the client refused a transaction itself, before MAIL: what the peer announced (or the
// message) rules it out, and nothing of the message was sent. The delivery classifier gives each
// its status (RFC 3463); no reply is made up here.
enum class Refusal {
    none,
    size_exceeded,  // larger than the peer's SIZE (RFC 1870)
    no_8bitmime,    // an 8-bit message and no 8BITMIME (RFC 6152; no conversion to 7 bit)
    no_smtputf8,    // internationalized addresses and no SMTPUTF8 (RFC 6531)
    no_requiretls,  // REQUIRETLS and no TLS or no REQUIRETLS at the next hop (RFC 8689 4)
    nul_octet,      // the message holds a NUL octet (RFC 5321 2.3.8)
};
std::string_view to_string(Refusal r);

struct SessionError {
    Stage stage = Stage::connect;
    std::optional<smtp::Reply> reply;   // the server's reply when there was one
    error_code ec;                      // the local/network error when there was one
    std::string detail;                 // for a person: "STARTTLS not offered", "certificate name mismatch: ..."
    std::optional<tls::PeerFacts> tls;  // the session's TLS facts when a handshake completed
    std::string raw;                    // what was seen, verbatim, for incidents (EHLO lines, the reply)
    TlsFault tls_fault = TlsFault::none;
    Refusal refusal = Refusal::none;  // refused here before MAIL (stage mail, no reply, nothing sent)
    std::string local_address;        // our address of the connection ("" when none was made; TLS-RPT)
};

struct RecipientResult {
    std::size_t index = 0;  // index into Envelope::recipients
    smtp::Reply reply;      // RCPT reply, or the DATA reply for accepted recipients
    bool accepted = false;  // RCPT 2xx and final DATA 2xx
};

struct TransactionResult {
    std::optional<SessionError> error;  // transaction- or connection-level failure (e.g. MAIL 5xx, DATA 4xx)
    std::vector<RecipientResult> recipients;
    bool connection_usable = true;  // false: do not reuse this connection
};

class SmtpClient {
  public:
    virtual ~SmtpClient() = default;

    // Connects and completes greeting, EHLO and (as the level demands) STARTTLS + EHLO again.
    // Fails with a SessionError (no message sent) when the level cannot be met.
    static boost::asio::awaitable<std::pair<std::unique_ptr<SmtpClient>, std::optional<SessionError>>> connect(
        boost::asio::any_io_executor ex, Target target, tls::ClientContext tls, ClientTimeouts timeouts);

    // One transaction for the given recipients (indexes into env.recipients) of env with body.
    virtual boost::asio::awaitable<TransactionResult> send(const store::Envelope& env,
                                                           std::vector<std::size_t> recipients,
                                                           const std::string& body) = 0;
    virtual boost::asio::awaitable<void> quit() = 0;

    virtual const tls::PeerFacts& tls_facts() const = 0;  // established=false when plaintext
    virtual const Target& target() const = 0;
    virtual const std::vector<std::string>& ehlo_lines() const = 0;  // keywords after TLS if any
    virtual bool starttls_offered() const = 0;                       // in the first (plaintext) EHLO
    // The session's (last) EHLO offered DSN (RFC 3461): NOTIFY and friends were passed on, and the
    // next hop reports success itself.
    virtual bool offers_dsn() const = 0;
    virtual std::string local_address() const { return {}; }  // our address of the connection
};

}  // namespace mailward::outbound
