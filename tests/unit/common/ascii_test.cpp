// Table-driven tests of the ASCII helpers (common/ascii.hpp): case folding touches only A-Z,
// comparison ignores only ASCII case, trimming removes only spaces and tabs.
#include "common/ascii.hpp"

#include <gtest/gtest.h>

using namespace mailward::common::ascii;

TEST(Ascii, Lower) {
    struct Case {
        std::string_view in, want;
    };
    const Case cases[] = {
        {"", ""},
        {"ABC xyz 09", "abc xyz 09"},
        {"Example.ORG", "example.org"},
        {"\xc3\x84@[]`{", "\xc3\x84@[]`{"},  // non-ASCII and the neighbours of A-Z / a-z unchanged
    };
    for (const auto& c : cases) EXPECT_EQ(lower(c.in), c.want) << c.in;
}

TEST(Ascii, Iequals) {
    struct Case {
        std::string_view a, b;
        bool want;
    };
    const Case cases[] = {
        {"", "", true},    {"EHLO", "ehlo", true}, {"8BitMime", "8BITMIME", true},  {"ehlo", "ehl", false},
        {"@", "`", false}, {"[", "{", false},      {"\xc3\x84", "\xc3\xa4", false},  // Ä / ä: not ASCII, not folded
    };
    for (const auto& c : cases) EXPECT_EQ(iequals(c.a, c.b), c.want) << c.a << " / " << c.b;
    EXPECT_TRUE(istarts_with("MAIL FROM:<a@b>", "mail from:"));
    EXPECT_FALSE(istarts_with("MAIL", "mail from:"));
}

TEST(Ascii, TrimWsp) {
    struct Case {
        std::string_view in, want;
    };
    const Case cases[] = {
        {"", ""}, {" \t ", ""}, {"  a b\t", "a b"}, {"a", "a"}, {"\r\na\r\n", "\r\na\r\n"},
    };
    for (const auto& c : cases) EXPECT_EQ(trim_wsp(c.in), c.want) << '"' << c.in << '"';
}
