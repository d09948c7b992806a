// "TLS-Required: No" (RFC 8689 section 5): the header scan and the sender's right, as tables.
#include "policy/tls_optional.hpp"

#include <gtest/gtest.h>

using namespace mailward::policy;

namespace {

struct HeaderRow {
    const char* name;
    const char* message;
    bool expected;
};

const HeaderRow kHeaderRows[] = {
    {"plain", "From: a@example.org\r\nTLS-Required: No\r\n\r\nbody\r\n", true},
    {"case-insensitive name and value", "tls-required: NO\r\n\r\n", true},
    {"LF line ends", "Subject: x\nTLS-Required: no\n\nbody\n", true},
    {"surrounding whitespace", "TLS-Required:   No  \r\n\r\n", true},
    {"whitespace before the colon (obsolete syntax)", "TLS-Required : No\r\n\r\n", true},
    {"folded value", "TLS-Required:\r\n No\r\n\r\n", true},
    {"in the body only", "Subject: x\r\n\r\nTLS-Required: No\r\n", false},
    {"another value", "TLS-Required: Yes\r\n\r\n", false},
    {"value with more text", "TLS-Required: No thanks\r\n\r\n", false},
    {"a longer field name", "TLS-Required-Not: No\r\n\r\n", false},
    {"a continuation line that looks like it", "Subject: x\r\n TLS-Required: No\r\n\r\n", false},
    {"empty message", "", false},
    {"no colon", "TLS-Required No\r\n\r\n", false},
    {"second of two fields", "TLS-Required: Yes\r\nTLS-Required: No\r\n\r\n", true},
};

TEST(TlsOptional, FindsTheHeaderField) {
    for (const auto& row : kHeaderRows) EXPECT_EQ(has_tls_required_no(row.message), row.expected) << row.name;
}

struct RightRow {
    const char* name;
    const char* auth_user;
    std::optional<bool> account;
    bool trusted_networks;
    bool allowed;
    const char* why;  // a substring of the reason
};

const RightRow kRightRows[] = {
    {"account with the right", "bob@example.com", true, false, true, "was given --allow-tls-optional"},
    {"account without it", "eve@example.com", false, true, false, "may not use it"},
    {"account deleted since", "old@example.com", std::nullopt, true, false, "no longer exists"},
    {"trusted network, default", "", std::nullopt, false, false, "tls_optional_trusted_networks = false"},
    {"trusted network, allowed by config", "", std::nullopt, true, true, "allowed by [policy]"},
};

TEST(TlsOptional, TheSendersRight) {
    for (const auto& row : kRightRows) {
        const auto r = tls_optional_right(row.auth_user, row.account, row.trusted_networks);
        EXPECT_EQ(r.allowed, row.allowed) << row.name;
        EXPECT_NE(r.why.find(row.why), std::string::npos) << row.name << ": " << r.why;
    }
}

}  // namespace
