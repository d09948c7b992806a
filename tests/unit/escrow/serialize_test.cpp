// The BLOB form of Sealed: round trips, and every truncation, tampered byte, and random garbage is
// an error (never a crash or an over-read; run under ASan in the debug preset).
#include <gtest/gtest.h>
#include <sodium.h>

#include "escrow/seal.hpp"

using namespace mailward;
using escrow::EscrowErrc;
using escrow::SealContext;

namespace {

std::unique_ptr<escrow::MasterKeyHolder> holder(char fill) {
    auto h = escrow::MasterKeyHolder::from_bytes(std::string(escrow::kMasterKeyBytes, fill));
    if (!h) ADD_FAILURE() << h.error().message();
    return h ? std::move(*h) : nullptr;
}

escrow::SealOptions fast() {
    escrow::SealOptions o;
    o.passphrase_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
    o.passphrase_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
    return o;
}

const SealContext kCtx{"msg-7@relay", "carol@example.net", 1};

void put_be(std::string& s, std::size_t at, std::uint64_t v, int width) {
    for (int i = 0; i < width; ++i) s[at + i] = static_cast<char>((v >> (8 * (width - 1 - i))) & 0xff);
}

}  // namespace

TEST(EscrowSerialize, RoundTrip) {
    auto keys = holder('m');
    for (bool with_pass : {false, true}) {
        std::optional<std::string_view> pass;
        if (with_pass) pass = "pw";
        auto s = escrow::seal("hello, escrow", kCtx, *keys, pass, fast());
        ASSERT_TRUE(s);
        const std::string blob = escrow::serialize(*s);
        EXPECT_EQ(blob.substr(0, 4), "MWES");
        auto back = escrow::parse(blob);
        ASSERT_TRUE(back) << back.error().message();
        EXPECT_EQ(back->version, s->version);
        EXPECT_EQ(back->nonce, s->nonce);
        EXPECT_EQ(back->wrapped_key, s->wrapped_key);
        EXPECT_EQ(back->ciphertext, s->ciphertext);
        ASSERT_EQ(back->passphrase.has_value(), with_pass);
        if (with_pass) {
            EXPECT_EQ(back->passphrase->salt, s->passphrase->salt);
            EXPECT_EQ(back->passphrase->opslimit, s->passphrase->opslimit);
            EXPECT_EQ(back->passphrase->memlimit, s->passphrase->memlimit);
        }
        EXPECT_EQ(escrow::serialize(*back), blob);
        EXPECT_EQ(*escrow::open(*back, kCtx, *keys, pass), "hello, escrow");
    }
}

TEST(EscrowSerialize, EveryTruncationIsAnError) {
    auto keys = holder('m');
    for (bool with_pass : {false, true}) {
        std::optional<std::string_view> pass;
        if (with_pass) pass = "pw";
        const std::string blob = escrow::serialize(*escrow::seal("body", kCtx, *keys, pass, fast()));
        for (std::size_t n = 0; n < blob.size(); ++n) {
            auto r = escrow::parse(std::string_view(blob).substr(0, n));
            ASSERT_FALSE(r) << "length " << n;
            EXPECT_EQ(r.error(), EscrowErrc::malformed) << "length " << n;
        }
        EXPECT_EQ(escrow::parse(blob + '\0').error(), EscrowErrc::malformed);  // trailing byte
    }
}

TEST(EscrowSerialize, EveryFlippedByteFailsToParseOrOpen) {
    auto keys = holder('m');
    for (bool with_pass : {false, true}) {
        std::optional<std::string_view> pass;
        if (with_pass) pass = "pw";
        const std::string blob = escrow::serialize(*escrow::seal("body", kCtx, *keys, pass, fast()));
        for (std::size_t i = 0; i < blob.size(); ++i) {
            std::string t = blob;
            t[i] = static_cast<char>(t[i] ^ 0x04);
            auto r = escrow::parse(t);
            if (!r) continue;  // refused as malformed: fine
            EXPECT_FALSE(escrow::open(*r, kCtx, *keys, pass)) << "byte " << i;
        }
    }
}

TEST(EscrowSerialize, MalformedHeaders) {
    auto keys = holder('m');
    const std::string good = escrow::serialize(*escrow::seal("body", kCtx, *keys));
    const std::size_t wrapped_len_at = 4 + 2 + 24;
    const std::size_t wrapped_len = escrow::parse(good)->wrapped_key.size();
    const std::size_t ct_len_at = wrapped_len_at + 4 + wrapped_len;
    struct Case {
        const char* name;
        std::string blob;
        EscrowErrc want;
    };
    std::vector<Case> cases;
    auto with = [&](const char* name, auto edit, EscrowErrc want) {
        std::string b = good;
        edit(b);
        cases.push_back({name, b, want});
    };
    cases.push_back({"empty", "", EscrowErrc::malformed});
    cases.push_back({"magic only", "MWES", EscrowErrc::malformed});
    with(
        "bad magic", [](std::string& b) { b[0] = 'X'; }, EscrowErrc::malformed);
    with(
        "version 0", [](std::string& b) { b[4] = 0; }, EscrowErrc::unsupported_version);
    with(
        "version 2", [](std::string& b) { b[4] = 2; }, EscrowErrc::unsupported_version);
    with(
        "unknown flag", [](std::string& b) { b[5] = 0x02; }, EscrowErrc::malformed);
    with(
        "passphrase flag without params", [](std::string& b) { b[5] = 0x01; }, EscrowErrc::malformed);
    with(
        "wrapped length huge", [&](std::string& b) { put_be(b, wrapped_len_at, 0xffffffffu, 4); },
        EscrowErrc::malformed);
    with(
        "wrapped length past end", [&](std::string& b) { put_be(b, wrapped_len_at, 4000, 4); }, EscrowErrc::malformed);
    with(
        "ciphertext length huge", [&](std::string& b) { put_be(b, ct_len_at, ~0ull, 8); }, EscrowErrc::malformed);
    with(
        "ciphertext length short by one", [&](std::string& b) { put_be(b, ct_len_at, 4 + 16 - 1, 8); },
        EscrowErrc::malformed);
    with(
        "ciphertext below tag size",
        [&](std::string& b) {
            put_be(b, ct_len_at, 15, 8);
            b.resize(ct_len_at + 8 + 15);
        },
        EscrowErrc::malformed);
    for (const auto& c : cases) {
        auto r = escrow::parse(c.blob);
        ASSERT_FALSE(r) << c.name;
        EXPECT_EQ(r.error(), c.want) << c.name;
    }
    // Stored Argon2 limits out of bounds are malformed at parse time.
    auto sp = *escrow::seal("body", kCtx, *keys, "pw", fast());
    sp.passphrase->memlimit = 1ull << 40;
    EXPECT_EQ(escrow::parse(escrow::serialize(sp)).error(), EscrowErrc::malformed);
}

TEST(EscrowSerialize, RandomGarbageIsAnError) {
    escrow::ensure_sodium();
    for (std::size_t n = 0; n < 512; ++n) {
        std::string g(n, '\0');
        randombytes_buf(g.data(), g.size());
        EXPECT_FALSE(escrow::parse(g)) << n;
        if (n >= 6) {  // a right header with random rest
            g.replace(0, 6, std::string("MWES\x01\x00", 6));
            EXPECT_FALSE(escrow::parse(g)) << "header + " << n;
        }
    }
}
