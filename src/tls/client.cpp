// The outbound TLS client: context, per-connection setup for a required level, session facts and
// the level check. Verification never aborts a handshake (the callback records, meets() decides),
// so every connection's facts can be logged and learned, whatever the level. A context capped to a
// legacy version (probes only) runs at OpenSSL security level 0.
// RFC 6125 (host names via SSL_set1_host), RFC 7672 (DANE for SMTP: usages 2 and 3 only).
#include "tls/client.hpp"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>

#include "tls/openssl_error.hpp"

namespace mailward::tls {
namespace {

// TLS 1.2 suites allowed at encrypt and above: (EC)DHE key exchange with AEAD ciphers only.
constexpr const char* kStrongTls12 =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256";

using detail::openssl_error;

// Per-connection verification record, in two ex_data slots of the SSL (integers, no allocation):
// the first chain error, and whether the host name check failed. The final verify result alone
// cannot separate them: with every error accepted, a later name mismatch would hide a bad chain.
int chain_error_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}
int dane_enabled_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}
int name_error_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

// Records and accepts, so that the handshake completes and meets() decides with all the facts.
int accept_and_record(int preverify_ok, X509_STORE_CTX* ctx) {
    if (preverify_ok) return 1;
    SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (!ssl) return 1;
    const int err = X509_STORE_CTX_get_error(ctx);
    if (err == X509_V_ERR_HOSTNAME_MISMATCH) {
        SSL_set_ex_data(ssl, name_error_index(), reinterpret_cast<void*>(static_cast<intptr_t>(1)));
    } else if (SSL_get_ex_data(ssl, chain_error_index()) == nullptr) {
        SSL_set_ex_data(ssl, chain_error_index(), reinterpret_cast<void*>(static_cast<intptr_t>(err)));
    }
    return 1;
}

std::string name_text(const X509_NAME* n) {
    if (!n) return {};
    char buf[512];
    X509_NAME_oneline(n, buf, sizeof buf);
    return buf;
}

std::string asn1_time_iso(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

CertFacts cert_facts(X509* cert) {
    CertFacts f;
    f.subject = name_text(X509_get_subject_name(cert));
    f.issuer = name_text(X509_get_issuer_name(cert));
    f.not_after = asn1_time_iso(X509_get0_notAfter(cert));
    if (EVP_PKEY* key = X509_get0_pubkey(cert)) {
        f.key_bits = EVP_PKEY_get_bits(key);
        switch (EVP_PKEY_get_base_id(key)) {
            case EVP_PKEY_RSA: f.key_type = "RSA"; break;
            case EVP_PKEY_EC: {
                char group[64] = {0};
                std::size_t len = 0;
                EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len);
                // "prime256v1" -> "P-256" where the curve has a NIST name.
                const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group));
                f.key_type = std::string("EC ") + (nist ? nist : group);
                break;
            }
            case EVP_PKEY_ED25519: f.key_type = "Ed25519"; break;
            default: f.key_type = "other"; break;
        }
    }
    return f;
}

std::string spki_sha256_hex(X509* cert) {
    unsigned char* der = nullptr;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len <= 0) return {};
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_Digest(der, static_cast<std::size_t>(len), md, &md_len, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    std::string hex;
    char b[3];
    for (unsigned i = 0; i < md_len; ++i) {
        std::snprintf(b, sizeof b, "%02x", md[i]);
        hex += b;
    }
    return hex;
}

// PKIX validation of the peer's chain against the context's trust store, without DANE and without
// a name: with DANE enabled, SSL_get_verify_result() reports DANE's verdict, not this one.
long pkix_verify(SSL* ssl, X509* leaf) {
    X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    if (!store || !ctx) {
        X509_STORE_CTX_free(ctx);
        return X509_V_ERR_UNSPECIFIED;
    }
    long result = X509_V_ERR_UNSPECIFIED;
    if (X509_STORE_CTX_init(ctx, store, leaf, SSL_get_peer_cert_chain(ssl)) == 1) {
        X509_STORE_CTX_set_default(ctx, "ssl_server");
        result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    return result;
}

// Exactly one legacy version at security level 0 (the level in the cipher string too: OpenSSL
// applies the last one set). Checked by asking OpenSSL which ciphers a session could offer: none
// means this build or its configuration cannot speak that version, and the probe says "unknown".
bool cap_protocol(SSL_CTX* raw, ProtocolCap cap, std::string& error) {
    const int version = cap == ProtocolCap::tls1_0 ? TLS1_VERSION : TLS1_1_VERSION;
    SSL_CTX_set_security_level(raw, 0);
    if (SSL_CTX_set_cipher_list(raw, "DEFAULT:@SECLEVEL=0") != 1 || SSL_CTX_set_min_proto_version(raw, version) != 1 ||
        SSL_CTX_set_max_proto_version(raw, version) != 1) {
        error = "this OpenSSL cannot be limited to " + std::string(to_string(cap)) + ": " + openssl_error();
        return false;
    }
    SSL* ssl = SSL_new(raw);
    STACK_OF(SSL_CIPHER)* usable = ssl ? SSL_get1_supported_ciphers(ssl) : nullptr;
    const bool ok = usable && sk_SSL_CIPHER_num(usable) > 0;
    sk_SSL_CIPHER_free(usable);
    SSL_free(ssl);
    ERR_clear_error();
    if (!ok) error = "this OpenSSL cannot offer " + std::string(to_string(cap));
    return ok;
}

}  // namespace

std::string_view to_string(ProtocolCap cap) {
    switch (cap) {
        case ProtocolCap::tls1_0: return "TLSv1";
        case ProtocolCap::tls1_1: return "TLSv1.1";
        case ProtocolCap::none: break;
    }
    return "none";
}

Result<ClientContext> make_client_context(const std::filesystem::path& ca_file, std::string& error, ProtocolCap cap) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* raw = ctx->native_handle();
    SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_default_verify_paths(raw) != 1) {
        error = "cannot load the system trust store: " + openssl_error();
        return common::Errc::invalid_argument;
    }
    if (!ca_file.empty() && SSL_CTX_load_verify_locations(raw, ca_file.c_str(), nullptr) != 1) {
        error = ca_file.string() + ": cannot load CA certificates: " + openssl_error();
        return common::Errc::invalid_argument;
    }
    if (SSL_CTX_dane_enable(raw) <= 0) {
        error = "OpenSSL DANE support could not be enabled: " + openssl_error();
        return common::Errc::unsupported;
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, accept_and_record);
    // No session cache: mailward never resumes a session (it sets none on a connection), and a
    // client cache would keep every TLS 1.3 ticket's session, with the peer's chain, up to 20480 of
    // them until they expire, in serve's one long-lived context (tests/unit/tls/session_cache_test.cpp).
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
    if (cap != ProtocolCap::none && !cap_protocol(raw, cap, error)) return common::Errc::unsupported;
    return ClientContext{ctx};
}

Result<void> prepare_client(void* ssl_ptr, Level level, const std::string& mx_host,
                            const std::vector<dns::TlsaRecord>& tlsa) {
    SSL* ssl = static_cast<SSL*>(ssl_ptr);
    if (!mx_host.empty() && mx_host.front() != '[') SSL_set_tlsext_host_name(ssl, mx_host.c_str());
    if (level >= Level::encrypt) {
        SSL_set_min_proto_version(ssl, TLS1_2_VERSION);
        if (SSL_set_cipher_list(ssl, kStrongTls12) != 1) return common::Errc::unsupported;
    }
    if (level == Level::dane) {
        // RFC 7672: the reference identifiers are the MX host (and the TLSA base domain); with
        // DANE-EE(3) no name check applies (DANE_FLAG_NO_DANE_EE_NAMECHECKS).
        if (SSL_dane_enable(ssl, mx_host.c_str()) <= 0) return common::Errc::unsupported;
        SSL_set_ex_data(ssl, dane_enabled_index(), reinterpret_cast<void*>(static_cast<intptr_t>(1)));
        SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
        int usable = 0;
        for (const auto& r : tlsa) {
            if (r.usage != 2 && r.usage != 3) continue;  // RFC 7672 3.1.3: PKIX usages are not used
            int rc = SSL_dane_tlsa_add(ssl, r.usage, r.selector, r.matching_type, r.data.data(), r.data.size());
            if (rc > 0) ++usable;
        }
        if (usable == 0) return common::Errc::invalid_argument;  // no usable record: DANE cannot pass
    } else {
        // The chain and name are always checked and recorded; only the level decides if they matter.
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (!mx_host.empty() && mx_host.front() != '[') SSL_set1_host(ssl, mx_host.c_str());
    }
    return {};
}

PeerFacts collect_facts(void* ssl_ptr) {
    SSL* ssl = static_cast<SSL*>(ssl_ptr);
    PeerFacts f;
    if (!ssl || !SSL_is_init_finished(ssl)) return f;
    f.established = true;
    f.protocol = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        f.cipher = SSL_CIPHER_get_name(c);
        f.cipher_bits = SSL_CIPHER_get_bits(c, nullptr);
        f.aead = SSL_CIPHER_is_aead(c) == 1;
        const int kx = SSL_CIPHER_get_kx_nid(c);
        f.forward_secret = SSL_version(ssl) >= TLS1_3_VERSION || kx == NID_kx_ecdhe || kx == NID_kx_dhe;
    }
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
        for (int i = 0; i < sk_X509_num(chain); ++i) f.chain.push_back(cert_facts(sk_X509_value(chain, i)));
    }
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (leaf) f.spki_sha256 = spki_sha256_hex(leaf);
    const long vr = SSL_get_verify_result(ssl);
    // SSL_get0_dane() is set whenever the context enabled DANE; only our flag says this SSL used it.
    f.dane_checked = SSL_get_ex_data(ssl, dane_enabled_index()) != nullptr;
    const bool dane = f.dane_checked && SSL_get0_dane_authority(ssl, nullptr, nullptr) != -1;
    f.dane_matched = dane && vr == X509_V_OK;
    if (f.dane_checked) {
        // The handshake's verify result is DANE's verdict. PKIX validity and the name are facts
        // too (the probe reports them; the policy store learns from them): checked on their own.
        if (leaf) {
            const long pkix = pkix_verify(ssl, leaf);
            f.chain_valid = pkix == X509_V_OK;
            const char* host = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);  // set by SSL_dane_enable
            f.name_matched = host && X509_check_host(leaf, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
            if (!f.chain_valid) f.verify_error = X509_verify_cert_error_string(pkix);
        }
        // What was asked (DANE) explains a failure first.
        if (!f.dane_matched) {
            f.verify_error = std::string("DANE: ") +
                             (vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "no usable TLSA record matched");
        }
        return f;
    }
    const auto chain_err = static_cast<long>(reinterpret_cast<intptr_t>(SSL_get_ex_data(ssl, chain_error_index())));
    const bool name_err = SSL_get_ex_data(ssl, name_error_index()) != nullptr;
    const bool host_set = SSL_get0_param(ssl) && X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0) != nullptr;
    f.chain_valid = leaf != nullptr && chain_err == 0;
    f.name_matched = leaf != nullptr && host_set && !name_err;
    if (chain_err != 0) {
        f.verify_error = X509_verify_cert_error_string(chain_err);
    } else if (name_err) {
        f.verify_error = X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH);
    }
    return f;
}

bool meets(Level level, const PeerFacts& f, std::string& why) {
    if (level <= Level::may) return true;
    if (!f.established) {
        why = "no TLS session";
        return false;
    }
    if (f.protocol != "TLSv1.2" && f.protocol != "TLSv1.3") {
        why = "protocol " + f.protocol + " is older than TLS 1.2";
        return false;
    }
    if (!f.forward_secret || !f.aead) {
        why = "cipher " + f.cipher + " is not a forward-secret AEAD cipher";
        return false;
    }
    if (level == Level::encrypt) return true;
    if (level == Level::dane) {
        if (!f.dane_matched) {
            why = "no TLSA record matches the server's certificate" +
                  (f.verify_error.empty() ? std::string() : " (" + f.verify_error + ")");
            return false;
        }
        return true;
    }
    if (!f.chain_valid) {
        why = "certificate chain not trusted: " + f.verify_error;
        return false;
    }
    if (!f.name_matched) {
        why = "certificate does not name the MX host";
        return false;
    }
    return true;
}

}  // namespace mailward::tls
