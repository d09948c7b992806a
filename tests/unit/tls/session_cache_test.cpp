// The outbound TLS client keeps no sessions: mailward never resumes one (it sets no session on a
// connection), so a client-side cache would only grow - with every delivery over TLS, a session and
// the peer's certificate chain, up to OpenSSL's 20480 entries until they expire - in the one long-lived
// context serve uses (found by tests/soak/run: serve's memory rose with each TLS delivery). Real
// handshakes in memory (BIO pair) at TLS 1.2 (session made at the handshake) and TLS 1.3 (sessions
// from the server's NewSessionTicket messages, read after the handshake).
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "test_pki.hpp"
#include "tls/client.hpp"

using namespace mailward;
using namespace mailward::tls;
using namespace mailward::testing;

namespace {

// One handshake between a client SSL of ctx and server; then the server sends one byte and the
// client reads it (processing any NewSessionTicket first). Returns whether the byte arrived.
bool session(const ClientContext& ctx, SSL_CTX* server, int max_version) {
    SSL* c = SSL_new(ctx.ctx->native_handle());
    SSL* s = SSL_new(server);
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_set_max_proto_version(c, max_version);
    bool ok = static_cast<bool>(prepare_client(c, Level::verify, "mx.example.test", {}));
    bool done = false;
    for (int round = 0; ok && round < 50 && !done; ++round) {
        const int rc = SSL_do_handshake(c);
        const int rs = SSL_do_handshake(s);
        done = rc == 1 && rs == 1;
    }
    char byte = 0;
    ok = ok && done && SSL_write(s, "x", 1) == 1;
    for (int round = 0; ok && round < 10; ++round) {
        if (SSL_read(c, &byte, 1) == 1) break;
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    return ok && byte == 'x';
}

TEST(TlsClientSessions, NoSessionIsKept) {
    TestCa ca;
    TempDir dir;
    std::string error;
    auto ctx = make_client_context(dir.write("ca.pem", ca.cert_pem()), error);
    ASSERT_TRUE(ctx) << error;
    auto server = make_server_ctx(ca.issue({"mx.example.test"}));
    struct Case {
        const char* name;
        int max_version;
    };
    for (const Case c : {Case{"TLS 1.2", TLS1_2_VERSION}, Case{"TLS 1.3", TLS1_3_VERSION}}) {
        for (int i = 0; i < 20; ++i) ASSERT_TRUE(session(*ctx, server.get(), c.max_version)) << c.name << " #" << i;
        EXPECT_EQ(SSL_CTX_sess_number(ctx->ctx->native_handle()), 0) << c.name << ": sessions kept after 20 deliveries";
    }
}

}  // namespace
