// log_escape: controls, DEL, backslash and malformed UTF-8 become \xNN; valid UTF-8 stays; the
// result never contains a line break.
#include "common/log_escape.hpp"

#include <gtest/gtest.h>

using mailward::common::log_escape;

TEST(LogEscape, Table) {
    struct Case {
        std::string in;
        std::string out;
    } cases[] = {
        {"", ""},
        {"alice@example.org", "alice@example.org"},
        {"a\r\nFORGED: line", "a\\x0d\\x0aFORGED: line"},
        {std::string("nul\0x", 5), "nul\\x00x"},
        {"tab\there", "tab\\x09here"},
        {"del\x7f", "del\\x7f"},
        {"back\\x0a", "back\\x5cx0a"},                 // a literal "\x0a" cannot pass for an escape
        {"caf\xc3\xa9", "caf\xc3\xa9"},                // é stays
        {"\xe2\x82\xac", "\xe2\x82\xac"},              // €
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},      // U+1F600
        {"\xff\xfe", "\\xff\\xfe"},                    // not UTF-8
        {"\xc3", "\\xc3"},                             // truncated
        {"\xc3(", "\\xc3("},                           // bad continuation
        {"\xc0\xaf", "\\xc0\\xaf"},                    // overlong '/'
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},           // surrogate
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},  // above U+10FFFF
        {"\xc2\x85", "\\xc2\\x85"},                    // NEL (C1 control)
        {"a\xe2\x80\xa8"
         "b",
         "a\\xe2\\x80\\xa8b"},  // U+2028 line separator
    };
    for (const auto& c : cases) EXPECT_EQ(log_escape(c.in), c.out) << c.in;
}

TEST(LogEscape, NoByteValueSurvivesAsALineBreak) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    const std::string e = log_escape(all);
    EXPECT_EQ(e.find('\n'), std::string::npos);
    EXPECT_EQ(e.find('\r'), std::string::npos);
    for (unsigned char c : e) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << int(c);
}
