// seal/open: round trips (empty, small, 10 MiB), associated data binding, every byte of nonce,
// ciphertext and wrapped key tampered, sender passphrase right/wrong/missing, crypto-shredding,
// another master key, rotation (rewrap), and freshness of key and nonce.
#include "escrow/seal.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

using namespace mailward;
using escrow::EscrowErrc;
using escrow::MasterKeyHolder;
using escrow::SealContext;
using escrow::Sealed;

namespace {

std::unique_ptr<MasterKeyHolder> holder(char fill) {
    auto h = MasterKeyHolder::from_bytes(std::string(escrow::kMasterKeyBytes, fill));
    if (!h) ADD_FAILURE() << h.error().message();
    return h ? std::move(*h) : nullptr;
}

// Argon2id at its minimum so the tests stay fast; one test uses the defaults.
escrow::SealOptions fast() {
    escrow::SealOptions o;
    o.passphrase_opslimit = crypto_pwhash_argon2id_OPSLIMIT_MIN;
    o.passphrase_memlimit = crypto_pwhash_argon2id_MEMLIMIT_MIN;
    return o;
}

std::string random_bytes(std::size_t n) {
    escrow::ensure_sodium();
    std::string s(n, '\0');
    randombytes_buf(s.data(), s.size());
    return s;
}

const SealContext kCtx{"20240101.abc@relay.example.test", "bob@example.org", 1};

// Positions to tamper with: every byte of short data, a sample (ends, middle, stride) of long data.
std::vector<std::size_t> positions(std::size_t n) {
    std::vector<std::size_t> out;
    if (n <= 4096) {
        for (std::size_t i = 0; i < n; ++i) out.push_back(i);
        return out;
    }
    for (std::size_t i = 0; i < 64; ++i) out.push_back(i);
    for (std::size_t i = n - 64; i < n; ++i) out.push_back(i);
    for (std::size_t i = 64; i < n - 64; i += n / 97) out.push_back(i);
    return out;
}

}  // namespace

TEST(EscrowSeal, RoundTrip) {
    struct Case {
        const char* name;
        std::string plain;
        std::optional<std::string> pass;
    };
    const Case cases[] = {
        {"empty", "", std::nullopt},
        {"small", "Subject: hi\r\n\r\nsecret marker 42\r\n", std::nullopt},
        {"binary with NULs", std::string("\0\x01\xff\0", 4), std::nullopt},
        {"10 MiB", random_bytes(10u << 20), std::nullopt},
        {"empty with passphrase", "", "correct horse"},
        {"small with passphrase", "body", "correct horse"},
        {"10 MiB with passphrase", random_bytes(10u << 20), "p\xc3\xa4ssphrase"},
    };
    auto keys = holder('m');
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        std::optional<std::string_view> pass;
        if (c.pass) pass = *c.pass;
        auto s = escrow::seal(c.plain, kCtx, *keys, pass, fast());
        ASSERT_TRUE(s) << s.error().message();
        EXPECT_EQ(s->version, escrow::kSealVersion);
        EXPECT_EQ(s->nonce.size(), 24u);
        EXPECT_EQ(s->ciphertext.size(), c.plain.size() + 16);
        EXPECT_EQ(s->needs_passphrase(), c.pass.has_value());
        if (c.plain.size() >= 16) {
            EXPECT_EQ(s->ciphertext.find(c.plain.substr(0, 16)), std::string::npos);
        }
        auto o = escrow::open(*s, kCtx, *keys, pass);
        ASSERT_TRUE(o) << o.error().message();
        EXPECT_TRUE(*o == c.plain);
    }
}

TEST(EscrowSeal, AssociatedDataBindsEveryField) {
    const SealContext base{"id-1@relay", "bob@example.org", 1};
    struct Case {
        const char* name;
        SealContext ctx;
    };
    const Case cases[] = {
        {"other message id", {"id-2@relay", base.recipient, 1}},
        {"message id prefix", {"id-1@rela", base.recipient, 1}},
        {"empty message id", {"", base.recipient, 1}},
        {"other recipient", {base.message_id, "eve@example.org", 1}},
        {"recipient case", {base.message_id, "Bob@example.org", 1}},
        {"recipient with space", {base.message_id, "bob@example.org ", 1}},
        {"other format version", {base.message_id, base.recipient, 2}},
        {"format version 0", {base.message_id, base.recipient, 0}},
        {"boundary shift", {"id-1@relayb", "ob@example.org", 1}},  // same concatenation
    };
    auto keys = holder('m');
    for (bool with_pass : {false, true}) {
        std::optional<std::string_view> pass;
        if (with_pass) pass = "pw";
        auto s = escrow::seal("the message", base, *keys, pass, fast());
        ASSERT_TRUE(s);
        ASSERT_TRUE(escrow::open(*s, base, *keys, pass));
        for (const auto& c : cases) {
            auto o = escrow::open(*s, c.ctx, *keys, pass);
            ASSERT_FALSE(o) << c.name;
            EXPECT_EQ(o.error(), EscrowErrc::tampered) << c.name << " pass=" << with_pass;
        }
    }
}

TEST(EscrowSeal, EveryTamperedByteFails) {
    auto keys = holder('m');
    for (std::size_t size : {std::size_t{0}, std::size_t{100}, std::size_t{1} << 20}) {
        for (bool with_pass : {false, true}) {
            SCOPED_TRACE(testing::Message() << "size " << size << " pass " << with_pass);
            std::optional<std::string_view> pass;
            if (with_pass) pass = "pw";
            auto s = escrow::seal(random_bytes(size), kCtx, *keys, pass, fast());
            ASSERT_TRUE(s);
            struct Field {
                const char* name;
                std::string Sealed::*member;
                bool exactly_tampered;  // the wrapped key's header may also say unknown_key /
                                        // version
            };
            for (const Field f : {Field{"nonce", &Sealed::nonce, true}, Field{"ciphertext", &Sealed::ciphertext, true},
                                  Field{"wrapped key", &Sealed::wrapped_key, false}}) {
                const std::size_t n = ((*s).*(f.member)).size();
                for (std::size_t i : positions(n)) {
                    Sealed t = *s;
                    (t.*(f.member))[i] = static_cast<char>((t.*(f.member))[i] ^ (1 << (i % 8)));
                    auto o = escrow::open(t, kCtx, *keys, pass);
                    ASSERT_FALSE(o) << f.name << " byte " << i;
                    if (f.exactly_tampered) {
                        EXPECT_EQ(o.error(), EscrowErrc::tampered) << f.name << " " << i;
                    }
                }
            }
            if (with_pass) {
                for (std::size_t i = 0; i < s->passphrase->salt.size(); ++i) {
                    Sealed t = *s;
                    t.passphrase->salt[i] ^= 0x01;
                    auto o = escrow::open(t, kCtx, *keys, pass);
                    ASSERT_FALSE(o);
                    EXPECT_EQ(o.error(), EscrowErrc::tampered) << "salt byte " << i;
                }
                Sealed t = *s;
                t.passphrase->opslimit += 1;
                EXPECT_EQ(escrow::open(t, kCtx, *keys, pass).error(), EscrowErrc::tampered);
                t = *s;
                t.passphrase->memlimit *= 2;
                EXPECT_EQ(escrow::open(t, kCtx, *keys, pass).error(), EscrowErrc::tampered);
                t = *s;
                t.passphrase.reset();  // stripping the passphrase layer does not bypass it
                EXPECT_EQ(escrow::open(t, kCtx, *keys).error(), EscrowErrc::tampered);
            }
            Sealed t = *s;
            t.ciphertext.pop_back();
            EXPECT_FALSE(escrow::open(t, kCtx, *keys, pass));
            t = *s;
            t.ciphertext.push_back('x');
            EXPECT_FALSE(escrow::open(t, kCtx, *keys, pass));
        }
    }
}

TEST(EscrowSeal, Passphrase) {
    auto keys = holder('m');
    auto s = escrow::seal("for bob only", kCtx, *keys, "open sesame", fast());
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->passphrase);
    EXPECT_EQ(s->passphrase->salt.size(), 16u);
    struct Case {
        const char* name;
        std::optional<std::string_view> pass;
        EscrowErrc want;
    };
    const Case cases[] = {
        {"right", "open sesame", EscrowErrc::ok},
        {"wrong", "open sesame!", EscrowErrc::wrong_passphrase},
        {"case", "Open sesame", EscrowErrc::wrong_passphrase},
        {"prefix", "open", EscrowErrc::wrong_passphrase},
        {"empty", "", EscrowErrc::wrong_passphrase},
        {"missing", std::nullopt, EscrowErrc::passphrase_required},
    };
    for (const auto& c : cases) {
        auto o = escrow::open(*s, kCtx, *keys, c.pass);
        if (c.want == EscrowErrc::ok) {
            ASSERT_TRUE(o) << c.name << ": " << o.error().message();
            EXPECT_EQ(*o, "for bob only");
        } else {
            ASSERT_FALSE(o) << c.name;
            EXPECT_EQ(o.error(), c.want) << c.name;
        }
    }
    // A passphrase offered for a message sealed without one is ignored.
    auto plain = escrow::seal("x", kCtx, *keys);
    ASSERT_TRUE(plain);
    EXPECT_TRUE(escrow::open(*plain, kCtx, *keys, "anything"));
}

TEST(EscrowSeal, PassphraseDefaultsAreArgon2idInteractive) {
    auto keys = holder('m');
    auto s = escrow::seal("m", kCtx, *keys, "pw");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->passphrase->opslimit, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE);
    EXPECT_EQ(s->passphrase->memlimit, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE);
    EXPECT_EQ(*escrow::open(*s, kCtx, *keys, "pw"), "m");
}

TEST(EscrowSeal, BadParameters) {
    auto keys = holder('m');
    EXPECT_EQ(escrow::seal("m", kCtx, *keys, "").error(), EscrowErrc::bad_parameters);
    escrow::SealOptions weak = fast();
    weak.passphrase_memlimit = 1024;
    EXPECT_EQ(escrow::seal("m", kCtx, *keys, "pw", weak).error(), EscrowErrc::bad_parameters);
    escrow::SealOptions huge = fast();
    huge.passphrase_memlimit = escrow::kMaxPassphraseMem + 1;
    EXPECT_EQ(escrow::seal("m", kCtx, *keys, "pw", huge).error(), EscrowErrc::bad_parameters);
    escrow::SealOptions slow = fast();
    slow.passphrase_opslimit = escrow::kMaxPassphraseOps + 1;
    EXPECT_EQ(escrow::seal("m", kCtx, *keys, "pw", slow).error(), EscrowErrc::bad_parameters);
    // Stored limits out of bounds are refused before any Argon2 work (a hostile row cannot ask for
    // 1 TiB).
    auto s = escrow::seal("m", kCtx, *keys, "pw", fast());
    ASSERT_TRUE(s);
    s->passphrase->memlimit = 1ull << 40;
    EXPECT_EQ(escrow::open(*s, kCtx, *keys, "pw").error(), EscrowErrc::bad_parameters);
}

TEST(EscrowSeal, ShreddedCannotBeOpened) {
    auto keys = holder('m');
    for (bool with_pass : {false, true}) {
        std::optional<std::string_view> pass;
        if (with_pass) pass = "pw";
        auto s = escrow::seal("revoked body", kCtx, *keys, pass, fast());
        ASSERT_TRUE(s);
        ASSERT_FALSE(s->shredded());
        escrow::shred(*s);
        EXPECT_TRUE(s->shredded());
        EXPECT_TRUE(s->wrapped_key.empty());
        auto o = escrow::open(*s, kCtx, *keys, pass);
        ASSERT_FALSE(o);
        EXPECT_EQ(o.error(), EscrowErrc::key_destroyed);
        // Shredding is idempotent and survives the BLOB form.
        escrow::shred(*s);
        auto back = escrow::parse(escrow::serialize(*s));
        ASSERT_TRUE(back);
        EXPECT_EQ(escrow::open(*back, kCtx, *keys, pass).error(), EscrowErrc::key_destroyed);
        EXPECT_EQ(escrow::rewrap(*back, kCtx, *keys, *holder('n')).error(), EscrowErrc::key_destroyed);
    }
}

TEST(EscrowSeal, OtherMasterKeyFails) {
    auto keys = holder('m');
    auto s = escrow::seal("body", kCtx, *keys);
    ASSERT_TRUE(s);
    for (char other : {'n', '\0', '\xff'}) {
        auto o = escrow::open(*s, kCtx, *holder(other));
        ASSERT_FALSE(o);
        EXPECT_EQ(o.error(), EscrowErrc::unknown_key);
    }
}

TEST(EscrowSeal, TwoSealsOfTheSameMessageDiffer) {
    auto keys = holder('m');
    auto a = escrow::seal("same body", kCtx, *keys);
    auto b = escrow::seal("same body", kCtx, *keys);
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->nonce, b->nonce);
    EXPECT_NE(a->wrapped_key, b->wrapped_key);
    EXPECT_NE(a->ciphertext, b->ciphertext);
    // Fresh data key: a's key does not open b's ciphertext (swap the wrapped keys).
    Sealed mix = *b;
    mix.wrapped_key = a->wrapped_key;
    EXPECT_EQ(escrow::open(mix, kCtx, *keys).error(), EscrowErrc::tampered);
    auto pa = escrow::seal("same", kCtx, *keys, "pw", fast());
    auto pb = escrow::seal("same", kCtx, *keys, "pw", fast());
    ASSERT_TRUE(pa && pb);
    EXPECT_NE(pa->passphrase->salt, pb->passphrase->salt);
}

TEST(EscrowSeal, RewrapRotatesTheMasterKey) {
    auto old_keys = holder('o');
    auto new_keys = holder('n');
    for (bool with_pass : {false, true}) {
        std::optional<std::string_view> pass;
        if (with_pass) pass = "pw";
        auto s = escrow::seal("rotating", kCtx, *old_keys, pass, fast());
        ASSERT_TRUE(s);
        const std::string ciphertext = s->ciphertext;
        ASSERT_TRUE(escrow::rewrap(*s, kCtx, *old_keys, *new_keys));
        EXPECT_EQ(s->ciphertext, ciphertext);  // only the wrapped key changes
        EXPECT_EQ(escrow::open(*s, kCtx, *old_keys, pass).error(), EscrowErrc::unknown_key);
        auto o = escrow::open(*s, kCtx, *new_keys, pass);
        ASSERT_TRUE(o) << o.error().message();
        EXPECT_EQ(*o, "rotating");
        if (with_pass) {
            EXPECT_EQ(escrow::open(*s, kCtx, *new_keys).error(), EscrowErrc::passphrase_required);
        }
        // Rewrap with the wrong source key or context changes nothing.
        Sealed before = *s;
        EXPECT_EQ(escrow::rewrap(*s, kCtx, *old_keys, *new_keys).error(), EscrowErrc::unknown_key);
        EXPECT_EQ(escrow::rewrap(*s, {"x", kCtx.recipient, 1}, *new_keys, *old_keys).error(), EscrowErrc::tampered);
        EXPECT_EQ(s->wrapped_key, before.wrapped_key);
    }
}

TEST(EscrowSeal, OpenRejectsMalformedInMemoryValues) {
    auto keys = holder('m');
    auto s = escrow::seal("body", kCtx, *keys);
    ASSERT_TRUE(s);
    Sealed t = *s;
    t.version = 2;
    EXPECT_EQ(escrow::open(t, kCtx, *keys).error(), EscrowErrc::unsupported_version);
    t = *s;
    t.nonce.resize(12);
    EXPECT_EQ(escrow::open(t, kCtx, *keys).error(), EscrowErrc::malformed);
    t = *s;
    t.ciphertext.resize(15);
    EXPECT_EQ(escrow::open(t, kCtx, *keys).error(), EscrowErrc::malformed);
    t = *s;
    t.passphrase = escrow::PassphraseParams{"short", 1, 8192};
    EXPECT_EQ(escrow::open(t, kCtx, *keys, "pw").error(), EscrowErrc::bad_parameters);
}
