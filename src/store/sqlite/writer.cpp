// Group commit: submit() queues a message and returns; one writer thread takes everything pending
// (up to the caps), inserts it in ONE transaction and COMMITs - with WAL and synchronous=FULL that
// is one fsync of the WAL for the whole batch - and only then calls each completion. Each message
// is inserted under its own SAVEPOINT so one bad message (e.g. a duplicate id) fails alone; a
// failed BEGIN or COMMIT is rolled back and reported to every message of the batch. Small writes of
// the delivery side (attempt outcomes) ride along as jobs in the same batches: one writer, one
// fsync for all, no fight over SQLite's write lock.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "store/sqlite/internal.hpp"

namespace mailward::store::sqlite {
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

GroupWriter::GroupWriter(Db db, Options opts)
    : db_(std::move(db)), opts_(std::move(opts)), thread_([this] { run(); }) {}

GroupWriter::~GroupWriter() {
    if (thread_.joinable() && thread_.get_id() == std::this_thread::get_id()) {
        // Destroying the store from one of its own completions cannot be done safely.
        spdlog::critical("store: the store was destroyed from its own writer thread");
        std::abort();
    }
    close();
}

void GroupWriter::submit(StoredMessage msg, QueueStore::SubmitDone done) {
    std::size_t bytes = approx_bytes(msg);
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

void GroupWriter::submit_job(Job job, QueueStore::SubmitDone done) {
    {
        std::lock_guard lk(mu_);
        if (!closing_) {
            Pending p;
            p.job = std::move(job);
            p.done = std::move(done);
            p.bytes = 256;
            queue_.push_back(std::move(p));
            queued_bytes_ += 256;
            cv_.notify_one();
            return;
        }
    }
    if (done) done(common::Errc::shutting_down);
}

void GroupWriter::close() {
    {
        std::lock_guard lk(mu_);
        closing_ = true;
    }
    cv_.notify_all();
    if (thread_.get_id() == std::this_thread::get_id())
        return;  // from a completion: stop requested
    std::lock_guard lk(join_mu_);
    if (thread_.joinable()) thread_.join();
}

WriterStats GroupWriter::stats() const {
    WriterStats s;
    s.submitted = submitted_.load();
    s.stored = stored_.load();
    s.rejected = rejected_.load();
    s.commits = commits_.load();
    s.failed_commits = failed_commits_.load();
    s.largest_batch = largest_batch_.load();
    return s;
}

void GroupWriter::run() {
    const std::size_t max_msgs = std::max<std::size_t>(1, opts_.max_batch_messages);
    const std::size_t max_bytes = opts_.max_batch_bytes;
    std::vector<Pending> batch;
    for (;;) {
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return closing_ || !queue_.empty(); });
            if (queue_.empty()) return;  // closing, and everything submitted has been handled
            if (opts_.commit_interval.count() > 0 && !closing_) {
                cv_.wait_for(lk, opts_.commit_interval, [&] {
                    return closing_ || queue_.size() >= max_msgs || queued_bytes_ >= max_bytes;
                });
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

std::vector<Result<void>> GroupWriter::write_batch(std::vector<Pending>& batch) {
    std::vector<Result<void>> results(batch.size());
    auto fail_all_ok = [&](error_code ec) {
        for (auto& r : results)
            if (r) r = ec;
    };

    if (auto r = db_.exec("BEGIN IMMEDIATE", "begin batch"); !r) {
        failed_commits_.fetch_add(1, std::memory_order_relaxed);
        fail_all_ok(r.error());
        return results;
    }
    std::size_t inserted = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (auto v = batch[i].job ? Result<void>() : validate(batch[i].msg.envelope); !v) {
            results[i] = v.error();
            continue;
        }
        if (auto r = db_.exec("SAVEPOINT msg", "savepoint"); !r) {
            results[i] = r.error();
            continue;
        }
        auto r = batch[i].job ? batch[i].job(db_) : insert(batch[i].msg);
        if (r) {
            if (auto rel = db_.exec("RELEASE msg", "release savepoint"); !rel)
                results[i] = rel.error();
            else
                ++inserted;
            continue;
        }
        results[i] = r.error();
        if (batch[i].job) {
            spdlog::error("store: a queued write failed: {}", r.error().message());
        } else {
            spdlog::error("store: message {} not stored: {}", batch[i].msg.envelope.id, r.error().message());
        }
        if (db_.autocommit()) {
            // SQLite abandoned the whole transaction (I/O error, disk full): nothing of this batch
            // is in the database, so nothing may be reported as stored.
            failed_commits_.fetch_add(1, std::memory_order_relaxed);
            fail_all_ok(r.error());
            return results;
        }
        if (auto rb = db_.exec("ROLLBACK TO msg; RELEASE msg", "rollback to savepoint"); !rb) {
            failed_commits_.fetch_add(1, std::memory_order_relaxed);
            if (!db_.autocommit()) (void)db_.exec("ROLLBACK", "rollback batch");
            fail_all_ok(rb.error());
            return results;
        }
    }
    if (inserted == 0) {
        (void)db_.exec("ROLLBACK", "rollback empty batch");
        return results;
    }
    if (opts_.before_commit) opts_.before_commit(db_.handle());
    if (auto c = db_.exec("COMMIT", "commit batch"); !c) {
        // A COMMIT that fails leaves the transaction open (or already rolled back): roll back and
        // tell every submitter; none of them may send 250.
        if (!db_.autocommit()) (void)db_.exec("ROLLBACK", "rollback batch");
        failed_commits_.fetch_add(1, std::memory_order_relaxed);
        fail_all_ok(c.error());
        return results;
    }
    commits_.fetch_add(1, std::memory_order_relaxed);
    raise_max(largest_batch_, inserted);
    return results;
}

Result<void> GroupWriter::insert(StoredMessage& msg) { return insert_message(db_, msg); }

Result<void> insert_message(Db& db_, StoredMessage& msg) {
    auto& e = msg.envelope;
    if (e.received_at == TimePoint{}) e.received_at = Clock::now();
    e.size = msg.body.size();  // "body octets as stored": the stored body is the authority

    auto m = db_.prepare(
        "INSERT INTO messages (id, sender, body_type, smtputf8, requiretls, ret, envid, auth_user,"
        " client_address, client_helo, sender_mode, received_at, size)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    if (!m) return m.error();
    m->bind(1, e.id)
        .bind(2, e.sender)
        .bind(3, encode(e.body_type))
        .bind(4, std::int64_t{e.smtputf8})
        .bind(5, std::int64_t{e.requiretls})
        .bind(6, encode(e.ret))
        .bind(7, e.envid)
        .bind(8, e.auth_user)
        .bind(9, e.client_address)
        .bind(10, e.client_helo)
        .bind(11, e.sender_mode)
        .bind(12, to_ms(e.received_at))
        .bind(13, static_cast<std::int64_t>(e.size));
    if (auto r = m->run(); !r) return r;

    auto b = db_.prepare("INSERT INTO bodies (message_id, data) VALUES (?1, ?2)");
    if (!b) return b.error();
    b->bind(1, e.id).bind_blob(2, msg.body);
    if (auto r = b->run(); !r) return r;

    auto rc = db_.prepare(
        "INSERT INTO recipients (message_id, idx, address, domain, orcpt, notify, state, attempts,"
        " next_attempt, last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!rc) return rc.error();
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        const auto& r = e.recipients[i];
        std::string domain = domain_of(r.address);
        rc->bind(1, e.id)
            .bind(2, static_cast<std::int64_t>(i))
            .bind(3, r.address)
            .bind(4, domain)
            .bind(5, r.orcpt)
            .bind(6, static_cast<std::int64_t>(r.notify))
            .bind(7, to_string(r.state))
            .bind(8, std::int64_t{r.attempts})
            .bind(9, to_ms(r.next_attempt))
            .bind(10, r.last_error);
        if (auto res = rc->run(); !res) return res;
        rc->reset();
    }
    return {};
}

}  // namespace mailward::store::sqlite
