// The portal's HTTP helpers as tables: percent-decoding, form bodies, cookies, __Host- cookies,
// HTML escaping and constant-time comparison; and the origin of the portal's URL.
#include <gtest/gtest.h>

#include "portal/app.hpp"
#include "portal/web.hpp"

using namespace mailward::portal;

namespace {

TEST(Web, PercentDecode) {
    struct Row {
        std::string in;
        bool plus;
        std::optional<std::string> want;
    } rows[] = {
        {"a%20b", false, "a b"}, {"a+b", true, "a b"},
        {"a+b", false, "a+b"},   {"%C3%A9", false, "\xC3\xA9"},
        {"%zz", false, {}},      {"%4", false, {}},
        {"%", false, {}},        {"100%25", false, "100%"},
        {"", false, ""},         {"%00", false, std::string("\0", 1)},
    };
    for (const auto& r : rows) EXPECT_EQ(percent_decode(r.in, r.plus), r.want) << r.in;
}

TEST(Web, UrlEncodedForms) {
    using Pairs = std::vector<std::pair<std::string, std::string>>;
    struct Row {
        std::string in;
        std::optional<Pairs> want;
    } rows[] = {
        {"a=1&b=2", Pairs{{"a", "1"}, {"b", "2"}}},
        {"a=1&a=2", Pairs{{"a", "1"}, {"a", "2"}}},
        {"code=12+34&csrf=x%2Fy", Pairs{{"code", "12 34"}, {"csrf", "x/y"}}},
        {"flag&&=v", Pairs{{"flag", ""}, {"", "v"}}},
        {"", Pairs{}},
        {"a=%G0", std::nullopt},
    };
    for (const auto& r : rows) EXPECT_EQ(parse_urlencoded(r.in), r.want) << r.in;
}

TEST(Web, Cookies) {
    auto c = parse_cookies("a=1; b = 2 ;__Host-x=\"q\"; a=3; broken; =v");
    EXPECT_EQ(c.size(), 3u);
    EXPECT_EQ(c["a"], "1") << "the first of a name wins";
    EXPECT_EQ(c["b"], "2");
    EXPECT_EQ(c["__Host-x"], "q");
    EXPECT_TRUE(parse_cookies("").empty());

    const std::string s = host_cookie("__Host-s", "v");
    for (const char* part : {"__Host-s=v", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"})
        EXPECT_NE(s.find(part), std::string::npos) << part;
    EXPECT_EQ(s.find("Domain"), std::string::npos);
    EXPECT_EQ(s.find("Max-Age"), std::string::npos) << "a session cookie by default";
    EXPECT_NE(host_cookie("n", "", {std::chrono::seconds(0), true}).find("Max-Age=0"), std::string::npos);
    EXPECT_NE(host_cookie("n", "v", {std::chrono::seconds(3600)}).find("Max-Age=3600"), std::string::npos);
}

TEST(Web, EscapeAndCompare) {
    EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "ab"));
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Web, OriginOfTheConfiguredUrl) {
    struct Row {
        std::string url, want;
    } rows[] = {
        {"https://portal.example.test:8443", "https://portal.example.test:8443"},
        {"https://Portal.Example.Test:8443/path?q", "https://portal.example.test:8443"},
        {"https://portal.example.test:443/", "https://portal.example.test"},
        {"http://p.example:80", "http://p.example"},
        {"ftp://p.example", ""},
        {"https://user@p.example", ""},
        {"https://", ""},
    };
    for (const auto& r : rows) EXPECT_EQ(origin_of(r.url), r.want) << r.url;
}

}  // namespace
