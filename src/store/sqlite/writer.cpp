// Group commit: submit() queues a message and returns; one writer thread takes everything pending
// (up to the caps), inserts it in ONE transaction and COMMITs - with WAL and synchronous=FULL that
// is one fsync of the WAL for the whole batch - and only then calls each completion. Each message
// is inserted under its own SAVEPOINT so one bad message (e.g. a duplicate id) fails alone; a
// failed BEGIN or COMMIT is rolled back and reported to every message of the batch. Small writes of
// the delivery side (attempt outcomes) ride along as jobs in the same batches: one writer, one
// fsync for all, no fight over SQLite's write lock. Large bodies are written to the body spool
// (spool.hpp) by submit() and made durable by one fdatasync per segment just before the COMMIT;
// each batch first releases the spool ranges of bodies deleted since (spool_free).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <tuple>

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

GroupWriter::GroupWriter(Db db, Options opts, BodySpool* spool)
    : db_(std::move(db)), opts_(std::move(opts)), spool_(spool), thread_([this] { run(); }) {}

GroupWriter::~GroupWriter() {
    if (thread_.joinable() && thread_.get_id() == std::this_thread::get_id()) {
        // Destroying the store from one of its own completions cannot be done safely.
        spdlog::critical("store: the store was destroyed from its own writer thread");
        std::abort();
    }
    close();
}

void GroupWriter::submit(StoredMessage msg, QueueStore::SubmitDone done) {
    std::optional<SpoolRef> spooled;
    if (spool_ && msg.body.size() >= opts_.spool_min_bytes) {
        // Written here, on the submitter's thread, in one pwrite; the writer only syncs it.
        auto ref = spool_->append(msg.body);
        if (!ref) {
            spdlog::error("store: message {} not stored: its body could not be spooled", msg.envelope.id);
            if (done) done(ref.error());
            return;
        }
        spooled = *ref;
        std::string().swap(msg.body);
    }
    std::size_t bytes = approx_bytes(msg);
    {
        std::lock_guard lk(mu_);
        if (!closing_) {
            Pending p{std::move(msg), std::move(done), bytes, {}, spooled};
            queue_.push_back(std::move(p));
            queued_bytes_ += bytes;
            submitted_.fetch_add(1, std::memory_order_relaxed);
            cv_.notify_one();
            return;
        }
    }
    if (spooled) {
        spool_->settled(spooled->segment);
        (void)spool_->release(*spooled, false);
    }
    spdlog::warn("store: submit of {} after close", msg.envelope.id);
    if (done) done(common::Errc::shutting_down);
}

void GroupWriter::submit_job(Job job, QueueStore::SubmitDone done, bool scrub) {
    {
        std::lock_guard lk(mu_);
        if (!closing_) {
            Pending p;
            p.job = std::move(job);
            p.scrub = scrub;
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
    if (thread_.get_id() == std::this_thread::get_id()) return;  // from a completion: stop requested
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
            auto ready = [&] { return closing_ || !queue_.empty(); };
            if (scrub_owed_) {
                // The last scrub pass found a reader in the way: try again when idle for a moment.
                if (!cv_.wait_for(lk, std::chrono::milliseconds(200), ready)) {
                    lk.unlock();
                    scrub_pass();
                    continue;
                }
            } else {
                cv_.wait(lk, ready);
            }
            if (queue_.empty()) {  // closing, and everything submitted has been handled
                lk.unlock();
                // Before the writer stops (a CLI command ends here): a few more tries, as
                // another process's reader may briefly be in the way.
                for (int i = 0; scrub_owed_ && i < 20; ++i) {
                    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    scrub_pass();
                }
                if (scrub_owed_)
                    spdlog::warn(
                        "store: the WAL could not be truncated before closing; old page images of sealed "
                        "or shredded data stay in mailward.db-wal until the next scrub or checkpoint");
                return;
            }
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
        bool scrub = false;
        for (std::size_t i = 0; i < batch.size(); ++i) scrub = scrub || (batch[i].scrub && results[i]);
        // Completions run outside every lock: they may submit again or read the store.
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!batch[i].job) (results[i] ? stored_ : rejected_).fetch_add(1, std::memory_order_relaxed);
            if (batch[i].done) batch[i].done(results[i]);
        }
        batch.clear();
        const auto now = std::chrono::steady_clock::now();
        if (scrub) {
            if (!scrub_owed_) scrub_owed_since_ = now;
            scrub_owed_ = true;
            scrub_pass();
        } else if (scrub_owed_ && now - last_scrub_try_ > std::chrono::seconds(1)) {
            scrub_pass();  // busy all the time: still try now and then
        }
    }
}

std::vector<Result<void>> GroupWriter::write_batch(std::vector<Pending>& batch) {
    auto results = write_batch_tx(batch);
    if (spool_) {
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const auto& sp = batch[i].spooled;
            if (!sp) continue;
            spool_->settled(sp->segment);
            if (!results[i]) (void)spool_->release(*sp, false);  // not stored: its bytes are garbage
        }
    }
    return results;
}

std::size_t GroupWriter::reclaim_spool() {
    struct Freed {
        std::int64_t rowid;
        SpoolRef ref;
        bool scrub;
    };
    std::vector<Freed> freed;
    {
        auto st = db_.prepare("SELECT rowid, segment, start, length, scrub FROM spool_free ORDER BY rowid LIMIT 256");
        if (!st) return 0;
        for (;;) {
            auto row = st->step();
            if (!row || !*row) break;
            Freed f;
            f.rowid = st->int64(0);
            f.ref.segment = st->int64(1);
            f.ref.start = static_cast<std::uint64_t>(st->int64(2));
            f.ref.length = static_cast<std::uint64_t>(st->int64(3));
            f.scrub = st->int64(4) != 0;
            freed.push_back(f);
        }
    }
    if (freed.empty()) return 0;
    // Bodies freed together mostly lie side by side: merged, they cost one hole punch per run.
    std::sort(freed.begin(), freed.end(), [](const Freed& a, const Freed& b) {
        return std::tie(a.ref.segment, a.scrub, a.ref.start) < std::tie(b.ref.segment, b.scrub, b.ref.start);
    });
    auto del = db_.prepare("DELETE FROM spool_free WHERE rowid = ?1");
    if (!del) return 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < freed.size();) {
        SpoolRef run = freed[i].ref;
        std::size_t j = i + 1;
        for (; j < freed.size(); ++j) {
            const auto& next = freed[j];
            if (next.ref.segment != run.segment || next.scrub != freed[i].scrub ||
                next.ref.start != BodySpool::span_end(run))
                break;
            run.length = next.ref.start + next.ref.length - run.start;
        }
        // Released before the rows go: a rolled-back batch releases them again, which is harmless
        // (offsets are never reused). A failed release keeps the rows for the next batch.
        if (spool_->release(run, freed[i].scrub)) {
            for (std::size_t k = i; k < j; ++k) {
                del->bind(1, freed[k].rowid);
                if (!del->run()) return n;
                del->reset();
                ++n;
            }
        }
        i = j;
    }
    return n;
}

bool GroupWriter::scrub_pass() {
    last_scrub_try_ = std::chrono::steady_clock::now();
    // 1. The spool ranges the scrub batch freed: zeroed, synced and punched now, not at the next
    //    batch (reclaim_spool releases before it deletes the rows, in one small transaction).
    if (spool_ && db_.exec("BEGIN IMMEDIATE", "begin scrub")) {
        reclaim_spool();
        if (!db_.autocommit() && !db_.exec("COMMIT", "commit scrub")) (void)db_.exec("ROLLBACK", "rollback scrub");
    }
    // 2. Every page image in the WAL, old versions with the plaintext or the key among them, goes:
    //    copied into the database (whose pages now hold zeros where they were) and truncated. A
    //    reader holding an old snapshot makes this wait at most kScrubWaitMs, then it is retried.
    constexpr int kScrubWaitMs = 50;
    auto done = db_.checkpoint_truncate(kScrubWaitMs, opts_.busy_timeout_ms);
    if (done && *done) {
        scrub_owed_ = false;
        scrub_warned_ = false;
        return true;
    }
    if (!scrub_warned_ && std::chrono::steady_clock::now() - scrub_owed_since_ > std::chrono::seconds(60)) {
        scrub_warned_ = true;
        spdlog::warn(
            "store: the WAL could not be truncated for a minute (a reader holds an old snapshot); "
            "old page images of sealed or shredded data remain in mailward.db-wal until it can");
    }
    return false;
}

void GroupWriter::sweep_spool() {
    if (!spool_) return;
    last_sweep_ = std::chrono::steady_clock::now();
    sweep_spool_segments(db_, *spool_);
}

std::size_t sweep_spool_segments(Db& db, BodySpool& spool) {
    auto st = db.prepare("SELECT 1 FROM spooled_bodies WHERE segment = ?1 LIMIT 1");
    if (!st) return 0;
    auto removed = spool.sweep([&st](std::int64_t segment) -> Result<bool> {
        st->reset();
        st->bind(1, segment);
        auto row = st->step();
        if (!row) return Result<bool>(boost::system::in_place_error, row.error());
        return *row;
    });
    if (removed) spdlog::debug("store: {} spool segment(s) removed", removed);
    return removed;
}

std::vector<Result<void>> GroupWriter::write_batch_tx(std::vector<Pending>& batch) {
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
    std::size_t reclaimed = 0;
    if (spool_) {
        // Under its own savepoint: whatever goes wrong here must not cost the batch.
        if (db_.exec("SAVEPOINT reclaim", "savepoint")) {
            reclaimed = reclaim_spool();
            if (!db_.autocommit()) (void)db_.exec("RELEASE reclaim", "release savepoint");
        }
        if (db_.autocommit() && !db_.exec("BEGIN IMMEDIATE", "begin batch")) {
            failed_commits_.fetch_add(1, std::memory_order_relaxed);
            fail_all_ok(common::Errc::storage_error);
            return results;
        }
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
        auto r = batch[i].job ? batch[i].job(db_)
                              : insert_message(db_, batch[i].msg, batch[i].spooled ? &*batch[i].spooled : nullptr);
        if (r) {
            if (auto rel = db_.exec("RELEASE msg", "release savepoint"); !rel) results[i] = rel.error();
            else ++inserted;
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
    if (inserted == 0 && reclaimed == 0) {
        (void)db_.exec("ROLLBACK", "rollback empty batch");
        return results;
    }
    // The spooled bodies of this batch are durable before the rows that point at them.
    std::vector<std::int64_t> segments;
    for (std::size_t i = 0; i < batch.size(); ++i)
        if (batch[i].spooled && results[i]) segments.push_back(batch[i].spooled->segment);
    std::sort(segments.begin(), segments.end());
    segments.erase(std::unique(segments.begin(), segments.end()), segments.end());
    if (!segments.empty()) {
        if (auto sy = spool_->sync(segments); !sy) {
            (void)db_.exec("ROLLBACK", "rollback batch");
            failed_commits_.fetch_add(1, std::memory_order_relaxed);
            fail_all_ok(sy.error());
            return results;
        }
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
    // Segments whose last body went: removed now and then, not at every commit.
    if (reclaimed && std::chrono::steady_clock::now() - last_sweep_ > std::chrono::seconds(10)) sweep_spool();
    return results;
}

Result<void> insert_message(Db& db_, StoredMessage& msg, const SpoolRef* spooled) {
    auto& e = msg.envelope;
    if (e.received_at == TimePoint{}) e.received_at = Clock::now();
    // "body octets as stored": the stored body is the authority
    e.size = spooled ? spooled->length : msg.body.size();

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
    b->bind(1, e.id).bind_blob(2, spooled ? std::string_view() : std::string_view(msg.body));
    if (auto r = b->run(); !r) return r;
    if (spooled) {
        auto sp =
            db_.prepare("INSERT INTO spooled_bodies (message_id, segment, start, length) VALUES (?1, ?2, ?3, ?4)");
        if (!sp) return sp.error();
        sp->bind(1, e.id)
            .bind(2, spooled->segment)
            .bind(3, static_cast<std::int64_t>(spooled->start))
            .bind(4, static_cast<std::int64_t>(spooled->length));
        if (auto r = sp->run(); !r) return r;
    }

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
