// Escrow key custody: master key file checks (missing, size, mode, type), key ids, wrap/unwrap
// round trip and every way an unwrap must fail, and the escrow error category.
#include "escrow/keys.hpp"

#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace mailward;
using escrow::EscrowErrc;
using escrow::MasterKeyHolder;

namespace {

std::string key_bytes(char fill) { return std::string(escrow::kMasterKeyBytes, fill); }

std::unique_ptr<MasterKeyHolder> holder(char fill) {
    auto h = MasterKeyHolder::from_bytes(key_bytes(fill));
    if (!h) ADD_FAILURE() << h.error().message();
    return h ? std::move(*h) : nullptr;
}

using mailward::test::TempDir;

void write_key_file(const std::filesystem::path& p, const std::string& content, mode_t mode) {
    std::ofstream(p, std::ios::binary) << content;
    ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

}  // namespace

TEST(EscrowKeys, MasterKeyFileChecks) {
    struct Case {
        const char* name;
        int size;  // -1: no file; -2: a directory
        mode_t mode;
        EscrowErrc want;  // ok = loads
        const char* in_error;
    };
    const Case cases[] = {
        {"good 0600", 32, 0600, EscrowErrc::ok, ""},
        {"good 0400", 32, 0400, EscrowErrc::ok, ""},
        {"missing", -1, 0600, EscrowErrc::master_key_missing, "does not exist"},
        {"directory", -2, 0700, EscrowErrc::master_key_unreadable, "not a regular file"},
        {"empty", 0, 0600, EscrowErrc::master_key_bad_size, "found 0"},
        {"31 bytes", 31, 0600, EscrowErrc::master_key_bad_size, "exactly 32 bytes, found 31"},
        {"33 bytes", 33, 0600, EscrowErrc::master_key_bad_size, "found 33"},
        {"64 bytes hex-like", 64, 0600, EscrowErrc::master_key_bad_size, "found 64"},
        {"world readable 0644", 32, 0644, EscrowErrc::master_key_bad_mode, "mode 0644"},
        {"group readable 0640", 32, 0640, EscrowErrc::master_key_bad_mode, "mode 0640"},
        {"others readable 0604", 32, 0604, EscrowErrc::master_key_bad_mode, "mode 0604"},
        {"group writable 0620", 32, 0620, EscrowErrc::master_key_bad_mode, "chmod 600"},
        {"world rw 0666 and wrong size", 10, 0666, EscrowErrc::master_key_bad_mode, "mode 0666"},
    };
    TempDir dir;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto p = dir.path() / (std::string("key-") + c.name);
        if (c.size == -2) {
            std::filesystem::create_directory(p);
        } else if (c.size >= 0) {
            write_key_file(p, std::string(static_cast<std::size_t>(c.size), 'k'), c.mode);
        }
        auto h = MasterKeyHolder::load(p);
        if (c.want == EscrowErrc::ok) {
            ASSERT_TRUE(h) << h.error().message;
            EXPECT_EQ((*h)->key_id(), holder('k')->key_id());  // the key is the file's bytes
        } else {
            ASSERT_FALSE(h);
            const std::string& error = h.error().message;
            EXPECT_EQ(h.error().code, c.want) << error;
            EXPECT_NE(error.find(p.string()), std::string::npos) << error;
            EXPECT_NE(error.find(c.in_error), std::string::npos) << error;
            EXPECT_EQ(error.find('\n'), std::string::npos) << error;
        }
    }
}

TEST(EscrowKeys, FromBytesSize) {
    for (std::size_t n : {0u, 1u, 31u, 33u, 64u}) {
        auto h = MasterKeyHolder::from_bytes(std::string(n, 'x'));
        ASSERT_FALSE(h) << n;
        EXPECT_EQ(h.error(), EscrowErrc::master_key_bad_size);
    }
}

TEST(EscrowKeys, KeyIdIsStablePerKeyAndDiffersBetweenKeys) {
    EXPECT_EQ(holder('a')->key_id(), holder('a')->key_id());
    EXPECT_NE(holder('a')->key_id(), holder('b')->key_id());
    const std::string hex = escrow::to_hex(holder('a')->key_id());
    EXPECT_EQ(hex.size(), 2 * escrow::kKeyIdBytes);
    EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
    // The key id is a one-way fingerprint, not a prefix of the key.
    const auto id = holder('a')->key_id();
    EXPECT_NE(std::string(id.begin(), id.end()), std::string(escrow::kKeyIdBytes, 'a'));
}

TEST(EscrowKeys, WrapRoundTrip) {
    auto h = holder('a');
    const std::string secret(32, '\x5a');
    auto w = h->wrap(secret, "context");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->size(), 1 + escrow::kKeyIdBytes + 24 + secret.size() + 16);
    EXPECT_EQ(w->find(secret), std::string::npos);
    auto u = h->unwrap(*w, "context");
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_EQ(u->view(), secret);
    // The same key loaded again (a restart) unwraps it.
    auto u2 = holder('a')->unwrap(*w, "context");
    ASSERT_TRUE(u2);
    EXPECT_EQ(u2->view(), secret);
    // Fresh nonce per wrap.
    EXPECT_NE(*w, *h->wrap(secret, "context"));
}

TEST(EscrowKeys, WrapRejectsEmptyOrHugeSecrets) {
    auto h = holder('a');
    EXPECT_EQ(h->wrap("", "ad").error(), EscrowErrc::bad_parameters);
    EXPECT_EQ(h->wrap(std::string(4096, 'x'), "ad").error(), EscrowErrc::bad_parameters);
}

TEST(EscrowKeys, UnwrapFailures) {
    auto h = holder('a');
    const std::string w = *h->wrap(std::string(32, 's'), "ad");
    struct Case {
        const char* name;
        std::string wrapped;
        std::string aad;
        const MasterKeyHolder* by;
        EscrowErrc want;
    };
    auto other = holder('b');
    std::string v2 = w;
    v2[0] = 2;
    const Case cases[] = {
        {"other aad", w, "ad2", h.get(), EscrowErrc::tampered},
        {"empty aad", w, "", h.get(), EscrowErrc::tampered},
        {"other master key", w, "ad", other.get(), EscrowErrc::unknown_key},
        {"shredded", "", "ad", h.get(), EscrowErrc::key_destroyed},
        {"future version", v2, "ad", h.get(), EscrowErrc::unsupported_version},
        {"truncated", w.substr(0, w.size() - 1), "ad", h.get(), EscrowErrc::tampered},
        {"header only", w.substr(0, 1 + escrow::kKeyIdBytes + 24 + 16), "ad", h.get(), EscrowErrc::malformed},
        {"one byte", w.substr(0, 1), "ad", h.get(), EscrowErrc::malformed},
        {"appended byte", w + "x", "ad", h.get(), EscrowErrc::tampered},
    };
    for (const auto& c : cases) {
        auto u = c.by->unwrap(c.wrapped, c.aad);
        ASSERT_FALSE(u) << c.name;
        EXPECT_EQ(u.error(), c.want) << c.name << ": " << u.error().message();
    }
    for (std::size_t i = 0; i < w.size(); ++i) {
        for (unsigned char bit : {0x01, 0x80}) {
            std::string t = w;
            t[i] = static_cast<char>(t[i] ^ bit);
            EXPECT_FALSE(h->unwrap(t, "ad")) << "byte " << i << " bit " << int(bit);
        }
    }
}

TEST(EscrowKeys, SecretBytesMoveAndSize) {
    escrow::SecretBytes a(32);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a.view(), std::string(32, '\0'));  // zero-filled
    a.data()[0] = 7;
    escrow::SecretBytes b(std::move(a));
    EXPECT_EQ(b.size(), 32u);
    EXPECT_EQ(b.data()[0], 7);
    EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
    escrow::SecretBytes c;
    EXPECT_TRUE(c.ok());
    c = std::move(b);
    EXPECT_EQ(c.data()[0], 7);
}

TEST(EscrowKeys, CategoryAndMessages) {
    EXPECT_STREQ(escrow::escrow_category().name(), "mailward.escrow");
    error_code ec = EscrowErrc::tampered;
    EXPECT_EQ(&ec.category(), &escrow::escrow_category());
    EXPECT_NE(ec, EscrowErrc::wrong_passphrase);
    for (int e = 1; e <= static_cast<int>(EscrowErrc::crypto_failure); ++e) {
        const std::string m = make_error_code(static_cast<EscrowErrc>(e)).message();
        EXPECT_FALSE(m.empty());
        EXPECT_EQ(m.find("unknown escrow"), std::string::npos) << e;
    }
}

namespace {

TEST(EscrowKeys, MacIsKeyedDeterministicAndSeparatesPurposes) {
    auto a = holder('a');
    auto b = holder('b');
    ASSERT_TRUE(a && b);
    const std::string h = a->mac_hex("token", "abc");
    EXPECT_EQ(h.size(), 64u);
    EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
    struct Row {
        std::string purpose, data;
        bool same_as_h;
    } rows[] = {
        {"token", "abc", true},   // deterministic
        {"token", "abd", false},  // data
        {"otp", "abc", false},    // purpose separates uses
        {"tokena", "bc", false},  // length-prefixed: no shifting between the two
        {"toke", "nabc", false}, {"token", "", false},
    };
    for (const auto& r : rows) EXPECT_EQ(a->mac_hex(r.purpose, r.data) == h, r.same_as_h) << r.purpose << "/" << r.data;
    EXPECT_NE(b->mac_hex("token", "abc"), h) << "another master key, another hash";
}

}  // namespace
