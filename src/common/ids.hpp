// Identifiers: queue ids are 18 characters of Crockford base32, a 48-bit millisecond timestamp then
// 40 random bits (libsodium), so they sort by arrival time and are unguessable enough for logs.
// Random tokens (escrow links, sessions) come from random_token().
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace mailward::common {

std::string new_queue_id(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// True if text has the shape new_queue_id() produces (CLI input is checked with it).
bool is_queue_id(std::string_view text);

// bytes random bytes, base32-encoded (8 bytes per 5 characters, rounded up).
std::string random_token(std::size_t bytes);

}  // namespace mailward::common
