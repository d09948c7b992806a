// Wire-format rdata decoding (RFC 1035 3.3, RFC 6698 2.1, RFC 7505), table-driven: good records,
// and malformed ones (truncated, overlong labels, compression pointers, trailing bytes, labels
// without a text form), none of which may crash or be half-accepted.
#include "dns/rdata.hpp"

#include <gtest/gtest.h>

using namespace mailward::dns;
using std::string_literals::operator""s;

namespace {

std::string wire_name(const std::vector<std::string>& labels) {
    std::string out;
    for (const auto& l : labels) {
        out.push_back(static_cast<char>(l.size()));
        out += l;
    }
    out.push_back('\0');
    return out;
}

}  // namespace

TEST(RdataName, Table) {
    struct Case {
        const char* what;
        std::string wire;
        std::optional<std::string> want;
        std::size_t end = 0;  // pos after a good name
    };
    const std::string max_label(63, 'a');
    std::string long_name;  // 4 x 63-octet labels: 255 text octets, over the 253 limit
    for (int i = 0; i < 4; ++i) long_name += "\x3f" + max_label;
    const Case cases[] = {
        {"root", "\x00"s, ""s, 1},
        {"one label", "\x04test\x00"s, "test"s, 6},
        {"lower-cased",
         "\x02MX\x07"
         "Example\x04TEST\x00"s,
         "mx.example.test"s, 17},
        {"63-octet label", wire_name({max_label, "test"}), max_label + ".test", 70},
        {"underscore and hyphen", wire_name({"_25", "_tcp", "mx-1"}), "_25._tcp.mx-1"s, 15},
        {"bytes after the name are left alone", "\x01x\x00zz"s, "x"s, 3},
        {"empty input", ""s, std::nullopt},
        {"no root label", "\x04test"s, std::nullopt},
        {"label past the end", "\x05test"s, std::nullopt},
        {"length octet only", "\x04"s, std::nullopt},
        {"compression pointer", "\xc0\x0c"s, std::nullopt},
        {"pointer after a label", "\x02mx\xc0\x0c"s, std::nullopt},
        {"extended label type 0x40", "\x40"s + std::string(64, 'a') + "\x00"s, std::nullopt},
        {"text over 253 octets", long_name + "\x00"s, std::nullopt},
        {"dot inside a label",
         "\x03"
         "a.b\x04test\x00"s,
         std::nullopt},
        {"space inside a label",
         "\x03"
         "a b\x00"s,
         std::nullopt},
        {"NUL inside a label",
         "\x03"
         "a\x00"
         "b\x00"s,
         std::nullopt},
        {"control octet",
         "\x02"
         "a\n\x00"s,
         std::nullopt},
        {"non-ASCII octet",
         "\x02"
         "a\xc3\x00"s,
         std::nullopt},
        {"DEL octet",
         "\x02"
         "a\x7f\x00"s,
         std::nullopt},
    };
    for (const auto& c : cases) {
        std::size_t pos = 0;
        auto got = rdata::name(c.wire, pos);
        EXPECT_EQ(got, c.want) << c.what;
        if (c.want) {
            EXPECT_EQ(pos, c.end) << c.what;
        }
    }
    std::string deep;  // 130 one-octet labels: more labels than any name may have
    for (int i = 0; i < 130; ++i) deep += "\x01x";
    std::size_t pos = 0;
    EXPECT_FALSE(rdata::name(deep + "\x00"s, pos).has_value());
    pos = 5;  // a start past the end
    EXPECT_FALSE(rdata::name("\x00"s, pos).has_value());
}

TEST(RdataMx, Table) {
    struct Case {
        const char* what;
        std::string wire;
        bool ok;
        unsigned preference = 0;
        std::string exchange;
    };
    const Case cases[] = {
        {"ordinary",
         "\x00\x0a\x02mx\x07"
         "Example\x04test\x00"s,
         true, 10, "mx.example.test"},
        {"null MX", "\x00\x00\x00"s, true, 0, ""},
        {"preference 65535", "\xff\xff\x01x\x00"s, true, 65535, "x"},
        {"empty", ""s, false, 0, ""},
        {"preference only", "\x00\x0a"s, false, 0, ""},
        {"one octet", "\x00"s, false, 0, ""},
        {"label past the end", "\x00\x0a\x05mx"s, false, 0, ""},
        {"no root label", "\x00\x0a\x02mx"s, false, 0, ""},
        {"compression pointer", "\x00\x0a\xc0\x0c"s, false, 0, ""},
        {"label over 63 octets", "\x00\x0a\x40"s + std::string(64, 'a') + "\x00"s, false, 0, ""},
        {"trailing bytes", "\x00\x0a\x02mx\x00junk"s, false, 0, ""},
        {"dot inside a label", "\x00\x0a\x06mx.evil\x00"s, false, 0, ""},
    };
    for (const auto& c : cases) {
        auto got = rdata::mx(c.wire);
        ASSERT_EQ(got.has_value(), c.ok) << c.what;
        if (!got) continue;
        EXPECT_EQ(got->preference, c.preference) << c.what;
        EXPECT_EQ(got->exchange, c.exchange) << c.what;
    }
}

TEST(RdataAddress, Table) {
    struct Case {
        const char* what;
        std::string wire;
        bool v6;
        std::optional<std::string> want;
    };
    const Case cases[] = {
        {"loopback", "\x7f\x00\x00\x01"s, false, "127.0.0.1"s},
        {"all ones", "\xff\xff\xff\xff"s, false, "255.255.255.255"s},
        {"A short", "\x7f\x00\x01"s, false, std::nullopt},
        {"A long", "\x7f\x00\x00\x01\x01"s, false, std::nullopt},
        {"A empty", ""s, false, std::nullopt},
        {"::1", std::string(15, '\0') + "\x01", true, "::1"s},
        {"RFC 5952 zero run", "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01", true, "2001:db8::1"s},
        {"mapped IPv4", std::string(10, '\0') + "\xff\xff\x7f\x00\x00\x01"s, true, "::ffff:127.0.0.1"s},
        {"AAAA short", std::string(15, '\0'), true, std::nullopt},
        {"AAAA long", std::string(17, '\0'), true, std::nullopt},
        {"AAAA with A length", "\x7f\x00\x00\x01"s, true, std::nullopt},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(c.v6 ? rdata::aaaa(c.wire) : rdata::a(c.wire), c.want) << c.what;
    }
}

TEST(RdataTlsa, Table) {
    auto t = rdata::tlsa("\x03\x01\x01\xab\xcd"s);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->usage, 3);
    EXPECT_EQ(t->selector, 1);
    EXPECT_EQ(t->matching_type, 1);
    EXPECT_EQ(t->data, (std::vector<std::uint8_t>{0xab, 0xcd}));
    const std::string sha256(32, '\x5a');
    auto full = rdata::tlsa("\x02\x00\x02"s + sha256);
    ASSERT_TRUE(full);
    EXPECT_EQ(full->usage, 2);
    EXPECT_EQ(full->selector, 0);
    EXPECT_EQ(full->matching_type, 2);
    EXPECT_EQ(full->data.size(), 32u);
    for (const auto& bad : {""s, "\x03"s, "\x03\x01"s, "\x03\x01\x01"s}) {
        EXPECT_FALSE(rdata::tlsa(bad).has_value()) << bad.size() << " octets (no association data)";
    }
}

TEST(RdataTxt, Table) {
    struct Case {
        const char* what;
        std::string wire;
        std::optional<std::string> want;
    };
    const Case cases[] = {
        {"one string", "\x07v=STSv1"s, "v=STSv1"s},
        {"strings concatenated", "\x07v=STSv1\x0a; id=2024a"s, "v=STSv1; id=2024a"s},
        {"empty string", "\x00"s, ""s},
        {"no strings", ""s, ""s},
        {"255-octet string", "\xff"s + std::string(255, 'x'), std::string(255, 'x')},
        {"binary kept as is", "\x03\x00\x01\xff"s, "\x00\x01\xff"s},
        {"string past the end",
         "\x05"
         "abc"s,
         std::nullopt},
        {"second string past the end",
         "\x01"
         "a\x02"
         "b"s,
         std::nullopt},
        {"length octet only", "\x01"s, std::nullopt},
    };
    for (const auto& c : cases) EXPECT_EQ(rdata::txt(c.wire), c.want) << c.what;
}
