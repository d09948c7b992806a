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
    const std::string qid = queue_awaiting();

    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    escrow::Sweeper sweeper(*svc, pool);
    sweeper.start(io.get_executor());
    const auto escrowed = [&] {
        auto env = st->queue().envelope(qid);
        return env && env->recipients[0].state == store::RcptState::escrowed;
    };
    for (int i = 0; i < 100 && !escrowed(); ++i) {
        io.restart();
        io.run_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(escrowed()) << "sealed by the loop";
    bool found = false;
    for (const auto& rec : *st->escrow().list(false)) found = found || rec.queue_id == qid;
    EXPECT_TRUE(found);

    sweeper.stop();
    io.restart();
    io.run_for(std::chrono::seconds(5));  // returns early once the loop has ended
    EXPECT_TRUE(io.stopped()) << "the loop ended after stop()";
    pool.join();
}

}  // namespace
