// The outbound TLS client of the delivery engine: one context per process (system trust store plus
// [delivery] ca_file), per-connection setup for a required Level (SNI; TLS 1.2+ with forward-secret
// AEAD ciphers at encrypt and above; chain and host name checks at verify, RFC 6125 via
// SSL_set1_host; TLSA via OpenSSL's SSL_dane_* at dane, RFC 7672 usages 2 and 3), and the facts of
// every established session for the delivery log and the policy store. A context can be capped to
// one legacy protocol version for probes (mailward check reports TLS 1.0/1.1 still accepted).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "dns/resolver.hpp"
#include "tls/level.hpp"

namespace mailward::tls {

struct CertFacts {
    std::string subject;
    std::string issuer;
    std::string not_after;  // ISO 8601 UTC
    std::string key_type;   // "EC P-256", "RSA"
    int key_bits = 0;
};

struct PeerFacts {
    bool established = false;
    std::string protocol;  // "TLSv1.3"
    std::string cipher;    // "TLS_AES_256_GCM_SHA384"
    int cipher_bits = 0;
    bool forward_secret = false;
    bool aead = false;
    std::vector<CertFacts> chain;  // leaf first, as sent by the peer
    std::string spki_sha256;       // hex, of the leaf's SubjectPublicKeyInfo
    bool chain_valid = false;      // PKIX chain to a trusted root (whatever the level)
    bool name_matched = false;     // the leaf names the MX host (RFC 6125)
    std::string verify_error;      // OpenSSL's text when !chain_valid
    bool dane_checked = false;
    bool dane_matched = false;  // a usable TLSA record matched (RFC 7672)
};

struct ClientContext {
    std::shared_ptr<boost::asio::ssl::context> ctx;
};

// A cap on the protocol of every session of a context. A capped context offers exactly that one
// legacy version, at OpenSSL security level 0 (OpenSSL 3 refuses TLS 1.0/1.1 and their SHA-1
// signatures above it): for probes that ask whether a server still accepts it, never for delivery.
enum class ProtocolCap { none, tls1_0, tls1_1 };
std::string_view to_string(ProtocolCap cap);  // "TLSv1", "TLSv1.1" (as PeerFacts::protocol says), "none"

// Loads the system trust store and, when not empty, ca_file. error names the file on failure. With
// a cap, fails (Errc::unsupported, error says so) when this OpenSSL cannot offer that version.
Result<ClientContext> make_client_context(const std::filesystem::path& ca_file, std::string& error,
                                          ProtocolCap cap = ProtocolCap::none);

// Prepares ssl (an SSL*) before the handshake to mx_host at level: SNI, protocol floor, ciphers,
// host name check (verify), TLSA records (dane; records must come from a DNSSEC-secure answer).
// Verification never aborts the handshake: the facts are collected and meets() decides.
Result<void> prepare_client(void* ssl, Level level, const std::string& mx_host,
                            const std::vector<dns::TlsaRecord>& tlsa);

// Facts of the established session on ssl (an SSL*).
PeerFacts collect_facts(void* ssl);

// Whether facts satisfy level; when not, why says which requirement failed, for a person.
bool meets(Level level, const PeerFacts& facts, std::string& why);

}  // namespace mailward::tls
