// Certificates for tests, made at test time with OpenSSL 3: a throwaway CA that issues EC or RSA
// leaf certificates, self-signed certificates, SPKI/certificate digests for TLSA records, and a
// server SSL_CTX built from PEM text. Test-only; nothing here is hardened.
#pragma once

#include "temp_dir.hpp"

#include <openssl/ssl.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace mailward::testing {

struct PemPair {
    std::string chain;  // PEM certificates, leaf first
    std::string key;    // PEM private key of the leaf
};

enum class KeyKind { ec_p256, rsa_2048 };

class TestCa {
  public:
    explicit TestCa(const std::string& name = "mailward test CA");
    ~TestCa();
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    const std::string& cert_pem() const { return cert_pem_; }
    // A leaf for names (the first is also the CN) signed by this CA; with_ca appends the CA
    // certificate to the chain (as servers do for DANE-TA).
    PemPair issue(const std::vector<std::string>& names, KeyKind kind = KeyKind::ec_p256, bool with_ca = false) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string cert_pem_;
};

// A self-signed EC certificate naming name (CN and subjectAltName).
PemPair self_signed(const std::string& name);

// SHA-256 of the first certificate's SubjectPublicKeyInfo (TLSA x 1 1) or of the whole
// certificate (TLSA x 0 1), from PEM.
std::vector<std::uint8_t> spki_sha256(const std::string& cert_pem);
std::vector<std::uint8_t> cert_sha256(const std::string& cert_pem);
std::string hex(const std::vector<std::uint8_t>& bytes);

// A TLS server context for pair; ciphers/max_version restrict it when not empty/0.
struct SslCtxFree {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
using ServerCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;
ServerCtx make_server_ctx(const PemPair& pair, const std::string& tls12_ciphers = "", int max_version = 0);

using TempDir = mailward::test::TempDir;

}  // namespace mailward::testing
