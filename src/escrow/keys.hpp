// Escrow key custody: the escrow error enum, SecretBytes (locked, zeroed-on-free memory for keys),
// and KeyHolder, the one small interface behind which the master key lives (OpenSMTPD keeps its
// private keys in a "CA" process; we keep ours behind this seam even inside one process).
// MasterKeyHolder loads the 32-byte [escrow] master_key_file (trusted only after its size and mode
// are checked), derives a wrapping subkey with BLAKE2b (crypto_kdf, context "mwwrap01") and wraps
// data keys with XChaCha20-Poly1305 (RFC 8439, draft-irtf-cfrg-xchacha).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::escrow {

enum class EscrowErrc {
    ok = 0,
    master_key_missing = 1,  // the master key file does not exist
    master_key_unreadable,   // it exists but is not a readable regular file
    master_key_bad_size,     // it is not exactly 32 bytes
    master_key_bad_mode,     // group or others have any permission on it
    unknown_key,             // wrapped under a master key this holder does not have (other key id)
    tampered,                // authentication failed: data altered, or another message/recipient/version
    passphrase_required,     // sealed with a sender passphrase and none was given
    wrong_passphrase,        // the passphrase does not open the key
    key_destroyed,           // the wrapped key was shredded (revoked or expired)
    malformed,               // a serialised blob is truncated or invalid
    unsupported_version,     // a blob or wrapped key of a version this build does not know
    bad_parameters,          // empty passphrase, Argon2 limits out of bounds, input too large
    crypto_failure,          // libsodium could not initialise or allocate
    refused,                 // the key holder refused: no live portal session for this message
    key_holder_unavailable,  // the key-holder process did not answer
};
const boost::system::error_category& escrow_category() noexcept;
inline error_code make_error_code(EscrowErrc e) noexcept { return {static_cast<int>(e), escrow_category()}; }

// Aborts if libsodium cannot initialise (a broken invariant, docs/design.md); cheap after the
// first call.
void ensure_sodium();

// Secret bytes in sodium_malloc'd memory: guard pages, mlock'ed where the system allows, zeroed
// when freed. Move-only. size() may be 0 (no allocation).
class SecretBytes {
  public:
    SecretBytes() = default;
    // Zero-filled secret of n bytes; check ok() (allocation can fail).
    explicit SecretBytes(std::size_t n);
    ~SecretBytes();
    SecretBytes(SecretBytes&& o) noexcept;
    SecretBytes& operator=(SecretBytes&& o) noexcept;
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;

    bool ok() const { return size_ == 0 || data_ != nullptr; }
    unsigned char* data() { return data_; }
    const unsigned char* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  private:
    unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
};

inline constexpr std::size_t kMasterKeyBytes = 32;
inline constexpr std::size_t kKeyIdBytes = 8;
using KeyId = std::array<unsigned char, kKeyIdBytes>;
std::string to_hex(const KeyId& id);

// A master key file problem: the code (EscrowErrc::master_key_*, crypto_failure, or the system
// error of a failed write) and one line for the operator that names the path and the problem.
struct KeyFileError {
    error_code code;
    std::string message;
};
// Lets result<T, KeyFileError>::value() throw (startup only; the data path checks the result).
[[noreturn]] void throw_exception_from_error(const KeyFileError& e, const boost::source_location& loc);
template <class T>
using KeyFileResult = boost::system::result<T, KeyFileError>;

// First start: when path does not exist, creates it with 32 random bytes and mode 0600 and returns
// true. When it exists, refuses a file group or others may access, one that cannot be read and one
// that is not 32 bytes, else returns false. MasterKeyHolder::load checks the file again when it
// reads it.
KeyFileResult<bool> ensure_master_key_file(const std::filesystem::path& path);

// What the portal proves before a key holder in another process unwraps a message's key: the
// escrowed message and the session cookie the browser presented for it. The key holder checks
// both in the store (escrow/keyholder.hpp).
struct UnwrapGrant {
    std::string escrow_id;
    std::string session_cookie;
};

// Holds a key-encryption key and never hands it out. wrap/unwrap are const and keep no state, so
// one holder may be shared by threads. The wrapped blob is self-describing (version, key id), so
// a holder can tell "not my key" (unknown_key) from "altered" (tampered); aad must be the same on
// unwrap as on wrap.
class KeyHolder {
  public:
    virtual ~KeyHolder() = default;
    // Identifies the key (a one-way fingerprint); differs between master keys; used for rotation.
    virtual KeyId key_id() const = 0;
    virtual Result<std::string> wrap(std::string_view secret, std::string_view aad) const = 0;
    virtual Result<SecretBytes> unwrap(std::string_view wrapped, std::string_view aad) const = 0;
    // unwrap on behalf of a portal session. A holder in this process (MasterKeyHolder) trusts its
    // caller and ignores the grant; RemoteKeyHolder sends it, and only a grant the key holder
    // finds valid in the store opens the key (its plain unwrap() is refused).
    virtual Result<SecretBytes> unwrap_for(const UnwrapGrant& grant, std::string_view wrapped,
                                           std::string_view aad) const {
        (void)grant;
        return unwrap(wrapped, aad);
    }
    // A keyed hash (BLAKE2b-256 under a key derived from the master key), hex: for link tokens,
    // one-time codes and session ids stored as hashes, and for the audit chain. purpose separates
    // uses (a hash for one purpose never equals one for another). Deterministic per key.
    virtual std::string mac_hex(std::string_view purpose, std::string_view data) const = 0;
};

// The wrapped-key format of MasterKeyHolder:
//   version (1 = 0x01) | key id (8) | nonce (24) | XChaCha20-Poly1305(secret) | tag (16)
// authenticated with version, key id and aad.
inline constexpr unsigned char kWrapVersion = 1;

class MasterKeyHolder final : public KeyHolder {
  public:
    // Reads the master key file. Refuses a missing file, a non-regular file, a file that is not
    // exactly 32 bytes, or one that group or others may access (mode & 077); the error's message
    // names the path and the problem in one line.
    static KeyFileResult<std::unique_ptr<MasterKeyHolder>> load(const std::filesystem::path& path);
    // From raw key bytes (tests, and keys handed over by another custodian). Size must be 32.
    static Result<std::unique_ptr<MasterKeyHolder>> from_bytes(std::string_view master_key);

    KeyId key_id() const override { return key_id_; }
    Result<std::string> wrap(std::string_view secret, std::string_view aad) const override;
    Result<SecretBytes> unwrap(std::string_view wrapped, std::string_view aad) const override;
    std::string mac_hex(std::string_view purpose, std::string_view data) const override;

  private:
    explicit MasterKeyHolder(SecretBytes wrap_key, SecretBytes mac_key, const KeyId& id)
        : wrap_key_(std::move(wrap_key)), mac_key_(std::move(mac_key)), key_id_(id) {}
    static Result<std::unique_ptr<MasterKeyHolder>> from_secret(const SecretBytes& master);

    SecretBytes wrap_key_;  // crypto_kdf subkey 1, context "mwwrap01"; the master key is not kept
    SecretBytes mac_key_;   // crypto_kdf subkey 3, context "mwmac001"
    KeyId key_id_{};        // crypto_kdf subkey 2, context "mwkeyid1", first 8 bytes
};

}  // namespace mailward::escrow

namespace boost::system {
template <>
struct is_error_code_enum<mailward::escrow::EscrowErrc> : std::true_type {};
}  // namespace boost::system
