// The key holder's message format (escrow/keyholder_wire.hpp), table-driven: good requests of
// every op round-trip; truncated, oversize, unknown-version, unknown-type, wrong-field-count and
// trailing-byte datagrams are refused with their own error; responses likewise.
#include "escrow/keyholder_wire.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mailward::escrow::wire;

namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) s.push_back(static_cast<char>(c));
    return s;
}

std::string field(std::string_view f) {
    return bytes({static_cast<int>(f.size() >> 8), static_cast<int>(f.size() & 0xff)}) + std::string(f);
}

}  // namespace

TEST(KeyHolderWire, GoodRequestsRoundTrip) {
    const Request cases[] = {
        {Op::key_id, {}},
        {Op::wrap, {std::string(32, 'k'), "aad"}},
        {Op::wrap, {std::string(1024, 'k'), std::string(1024, 'a')}},  // both at their maximum
        {Op::mac, {"session", "cookie"}},
        {Op::mac, {"audit", ""}},  // an empty field is a field
        {Op::unwrap, {"0123456789abcdef", "cookie", std::string(73, 'w'), "aad"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(static_cast<int>(c.op));
        auto enc = encode_request(c);
        ASSERT_TRUE(enc) << enc.error().message();
        auto back = parse_request(*enc);
        ASSERT_TRUE(back) << back.error().message();
        EXPECT_EQ(back->op, c.op);
        EXPECT_EQ(back->fields, c.fields);
    }
}

TEST(KeyHolderWire, BadRequestsAreRefused) {
    struct Case {
        const char* name;
        std::string bytes;
        WireErrc want;
    };
    const std::string wrap_head = bytes({1, 2, 2});
    const Case cases[] = {
        {"empty", "", WireErrc::truncated},
        {"header only two bytes", bytes({1, 1}), WireErrc::truncated},
        {"version 2", bytes({2, 1, 0}), WireErrc::bad_version},
        {"version 0", bytes({0, 1, 0}), WireErrc::bad_version},
        {"op 0", bytes({1, 0, 0}), WireErrc::bad_type},
        {"op 5", bytes({1, 5, 0}), WireErrc::bad_type},
        {"op 255", bytes({1, 255, 0}), WireErrc::bad_type},
        {"key_id with a field", bytes({1, 1, 1, 0, 0}), WireErrc::bad_field_count},
        {"wrap with one field", bytes({1, 2, 1}) + field("k"), WireErrc::bad_field_count},
        {"unwrap with 255 fields", bytes({1, 4, 255}), WireErrc::bad_field_count},
        {"length cut", wrap_head + bytes({0}), WireErrc::truncated},
        {"field shorter than its length", wrap_head + bytes({0, 5}) + "abc", WireErrc::truncated},
        {"second field missing", wrap_head + field("key"), WireErrc::truncated},
        {"length 0xffff", wrap_head + bytes({0xff, 0xff}) + "x", WireErrc::oversize},
        {"secret 1025 bytes", wrap_head + field(std::string(1025, 'k')) + field(""), WireErrc::oversize},
        {"purpose 33 bytes", bytes({1, 3, 2}) + field(std::string(33, 'p')) + field(""), WireErrc::oversize},
        {"escrow id 65 bytes", bytes({1, 4, 4}) + field(std::string(65, 'i')) + field("") + field("") + field(""),
         WireErrc::oversize},
        {"trailing byte", wrap_head + field("k") + field("a") + "x", WireErrc::trailing_bytes},
        {"key_id with a trailing byte", bytes({1, 1, 0, 0}), WireErrc::trailing_bytes},
        {"datagram over the maximum", std::string(kMaxMessage + 1, '\x01'), WireErrc::oversize},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto r = parse_request(c.bytes);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(c.want)) << r.error().message();
    }
}

TEST(KeyHolderWire, EncoderRefusesWhatTheParserWould) {
    struct Case {
        const char* name;
        Request req;
        WireErrc want;
    };
    const Case cases[] = {
        {"wrong count", {Op::mac, {"audit"}}, WireErrc::bad_field_count},
        {"oversize field", {Op::wrap, {std::string(1025, 'k'), ""}}, WireErrc::oversize},
        {"unknown op", {static_cast<Op>(9), {}}, WireErrc::bad_type},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto r = encode_request(c.req);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(c.want));
    }
}

TEST(KeyHolderWire, Responses) {
    for (const Response& good : {Response{0, "payload"}, Response{7, ""}, Response{0, std::string(kMaxPayload, 'p')}}) {
        auto enc = encode_response(good);
        ASSERT_TRUE(enc);
        auto back = parse_response(*enc);
        ASSERT_TRUE(back) << back.error().message();
        EXPECT_EQ(back->status, good.status);
        EXPECT_EQ(back->payload, good.payload);
    }
    EXPECT_FALSE(encode_response(Response{0, std::string(kMaxPayload + 1, 'p')}));
    struct Case {
        const char* name;
        std::string bytes;
        WireErrc want;
    };
    const Case cases[] = {
        {"empty", "", WireErrc::truncated},
        {"no length", bytes({1, 0, 0}), WireErrc::truncated},
        {"version 9", bytes({9, 0, 0, 0}), WireErrc::bad_version},
        {"payload shorter than its length", bytes({1, 0, 0, 4}) + "abc", WireErrc::truncated},
        {"payload longer than its length", bytes({1, 0, 0, 2}) + "abc", WireErrc::trailing_bytes},
        {"length over the maximum", bytes({1, 0, 0x10, 0x01}) + std::string(4097, 'x'), WireErrc::oversize},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto r = parse_response(c.bytes);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(c.want)) << r.error().message();
    }
}
