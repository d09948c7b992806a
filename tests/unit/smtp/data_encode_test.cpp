// The client's DATA encoding against SMTP smuggling (2023): every bare CR / bare LF sequence that
// some receiver might take for an end of data is sent as CRLF, dot-stuffed; a NUL is reported.
// Each encoded body is fed to the server's own strict decoder (data.hpp), which must end exactly
// at our end marker, see no bare CR or LF, and give back the normalised body.
#include "smtp/data_encode.hpp"

#include <gtest/gtest.h>

#include "smtp/data.hpp"

using namespace mailward::smtp;

using namespace std::string_literals;

namespace {

struct Case {
    const char* name;
    std::string body;
    bool crlf_only, nul, dot_line, ends_crlf;
    std::string wire;  // encode_data()
};

const Case kCases[] = {
    {"clean", "a\r\nb\r\n", true, false, false, true, "a\r\nb\r\n.\r\n"},
    {"clean, no final CRLF", "a\r\nb", true, false, false, false, "a\r\nb\r\n.\r\n"},
    {"empty", "", true, false, false, false, "\r\n.\r\n"},
    {"leading dot", ".a\r\n", true, false, true, true, "..a\r\n.\r\n"},
    {"dot line", "a\r\n.\r\nb\r\n", true, false, true, true, "a\r\n..\r\nb\r\n.\r\n"},
    {"<LF>.<LF>", "a\n.\nb\r\n", false, false, true, true, "a\r\n..\r\nb\r\n.\r\n"},
    {"<CR>.<CR>", "a\r.\rb\r\n", false, false, true, true, "a\r\n..\r\nb\r\n.\r\n"},
    {"<CR>.<LF>", "a\r.\nb\r\n", false, false, true, true, "a\r\n..\r\nb\r\n.\r\n"},
    {"<LF>.<CR>", "a\n.\rb\r\n", false, false, true, true, "a\r\n..\r\nb\r\n.\r\n"},
    {"<CR><LF>.<LF>", "a\r\n.\nMAIL FROM:<x@y>\r\n", false, false, true, true, "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"},
    {"<LF>.<CR><LF>", "a\n.\r\nRCPT TO:<v@w>\r\n", false, false, true, true, "a\r\n..\r\nRCPT TO:<v@w>\r\n.\r\n"},
    {"<CR><LF>.<CR>", "a\r\n.\rb\r\n", false, false, true, true, "a\r\n..\r\nb\r\n.\r\n"},
    {"bare LF in a line", "a\nb\r\n", false, false, false, true, "a\r\nb\r\n.\r\n"},
    {"bare CR in a line", "a\rb\r\n", false, false, false, true, "a\r\nb\r\n.\r\n"},
    {"CR CR LF", "a\r\r\nb\r\n", false, false, false, true,
     "a\r\n\r\nb\r\n"
     ".\r\n"},
    {"ends with bare LF", "a\r\nb\n", false, false, false, false, "a\r\nb\r\n.\r\n"},
    {"ends with bare CR", "a\r\nb\r", false, false, false, false, "a\r\nb\r\n.\r\n"},
    {"ends with <LF>.", "a\n.", false, false, true, false, "a\r\n..\r\n.\r\n"},
    {"only <LF>.<LF>", "\n.\n", false, false, true, false, "\r\n..\r\n.\r\n"},
    {"NUL", "a\r\n\0.\r\nb\r\n"s, true, true, false, true, "a\r\n\0.\r\nb\r\n.\r\n"s},
    {"8-bit and long runs", "h\xc3\xa9llo w\xc3\xb6rld 0123456789abcdef\n.\n0123456789abcdef\r\n", false, false, true,
     true, "h\xc3\xa9llo w\xc3\xb6rld 0123456789abcdef\r\n..\r\n0123456789abcdef\r\n.\r\n"},
};

// What the server's decoder makes of wire: it must end exactly at our end marker.
struct Decoded {
    std::size_t consumed = 0;
    bool done = false, bare = false;
    std::string body;
};
Decoded decode(const std::string& wire) {
    DataDecoder d;
    Decoded out;
    out.consumed = d.feed(wire);
    out.done = d.done();
    out.bare = d.bare_cr() || d.bare_lf();
    out.body = d.take_body();
    return out;
}

}  // namespace

TEST(DataEncode, ScanAndEncodeTable) {
    for (const auto& c : kCases) {
        SCOPED_TRACE(c.name);
        const BodyScan s = scan_body(c.body);
        EXPECT_EQ(s.crlf_only, c.crlf_only);
        EXPECT_EQ(s.nul, c.nul);
        EXPECT_EQ(s.dot_line, c.dot_line);
        EXPECT_EQ(s.ends_crlf, c.ends_crlf);
        std::string wire = "prefix:";
        encode_data(c.body, wire);
        EXPECT_EQ(wire, "prefix:" + c.wire);
        wire.erase(0, 7);
        // Nothing smuggled: the strict decoder takes all of it as one message, no bare CR or LF.
        const Decoded d = decode(wire);
        EXPECT_TRUE(d.done);
        EXPECT_EQ(d.consumed, wire.size());
        EXPECT_FALSE(d.bare);
        std::string normal = c.body;
        if (!c.nul) {
            EXPECT_TRUE(normalise_line_ends(normal));
            if (!normal.ends_with("\r\n")) normal += "\r\n";
            EXPECT_EQ(d.body, normal);
        }
    }
}

TEST(DataEncode, NormaliseLineEnds) {
    struct N {
        std::string in;
        bool ok;
        std::string out;
    };
    const N cases[] = {
        {"a\r\nb\r\n", true, "a\r\nb\r\n"}, {"a\nb\rc\r\n", true, "a\r\nb\r\nc\r\n"},
        {"\r\r\n\n", true, "\r\n\r\n\r\n"}, {"", true, ""},
        {"a\0b\n"s, false, "a\0b\n"s},
    };
    for (const auto& c : cases) {
        std::string s = c.in;
        EXPECT_EQ(normalise_line_ends(s), c.ok) << c.out;
        EXPECT_EQ(s, c.out);
        if (c.ok) {
            EXPECT_TRUE(scan_body(s).crlf_only);
        }
    }
}

// Every split of a long body is found, also where the 8-octet skipping meets a special octet.
TEST(DataEncode, EveryPositionOfABareLf) {
    const std::string base(40, 'x');
    for (std::size_t at = 0; at < base.size(); ++at) {
        std::string body = base;
        body[at] = '\n';
        const BodyScan s = scan_body(body);
        EXPECT_FALSE(s.crlf_only) << at;
        std::string wire;
        encode_data(body, wire);
        const Decoded d = decode(wire);
        EXPECT_TRUE(d.done && !d.bare && d.consumed == wire.size()) << at;
        std::string with_nul = base;
        with_nul[at] = '\0';
        EXPECT_TRUE(scan_body(with_nul).nul) << at;
    }
}
