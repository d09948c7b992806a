// Sealing a message for escrow: a fresh random data key per message encrypts the message with
// XChaCha20-Poly1305 (RFC 8439 AEAD, 192-bit nonce per draft-irtf-cfrg-xchacha); the associated
// data binds message id, recipient and format version, so a ciphertext moved to another message or
// recipient does not open. The data key is wrapped by a KeyHolder (master key) and, optionally,
// first by an Argon2id key (RFC 9106) from a sender passphrase, so the server alone cannot open it.
// shred() destroys the wrapped key (crypto-shredding). Serialised blobs are untrusted input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "escrow/keys.hpp"

namespace mailward::escrow {

inline constexpr std::uint8_t kSealVersion = 1;

// What a sealed message is bound to. The caller passes the same values on open (as stored, compared
// byte for byte: normalise the recipient before sealing).
struct SealContext {
    std::string message_id;
    std::string recipient;
    std::uint32_t format_version = 1;  // the format of the plaintext (1 = RFC 5322 message)
};

// Argon2id parameters recorded with a passphrase-protected message (crypto_pwhash).
struct PassphraseParams {
    std::string salt;  // crypto_pwhash_SALTBYTES (16) random bytes
    std::uint64_t opslimit = 0;
    std::uint64_t memlimit = 0;  // bytes
};

struct Sealed {
    std::uint8_t version = kSealVersion;
    std::string nonce;        // 24 bytes
    std::string wrapped_key;  // from KeyHolder::wrap; empty once shredded
    std::optional<PassphraseParams> passphrase;
    std::string ciphertext;  // message bytes + 16-byte Poly1305 tag

    bool shredded() const { return wrapped_key.empty(); }
    bool needs_passphrase() const { return passphrase.has_value(); }
};

struct SealOptions {
    // Argon2id limits for a sender passphrase; the defaults are libsodium's "interactive" ones
    // (64 MiB); open() accepts stored limits up to kMaxPassphraseOps / kMaxPassphraseMem.
    std::uint64_t passphrase_opslimit = 2;
    std::uint64_t passphrase_memlimit = 64ull << 20;
};
inline constexpr std::uint64_t kMaxPassphraseOps = 16;
inline constexpr std::uint64_t kMaxPassphraseMem = 1ull << 30;

// passphrase: nullopt = none; an empty passphrase is bad_parameters. Argon2id is slow on purpose:
// callers on an I/O thread run seal/open with a passphrase on the blocking pool.
Result<Sealed> seal(std::string_view plaintext, const SealContext& ctx, const KeyHolder& keys,
                    std::optional<std::string_view> passphrase = std::nullopt, const SealOptions& options = {});

// Errors: key_destroyed (shredded), passphrase_required, wrong_passphrase, unknown_key (another
// master key), tampered (any altered byte, or another context), malformed, unsupported_version,
// bad_parameters (stored Argon2 limits out of bounds). A passphrase given for a message that has
// none is ignored.
Result<std::string> open(const Sealed& sealed, const SealContext& ctx, const KeyHolder& keys,
                         std::optional<std::string_view> passphrase = std::nullopt);

// Crypto-shredding: overwrites and drops the wrapped key; open() then fails with key_destroyed.
// The store must overwrite its own copy too (and SQLite should run with secure_delete).
void shred(Sealed& sealed);

// Re-wraps the data key under another master key (rotation) without touching the ciphertext or
// the passphrase layer. from must hold the key the message was wrapped with.
Result<void> rewrap(Sealed& sealed, const SealContext& ctx, const KeyHolder& from, const KeyHolder& to);

// Versioned binary form for a database BLOB:
//   "MWES" | version u8 | flags u8 (bit 0: passphrase) | nonce (24)
//   | wrapped key length u32 | wrapped key
//   | [salt (16) | opslimit u64 | memlimit u64]   if flags bit 0
//   | ciphertext length u64 | ciphertext
// integers big-endian. parse() rejects anything truncated, oversized, with trailing bytes or
// unknown flags (malformed), or of another version (unsupported_version).
std::string serialize(const Sealed& sealed);
Result<Sealed> parse(std::string_view blob);

}  // namespace mailward::escrow
