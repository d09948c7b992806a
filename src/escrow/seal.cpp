// seal/open/shred/rewrap and the BLOB form of Sealed. Layers (outermost first):
//   KeyHolder wrap (master key)  >  [Argon2id passphrase key, RFC 9106]  >  data key  >  message.
// Every layer is XChaCha20-Poly1305 (RFC 8439, draft-irtf-cfrg-xchacha) with associated data that
// names the layer and binds the context (message id, recipient, format version), the seal version,
// the flags and the passphrase parameters, so no field can be swapped or stripped unnoticed.
#include "escrow/seal.hpp"

#include <sodium.h>

#include <cstring>

namespace mailward::escrow {
namespace {

constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kDataKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr std::size_t kSaltBytes = crypto_pwhash_SALTBYTES;
constexpr std::size_t kInnerBytes = kNonceBytes + kDataKeyBytes + kTagBytes;  // passphrase layer
constexpr std::size_t kMaxWrappedKey = 4096;
constexpr std::uint8_t kFlagPassphrase = 0x01;
constexpr char kMagic[4] = {'M', 'W', 'E', 'S'};

static_assert(kSaltBytes == 16);

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_be(std::string& out, std::uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_field(std::string& out, std::string_view v) {
    put_be(out, v.size(), 4);
    out.append(v);
}

// Which layer an associated data string is for; each layer's AD differs in this byte.
enum class Layer : char { message = 'M', master_wrap = 'K', passphrase = 'P' };

std::string associated_data(Layer layer, const SealContext& ctx, std::uint8_t version,
                            const std::optional<PassphraseParams>& pp) {
    std::string ad("mailward-escrow");
    ad.push_back('\0');
    ad.push_back(static_cast<char>(layer));
    put_u8(ad, version);
    put_u8(ad, pp ? kFlagPassphrase : 0);
    put_be(ad, ctx.format_version, 4);
    put_field(ad, ctx.message_id);
    put_field(ad, ctx.recipient);
    if (pp) {
        put_field(ad, pp->salt);
        put_be(ad, pp->opslimit, 8);
        put_be(ad, pp->memlimit, 8);
    }
    return ad;
}

bool params_in_bounds(std::uint64_t ops, std::uint64_t mem) {
    return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN && ops <= kMaxPassphraseOps &&
           mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN && mem <= kMaxPassphraseMem;
}

Result<SecretBytes> passphrase_key(std::string_view passphrase, const PassphraseParams& pp) {
    if (passphrase.size() > crypto_pwhash_PASSWD_MAX) return EscrowErrc::bad_parameters;
    SecretBytes key(kDataKeyBytes);
    if (!key.ok()) return EscrowErrc::crypto_failure;
    if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), bytes(pp.salt), pp.opslimit,
                      static_cast<std::size_t>(pp.memlimit), crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return EscrowErrc::crypto_failure;  // out of memory
    }
    return key;
}

}  // namespace

Result<Sealed> seal(std::string_view plaintext, const SealContext& ctx, const KeyHolder& keys,
                    std::optional<std::string_view> passphrase, const SealOptions& options) {
    ensure_sodium();
    if (plaintext.size() > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX - kTagBytes) {
        return EscrowErrc::bad_parameters;
    }
    Sealed s;
    if (passphrase) {
        if (passphrase->empty() || !params_in_bounds(options.passphrase_opslimit, options.passphrase_memlimit)) {
            return EscrowErrc::bad_parameters;
        }
        PassphraseParams pp;
        pp.salt.assign(kSaltBytes, '\0');
        randombytes_buf(pp.salt.data(), pp.salt.size());
        pp.opslimit = options.passphrase_opslimit;
        pp.memlimit = options.passphrase_memlimit;
        s.passphrase = std::move(pp);
    }

    SecretBytes data_key(kDataKeyBytes);
    if (!data_key.ok()) return EscrowErrc::crypto_failure;
    crypto_aead_xchacha20poly1305_ietf_keygen(data_key.data());

    s.nonce.assign(kNonceBytes, '\0');
    randombytes_buf(s.nonce.data(), s.nonce.size());
    const std::string msg_ad = associated_data(Layer::message, ctx, s.version, s.passphrase);
    s.ciphertext.assign(plaintext.size() + kTagBytes, '\0');
    unsigned long long clen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(s.ciphertext), &clen, bytes(plaintext), plaintext.size(),
                                                   bytes(msg_ad), msg_ad.size(), nullptr, bytes(s.nonce),
                                                   data_key.data()) != 0 ||
        clen != s.ciphertext.size()) {
        return EscrowErrc::crypto_failure;
    }

    const std::string key_ad = associated_data(Layer::master_wrap, ctx, s.version, s.passphrase);
    Result<std::string> wrapped = std::string();
    if (s.passphrase) {
        auto pkey = passphrase_key(*passphrase, *s.passphrase);
        if (!pkey) return pkey.error();
        // inner = nonce | XChaCha20-Poly1305(passphrase key, data key); not secret once encrypted.
        std::string inner(kInnerBytes, '\0');
        randombytes_buf(inner.data(), kNonceBytes);
        const std::string pass_ad = associated_data(Layer::passphrase, ctx, s.version, s.passphrase);
        unsigned long long ilen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(inner) + kNonceBytes, &ilen, data_key.data(),
                                                       data_key.size(), bytes(pass_ad), pass_ad.size(), nullptr,
                                                       bytes(inner), pkey->data()) != 0) {
            return EscrowErrc::crypto_failure;
        }
        wrapped = keys.wrap(inner, key_ad);
    } else {
        wrapped = keys.wrap(data_key.view(), key_ad);
    }
    if (!wrapped) return wrapped.error();
    s.wrapped_key = std::move(*wrapped);
    return s;
}

Result<std::string> open(const Sealed& sealed, const SealContext& ctx, const KeyHolder& keys,
                         std::optional<std::string_view> passphrase) {
    ensure_sodium();
    if (sealed.version != kSealVersion) return EscrowErrc::unsupported_version;
    if (sealed.shredded()) return EscrowErrc::key_destroyed;
    if (sealed.nonce.size() != kNonceBytes || sealed.ciphertext.size() < kTagBytes) return EscrowErrc::malformed;
    if (sealed.passphrase) {
        const auto& pp = *sealed.passphrase;
        if (pp.salt.size() != kSaltBytes || !params_in_bounds(pp.opslimit, pp.memlimit)) {
            return EscrowErrc::bad_parameters;
        }
        if (!passphrase) return EscrowErrc::passphrase_required;
        if (passphrase->empty()) return EscrowErrc::wrong_passphrase;
    }

    const std::string key_ad = associated_data(Layer::master_wrap, ctx, sealed.version, sealed.passphrase);
    auto unwrapped = keys.unwrap(sealed.wrapped_key, key_ad);
    if (!unwrapped) return unwrapped.error();

    SecretBytes data_key;
    if (sealed.passphrase) {
        if (unwrapped->size() != kInnerBytes) return EscrowErrc::tampered;
        auto pkey = passphrase_key(*passphrase, *sealed.passphrase);
        if (!pkey) return pkey.error();
        data_key = SecretBytes(kDataKeyBytes);
        if (!data_key.ok()) return EscrowErrc::crypto_failure;
        const std::string pass_ad = associated_data(Layer::passphrase, ctx, sealed.version, sealed.passphrase);
        const unsigned char* inner = unwrapped->data();
        unsigned long long klen = 0;
        // The master layer authenticated the inner blob, so a failure here is the passphrase.
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(data_key.data(), &klen, nullptr, inner + kNonceBytes,
                                                       kInnerBytes - kNonceBytes, bytes(pass_ad), pass_ad.size(), inner,
                                                       pkey->data()) != 0) {
            return EscrowErrc::wrong_passphrase;
        }
    } else {
        if (unwrapped->size() != kDataKeyBytes) return EscrowErrc::tampered;
        data_key = std::move(*unwrapped);
    }

    const std::string msg_ad = associated_data(Layer::message, ctx, sealed.version, sealed.passphrase);
    std::string plain(sealed.ciphertext.size() - kTagBytes, '\0');
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(bytes(plain), &plen, nullptr, bytes(sealed.ciphertext),
                                                   sealed.ciphertext.size(), bytes(msg_ad), msg_ad.size(),
                                                   bytes(sealed.nonce), data_key.data()) != 0) {
        return EscrowErrc::tampered;
    }
    return plain;
}

void shred(Sealed& sealed) {
    if (!sealed.wrapped_key.empty()) sodium_memzero(sealed.wrapped_key.data(), sealed.wrapped_key.size());
    sealed.wrapped_key.clear();
    sealed.wrapped_key.shrink_to_fit();
}

Result<void> rewrap(Sealed& sealed, const SealContext& ctx, const KeyHolder& from, const KeyHolder& to) {
    ensure_sodium();
    if (sealed.version != kSealVersion) return EscrowErrc::unsupported_version;
    if (sealed.shredded()) return EscrowErrc::key_destroyed;
    const std::string key_ad = associated_data(Layer::master_wrap, ctx, sealed.version, sealed.passphrase);
    auto secret = from.unwrap(sealed.wrapped_key, key_ad);
    if (!secret) return secret.error();
    auto wrapped = to.wrap(secret->view(), key_ad);
    if (!wrapped) return wrapped.error();
    sealed.wrapped_key = std::move(*wrapped);
    return {};
}

std::string serialize(const Sealed& s) {
    std::string out;
    out.reserve(64 + s.wrapped_key.size() + s.ciphertext.size());
    out.append(kMagic, sizeof kMagic);
    put_u8(out, s.version);
    put_u8(out, s.passphrase ? kFlagPassphrase : 0);
    out.append(s.nonce);
    put_be(out, s.wrapped_key.size(), 4);
    out.append(s.wrapped_key);
    if (s.passphrase) {
        out.append(s.passphrase->salt);
        put_be(out, s.passphrase->opslimit, 8);
        put_be(out, s.passphrase->memlimit, 8);
    }
    put_be(out, s.ciphertext.size(), 8);
    out.append(s.ciphertext);
    return out;
}

namespace {
// Reads from an untrusted blob; every take fails (false) instead of reading past the end.
class Reader {
  public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool take(std::size_t n, std::string_view& out) {
        if (n > in_.size()) return false;
        out = in_.substr(0, n);
        in_.remove_prefix(n);
        return true;
    }
    bool take_be(int width, std::uint64_t& v) {
        std::string_view b;
        if (!take(static_cast<std::size_t>(width), b)) return false;
        v = 0;
        for (char c : b) v = (v << 8) | static_cast<unsigned char>(c);
        return true;
    }
    std::size_t left() const { return in_.size(); }

  private:
    std::string_view in_;
};
}  // namespace

Result<Sealed> parse(std::string_view blob) {
    Reader r(blob);
    std::string_view magic, head, nonce, wrapped, salt, ct;
    if (!r.take(sizeof kMagic, magic) || std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0) {
        return EscrowErrc::malformed;
    }
    if (!r.take(2, head)) return EscrowErrc::malformed;
    Sealed s;
    s.version = static_cast<std::uint8_t>(head[0]);
    if (s.version != kSealVersion) return EscrowErrc::unsupported_version;
    const auto flags = static_cast<std::uint8_t>(head[1]);
    if ((flags & ~kFlagPassphrase) != 0) return EscrowErrc::malformed;
    std::uint64_t wrapped_len = 0;
    if (!r.take(kNonceBytes, nonce) || !r.take_be(4, wrapped_len) || wrapped_len > kMaxWrappedKey ||
        !r.take(static_cast<std::size_t>(wrapped_len), wrapped)) {
        return EscrowErrc::malformed;
    }
    s.nonce.assign(nonce);
    s.wrapped_key.assign(wrapped);
    if (flags & kFlagPassphrase) {
        PassphraseParams pp;
        if (!r.take(kSaltBytes, salt) || !r.take_be(8, pp.opslimit) || !r.take_be(8, pp.memlimit)) {
            return EscrowErrc::malformed;
        }
        if (!params_in_bounds(pp.opslimit, pp.memlimit)) return EscrowErrc::malformed;
        pp.salt.assign(salt);
        s.passphrase = std::move(pp);
    }
    std::uint64_t ct_len = 0;
    if (!r.take_be(8, ct_len) || ct_len < kTagBytes || ct_len != r.left() ||
        !r.take(static_cast<std::size_t>(ct_len), ct)) {
        return EscrowErrc::malformed;
    }
    s.ciphertext.assign(ct);
    return s;
}

}  // namespace mailward::escrow
