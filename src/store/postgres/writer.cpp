// Group commit on PostgreSQL: submit() queues a message and returns; one writer thread with its own
// connection takes everything pending (up to the caps), inserts it in ONE transaction - envelope,
// body (bytea) and recipients of each message under its own SAVEPOINT, so a bad message (a duplicate
// id) fails alone - and COMMITs; with synchronous_commit on that is one WAL flush for the batch.
// Only when COMMIT answered COMMIT does any completion run with success: a failed BEGIN or COMMIT,
// or a connection lost anywhere in the batch, is reported to every submitter of the batch (none may
// send 250). A connection lost during COMMIT leaves the outcome unknown: reported as a failure, the
// rows may nevertheless exist (docs/design.md, "PostgreSQL store": the client retries, a duplicate).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

std::size_t approx_bytes(const StoredMessage& m) {
    std::size_t n = m.body.size() + m.envelope.sender.size() + 256;
    for (const auto& r : m.envelope.recipients) n += r.address.size() + r.orcpt.size() + 64;
    return n;
}

Result<void> validate(const Envelope& e) {
    if (e.id.empty()) {
        spdlog::error("store: submit without a queue id");
        return common::Errc::invalid_argument;
    }
    if (e.recipients.empty()) {
        spdlog::error("store: submit of {} without recipients", e.id);
        return common::Errc::invalid_argument;
    }
    return {};
}

void raise_max(std::atomic<std::uint64_t>& a, std::uint64_t v) {
    std::uint64_t cur = a.load(std::memory_order_relaxed);
    while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

}  // namespace

PgWriter::PgWriter(Conn c, Options opts) : conn_(std::move(c)), opts_(std::move(opts)), thread_([this] { run(); }) {}

PgWriter::~PgWriter() {
    if (thread_.joinable() && thread_.get_id() == std::this_thread::get_id()) {
        spdlog::critical("store: the store was destroyed from its own writer thread");
        std::abort();
    }
    close();
}

void PgWriter::submit(StoredMessage msg, QueueStore::SubmitDone done) {
    const std::size_t bytes = approx_bytes(msg);
    {
        std::lock_guard lk(mu_);
        if (!closing_) {
            queue_.push_back(Pending{std::move(msg), std::move(done), bytes, {}});
            queued_bytes_ += bytes;
            submitted_.fetch_add(1, std::memory_order_relaxed);
            cv_.notify_one();
            return;
        }
    }
    spdlog::warn("store: submit of {} after close", msg.envelope.id);
    if (done) done(common::Errc::shutting_down);
}

void PgWriter::submit_job(Job job, QueueStore::SubmitDone done, std::chrono::milliseconds delay) {
    {
        std::lock_guard lk(mu_);
        if (!closing_) {
            Pending p;
            p.job = std::move(job);
            p.done = std::move(done);
            p.bytes = 256;
            if (delay.count() > 0) {
                delayed_.emplace(std::chrono::steady_clock::now() + delay, std::move(p));
            } else {
                queue_.push_back(std::move(p));
                queued_bytes_ += 256;
            }
            cv_.notify_one();
            return;
        }
    }
    if (done) done(common::Errc::shutting_down);
}

void PgWriter::close() {
    {
        std::lock_guard lk(mu_);
        closing_ = true;
    }
    cv_.notify_all();
    if (thread_.get_id() == std::this_thread::get_id()) return;  // from a completion: stop requested
    std::lock_guard lk(join_mu_);
    if (thread_.joinable()) thread_.join();
}

WriterStats PgWriter::stats() const {
    WriterStats s;
    s.submitted = submitted_.load();
    s.stored = stored_.load();
    s.rejected = rejected_.load();
    s.commits = commits_.load();
    s.failed_commits = failed_commits_.load();
    s.largest_batch = largest_batch_.load();
    return s;
}

void PgWriter::run() {
    const std::size_t max_msgs = std::max<std::size_t>(1, opts_.max_batch_messages);
    const std::size_t max_bytes = opts_.max_batch_bytes;
    std::vector<Pending> batch;
    for (;;) {
        {
            std::unique_lock lk(mu_);
            for (;;) {
                // Delayed jobs whose time has come (all of them when closing: one last try) join the queue.
                const auto now = std::chrono::steady_clock::now();
                while (!delayed_.empty() && (closing_ || delayed_.begin()->first <= now)) {
                    queued_bytes_ += delayed_.begin()->second.bytes;
                    queue_.push_back(std::move(delayed_.begin()->second));
                    delayed_.erase(delayed_.begin());
                }
                if (closing_ || !queue_.empty()) break;
                if (delayed_.empty()) cv_.wait(lk);
                else cv_.wait_until(lk, delayed_.begin()->first);
            }
            if (queue_.empty()) return;  // closing, and everything submitted has been handled
            if (opts_.commit_interval.count() > 0 && !closing_) {
                cv_.wait_for(lk, opts_.commit_interval,
                             [&] { return closing_ || queue_.size() >= max_msgs || queued_bytes_ >= max_bytes; });
            }
            std::size_t bytes = 0;
            while (!queue_.empty() && batch.size() < max_msgs &&
                   (batch.empty() || bytes + queue_.front().bytes <= max_bytes)) {
                bytes += queue_.front().bytes;
                queued_bytes_ -= queue_.front().bytes;
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        auto results = write_batch(batch);
        // Completions run outside every lock: they may submit again or read the store.
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!batch[i].job) (results[i] ? stored_ : rejected_).fetch_add(1, std::memory_order_relaxed);
            if (batch[i].done) batch[i].done(results[i]);
        }
        batch.clear();
    }
}

std::vector<Result<void>> PgWriter::write_batch(std::vector<Pending>& batch) {
    std::vector<Result<void>> results(batch.size());
    auto fail_all_ok = [&](error_code ec) {
        failed_commits_.fetch_add(1, std::memory_order_relaxed);
        for (auto& r : results)
            if (r) r = ec;
        return results;
    };
    if (auto r = conn_.begin(); !r) return fail_all_ok(r.error());
    std::size_t written = 0, messages = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (auto v = batch[i].job ? Result<void>() : validate(batch[i].msg.envelope); !v) {
            results[i] = v.error();
            continue;
        }
        if (auto r = conn_.command("SAVEPOINT msg"); !r) {
            conn_.rollback();
            return fail_all_ok(r.error());
        }
        auto r = batch[i].job ? batch[i].job(conn_) : insert_message(conn_, batch[i].msg);
        if (r) {
            if (auto rel = conn_.command("RELEASE SAVEPOINT msg"); !rel) {
                conn_.rollback();
                return fail_all_ok(rel.error());
            }
            ++written;
            if (!batch[i].job) ++messages;
            continue;
        }
        results[i] = r.error();
        if (!batch[i].job)
            spdlog::error("store: message {} not stored: {}", batch[i].msg.envelope.id, r.error().message());
        if (auto rb = conn_.command("ROLLBACK TO SAVEPOINT msg"); !rb) {
            // The connection is gone (or the transaction with it): nothing of the batch is stored.
            conn_.rollback();
            return fail_all_ok(rb.error());
        }
    }
    if (written == 0) {
        conn_.rollback();
        return results;
    }
    // The hint to idle nodes (WorkListener), sent by PostgreSQL at COMMIT and only then.
    if (messages > 0) {
        if (auto r = conn_.command((std::string("NOTIFY ") + kWorkChannel).c_str()); !r) {
            conn_.rollback();
            return fail_all_ok(r.error());
        }
    }
    if (opts_.before_commit) opts_.before_commit(conn_.backend_pid());
    if (auto c = conn_.commit(); !c) {
        conn_.rollback();
        return fail_all_ok(c.error());
    }
    commits_.fetch_add(1, std::memory_order_relaxed);
    raise_max(largest_batch_, written);
    return results;
}

}  // namespace mailward::store::postgres
