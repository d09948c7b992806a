// Self-signed certificate generation with OpenSSL 3 (EVP_EC_gen, X509 builder).
#include "tls/certs.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/fsutil.hpp"

namespace mailward::tls {
namespace {

struct Free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Free>;

std::string bio_string(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(len));
}

bool add_ext(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

}  // namespace

Result<KeyPairPem> make_self_signed(const std::string& hostname, int days) {
    Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
    Ptr<X509> cert(X509_new());
    if (!key || !cert) return common::Errc::io_error;
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * days);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), name);
    const std::string san = "DNS:" + hostname;
    if (!add_ext(cert.get(), NID_subject_alt_name, san.c_str()) ||
        !add_ext(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert.get(), NID_key_usage, "critical,digitalSignature") ||
        !add_ext(cert.get(), NID_ext_key_usage, "serverAuth")) {
        return common::Errc::invalid_argument;
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return common::Errc::io_error;

    Ptr<BIO> cert_bio(BIO_new(BIO_s_mem()));
    Ptr<BIO> key_bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_X509(cert_bio.get(), cert.get()) ||
        !PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
        return common::Errc::io_error;
    }
    return KeyPairPem{bio_string(cert_bio.get()), bio_string(key_bio.get())};
}

Result<bool> ensure_self_signed(const std::filesystem::path& cert_path, const std::filesystem::path& key_path,
                                const std::string& hostname) {
    std::error_code ec;
    if (std::filesystem::exists(cert_path, ec) && std::filesystem::exists(key_path, ec)) return false;
    auto pair = make_self_signed(hostname);
    if (!pair) return {boost::system::in_place_error, pair.error()};
    // Key first: a certificate without its key would be unusable on the next start.
    if (auto r = common::write_file_atomic(key_path, pair->private_key, 0600); !r)
        return {boost::system::in_place_error, r.error()};
    if (auto r = common::write_file_atomic(cert_path, pair->certificate, 0600); !r)
        return {boost::system::in_place_error, r.error()};
    return true;
}

}  // namespace mailward::tls
