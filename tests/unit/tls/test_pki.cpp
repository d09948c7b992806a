// Test certificates with OpenSSL 3 (EVP_EC_gen / EVP_RSA_gen, the X509 builder): see test_pki.hpp.
// Failures abort the test run: a test without its certificates cannot mean anything.
#include "test_pki.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "tls/certs.hpp"

namespace mailward::testing {
namespace {

struct Free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(BIO* p) const { BIO_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Free>;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "test_pki: %s failed\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) die(what);
}

Ptr<EVP_PKEY> new_key(KeyKind kind) {
    Ptr<EVP_PKEY> key(kind == KeyKind::ec_p256 ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048));
    check(key != nullptr, "key generation");
    return key;
}

void set_serial(X509* cert) {
    unsigned char serial[12];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr && X509_add_ext(cert, ext, -1) == 1, "certificate extension");
    X509_EXTENSION_free(ext);
}

Ptr<X509> new_cert(const std::string& cn, EVP_PKEY* key) {
    Ptr<X509> cert(X509_new());
    X509_set_version(cert.get(), 2);
    set_serial(cert.get());
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 30);
    X509_set_pubkey(cert.get(), key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    return cert;
}

std::string to_pem(X509* cert) {
    Ptr<BIO> bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string key_pem(EVP_PKEY* key) {
    Ptr<BIO> bio(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM key");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

Ptr<X509> first_cert(const std::string& pem) {
    Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Ptr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    check(cert != nullptr, "PEM_read_bio_X509");
    return cert;
}

std::vector<std::uint8_t> sha256(const unsigned char* der, int len) {
    std::vector<std::uint8_t> md(32);
    unsigned int md_len = 0;
    check(len > 0 && EVP_Digest(der, static_cast<std::size_t>(len), md.data(), &md_len, EVP_sha256(), nullptr) == 1,
          "EVP_Digest");
    return md;
}

}  // namespace

struct TestCa::Impl {
    Ptr<EVP_PKEY> key;
    Ptr<X509> cert;
};

TestCa::TestCa(const std::string& name) : impl_(std::make_unique<Impl>()) {
    impl_->key = new_key(KeyKind::ec_p256);
    impl_->cert = new_cert(name, impl_->key.get());
    X509* c = impl_->cert.get();
    X509_set_issuer_name(c, X509_get_subject_name(c));
    add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(c, c, NID_subject_key_identifier, "hash");
    check(X509_sign(c, impl_->key.get(), EVP_sha256()) > 0, "CA signature");
    cert_pem_ = to_pem(c);
}

TestCa::~TestCa() = default;

PemPair TestCa::issue(const std::vector<std::string>& names, KeyKind kind, bool with_ca) const {
    check(!names.empty(), "issue without a name");
    auto key = new_key(kind);
    auto cert = new_cert(names.front(), key.get());
    X509_set_issuer_name(cert.get(), X509_get_subject_name(impl_->cert.get()));
    std::string san;
    for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    add_ext(cert.get(), impl_->cert.get(), NID_subject_alt_name, san);
    add_ext(cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), impl_->cert.get(), NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), impl_->cert.get(), NID_authority_key_identifier, "keyid");
    check(X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) > 0, "leaf signature");
    PemPair p{to_pem(cert.get()), key_pem(key.get())};
    if (with_ca) p.chain += cert_pem_;
    return p;
}

PemPair self_signed(const std::string& name) {
    auto pair = tls::make_self_signed(name, 30);
    check(pair.has_value(), "make_self_signed");
    return PemPair{pair->certificate, pair->private_key};
}

std::vector<std::uint8_t> spki_sha256(const std::string& cert_pem) {
    auto cert = first_cert(cert_pem);
    unsigned char* der = nullptr;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
    auto md = sha256(der, len);
    OPENSSL_free(der);
    return md;
}

std::vector<std::uint8_t> cert_sha256(const std::string& cert_pem) {
    auto cert = first_cert(cert_pem);
    unsigned char* der = nullptr;
    int len = i2d_X509(cert.get(), &der);
    auto md = sha256(der, len);
    OPENSSL_free(der);
    return md;
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (auto b : bytes) {
        s.push_back(digits[b >> 4]);
        s.push_back(digits[b & 15]);
    }
    return s;
}

ServerCtx make_server_ctx(const PemPair& pair, const std::string& tls12_ciphers, int max_version) {
    ServerCtx ctx(SSL_CTX_new(TLS_server_method()));
    check(ctx != nullptr, "SSL_CTX_new");
    Ptr<BIO> bio(BIO_new_mem_buf(pair.chain.data(), static_cast<int>(pair.chain.size())));
    Ptr<X509> leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    check(leaf && SSL_CTX_use_certificate(ctx.get(), leaf.get()) == 1, "server certificate");
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        check(SSL_CTX_add0_chain_cert(ctx.get(), extra) == 1, "server chain");  // takes ownership
    }
    Ptr<BIO> kbio(BIO_new_mem_buf(pair.key.data(), static_cast<int>(pair.key.size())));
    Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
    check(key && SSL_CTX_use_PrivateKey(ctx.get(), key.get()) == 1, "server key");
    if (!tls12_ciphers.empty()) check(SSL_CTX_set_cipher_list(ctx.get(), tls12_ciphers.c_str()) == 1, "cipher list");
    if (max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), max_version);
    return ctx;
}

}  // namespace mailward::testing
