// Server TLS context: modern protocol floor and cipher policy, certificate loading with errors
// that name the file.
#include "tls/server_context.hpp"

#include <openssl/err.h>

#include "tls/openssl_error.hpp"
#include <openssl/ssl.h>

namespace mailward::tls {
namespace {

using detail::openssl_error;

// TLS 1.2 suites: ECDHE/DHE with AEAD only. TLS 1.3 suites are all AEAD and forward secret.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256";

}  // namespace

Result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(const std::filesystem::path& cert_chain,
                                                                       const std::filesystem::path& key,
                                                                       std::string& error) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* raw = ctx->native_handle();
    SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
    SSL_CTX_set_options(
        raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    SSL_CTX_set_cipher_list(raw, kTls12Ciphers);
    SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_SERVER);
    const unsigned char sid[] = "mailward";
    SSL_CTX_set_session_id_context(raw, sid, sizeof sid - 1);
    if (SSL_CTX_use_certificate_chain_file(raw, cert_chain.c_str()) != 1) {
        error = cert_chain.string() + ": cannot load certificate chain: " + openssl_error();
        return common::Errc::invalid_argument;
    }
    if (SSL_CTX_use_PrivateKey_file(raw, key.c_str(), SSL_FILETYPE_PEM) != 1) {
        error = key.string() + ": cannot load private key: " + openssl_error();
        return common::Errc::invalid_argument;
    }
    if (SSL_CTX_check_private_key(raw) != 1) {
        error = key.string() + ": private key does not match certificate " + cert_chain.string();
        return common::Errc::invalid_argument;
    }
    return ctx;
}

SessionFacts session_facts(const void* ssl_ptr) {
    const SSL* ssl = static_cast<const SSL*>(ssl_ptr);
    SessionFacts f;
    if (!ssl) return f;
    f.protocol = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        f.cipher = SSL_CIPHER_get_name(c);
        f.bits = SSL_CIPHER_get_bits(c, nullptr);
    }
    return f;
}

}  // namespace mailward::tls
