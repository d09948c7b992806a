// escrow::Sweeper, serve's escrow loop: started on an io_context it seals a recipient awaiting
// escrow (on the thread pool) without anyone calling seal_pending, and after stop() the loop ends at
// its next tick, leaving the io_context without work.
#include "escrow/sweeper.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "escrow_fixture.hpp"

using namespace mailward;

namespace {

struct SweeperTest : escrow::test::EscrowFixture {};

TEST_F(SweeperTest, SealsWhatAwaitsEscrowAndStops) {
    start();
    store::StoredMessage m;
    m.envelope.id = "QSWEEP";
    m.envelope.sender = "alice@example.org";
    m.envelope.sender_mode = "tls-or-escrow";
    store::Recipient r;
    r.address = "bob@example.net";
    r.state = store::RcptState::awaiting_escrow;
    m.envelope.recipients.push_back(r);
    m.body = "From: alice@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    std::promise<Result<void>> p;
    auto f = p.get_future();
    st->queue().submit(m, [&p](Result<void> res) { p.set_value(res); });
    ASSERT_TRUE(f.get());

    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    escrow::Sweeper sweeper(*svc, pool);
    sweeper.start(io.get_executor());
    const auto escrowed = [&] {
        auto env = st->queue().envelope("QSWEEP");
        return env && env->recipients[0].state == store::RcptState::escrowed;
    };
    for (int i = 0; i < 100 && !escrowed(); ++i) {
        io.restart();
        io.run_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(escrowed()) << "sealed by the loop";
    bool found = false;
    for (const auto& rec : *st->escrow().list(false)) found = found || rec.queue_id == "QSWEEP";
    EXPECT_TRUE(found);

    sweeper.stop();
    io.restart();
    io.run_for(std::chrono::seconds(5));  // returns early once the loop has ended
    EXPECT_TRUE(io.stopped()) << "the loop ended after stop()";
    pool.join();
}

}  // namespace
