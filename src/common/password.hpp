// Password hashing for user accounts: Argon2id through libsodium's crypto_pwhash_str (the encoded
// string carries algorithm, parameters and salt). Verification is slow on purpose; callers on an
// I/O thread must run it on the blocking pool.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mailward::common {

Result<std::string> hash_password(std::string_view password);

// Constant-time in the password; false for a wrong password or a malformed hash.
bool verify_password(std::string_view encoded_hash, std::string_view password);

}  // namespace mailward::common
