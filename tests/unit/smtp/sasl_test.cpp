// Table-driven tests of strict base64 and the SASL PLAIN message (RFC 4648, RFC 4616).
#include "smtp/sasl.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mailward::smtp;

namespace {

TEST(Base64, EncodesAndDecodesRfc4648Vectors) {
    struct Case {
        std::string plain, b64;
    };
    const Case cases[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
        {std::string("\0user\0pass", 10), "AHVzZXIAcGFzcw=="},
        {"\xFF\xFE\xFD", "//79"},
        {"\xFB\xEF", "++8="},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(base64_encode(c.plain), c.b64);
        auto d = base64_decode(c.b64);
        ASSERT_TRUE(d.has_value()) << c.b64;
        EXPECT_EQ(*d, c.plain) << c.b64;
    }
}

TEST(Base64, RejectsNonCanonicalInput) {
    const char* cases[] = {
        "Zg",        // padding missing
        "Zg=",       // padding short
        "Zg===",     // too much padding
        "Zh==",      // non-zero pad bits
        "Zm9=",      // non-zero pad bits
        "Zm9v ",     // whitespace
        " Zm9v",     //
        "Zm9v\r\n",  //
        "Zm 9v",     //
        "Z=9v",      // padding in the middle
        "Zm9v====",  // padding-only block
        "====",      //
        "=",         // the SASL empty response is not base64
        "Zm9-",      // URL-safe alphabet
        "Zm9_",      //
        "Zm9v*A==",  //
        "\xC3\xA9\xC3\xA9",
    };
    for (const char* c : cases) EXPECT_FALSE(base64_decode(c).has_value()) << c;
}

TEST(Base64, RejectsEveryOctetOutsideTheAlphabet) {
    // libsodium 1.0.18 alone would read any octet >= 0x80 as "/": the wrapper must refuse them.
    for (int c = 0; c < 256; ++c) {
        const bool alphabet =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        std::string text = "QUFB";
        text[1] = static_cast<char>(c);
        EXPECT_EQ(base64_decode(text).has_value(), alphabet) << c;
    }
}

TEST(Plain, DecodesCredentials) {
    struct Case {
        std::string msg;
        std::string authzid, authcid, password;
    };
    const Case cases[] = {
        {std::string("\0alice\0secret", 13), "", "alice", "secret"},
        {std::string("alice\0alice\0secret", 18), "alice", "alice", "secret"},
        {std::string("\0alice@example.com\0p a s s", 26), "", "alice@example.com", "p a s s"},
        {std::string("\0j\xC3\xBCrgen\0p\xC3\xA4ss", 14), "", "j\xC3\xBCrgen", "p\xC3\xA4ss"},
        {std::string("\0a\0", 3) + std::string(255, 'p'), "", "a", std::string(255, 'p')},
    };
    for (const auto& c : cases) {
        auto r = decode_plain(c.msg);
        ASSERT_TRUE(r.has_value()) << c.authcid;
        EXPECT_EQ(r->authzid, c.authzid);
        EXPECT_EQ(r->authcid, c.authcid);
        EXPECT_EQ(r->password, c.password);
    }
}

TEST(Plain, RejectsMalformedMessages) {
    const std::string cases[] = {
        std::string(""),
        std::string("alice secret"),
        std::string("\0alice", 6),                        // one NUL
        std::string("\0alice\0", 7),                      // empty password
        std::string("\0\0secret", 8),                     // empty authcid
        std::string("\0alice\0sec\0ret", 14),             // extra NUL in password
        std::string("\0\0alice\0secret", 14),             // extra NUL up front
        std::string("bob\0alice\0secret", 16),            // acting for another user
        std::string("Alice\0alice\0secret", 18),          // authzid must match exactly
        std::string("\0al\xFFice\0secret", 14),           // invalid UTF-8
        std::string("\0alice\0s\xC3", 9),                 // truncated UTF-8
        std::string("\0a\0", 3) + std::string(256, 'p'),  // password over 255 octets
        std::string(1, '\0') + std::string(256, 'u') + std::string("\0p", 2),
    };
    for (const auto& c : cases) EXPECT_FALSE(decode_plain(c).has_value()) << c.size();
}

}  // namespace
