// The TLS client's facts and checks, over real handshakes between two SSL objects joined by a
// memory BIO pair (no sockets): chain validity and name match at every level, SPKI digest, cipher
// facts, the cipher floor at encrypt, and DANE (RFC 7672: 3 1 1, 2 0 1, usages 0/1 ignored).
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <regex>

#include "test_pki.hpp"
#include "tls/client.hpp"

using namespace mailward;
using namespace mailward::tls;
using namespace mailward::testing;

namespace {

struct Handshake {
    bool prepared = false;
    bool completed = false;
    PeerFacts facts;
};

// Runs a client handshake (prepared for level/host/tlsa) against a server context, in memory.
Handshake handshake(const ClientContext& cctx, SSL_CTX* server, Level level, const std::string& host,
                    const std::vector<dns::TlsaRecord>& tlsa = {}) {
    Handshake h;
    SSL* c = SSL_new(cctx.ctx->native_handle());
    SSL* s = SSL_new(server);
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    h.prepared = static_cast<bool>(prepare_client(c, level, host, tlsa));
    if (h.prepared) {
        for (int round = 0; round < 50; ++round) {
            const int rc = SSL_do_handshake(c);
            const int rs = SSL_do_handshake(s);
            if (rc == 1 && rs == 1) {
                h.completed = true;
                break;
            }
            const int ec = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c, rc);
            const int es = rs == 1 ? SSL_ERROR_NONE : SSL_get_error(s, rs);
            const auto blocked = [](int e) {
                return e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
            };
            if (!blocked(ec) || !blocked(es)) break;
        }
        h.facts = collect_facts(c);
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    return h;
}

dns::TlsaRecord tlsa(std::uint8_t usage, std::uint8_t selector, std::uint8_t mtype, std::vector<std::uint8_t> data) {
    dns::TlsaRecord r;
    r.usage = usage;
    r.selector = selector;
    r.matching_type = mtype;
    r.data = std::move(data);
    return r;
}

class TlsClient : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ca_ = new TestCa();
        dir_ = new TempDir();
        std::string error;
        auto ctx = make_client_context(dir_->write("ca.pem", ca_->cert_pem()), error);
        ASSERT_TRUE(ctx) << error;
        ctx_ = new ClientContext(*ctx);
    }
    static void TearDownTestSuite() {
        delete ctx_;
        delete dir_;
        delete ca_;
    }
    static TestCa* ca_;
    static TempDir* dir_;
    static ClientContext* ctx_;
};
TestCa* TlsClient::ca_ = nullptr;
TempDir* TlsClient::dir_ = nullptr;
ClientContext* TlsClient::ctx_ = nullptr;

TEST_F(TlsClient, ContextNamesAMissingCaFile) {
    std::string error;
    auto ctx = make_client_context("/nonexistent/mailward-ca.pem", error);
    EXPECT_FALSE(ctx);
    EXPECT_NE(error.find("/nonexistent/mailward-ca.pem"), std::string::npos) << error;
}

TEST_F(TlsClient, FactsOfAVerifiedSession) {
    const PemPair pair = ca_->issue({"mx.example.test"});
    auto server = make_server_ctx(pair);
    auto h = handshake(*ctx_, server.get(), Level::verify, "mx.example.test");
    ASSERT_TRUE(h.completed);
    const PeerFacts& f = h.facts;
    EXPECT_TRUE(f.established);
    EXPECT_EQ(f.protocol, "TLSv1.3");
    EXPECT_FALSE(f.cipher.empty());
    EXPECT_GE(f.cipher_bits, 128);
    EXPECT_TRUE(f.forward_secret);
    EXPECT_TRUE(f.aead);
    EXPECT_TRUE(f.chain_valid) << f.verify_error;
    EXPECT_TRUE(f.name_matched);
    EXPECT_TRUE(f.verify_error.empty()) << f.verify_error;
    EXPECT_FALSE(f.dane_checked);
    EXPECT_EQ(f.spki_sha256, hex(spki_sha256(pair.chain)));
    ASSERT_EQ(f.chain.size(), 1u);
    EXPECT_NE(f.chain[0].subject.find("CN=mx.example.test"), std::string::npos) << f.chain[0].subject;
    EXPECT_NE(f.chain[0].issuer.find("CN=mailward test CA"), std::string::npos) << f.chain[0].issuer;
    EXPECT_EQ(f.chain[0].key_type, "EC P-256");
    EXPECT_EQ(f.chain[0].key_bits, 256);
    EXPECT_TRUE(std::regex_match(f.chain[0].not_after, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
        << f.chain[0].not_after;
    std::string why;
    EXPECT_TRUE(meets(Level::verify, f, why)) << why;
}

// Chain validity and name match are facts at every level, whatever the level asked for.
TEST_F(TlsClient, ChainAndNameTable) {
    const PemPair good = ca_->issue({"mx.example.test"});
    const PemPair other = ca_->issue({"other.example.test"});
    const PemPair wildcard = ca_->issue({"*.example.test"});
    const PemPair partial = ca_->issue({"m*.example.test"});
    const PemPair selfsigned = self_signed("mx.example.test");
    const PemPair rsa = ca_->issue({"mx.example.test"}, KeyKind::rsa_2048);
    struct Case {
        const char* name;
        const PemPair* pair;
        std::string host;
        bool chain_valid, name_matched, meets_encrypt, meets_verify;
    };
    const Case cases[] = {
        {"CA-signed, right name", &good, "mx.example.test", true, true, true, true},
        {"CA-signed, wrong name", &other, "mx.example.test", true, false, true, false},
        {"wildcard", &wildcard, "mx.example.test", true, true, true, true},
        {"wildcard does not cover two labels", &wildcard, "a.mx.example.test", true, false, true, false},
        {"partial wildcard refused", &partial, "mx.example.test", true, false, true, false},
        {"self-signed", &selfsigned, "mx.example.test", false, true, true, false},
        {"RSA leaf", &rsa, "mx.example.test", true, true, true, true},
    };
    for (const auto& c : cases) {
        auto server = make_server_ctx(*c.pair);
        for (Level level : {Level::may, Level::encrypt, Level::verify}) {
            SCOPED_TRACE(std::string(c.name) + " at " + std::string(to_string(level)));
            auto h = handshake(*ctx_, server.get(), level, c.host);
            ASSERT_TRUE(h.completed);
            EXPECT_EQ(h.facts.chain_valid, c.chain_valid) << h.facts.verify_error;
            EXPECT_EQ(h.facts.name_matched, c.name_matched);
            EXPECT_EQ(h.facts.verify_error.empty(), c.chain_valid && c.name_matched) << h.facts.verify_error;
            std::string why;
            EXPECT_TRUE(meets(Level::may, h.facts, why));
            EXPECT_EQ(meets(Level::encrypt, h.facts, why), c.meets_encrypt) << why;
            why.clear();
            EXPECT_EQ(meets(Level::verify, h.facts, why), c.meets_verify) << why;
            if (!c.meets_verify) {
                EXPECT_FALSE(why.empty());
            }
        }
    }
    auto h = handshake(*ctx_, make_server_ctx(rsa).get(), Level::verify, "mx.example.test");
    ASSERT_FALSE(h.facts.chain.empty());
    EXPECT_EQ(h.facts.chain[0].key_type, "RSA");
    EXPECT_EQ(h.facts.chain[0].key_bits, 2048);
}

// At encrypt and above only (EC)DHE + AEAD suites are offered for TLS 1.2; at may anything goes and
// the facts tell meets() why the session is not good enough.
TEST_F(TlsClient, CipherFloorAtEncrypt) {
    const PemPair rsa = ca_->issue({"mx.example.test"}, KeyKind::rsa_2048);
    auto static_rsa = make_server_ctx(rsa, "AES128-GCM-SHA256", TLS1_2_VERSION);
    auto may = handshake(*ctx_, static_rsa.get(), Level::may, "mx.example.test");
    ASSERT_TRUE(may.completed);
    EXPECT_EQ(may.facts.protocol, "TLSv1.2");
    EXPECT_EQ(may.facts.cipher, "AES128-GCM-SHA256");
    EXPECT_TRUE(may.facts.aead);
    EXPECT_FALSE(may.facts.forward_secret);
    std::string why;
    EXPECT_FALSE(meets(Level::encrypt, may.facts, why));
    EXPECT_NE(why.find("forward-secret"), std::string::npos) << why;
    EXPECT_FALSE(handshake(*ctx_, static_rsa.get(), Level::encrypt, "mx.example.test").completed);

    auto cbc = make_server_ctx(rsa, "ECDHE-RSA-AES128-SHA256", TLS1_2_VERSION);
    auto cbc_may = handshake(*ctx_, cbc.get(), Level::may, "mx.example.test");
    ASSERT_TRUE(cbc_may.completed);
    EXPECT_TRUE(cbc_may.facts.forward_secret);
    EXPECT_FALSE(cbc_may.facts.aead);
    EXPECT_FALSE(meets(Level::encrypt, cbc_may.facts, why));
    EXPECT_FALSE(handshake(*ctx_, cbc.get(), Level::encrypt, "mx.example.test").completed);

    auto ecdhe = make_server_ctx(rsa, "ECDHE-RSA-AES256-GCM-SHA384", TLS1_2_VERSION);
    auto good = handshake(*ctx_, ecdhe.get(), Level::encrypt, "mx.example.test");
    ASSERT_TRUE(good.completed);
    EXPECT_EQ(good.facts.protocol, "TLSv1.2");
    EXPECT_EQ(good.facts.cipher, "ECDHE-RSA-AES256-GCM-SHA384");
    EXPECT_TRUE(good.facts.forward_secret && good.facts.aead);
    EXPECT_TRUE(meets(Level::verify, good.facts, why)) << why;
}

TEST_F(TlsClient, DaneTable) {
    const PemPair selfsigned = self_signed("mx.example.test");
    const PemPair ca_chain = ca_->issue({"mx.example.test"}, KeyKind::ec_p256, true);
    const PemPair ca_other = ca_->issue({"other.example.test"}, KeyKind::ec_p256, true);
    const PemPair unrelated = self_signed("elsewhere.example.test");
    const auto ee_spki = tlsa(3, 1, 1, spki_sha256(selfsigned.chain));
    struct Case {
        const char* name;
        const PemPair* pair;
        std::vector<dns::TlsaRecord> records;
        bool prepared, dane_matched, chain_valid, name_matched;
    };
    const Case cases[] = {
        {"3 1 1 matches the leaf SPKI", &selfsigned, {ee_spki}, true, true, false, true},
        {"3 1 1 of another key", &selfsigned, {tlsa(3, 1, 1, spki_sha256(unrelated.chain))}, true, false, false, true},
        {"3 0 1 of the leaf certificate",
         &selfsigned,
         {tlsa(3, 0, 1, cert_sha256(selfsigned.chain))},
         true,
         true,
         false,
         true},
        {"one of two records matches",
         &selfsigned,
         {tlsa(3, 1, 1, spki_sha256(unrelated.chain)), ee_spki},
         true,
         true,
         false,
         true},
        {"3 1 1 needs no name (RFC 7672 3.1.1)",
         &ca_other,
         {tlsa(3, 1, 1, spki_sha256(ca_other.chain))},
         true,
         true,
         true,
         false},
        {"2 0 1 of the CA, right name",
         &ca_chain,
         {tlsa(2, 0, 1, cert_sha256(ca_->cert_pem()))},
         true,
         true,
         true,
         true},
        {"2 0 1 of the CA, wrong name",
         &ca_other,
         {tlsa(2, 0, 1, cert_sha256(ca_->cert_pem()))},
         true,
         false,
         true,
         false},
        {"usages 0 and 1 are not used (RFC 7672 3.1.3)",
         &ca_chain,
         {tlsa(0, 0, 1, cert_sha256(ca_->cert_pem())), tlsa(1, 1, 1, spki_sha256(ca_chain.chain))},
         false,
         false,
         false,
         false},
        {"no records", &selfsigned, {}, false, false, false, false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto server = make_server_ctx(*c.pair);
        auto h = handshake(*ctx_, server.get(), Level::dane, "mx.example.test", c.records);
        ASSERT_EQ(h.prepared, c.prepared);
        if (!c.prepared) continue;
        ASSERT_TRUE(h.completed);
        EXPECT_TRUE(h.facts.dane_checked);
        EXPECT_EQ(h.facts.dane_matched, c.dane_matched) << h.facts.verify_error;
        EXPECT_EQ(h.facts.chain_valid, c.chain_valid) << h.facts.verify_error;
        EXPECT_EQ(h.facts.name_matched, c.name_matched);
        std::string why;
        EXPECT_EQ(meets(Level::dane, h.facts, why), c.dane_matched) << why;
        if (!c.dane_matched) {
            EXPECT_NE(h.facts.verify_error.find("DANE"), std::string::npos) << h.facts.verify_error;
            EXPECT_FALSE(why.empty());
        }
        EXPECT_TRUE(meets(Level::encrypt, h.facts, why)) << why;
    }
}

}  // namespace
