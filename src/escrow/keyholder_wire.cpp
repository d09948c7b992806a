// The key holder's message format: encoding and the length-checked parsers (keyholder_wire.hpp).
// Every length is checked against the bytes that are left and against its field's maximum before
// anything is copied; nothing here allocates more than the received datagram's size.
#include "escrow/keyholder_wire.hpp"

namespace mailward::escrow::wire {
namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.keyholder_wire"; }
    std::string message(int ev) const override {
        switch (static_cast<WireErrc>(ev)) {
            case WireErrc::ok: return "ok";
            case WireErrc::truncated: return "key holder message truncated";
            case WireErrc::oversize: return "key holder message or field too large";
            case WireErrc::bad_version: return "key holder message of an unknown version";
            case WireErrc::bad_type: return "key holder request of an unknown type";
            case WireErrc::bad_field_count: return "key holder request with the wrong number of fields";
            case WireErrc::trailing_bytes: return "key holder message with trailing bytes";
        }
        return "unknown key holder message error";
    }
};

constexpr std::size_t kSecretMax = 1024;                           // a data key, or the passphrase layer's blob
constexpr std::size_t kWrappedMax = 1 + 8 + 24 + 16 + kSecretMax;  // keys.hpp's wrapped-key format
constexpr std::size_t kAadMax = 1024;

void put16(std::string& out, std::size_t n) {
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
}

std::size_t get16(std::string_view in, std::size_t at) {
    return (static_cast<std::size_t>(static_cast<unsigned char>(in[at])) << 8) | static_cast<unsigned char>(in[at + 1]);
}

bool known(std::uint8_t op) { return op >= 1 && op <= 4; }

}  // namespace

const boost::system::error_category& wire_category() noexcept {
    static const Category c;
    return c;
}

std::size_t field_count(Op op) {
    switch (op) {
        case Op::key_id: return 0;
        case Op::wrap: return 2;
        case Op::mac: return 2;
        case Op::unwrap: return 4;
    }
    return 0;
}

std::size_t field_max(Op op, std::size_t index) {
    switch (op) {
        case Op::key_id: return 0;
        case Op::wrap: return index == 0 ? kSecretMax : kAadMax;
        case Op::mac: return index == 0 ? 32 : 2048;  // purpose, data
        case Op::unwrap: {
            constexpr std::size_t max[] = {64, 256, kWrappedMax, kAadMax};  // id, cookie, wrapped, aad
            return index < 4 ? max[index] : 0;
        }
    }
    return 0;
}

Result<std::string> encode_request(const Request& r) {
    if (!known(static_cast<std::uint8_t>(r.op))) return WireErrc::bad_type;
    if (r.fields.size() != field_count(r.op)) return WireErrc::bad_field_count;
    std::string out;
    out.push_back(static_cast<char>(kVersion));
    out.push_back(static_cast<char>(r.op));
    out.push_back(static_cast<char>(r.fields.size()));
    for (std::size_t i = 0; i < r.fields.size(); ++i) {
        if (r.fields[i].size() > field_max(r.op, i)) return WireErrc::oversize;
        put16(out, r.fields[i].size());
        out += r.fields[i];
    }
    if (out.size() > kMaxMessage) return WireErrc::oversize;
    return out;
}

Result<Request> parse_request(std::string_view in) {
    if (in.size() > kMaxMessage) return WireErrc::oversize;
    if (in.size() < 3) return WireErrc::truncated;
    if (static_cast<std::uint8_t>(in[0]) != kVersion) return WireErrc::bad_version;
    const auto op = static_cast<std::uint8_t>(in[1]);
    if (!known(op)) return WireErrc::bad_type;
    Request r;
    r.op = static_cast<Op>(op);
    const std::size_t n = static_cast<std::uint8_t>(in[2]);
    if (n != field_count(r.op)) return WireErrc::bad_field_count;
    std::size_t at = 3;
    for (std::size_t i = 0; i < n; ++i) {
        if (in.size() - at < 2) return WireErrc::truncated;
        const std::size_t len = get16(in, at);
        at += 2;
        if (len > field_max(r.op, i)) return WireErrc::oversize;
        if (in.size() - at < len) return WireErrc::truncated;
        r.fields.emplace_back(in.substr(at, len));
        at += len;
    }
    if (at != in.size()) return WireErrc::trailing_bytes;
    return r;
}

Result<std::string> encode_response(const Response& r) {
    if (r.payload.size() > kMaxPayload) return WireErrc::oversize;
    std::string out;
    out.push_back(static_cast<char>(kVersion));
    out.push_back(static_cast<char>(r.status));
    put16(out, r.payload.size());
    out += r.payload;
    return out;
}

Result<Response> parse_response(std::string_view in) {
    if (in.size() > kMaxMessage) return WireErrc::oversize;
    if (in.size() < 4) return WireErrc::truncated;
    if (static_cast<std::uint8_t>(in[0]) != kVersion) return WireErrc::bad_version;
    Response r;
    r.status = static_cast<std::uint8_t>(in[1]);
    const std::size_t len = get16(in, 2);
    if (len > kMaxPayload) return WireErrc::oversize;
    if (in.size() - 4 < len) return WireErrc::truncated;
    if (in.size() - 4 > len) return WireErrc::trailing_bytes;
    r.payload = std::string(in.substr(4, len));
    return r;
}

}  // namespace mailward::escrow::wire
