// The escrow error category, SecretBytes, the master key file made on first start (0600), and
// MasterKeyHolder: master key file checks (size, type,
// mode, read through one descriptor so the checked file is the read file), subkey derivation with
// crypto_kdf (BLAKE2b), and key wrapping with XChaCha20-Poly1305 (RFC 8439 AEAD with the 192-bit
// nonce of draft-irtf-cfrg-xchacha; a random nonce per wrap is safe at that size).
#include "escrow/keys.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/system/system_error.hpp>
#include <boost/throw_exception.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/fsutil.hpp"

namespace mailward::escrow {
namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.escrow"; }
    std::string message(int ev) const override {
        switch (static_cast<EscrowErrc>(ev)) {
            case EscrowErrc::ok: return "ok";
            case EscrowErrc::master_key_missing: return "escrow master key file is missing";
            case EscrowErrc::master_key_unreadable: return "escrow master key file cannot be read";
            case EscrowErrc::master_key_bad_size: return "escrow master key must be exactly 32 bytes";
            case EscrowErrc::master_key_bad_mode:
                return "escrow master key file must not be accessible to group or others (chmod "
                       "600)";
            case EscrowErrc::unknown_key: return "sealed under a master key that is not loaded";
            case EscrowErrc::tampered:
                return "authentication failed: data altered, or opened for another message, "
                       "recipient or "
                       "format version";
            case EscrowErrc::passphrase_required: return "the sender's passphrase is required";
            case EscrowErrc::wrong_passphrase: return "wrong passphrase";
            case EscrowErrc::key_destroyed: return "the message key was destroyed (revoked or expired)";
            case EscrowErrc::malformed: return "malformed sealed data";
            case EscrowErrc::unsupported_version: return "unsupported sealed data version";
            case EscrowErrc::bad_parameters: return "bad sealing parameters";
            case EscrowErrc::crypto_failure: return "cryptographic library failure";
            case EscrowErrc::refused: return "the key holder refused: no live portal session for this message";
            case EscrowErrc::key_holder_unavailable: return "the key holder process did not answer";
        }
        return "unknown escrow error";
    }
};

constexpr char kWrapContext[crypto_kdf_CONTEXTBYTES + 1] = "mwwrap01";
constexpr char kKeyIdContext[crypto_kdf_CONTEXTBYTES + 1] = "mwkeyid1";
constexpr std::uint64_t kWrapSubkeyId = 1;
constexpr std::uint64_t kKeyIdSubkeyId = 2;
constexpr char kMacContext[crypto_kdf_CONTEXTBYTES + 1] = "mwmac001";
constexpr std::uint64_t kMacSubkeyId = 3;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kWrapHeader = 1 + kKeyIdBytes;
constexpr std::size_t kMaxWrappedSecret = 1024;  // wrapped secrets are keys, not data

static_assert(crypto_kdf_KEYBYTES == kMasterKeyBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32);

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// The AEAD's associated data for a wrap: header (version, key id) followed by the caller's aad.
std::string wrap_ad(std::string_view header, std::string_view aad) {
    std::string ad;
    ad.reserve(header.size() + aad.size());
    ad.append(header);
    ad.append(aad);
    return ad;
}

}  // namespace

const boost::system::error_category& escrow_category() noexcept {
    static const Category c;
    return c;
}

void ensure_sodium() {
    static const bool ready = sodium_init() >= 0;
    if (!ready) std::abort();
}

std::string to_hex(const KeyId& id) {
    char out[kKeyIdBytes * 2 + 1];
    sodium_bin2hex(out, sizeof out, id.data(), id.size());
    return out;
}

SecretBytes::SecretBytes(std::size_t n) : size_(n) {
    if (n == 0) return;
    ensure_sodium();
    data_ = static_cast<unsigned char*>(sodium_malloc(n));
    if (data_ == nullptr) return;  // size_ stays n with no data: ok() reports the failure
    sodium_memzero(data_, n);
}

SecretBytes::~SecretBytes() {
    if (data_ != nullptr) sodium_free(data_);  // zeroes, unlocks and unmaps
}

SecretBytes::SecretBytes(SecretBytes&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
        if (data_ != nullptr) sodium_free(data_);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

void throw_exception_from_error(const KeyFileError& e, const boost::source_location& loc) {
    boost::throw_exception(boost::system::system_error(e.code, e.message), loc);
}

KeyFileResult<bool> ensure_master_key_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        // The key that wraps every escrowed message's key: nobody but mailward's user may read it.
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
            // A FIFO would block the read below until a writer came; a directory cannot be read.
            return KeyFileError{EscrowErrc::master_key_unreadable,
                                path.string() + ": master key is not a regular file"};
        }
        if ((st.st_mode & 077) != 0) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
            return KeyFileError{EscrowErrc::master_key_bad_mode,
                                path.string() + ": master key has mode " + mode +
                                    "; it must not be readable by group or others (chmod 600)"};
        }
        auto key = common::read_file(path);
        if (!key) {
            return KeyFileError{EscrowErrc::master_key_unreadable, path.string() + ": cannot read master key"};
        }
        if (key->size() != kMasterKeyBytes) {
            return KeyFileError{EscrowErrc::master_key_bad_size,
                                path.string() + ": master key must be 32 bytes, found " + std::to_string(key->size())};
        }
        return false;
    }
    if (sodium_init() < 0) {
        return KeyFileError{EscrowErrc::crypto_failure, "libsodium failed to initialise"};
    }
    std::string key(kMasterKeyBytes, '\0');
    randombytes_buf(key.data(), key.size());
    auto written = common::write_file_atomic(path, key, 0600);
    sodium_memzero(key.data(), key.size());
    if (!written) {
        return KeyFileError{written.error(),
                            path.string() + ": cannot create master key: " + written.error().message()};
    }
    return true;
}

KeyFileResult<std::unique_ptr<MasterKeyHolder>> MasterKeyHolder::load(const std::filesystem::path& path) {
    ensure_sodium();
    const std::string name = path.string();
    const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) {
            return KeyFileError{EscrowErrc::master_key_missing, name + ": escrow master key file does not exist"};
        }
        return KeyFileError{EscrowErrc::master_key_unreadable,
                            name + ": cannot open escrow master key: " + std::strerror(err)};
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};

    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return KeyFileError{EscrowErrc::master_key_unreadable,
                            name + ": cannot stat escrow master key: " + std::strerror(errno)};
    }
    if (!S_ISREG(st.st_mode)) {
        return KeyFileError{EscrowErrc::master_key_unreadable, name + ": escrow master key is not a regular file"};
    }
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return KeyFileError{EscrowErrc::master_key_bad_mode, name + ": escrow master key has mode " + mode +
                                                                 "; group and others must have no access (chmod 600)"};
    }
    if (st.st_size != static_cast<off_t>(kMasterKeyBytes)) {
        return KeyFileError{EscrowErrc::master_key_bad_size,
                            name + ": escrow master key must be exactly 32 bytes, found " + std::to_string(st.st_size)};
    }

    SecretBytes master(kMasterKeyBytes);
    if (!master.ok()) {
        return KeyFileError{EscrowErrc::crypto_failure,
                            name + ": cannot allocate secure memory for the escrow master key"};
    }
    std::size_t got = 0;
    while (got < kMasterKeyBytes) {
        const ssize_t n = ::read(fd, master.data() + got, kMasterKeyBytes - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            return KeyFileError{EscrowErrc::master_key_unreadable,
                                name + ": cannot read escrow master key: " + std::strerror(errno)};
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    unsigned char extra = 0;
    ssize_t more = 0;
    do {
        more = ::read(fd, &extra, 1);
    } while (more < 0 && errno == EINTR);
    if (got != kMasterKeyBytes || more != 0) {  // the file changed size under us
        return KeyFileError{EscrowErrc::master_key_bad_size, name + ": escrow master key must be exactly 32 bytes"};
    }
    auto holder = from_secret(master);
    if (!holder) return KeyFileError{holder.error(), name + ": " + holder.error().message()};
    return std::move(*holder);
}

Result<std::unique_ptr<MasterKeyHolder>> MasterKeyHolder::from_bytes(std::string_view master_key) {
    if (master_key.size() != kMasterKeyBytes) return EscrowErrc::master_key_bad_size;
    SecretBytes master(kMasterKeyBytes);
    if (!master.ok()) return EscrowErrc::crypto_failure;
    std::memcpy(master.data(), master_key.data(), kMasterKeyBytes);
    return from_secret(master);
}

Result<std::unique_ptr<MasterKeyHolder>> MasterKeyHolder::from_secret(const SecretBytes& master) {
    SecretBytes wrap_key(crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
    SecretBytes id_key(crypto_kdf_BYTES_MIN);
    SecretBytes mac_key(crypto_generichash_KEYBYTES);
    if (!wrap_key.ok() || !id_key.ok() || !mac_key.ok()) return EscrowErrc::crypto_failure;
    if (crypto_kdf_derive_from_key(wrap_key.data(), wrap_key.size(), kWrapSubkeyId, kWrapContext, master.data()) != 0 ||
        crypto_kdf_derive_from_key(id_key.data(), id_key.size(), kKeyIdSubkeyId, kKeyIdContext, master.data()) != 0 ||
        crypto_kdf_derive_from_key(mac_key.data(), mac_key.size(), kMacSubkeyId, kMacContext, master.data()) != 0) {
        return EscrowErrc::crypto_failure;
    }
    KeyId id{};
    std::memcpy(id.data(), id_key.data(), id.size());
    return std::unique_ptr<MasterKeyHolder>(new MasterKeyHolder(std::move(wrap_key), std::move(mac_key), id));
}

std::string MasterKeyHolder::mac_hex(std::string_view purpose, std::string_view data) const {
    // purpose and data length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    crypto_generichash_state st;
    crypto_generichash_init(&st, mac_key_.data(), mac_key_.size(), 32);
    unsigned char len[8];
    for (auto part : {purpose, data}) {
        std::uint64_t n = part.size();
        for (int i = 7; i >= 0; --i, n >>= 8) len[i] = static_cast<unsigned char>(n & 0xff);
        crypto_generichash_update(&st, len, sizeof len);
        crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(part.data()), part.size());
    }
    unsigned char out[32];
    crypto_generichash_final(&st, out, sizeof out);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, out, sizeof out);
    return std::string(hex, 64);
}

Result<std::string> MasterKeyHolder::wrap(std::string_view secret, std::string_view aad) const {
    if (secret.empty() || secret.size() > kMaxWrappedSecret) return EscrowErrc::bad_parameters;
    std::string out(kWrapHeader + kNonceBytes + secret.size() + kTagBytes, '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    p[0] = kWrapVersion;
    std::memcpy(p + 1, key_id_.data(), kKeyIdBytes);
    unsigned char* nonce = p + kWrapHeader;
    randombytes_buf(nonce, kNonceBytes);
    const std::string ad = wrap_ad(std::string_view(out.data(), kWrapHeader), aad);
    unsigned long long clen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceBytes, &clen, bytes(secret), secret.size(), bytes(ad),
                                                   ad.size(), nullptr, nonce, wrap_key_.data()) != 0 ||
        clen != secret.size() + kTagBytes) {
        return EscrowErrc::crypto_failure;
    }
    return out;
}

Result<SecretBytes> MasterKeyHolder::unwrap(std::string_view wrapped, std::string_view aad) const {
    if (wrapped.empty()) return EscrowErrc::key_destroyed;
    if (bytes(wrapped)[0] != kWrapVersion) return EscrowErrc::unsupported_version;
    if (wrapped.size() < kWrapHeader + kNonceBytes + kTagBytes + 1 ||
        wrapped.size() > kWrapHeader + kNonceBytes + kTagBytes + kMaxWrappedSecret) {
        return EscrowErrc::malformed;
    }
    if (sodium_memcmp(bytes(wrapped) + 1, key_id_.data(), kKeyIdBytes) != 0) return EscrowErrc::unknown_key;
    const unsigned char* nonce = bytes(wrapped) + kWrapHeader;
    const unsigned char* ct = nonce + kNonceBytes;
    const std::size_t ct_len = wrapped.size() - kWrapHeader - kNonceBytes;
    SecretBytes secret(ct_len - kTagBytes);
    if (!secret.ok()) return EscrowErrc::crypto_failure;
    const std::string ad = wrap_ad(wrapped.substr(0, kWrapHeader), aad);
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(secret.data(), &plen, nullptr, ct, ct_len, bytes(ad), ad.size(),
                                                   nonce, wrap_key_.data()) != 0) {
        return EscrowErrc::tampered;
    }
    return secret;
}

}  // namespace mailward::escrow
