// Table-driven tests of the DATA phase decoder: end of data, dot-unstuffing, chunking down to one
// byte at a time, SMTP smuggling vectors (CVE-2023-51766), size limit, long lines, NUL and 8-bit.
#include "smtp/data.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mailward::smtp;

namespace {

struct Flags {
    bool bare_lf = false, bare_cr = false, nul = false, eight_bit = false, long_line = false, too_large = false;
};

struct Case {
    const char* name;
    std::string input;  // octets after the 354 reply
    bool done;
    std::size_t consumed;  // when done: where the end-of-data sequence ends
    std::string body;
    Flags flags;
};

std::vector<Case> cases() {
    const std::string l998(998, 'x');
    const std::string l999(999, 'x');
    return {
        {"empty message", ".\r\n", true, 3, "", {}},
        {"one line", "Hi\r\n.\r\n", true, 7, "Hi\r\n", {}},
        {"headers and body", "Subject: t\r\n\r\nbody\r\n.\r\n", true, 23, "Subject: t\r\n\r\nbody\r\n", {}},
        {"stuffed dot", "..\r\n.\r\n", true, 7, ".\r\n", {}},
        {"stuffed text", "..hidden\r\n.\r\n", true, 13, ".hidden\r\n", {}},
        {"dots inside line", "a.b.\r\n.\r\n", true, 9, "a.b.\r\n", {}},
        {"triple dot", "...\r\n.\r\n", true, 8, "..\r\n", {}},
        {"unstuffed dot text", ".x\r\n.\r\n", true, 7, "x\r\n", {}},
        {"pipelined after end", "a\r\n.\r\nQUIT\r\n", true, 6, "a\r\n", {}},
        {"end only after CRLF", "a.\r\n.\r\n", true, 7, "a.\r\n", {}},
        {"empty lines", "\r\n\r\n.\r\n", true, 7, "\r\n\r\n", {}},
        {"not yet ended", "a\r\nb\r\n", false, 6, "a\r\nb\r\n", {}},
        {"dot pending", "a\r\n.", false, 4, "", {}},
        {"dot CR pending", "a\r\n.\r", false, 5, "", {}},
        // Smuggling vectors: none of these end the data; all are flagged.
        {"LF dot LF", "a\n.\nMAIL FROM:<x@y>\r\n", false, 21, "", {.bare_lf = true}},
        {"CRLF dot LF", "a\r\n.\nMAIL FROM:<x@y>\r\n", false, 22, "", {.bare_lf = true}},
        {"LF dot CRLF", "a\n.\r\nRCPT TO:<x@y>\r\n", false, 20, "", {.bare_lf = true}},
        {"CR dot CR", "a\r.\rb\r\n", false, 7, "", {.bare_cr = true}},
        {"CR dot CRLF", "a\r.\r\nb\r\n", false, 8, "", {.bare_cr = true}},
        {"dot CR x", "a\r\n.\rx\r\n", false, 8, "", {.bare_cr = true}},
        {"smuggled then real end",
         "a\n.\nMAIL FROM:<x@y>\r\n.\r\n",
         true,
         24,
         "a\n.\nMAIL FROM:<x@y>\r\n",
         {.bare_lf = true}},
        {"bare CR then end", "a\rb\r\n.\r\n", true, 8, "a\rb\r\n", {.bare_cr = true}},
        {"CR CR LF", "a\r\r\n.\r\n", true, 7, "a\r\r\n", {.bare_cr = true}},
        {"leading bare LF", "\n.\r\n.\r\n", true, 7, "\n.\r\n", {.bare_lf = true}},
        // Octet classes.
        {"NUL", std::string("a\0b\r\n.\r\n", 8), true, 8, std::string("a\0b\r\n", 5), {.nul = true}},
        {"8-bit", "caf\xC3\xA9\r\n.\r\n", true, 10, "caf\xC3\xA9\r\n", {.eight_bit = true}},
        {"8-bit after stuffed dot", "..\xFF\r\n.\r\n", true, 8, ".\xFF\r\n", {.eight_bit = true}},
        // Line length: 998 octets before CRLF is the limit.
        {"998 octets", l998 + "\r\n.\r\n", true, 1003, l998 + "\r\n", {}},
        {"999 octets", l999 + "\r\n.\r\n", true, 1004, l999 + "\r\n", {.long_line = true}},
        {"998 after stuffing", "." + l998 + "\r\n.\r\n", true, 1004, l998 + "\r\n", {}},
        {"long before bare LF",
         l998 + "\n" + "\r\n.\r\n",
         true,
         1004,
         l998 + "\n\r\n",
         {.bare_lf = true, .long_line = true}},
    };
}

void expect_result(const Case& c, DataDecoder& d, std::size_t consumed) {
    EXPECT_EQ(d.done(), c.done) << c.name;
    EXPECT_EQ(d.status() == DataDecoder::Status::done, c.done) << c.name;
    EXPECT_EQ(consumed, c.consumed) << c.name;
    EXPECT_EQ(d.bare_lf(), c.flags.bare_lf) << c.name;
    EXPECT_EQ(d.bare_cr(), c.flags.bare_cr) << c.name;
    EXPECT_EQ(d.nul(), c.flags.nul) << c.name;
    EXPECT_EQ(d.eight_bit(), c.flags.eight_bit) << c.name;
    EXPECT_EQ(d.long_line(), c.flags.long_line) << c.name;
    EXPECT_EQ(d.too_large(), c.flags.too_large) << c.name;
    if (c.done) {
        EXPECT_EQ(d.size(), c.body.size()) << c.name;
        EXPECT_EQ(d.take_body(), c.body) << c.name;
    }
}

TEST(DataDecoder, WholeInput) {
    for (const auto& c : cases()) {
        DataDecoder d;
        expect_result(c, d, d.feed(c.input));
    }
}

TEST(DataDecoder, OneByteAtATime) {
    for (const auto& c : cases()) {
        DataDecoder d;
        std::size_t consumed = 0;
        for (char ch : c.input) {
            const std::size_t n = d.feed(std::string_view(&ch, 1));
            if (d.done() && n == 0) break;
            ASSERT_EQ(n, 1u) << c.name;
            consumed += n;
        }
        expect_result(c, d, consumed);
    }
}

TEST(DataDecoder, EverySplitIntoTwoChunks) {
    for (const auto& c : cases()) {
        for (std::size_t cut = 0; cut <= c.input.size(); ++cut) {
            DataDecoder d;
            const std::string_view in(c.input);
            std::size_t consumed = d.feed(in.substr(0, cut));
            if (!d.done()) {
                ASSERT_EQ(consumed, cut) << c.name;
                consumed += d.feed(in.substr(cut));
            }
            EXPECT_EQ(consumed, c.consumed) << c.name << " cut at " << cut;
            EXPECT_EQ(d.done(), c.done) << c.name << " cut at " << cut;
            if (c.done) {
                EXPECT_EQ(d.take_body(), c.body) << c.name << " cut at " << cut;
            }
        }
    }
}

TEST(DataDecoder, FeedAfterDoneConsumesNothing) {
    DataDecoder d;
    ASSERT_EQ(d.feed(".\r\n"), 3u);
    ASSERT_TRUE(d.done());
    EXPECT_EQ(d.feed("more\r\n.\r\n"), 0u);
    EXPECT_EQ(d.feed(""), 0u);
    EXPECT_EQ(d.body(), "");
}

TEST(DataDecoder, SizeLimit) {
    struct Limit {
        std::uint64_t max;
        std::string input;
        bool too_large;
        std::uint64_t size;
        std::string body;
    };
    const Limit limits[] = {
        {10, "12345678\r\n.\r\n", false, 10, "12345678\r\n"},
        {10, "123456789\r\n.\r\n", true, 11, ""},
        {10, "..2345678\r\n.\r\n", false, 10, ".2345678\r\n"},  // stuffing dots do not count
        {1, ".\r\n", false, 0, ""},
        {0, std::string(100000, 'a') + "\r\n.\r\n", false, 100002, std::string(100000, 'a') + "\r\n"},
        {1000, std::string(5000, 'a') + "\r\n" + std::string(5000, 'b') + "\r\n.\r\n", true, 10004, ""},
    };
    for (const auto& l : limits) {
        for (bool bytewise : {false, true}) {
            DataDecoder d(l.max);
            if (bytewise) {
                for (char ch : l.input) d.feed(std::string_view(&ch, 1));
            } else {
                EXPECT_EQ(d.feed(l.input), l.input.size());
            }
            ASSERT_TRUE(d.done()) << l.max;
            EXPECT_EQ(d.too_large(), l.too_large) << l.max << " " << l.size;
            EXPECT_EQ(d.size(), l.size) << l.max;
            EXPECT_EQ(d.take_body(), l.body) << l.max;
        }
    }
}

}  // namespace
