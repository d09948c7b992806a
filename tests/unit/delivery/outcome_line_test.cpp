// The main log's delivery outcome line (delivery_log.hpp): relay, delay, tls and status fields,
// and untrusted values escaped so that a remote reply cannot forge a line.
#include <gtest/gtest.h>

#include "delivery/delivery_log.hpp"

using mailward::delivery::format_outcome;
using mailward::delivery::OutcomeLine;

TEST(OutcomeLine, Fields) {
    OutcomeLine sent{"Q1",      "bob@example.net",        "mx.example.net", "192.0.2.7",    25, 0.8449, "verify",
                     "TLSv1.3", "TLS_AES_256_GCM_SHA384", "sent",           "250 2.0.0 Ok", ""};
    OutcomeLine plain = sent;
    plain.level = "encrypt";
    plain.tls_version.clear();
    plain.tls_cipher.clear();
    plain.status = "deferred";
    plain.text = "STARTTLS not offered";
    OutcomeLine held{"Q2", "c@example.org", "", "", 25, 3600.4, "", "", "", "escrowed", "held for escrow", ""};
    OutcomeLine host_only{"Q3", "d@example.com", "mx.example.com", "", 2525, -5, "dane", "",
                          "",   "bounced",       "no TLSA",        ""};
    struct Case {
        OutcomeLine in;
        std::string want;
    };
    const Case cases[] = {
        {sent,
         "Q1: to=<bob@example.net>, relay=mx.example.net[192.0.2.7]:25, delay=0.84, "
         "tls=verify/TLSv1.3/TLS_AES_256_GCM_SHA384, status=sent (250 2.0.0 Ok)"},
        {plain,
         "Q1: to=<bob@example.net>, relay=mx.example.net[192.0.2.7]:25, delay=0.84, tls=encrypt/none, "
         "status=deferred (STARTTLS not offered)"},
        {held, "Q2: to=<c@example.org>, relay=none, delay=3600, tls=none, status=escrowed (held for escrow)"},
        {host_only,
         "Q3: to=<d@example.com>, relay=mx.example.com, delay=0.00, tls=dane/none, status=bounced (no TLSA)"},
    };
    for (const auto& c : cases) EXPECT_EQ(format_outcome(c.in), c.want);
}

TEST(OutcomeLine, UntrustedValuesAreEscaped) {
    OutcomeLine o{"Q4",
                  "x\n@example.net",
                  "mx\r.example.net",
                  "192.0.2.1",
                  25,
                  1,
                  "may",
                  "",
                  "",
                  "bounced",
                  "550 no\nQ5: to=<forged>, status=sent",
                  ""};
    const auto line = format_outcome(o);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    EXPECT_NE(line.find("to=<x\\x0a@example.net>"), std::string::npos) << line;
    EXPECT_NE(line.find("(550 no\\x0aQ5: to=<forged>, status=sent)"), std::string::npos) << line;
}
