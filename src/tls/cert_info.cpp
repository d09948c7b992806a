// Certificate facts for `mailward config check` with OpenSSL 3: PEM chain reading, names,
// validity (ASN1_TIME_to_tm), key match (X509_check_private_key) and name matching
// (X509_check_host / X509_check_ip_asc, RFC 6125 as TLS clients apply it).
#include "tls/cert_info.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "tls/openssl_error.hpp"

namespace mailward::tls {
namespace {

struct Free {
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
template <class T>
using Ptr = std::unique_ptr<T, Free>;

std::chrono::system_clock::time_point to_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string subject_of(X509* x) {
    Ptr<BIO> bio(BIO_new(BIO_s_mem()));
    if (!bio) return {};
    X509_NAME_print_ex(bio.get(), X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::vector<std::string> names_of(X509* x) {
    std::vector<std::string> out;
    Ptr<GENERAL_NAMES> gens(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
    if (!gens) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens.get()); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens.get(), i);
        if (g->type == GEN_DNS) {
            const auto* s = g->d.dNSName;
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                             static_cast<std::size_t>(ASN1_STRING_length(s)));
        } else if (g->type == GEN_IPADD) {
            const auto* s = g->d.iPAddress;
            const unsigned char* p = ASN1_STRING_get0_data(s);
            char buf[64];
            if (ASN1_STRING_length(s) == 4) {
                std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
                out.emplace_back(buf);
            } else if (ASN1_STRING_length(s) == 16) {
                std::string v6;
                for (int k = 0; k < 16; k += 2) {
                    std::snprintf(buf, sizeof buf, "%s%x", k ? ":" : "", (p[k] << 8) | p[k + 1]);
                    v6 += buf;
                }
                out.push_back(v6);
            }
        }
    }
    return out;
}

bool covers(X509* x, const std::string& name) {
    if (name.empty()) return false;
    // An IP literal is matched against the iPAddress names; X509_check_ip_asc fails (-2) on anything else.
    if (int r = X509_check_ip_asc(x, name.c_str(), 0); r >= 0) return r == 1;
    return X509_check_host(x, name.data(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
}

}  // namespace

CertInfo inspect_certificate(const std::filesystem::path& cert_path, const std::filesystem::path& key_path,
                             const std::vector<std::string>& names) {
    CertInfo info;
    ERR_clear_error();
    Ptr<BIO> bio(BIO_new_file(cert_path.c_str(), "r"));
    if (!bio) {
        info.error = "cannot open: " + detail::openssl_error();
        return info;
    }
    Ptr<X509> leaf;
    for (;;) {
        Ptr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!x) break;
        if (!leaf) leaf = std::move(x);
        ++info.count;
    }
    ERR_clear_error();  // the end of the file reads as an error
    if (!leaf) {
        info.error = "no PEM certificate in the file";
        return info;
    }
    info.subject = subject_of(leaf.get());
    info.names = names_of(leaf.get());
    info.not_before = to_time(X509_get0_notBefore(leaf.get()));
    info.not_after = to_time(X509_get0_notAfter(leaf.get()));
    for (const auto& n : names) info.covers.push_back(covers(leaf.get(), n));
    if (!key_path.empty()) {
        Ptr<BIO> kb(BIO_new_file(key_path.c_str(), "r"));
        Ptr<EVP_PKEY> key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
        if (!key) {
            info.key_error =
                kb ? "no PEM private key in the file (or it is encrypted)" : "cannot open: " + detail::openssl_error();
        } else {
            info.key_matches = X509_check_private_key(leaf.get(), key.get()) == 1;
        }
        ERR_clear_error();
    }
    return info;
}

}  // namespace mailward::tls
