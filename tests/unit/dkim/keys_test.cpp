// DKIM keys (dkim/dkim.hpp): generation, the TXT record and its 255-octet strings, name checks, and
// Signer::load refusing key files others may read or that do not match the entry's algorithm.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "dkim/dkim.hpp"
#include "temp_dir.hpp"

namespace mailward::dkim {
namespace {

TEST(DkimKeys, GeneratedKeysAndRecords) {
    struct Case {
        Algorithm alg;
        unsigned bits;
        const char* prefix;
        std::size_t min_size, max_size;
    } cases[] = {
        {Algorithm::rsa_sha256, 1024, "v=DKIM1; k=rsa; p=MIGf", 200, 240},
        {Algorithm::rsa_sha256, 2048, "v=DKIM1; k=rsa; p=MIIB", 400, 420},
        {Algorithm::ed25519_sha256, 0, "v=DKIM1; k=ed25519; p=", 66, 66},  // 44 base64 chars of 32 bytes
    };
    for (const auto& c : cases) {
        auto k = generate_key(c.alg, c.bits == 0 ? 2048 : c.bits);
        ASSERT_TRUE(k.has_value());
        EXPECT_EQ(k->record.rfind(c.prefix, 0), 0u) << k->record;
        EXPECT_GE(k->record.size(), c.min_size) << k->record;
        EXPECT_LE(k->record.size(), c.max_size) << k->record;
        EXPECT_EQ(k->pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
        auto again = public_record(k->pem, c.alg);
        ASSERT_TRUE(again.has_value());
        EXPECT_EQ(*again, k->record);
        // The other algorithm's record of this key: refused.
        auto wrong =
            public_record(k->pem, c.alg == Algorithm::rsa_sha256 ? Algorithm::ed25519_sha256 : Algorithm::rsa_sha256);
        EXPECT_FALSE(wrong.has_value());
    }
    EXPECT_FALSE(generate_key(Algorithm::rsa_sha256, 512).has_value());
    EXPECT_FALSE(generate_key(Algorithm::rsa_sha256, 100000).has_value());
}

TEST(DkimKeys, TxtLineSplitsInto255OctetStrings) {
    const std::string record = "v=DKIM1; k=rsa; p=" + std::string(600, 'A');
    const std::string line = txt_line("sel", "example.org", record);
    EXPECT_EQ(line.rfind("sel._domainkey.example.org. IN TXT \"", 0), 0u) << line;
    std::string joined;
    std::size_t strings = 0;
    for (std::size_t p = line.find('"'); p != std::string::npos; p = line.find('"', p + 1)) {
        const std::size_t end = line.find('"', p + 1);
        const std::string s = line.substr(p + 1, end - p - 1);
        EXPECT_LE(s.size(), 255u);
        joined += s;
        ++strings;
        p = end;
    }
    EXPECT_EQ(strings, 3u);
    EXPECT_EQ(joined, record);
    EXPECT_EQ(txt_line("s", "d.test", "v=DKIM1; k=ed25519; p=x"),
              "s._domainkey.d.test. IN TXT \"v=DKIM1; k=ed25519; p=x\"");
}

TEST(DkimKeys, Names) {
    struct Case {
        std::string name;
        bool selector;
        bool ok;
    } cases[] = {
        {"example.org", false, true}, {"mail-2026", true, true},
        {"sel_1", true, true},        {"sel_1", false, false},
        {"", false, false},           {"a..b", false, false},
        {"-a.test", false, false},    {"a b", true, false},
        {"x;y", true, false},         {std::string(64, 'a'), true, false},
        {"dom\"ain", false, false},   {"a.test.", false, false},
    };
    for (const auto& c : cases) EXPECT_EQ(valid_name(c.name, c.selector), c.ok) << c.name;
}

TEST(DkimKeys, SignerLoadChecksFilesAndAlgorithm) {
    test::TempDir dir;
    auto rsa = generate_key(Algorithm::rsa_sha256, 1024);
    auto ed = generate_key(Algorithm::ed25519_sha256);
    ASSERT_TRUE(rsa && ed);
    auto write = [&](const char* name, const std::string& text, mode_t mode) {
        auto p = dir.write(name, text);
        ::chmod(p.c_str(), mode);
        return p;
    };
    struct Case {
        const char* name;
        std::filesystem::path file;
        std::string algorithm;
        const char* why;  // "" = loads
    } cases[] = {
        {"rsa 0600", write("rsa.key", rsa->pem, 0600), "rsa-sha256", ""},
        {"rsa 0400", write("rsa4.key", rsa->pem, 0400), "rsa-sha256", ""},
        {"ed25519 refused", write("ed.key", ed->pem, 0600), "ed25519-sha256", "ed25519-sha256 is not offered"},
        {"group readable", write("g.key", rsa->pem, 0640), "rsa-sha256", "may be read by group or others (mode 0640"},
        {"world readable", write("w.key", rsa->pem, 0644), "rsa-sha256", "(mode 0644"},
        {"missing", dir.path() / "none.key", "rsa-sha256", "No such file or directory"},
        {"wrong key type", write("ed2.key", ed->pem, 0600), "rsa-sha256", "is not an RSA private key"},
        {"not a key", write("junk.key", "hello\n", 0600), "rsa-sha256", "is not an RSA private key"},
    };
    for (const auto& c : cases) {
        config::DkimConfig e{"example.org", "s", c.file, c.algorithm, true};
        std::string why;
        auto s = Signer::load({e}, why);
        if (std::string(c.why).empty()) {
            ASSERT_TRUE(s.has_value()) << c.name << ": " << why;
            ASSERT_NE(s->find("EXAMPLE.org"), nullptr);
            EXPECT_EQ(s->find("other.org"), nullptr);
        } else {
            EXPECT_FALSE(s.has_value()) << c.name;
            EXPECT_NE(why.find(c.why), std::string::npos) << c.name << ": " << why;
            EXPECT_NE(why.find("[[dkim]] domain \"example.org\""), std::string::npos) << why;
        }
    }
}

}  // namespace
}  // namespace mailward::dkim
