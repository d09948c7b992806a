// The key holder's message format (docs/design.md, "Process model"): what serve's processes send
// the key-holder process over their SOCK_SEQPACKET socketpair, one message per datagram. Requests
// are untrusted by the key holder: parse_request() checks every length against the bytes received
// and a maximum per field, and refuses unknown versions, types and field counts. No I/O here.
//   request:  version u8 (1) | op u8 | field count u8 | { length u16 big-endian | bytes } ...
//   response: version u8 (1) | status u8 (0 ok, else an EscrowErrc) | length u16 | payload
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mailward::escrow::wire {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kMaxMessage = 8192;  // a datagram larger than this is refused unread
inline constexpr std::size_t kMaxPayload = 4096;  // a response's payload

enum class Op : std::uint8_t {
    key_id = 1,  // no fields -> the 8-byte key id
    wrap = 2,    // secret, aad -> the wrapped secret
    mac = 3,     // purpose, data -> 64 hex digits
    unwrap = 4,  // escrow id, session cookie, wrapped, aad -> the secret (after the store check)
};

enum class WireErrc {
    ok = 0,
    truncated = 1,    // shorter than its header or than a length it announces
    oversize,         // larger than kMaxMessage, or a field/payload larger than its maximum
    bad_version,      // not version 1
    bad_type,         // an op this build does not know
    bad_field_count,  // not the number of fields the op takes
    trailing_bytes,   // bytes after the last field
};
const boost::system::error_category& wire_category() noexcept;
inline error_code make_error_code(WireErrc e) noexcept { return {static_cast<int>(e), wire_category()}; }

struct Request {
    Op op = Op::key_id;
    std::vector<std::string> fields;
};

struct Response {
    std::uint8_t status = 0;  // 0 ok, else an EscrowErrc value
    std::string payload;      // ok: the result; otherwise a short reason (may be empty)
};

// The fields an op takes, and the longest each may be.
std::size_t field_count(Op op);
std::size_t field_max(Op op, std::size_t index);

// Both refuse what parse would refuse (oversize fields, wrong count), so a bad request is never
// sent.
Result<std::string> encode_request(const Request& r);
Result<std::string> encode_response(const Response& r);
Result<Request> parse_request(std::string_view bytes);
Result<Response> parse_response(std::string_view bytes);

}  // namespace mailward::escrow::wire

namespace boost::system {
template <>
struct is_error_code_enum<mailward::escrow::wire::WireErrc> : std::true_type {};
}  // namespace boost::system
