// Argon2id password hashing (libsodium, interactive limits).
#include "common/password.hpp"

#include <sodium.h>

#include <cstdlib>

namespace mailward::common {
namespace {
void ensure_sodium() {
    static const bool ready = sodium_init() >= 0;
    if (!ready) std::abort();
}
}  // namespace

Result<std::string> hash_password(std::string_view password) {
    ensure_sodium();
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return Errc::io_error;  // out of memory
    }
    return std::string(out);
}

bool verify_password(std::string_view encoded_hash, std::string_view password) {
    ensure_sodium();
    std::string h(encoded_hash);  // must be NUL-terminated
    if (h.size() >= crypto_pwhash_STRBYTES) return false;
    return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

}  // namespace mailward::common
