// Wire-format rdata decoding: good records and a table of malformed ones (truncated, overlong
// labels, compression pointers, trailing bytes), none of which may crash or be half-accepted.
#include "dns/rdata.hpp"

#include <gtest/gtest.h>

using namespace mailward::dns;
using std::string_literals::operator""s;

TEST(Rdata, GoodRecords) {
    auto mx = rdata::mx("\x00\x0a\x02mx\x07" "Example\x04test\x00"s);
    ASSERT_TRUE(mx);
    EXPECT_EQ(mx->preference, 10u);
    EXPECT_EQ(mx->exchange, "mx.example.test");
    auto null_mx = rdata::mx("\x00\x00\x00"s);
    ASSERT_TRUE(null_mx);
    EXPECT_EQ(null_mx->exchange, "");
    EXPECT_EQ(rdata::a("\x7f\x00\x00\x01"s), "127.0.0.1");
    EXPECT_EQ(rdata::aaaa(std::string(15, '\0') + "\x01"), "::1");
    auto t = rdata::tlsa("\x03\x01\x01\xab\xcd"s);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->usage, 3);
    EXPECT_EQ(t->selector, 1);
    EXPECT_EQ(t->matching_type, 1);
    EXPECT_EQ(t->data, (std::vector<std::uint8_t>{0xab, 0xcd}));
    EXPECT_EQ(rdata::txt("\x07v=STSv1\x0a; id=2024a"s), "v=STSv1; id=2024a");
    EXPECT_EQ(rdata::txt(""s), "");
}

TEST(Rdata, MalformedRecordsAreRefused) {
    const std::string bad_mx[] = {
        ""s, "\x00"s, "\x00\x0a"s,                       // too short
        "\x00\x0a\x05mx"s,                               // label runs past the end
        "\x00\x0a\x02mx"s,                               // no terminating root label
        "\x00\x0a\xc0\x0c"s,                             // compression pointer
        "\x00\x0a\x40"s + std::string(64, 'a') + "\x00"s,  // label over 63 octets
        "\x00\x0a\x02mx\x00junk"s,                       // trailing bytes
    };
    for (const auto& d : bad_mx) EXPECT_FALSE(rdata::mx(d).has_value()) << d.size();
    EXPECT_FALSE(rdata::a("\x7f\x00\x01"s));
    EXPECT_FALSE(rdata::a("\x7f\x00\x00\x01\x01"s));
    EXPECT_FALSE(rdata::aaaa(std::string(15, '\0')));
    EXPECT_FALSE(rdata::tlsa("\x03\x01\x01"s));
    EXPECT_FALSE(rdata::txt("\x05abc"s));
    std::string deep;  // 130 one-octet labels: over 253 octets of name
    for (int i = 0; i < 130; ++i) deep += "\x01x";
    std::size_t pos = 0;
    EXPECT_FALSE(rdata::name(deep + "\x00"s, pos).has_value());
}
