// DKIM keys: generation with OpenSSL 3 EVP (RSA, Ed25519), the public key record of RFC 6376 3.6.1
// (k=rsa: base64 SubjectPublicKeyInfo; k=ed25519: base64 of the raw 32-byte key, RFC 8463 4.2), the
// TXT line split into strings of at most 255 octets (RFC 7208 3.3 style), name checks, and reading
// the [[dkim]] key files (refused when group or others may read them).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "dkim/dkim.hpp"

namespace mailward::dkim {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string base64(const unsigned char* data, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(len < 0 ? 0 : static_cast<std::size_t>(len));
    return out;
}

Result<std::string> record_of(EVP_PKEY* key, Algorithm a) {
    const int id = EVP_PKEY_get_base_id(key);
    if (a == Algorithm::rsa_sha256) {
        if (id != EVP_PKEY_RSA) return DkimErrc::bad_key;
        if (EVP_PKEY_get_bits(key) < 1024) return DkimErrc::bad_key;
        unsigned char* der = nullptr;
        const int n = i2d_PUBKEY(key, &der);
        if (n <= 0) return DkimErrc::library_error;
        std::string p = base64(der, static_cast<std::size_t>(n));
        OPENSSL_free(der);
        return "v=DKIM1; k=rsa; p=" + p;
    }
    if (id != EVP_PKEY_ED25519) return DkimErrc::bad_key;
    unsigned char raw[32];
    std::size_t n = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &n) != 1 || n != sizeof raw) return DkimErrc::library_error;
    return "v=DKIM1; k=ed25519; p=" + base64(raw, n);
}

Pkey read_pem(std::string_view pem) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return nullptr;
    return Pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

bool label_char(char c, bool selector) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           (selector && c == '_');
}

}  // namespace

Result<GeneratedKey> generate_key(Algorithm a, unsigned bits) {
    if (a == Algorithm::rsa_sha256 && (bits < 1024 || bits > 8192)) return DkimErrc::bad_key;
    Pkey key(a == Algorithm::rsa_sha256 ? EVP_RSA_gen(bits) : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) return DkimErrc::library_error;
    Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return DkimErrc::library_error;
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    GeneratedKey g;
    g.pem.assign(data, static_cast<std::size_t>(len));
    auto rec = record_of(key.get(), a);
    if (!rec) return rec.error();
    g.record = std::move(*rec);
    return g;
}

Result<std::string> public_record(std::string_view pem, Algorithm a) {
    Pkey key = read_pem(pem);
    if (!key) return DkimErrc::bad_key;
    return record_of(key.get(), a);
}

bool valid_name(std::string_view name, bool selector) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t start = 0;
    while (true) {
        std::size_t dot = name.find('.', start);
        std::string_view label = name.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!label_char(c, selector)) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

std::string txt_line(std::string_view selector, std::string_view domain, std::string_view record) {
    std::string out = std::string(selector) + "._domainkey." + std::string(domain) + ". IN TXT";
    for (std::size_t i = 0; i < record.size(); i += 255) out += " \"" + std::string(record.substr(i, 255)) + "\"";
    return out;
}

Result<std::string> read_key_file(const std::filesystem::path& path, std::string& why) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        why = "cannot read \"" + path.string() + "\": " + std::strerror(errno);
        return common::Errc::io_error;
    }
    struct stat st {};
    std::string text;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        why = "\"" + path.string() + "\" is not a regular file";
    } else if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        why = "\"" + path.string() + "\" may be read by group or others (mode " + mode +
              "; expected 0600 or 0400: chmod 600)";
    } else if (st.st_size > 64 * 1024) {
        why = "\"" + path.string() + "\" is larger than 64 KiB (expected a PEM private key)";
    } else {
        char buf[4096];
        while (true) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                why = "cannot read \"" + path.string() + "\": " + std::strerror(errno);
                break;
            }
            if (n == 0) break;
            text.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    if (!why.empty()) return common::Errc::invalid_argument;
    return text;
}

Result<Signer> Signer::load(const std::vector<config::DkimConfig>& entries, std::string& why) {
    std::vector<SigningKey> keys;
    for (const auto& e : entries) {
        const std::string where = "[[dkim]] domain \"" + e.domain + "\": key_file ";
        auto alg = parse_algorithm(e.algorithm);
        if (!alg) {
            why = "[[dkim]] domain \"" + e.domain + "\": unknown algorithm \"" + e.algorithm + "\"";
            return common::Errc::invalid_argument;
        }
        if (*alg == Algorithm::ed25519_sha256) {
            why =
                "[[dkim]] domain \"" + e.domain + "\": " + std::string(kEd25519Refusal) + " (expected \"rsa-sha256\")";
            return DkimErrc::unsupported;
        }
        std::string problem;
        auto pem = read_key_file(e.key_file, problem);
        if (!pem) {
            why = where + problem;
            return pem.error();
        }
        if (auto rec = public_record(*pem, *alg); !rec) {
            why = where + "\"" + e.key_file.string() + "\" is not " +
                  (*alg == Algorithm::rsa_sha256 ? "an RSA private key of at least 1024 bits"
                                                 : "an Ed25519 private key") +
                  " in PEM (algorithm = \"" + e.algorithm + "\"; `mailward dkim keygen` makes one)";
            return rec.error();
        }
        keys.push_back({e.domain, e.selector, *alg, std::move(*pem), e.sign_relayed});
    }
    return Signer(std::move(keys));
}

}  // namespace mailward::dkim
