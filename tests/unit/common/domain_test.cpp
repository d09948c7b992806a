// Table-driven tests of the one domain-name check (common/domain.hpp) that config, the preload
// list, MTA-STS, `policy` and `check` share: what it accepts and how it normalises, what it refuses
// and why, and the two caller rules (final dot, '_').
#include "common/domain.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace mailward::common;

namespace {
const std::string k63(63, 'a');
const std::string k64(64, 'a');
// 4 labels of 63 and 3 dots: 255; cut to exactly 253.
const std::string k253 = k63 + "." + k63 + "." + k63 + "." + std::string(61, 'b');
}  // namespace

TEST(DomainName, AcceptsAndNormalises) {
    struct Case {
        std::string text;
        std::string want;
    };
    const Case cases[] = {
        {"example.org", "example.org"},
        {"Example.ORG", "example.org"},
        {"example.org.", "example.org"},
        {"localhost", "localhost"},
        {"mx-1.example.org", "mx-1.example.org"},
        {"3com.com", "3com.com"},  // RFC 1123 2.1: a label may start with a digit
        {"1.2.3.example", "1.2.3.example"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {k63 + ".example", k63 + ".example"},
        {k253, k253},
        {k253 + ".", k253},  // the final dot does not count
    };
    for (const auto& c : cases) {
        auto d = DomainName::parse(c.text);
        ASSERT_TRUE(d.has_value()) << c.text << ": " << domain_problem(c.text);
        EXPECT_EQ(d->str(), c.want) << c.text;
        EXPECT_EQ(domain_problem(c.text), "") << c.text;
    }
}

TEST(DomainName, RefusesWithAReason) {
    struct Case {
        std::string text;
        DomainError error;
        std::string why;
    };
    const Case cases[] = {
        {"", DomainError::empty, "empty"},
        {".", DomainError::empty, "empty"},
        {k253 + "c", DomainError::too_long, "longer than 253 characters"},
        {"a..b", DomainError::empty_label, "empty label"},
        {".example.org", DomainError::empty_label, "empty label"},
        {"example.org..", DomainError::empty_label, "empty label"},
        {k64 + ".example", DomainError::label_too_long, "a label is longer than 63 characters"},
        {"b\xc3\xbc"
         "cher.example",
         DomainError::non_ascii, "write internationalised names as A-labels, xn--..."},
        {"under_score.example", DomainError::bad_character, "'_' is not allowed"},
        {"_mta-sts.example", DomainError::bad_character, "'_' is not allowed"},
        {"a b.example", DomainError::bad_character, "' ' is not allowed"},
        {"a*.example", DomainError::bad_character, "'*' is not allowed"},
        {"a@example.org", DomainError::bad_character, "'@' is not allowed"},
        {"[127.0.0.1]", DomainError::bad_character, "'[' is not allowed"},
        {"-a.example", DomainError::hyphen_at_edge, "a label starts or ends with '-'"},
        {"a-.example", DomainError::hyphen_at_edge, "a label starts or ends with '-'"},
        {"example.-", DomainError::hyphen_at_edge, "a label starts or ends with '-'"},
        {"127.0.0.1", DomainError::numeric_top, "an address, not a name"},
        {"example.123", DomainError::numeric_top, "an address, not a name"},
    };
    for (const auto& c : cases) {
        auto d = DomainName::parse(c.text);
        ASSERT_FALSE(d.has_value()) << c.text;
        EXPECT_EQ(d.error(), make_error_code(c.error)) << c.text;
        EXPECT_EQ(domain_problem(c.text), c.why) << c.text;
    }
}

TEST(DomainName, CallerRules) {
    struct Case {
        std::string text;
        DomainRules rules;
        bool ok;
        std::string want;
    };
    const Case cases[] = {
        {"example.org.", {.final_dot = false}, false, ""},
        {"example.org", {.final_dot = false}, true, "example.org"},
        {"_mta-sts.Example.org", {.underscore = true}, true, "_mta-sts.example.org"},
        {"a_b.example.", {.final_dot = true, .underscore = true}, true, "a_b.example"},
        {"_a.example", {.final_dot = true, .underscore = false}, false, ""},
        {"-_.example", {.underscore = true}, false, ""},  // '_' allowed, the hyphen rule still holds
    };
    for (const auto& c : cases) {
        auto d = DomainName::parse(c.text, c.rules);
        EXPECT_EQ(d.has_value(), c.ok) << c.text;
        if (d) {
            EXPECT_EQ(d->str(), c.want) << c.text;
        }
        EXPECT_EQ(domain_problem(c.text, c.rules).empty(), c.ok) << c.text;
    }
}
