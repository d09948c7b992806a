// The TLS context of mailward's own listeners (submission STARTTLS and implicit TLS, RFC 8314;
// later the escrow portal): TLS 1.2 or newer, forward-secret AEAD ciphers only, server cipher
// preference, no compression, no renegotiation. Also the TLS facts of an established session.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace mailward::tls {

// Loads the certificate chain (PEM, leaf first) and private key. Errors name the file.
Result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(const std::filesystem::path& cert_chain,
                                                                       const std::filesystem::path& key,
                                                                       std::string& error);

struct SessionFacts {
    std::string protocol;  // "TLSv1.3"
    std::string cipher;    // "TLS_AES_256_GCM_SHA384"
    int bits = 0;
};

// Facts of an established session (ssl is an SSL*; void* keeps OpenSSL out of this header).
SessionFacts session_facts(const void* ssl);

}  // namespace mailward::tls
