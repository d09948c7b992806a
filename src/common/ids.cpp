// Queue ids and random tokens.
#include "common/ids.hpp"

#include <sodium.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace mailward::common {
namespace {

constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford, lower case

void ensure_sodium() {
    static const bool ready = sodium_init() >= 0;
    if (!ready) std::abort();  // no usable randomness: nothing we make would be safe
}

std::string encode_bits(std::uint64_t value, int chars) {
    std::string out(static_cast<std::size_t>(chars), '0');
    for (int i = chars - 1; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = kAlphabet[value & 31];
        value >>= 5;
    }
    return out;
}

}  // namespace

std::string new_queue_id(std::chrono::system_clock::time_point now) {
    const auto ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
    ensure_sodium();
    std::uint64_t rnd = 0;
    randombytes_buf(&rnd, sizeof rnd);
    return encode_bits(ms & ((1ULL << 50) - 1), 10) + encode_bits(rnd & ((1ULL << 40) - 1), 8);
}

bool is_queue_id(std::string_view text) {
    if (text.size() != 18) return false;
    for (char c : text) {
        if (kAlphabet.find(c) == std::string_view::npos) return false;
    }
    return true;
}

std::string random_token(std::size_t bytes) {
    ensure_sodium();
    std::vector<unsigned char> buf(bytes);
    randombytes_buf(buf.data(), buf.size());
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char b : buf) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 5) {
            out.push_back(kAlphabet[(acc >> (bits - 5)) & 31]);
            bits -= 5;
        }
    }
    if (bits > 0) out.push_back(kAlphabet[(acc << (5 - bits)) & 31]);
    return out;
}

}  // namespace mailward::common
