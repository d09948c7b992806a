// libFuzzer target for the key holder's message parsers (escrow/keyholder_wire.hpp), the input a
// compromised serve process controls: no crash, no read past the datagram; a parsed request has the
// op's field count and fields within their maxima, and re-encodes to the same bytes (so the parser
// accepts exactly one spelling of each request); responses likewise.
#include <string>

#include "escrow/keyholder_wire.hpp"
#include "fuzz_common.hpp"

using namespace mailward::escrow::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (auto req = parse_request(bytes)) {
        mailward::fuzz::check(bytes.size() <= kMaxMessage, "request size");
        mailward::fuzz::check(req->fields.size() == field_count(req->op), "field count");
        for (std::size_t i = 0; i < req->fields.size(); ++i)
            mailward::fuzz::check(req->fields[i].size() <= field_max(req->op, i), "field maximum");
        auto again = encode_request(*req);
        mailward::fuzz::check(again && *again == bytes, "request round trip");
    }
    if (auto resp = parse_response(bytes)) {
        mailward::fuzz::check(resp->payload.size() <= kMaxPayload, "payload maximum");
        auto again = encode_response(*resp);
        mailward::fuzz::check(again && *again == bytes, "response round trip");
    }
    return 0;
}
