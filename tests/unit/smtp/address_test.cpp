// Table-driven tests of RFC 5321 / RFC 6531 path and mailbox parsing (smtp/address.hpp).
#include "smtp/address.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mailward::smtp;

namespace {

struct Good {
    std::string text;
    bool utf8;
    std::string local;
    std::string domain;
    std::size_t consumed;
};

TEST(Path, ParsesValidPaths) {
    const std::string l64(64, 'a');
    const std::string label63(63, 'b');
    // 4 * 63 + 3 dots = 255 octets of domain
    const std::string d255 = label63 + "." + label63 + "." + label63 + "." + label63;
    const Good cases[] = {
        {"<user@example.com>", false, "user", "example.com", 18},
        {"<User.Name+tag@Example.COM>", false, "User.Name+tag", "Example.COM", 27},
        {"<a@b>", false, "a", "b", 5},
        {"<!#$%&'*+-/=?^_`{|}~@x.y>", false, "!#$%&'*+-/=?^_`{|}~", "x.y", 25},
        {"<\"john doe\"@example.com>", false, "\"john doe\"", "example.com", 24},
        {"<\"a\\\"b\"@example.com>", false, "\"a\\\"b\"", "example.com", 20},
        {"<\"\"@example.com>", false, "\"\"", "example.com", 16},
        {"<\"a@b>c\"@example.com>", false, "\"a@b>c\"", "example.com", 21},
        {"<\"..\"@example.com>", false, "\"..\"", "example.com", 18},
        {"<user@[192.0.2.1]>", false, "user", "[192.0.2.1]", 18},
        {"<user@[IPv6:2001:db8::1]>", false, "user", "[IPv6:2001:db8::1]", 25},
        {"<user@[ipv6:2001:db8:0:0:0:0:0:1]>", false, "user", "[ipv6:2001:db8:0:0:0:0:0:1]", 34},
        {"<user@[IPv6:::ffff:192.0.2.1]>", false, "user", "[IPv6:::ffff:192.0.2.1]", 30},
        {"<user@[IPv6:1:2:3:4:5:6:192.0.2.1]>", false, "user", "[IPv6:1:2:3:4:5:6:192.0.2.1]", 35},
        {"<user@[IPv6:::]>", false, "user", "[IPv6:::]", 16},
        {"<@relay.example:user@example.com>", false, "user", "example.com", 33},
        {"<@a.example,@b.example:user@example.com>", false, "user", "example.com", 40},
        {"<user@example.com> SIZE=100", false, "user", "example.com", 18},
        {"<x-1@a-b.c0.example>", false, "x-1", "a-b.c0.example", 20},
        {"<" + l64 + "@x.y>", false, l64, "x.y", 70},
        {"<a@" + label63 + ".y>", false, "a", label63 + ".y", 69},
        // RFC 6531: UTF-8 in local part, quoted string and domain
        {"<j\xC3\xBCrgen@example.com>", true, "j\xC3\xBCrgen", "example.com", 21},
        {"<\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF\xE5\x91\x8A>", true,
         "\xE7\x94\xA8\xE6\x88\xB7", "\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF\xE5\x91\x8A", 22},
        {"<\"\xC3\xA9 t\"@b\xC3\xBC.de>", true, "\"\xC3\xA9 t\"", "b\xC3\xBC.de", 15},
        {"<u@\xF0\x9F\x98\x80.example>", true, "u", "\xF0\x9F\x98\x80.example", 16},
    };
    for (const auto& c : cases) {
        std::size_t used = 99;
        auto r = parse_path(c.text, false, c.utf8, &used);
        ASSERT_TRUE(r.has_value()) << c.text << ": " << r.error().message();
        EXPECT_EQ(r->local, c.local) << c.text;
        EXPECT_EQ(r->domain, c.domain) << c.text;
        EXPECT_EQ(used, c.consumed) << c.text;
    }
    auto big = parse_path("<a@" + d255 + ">", false, false);
    EXPECT_EQ(big.error(),
              make_error_code(AddressError::path_too_long));  // 255 is fine, the path is not
    auto dom = parse_mailbox("a@" + d255, false);
    ASSERT_TRUE(dom.has_value());
    EXPECT_EQ(dom->domain.size(), 255u);
}

struct Bad {
    std::string text;
    bool utf8;
    AddressError want;
};

TEST(Path, RejectsMalformedPaths) {
    const std::string l65(65, 'a');
    const std::string label64(64, 'b');
    const std::string label60(60, 'c');
    const std::string d256 = label60 + "." + label60 + "." + label60 + "." + label60 + "." + std::string(15, 'd');
    const Bad cases[] = {
        {"", false, AddressError::missing_brackets},
        {"user@example.com", false, AddressError::missing_brackets},
        {"<user@example.com", false, AddressError::missing_brackets},
        {" <user@example.com>", false, AddressError::missing_brackets},
        {"<", false, AddressError::bad_local_part},
        {"<>", false, AddressError::null_not_allowed},
        {"<user>", false, AddressError::bad_domain},
        {"<user@>", false, AddressError::bad_domain},
        {"<@example.com>", false, AddressError::bad_domain},
        {"<.user@example.com>", false, AddressError::bad_local_part},
        {"<user.@example.com>", false, AddressError::bad_local_part},
        {"<us..er@example.com>", false, AddressError::bad_local_part},
        {"<us er@example.com>", false, AddressError::bad_local_part},
        {"<us(er@example.com>", false, AddressError::bad_local_part},
        {"<a@b@c>", false, AddressError::bad_domain},
        {"<\"unterminated@example.com>", false, AddressError::bad_local_part},
        {"<\"tab\there\"@example.com>", false, AddressError::bad_local_part},
        {"<\"bad\\\x01\"@example.com>", false, AddressError::bad_local_part},
        {"<user@example.com.>", false, AddressError::bad_domain},
        {"<user@.example.com>", false, AddressError::bad_domain},
        {"<user@exa..mple.com>", false, AddressError::bad_domain},
        {"<user@-example.com>", false, AddressError::bad_domain},
        {"<user@example-.com>", false, AddressError::bad_domain},
        {"<user@exa_mple.com>", false, AddressError::bad_domain},
        {"<user@example.com x>", false, AddressError::bad_domain},
        {"<user@" + label64 + ".com>", false, AddressError::bad_domain},
        {"<user@[192.0.2.256]>", false, AddressError::bad_domain},
        {"<user@[192.0.2]>", false, AddressError::bad_domain},
        {"<user@[192.0.2.1.5]>", false, AddressError::bad_domain},
        {"<user@[1920.0.2.1]>", false, AddressError::bad_domain},
        {"<user@[192.0.2.1>", false, AddressError::bad_domain},
        {"<user@[IPv6:1:2:3:4:5:6:7]>", false, AddressError::bad_domain},
        {"<user@[IPv6:1:2:3:4:5:6:7:8:9]>", false, AddressError::bad_domain},
        {"<user@[IPv6:1::2::3]>", false, AddressError::bad_domain},
        {"<user@[IPv6:1:2:3:4:5:6:7::]>", false, AddressError::bad_domain},
        {"<user@[IPv6:12345::1]>", false, AddressError::bad_domain},
        {"<user@[IPv6:g::1]>", false, AddressError::bad_domain},
        {"<user@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>", false, AddressError::bad_domain},
        {"<user@[IPv6::::1]>", false, AddressError::bad_domain},
        {"<user@[tag:content]>", false, AddressError::bad_domain},
        {"<user@[]>", false, AddressError::bad_domain},
        {"<@relay.example user@example.com>", false, AddressError::bad_domain},
        {"<@relay.example,user@example.com>", false, AddressError::bad_domain},
        {"<@[192.0.2.1]:user@example.com>", false, AddressError::bad_domain},
        {"<" + l65 + "@x.y>", false, AddressError::local_part_too_long},
        {"<\"" + std::string(63, 'q') + "\"@x.y>", false, AddressError::local_part_too_long},
        {"<a@" + d256 + ">", false, AddressError::domain_too_long},
        {"<j\xC3\xBCrgen@example.com>", false, AddressError::utf8_not_allowed},
        {"<user@b\xC3\xBC.de>", false, AddressError::utf8_not_allowed},
        {"<\"\xC3\xA9\"@x.y>", false, AddressError::utf8_not_allowed},
        {"<j\xFCrgen@example.com>", true, AddressError::bad_utf8},         // Latin-1
        {"<\xC0\xAF@example.com>", true, AddressError::bad_utf8},          // overlong "/"
        {"<\xED\xA0\x80@example.com>", true, AddressError::bad_utf8},      // surrogate
        {"<\xF4\x90\x80\x80@example.com>", true, AddressError::bad_utf8},  // above U+10FFFF
        {"<a@b\xC3>", true, AddressError::bad_utf8},                       // truncated
        {"<\"\\\xC3\xA9\"@x.y>", true, AddressError::bad_local_part},      // quoted-pair is ASCII only
    };
    for (const auto& c : cases) {
        std::size_t used = 99;
        auto r = parse_path(c.text, false, c.utf8, &used);
        ASSERT_FALSE(r.has_value()) << c.text;
        EXPECT_EQ(r.error(), make_error_code(c.want)) << c.text << ": got " << r.error().message();
        EXPECT_EQ(used, 0u) << c.text;
    }
}

TEST(Path, NullPathOnlyWhenAllowed) {
    std::size_t used = 0;
    auto r = parse_path("<> BODY=8BITMIME", true, false, &used);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->empty());
    EXPECT_EQ(r->to_string(), "");
    EXPECT_EQ(used, 2u);
    EXPECT_EQ(parse_path("<>", false, false).error(), make_error_code(AddressError::null_not_allowed));
    EXPECT_FALSE(parse_path("< >", true, false).has_value());
}

TEST(Mailbox, ParsesBareMailboxes) {
    struct Case {
        std::string text;
        bool utf8;
        bool ok;
        std::string local, domain;
    };
    const Case cases[] = {
        {"user@example.com", false, true, "user", "example.com"},
        {"\"a b\"@example.com", false, true, "\"a b\"", "example.com"},
        {"user@[192.0.2.1]", false, true, "user", "[192.0.2.1]"},
        {"\xC3\xA9@example.com", true, true, "\xC3\xA9", "example.com"},
        {"\xC3\xA9@example.com", false, false, "", ""},
        {"<user@example.com>", false, false, "", ""},
        {"user@example.com ", false, false, "", ""},
        {"user", false, false, "", ""},
        {"@example.com", false, false, "", ""},
        {"", false, false, "", ""},
    };
    for (const auto& c : cases) {
        auto r = parse_mailbox(c.text, c.utf8);
        ASSERT_EQ(r.has_value(), c.ok) << c.text;
        if (!c.ok) continue;
        EXPECT_EQ(r->local, c.local) << c.text;
        EXPECT_EQ(r->domain, c.domain) << c.text;
        EXPECT_EQ(r->to_string(), c.local + "@" + c.domain);
    }
}

TEST(Mailbox, DomainLowerTouchesAsciiOnly) {
    Mailbox m{"User", "Ex\xC3\x84MPLE.Com"};
    EXPECT_EQ(m.domain_lower(), "ex\xC3\x84mple.com");
    EXPECT_EQ(m.local, "User");
    EXPECT_EQ(Mailbox{}.domain_lower(), "");
}

TEST(AddressCategory, NamesEveryError) {
    EXPECT_STREQ(address_category().name(), "mailward.smtp.address");
    for (int e = 1; e <= static_cast<int>(AddressError::null_not_allowed); ++e) {
        const std::string m = make_error_code(static_cast<AddressError>(e)).message();
        EXPECT_FALSE(m.empty());
        EXPECT_EQ(m.find("unknown"), std::string::npos) << e;
    }
    EXPECT_EQ(make_error_code(AddressError::local_part_too_long).message(), "the local part is longer than 64 octets");
}

}  // namespace
