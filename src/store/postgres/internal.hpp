// Pieces shared by the PostgreSQL store's files and nobody else: the mutex-guarded shared
// connection, the schema migration, the group-commit writer, and the QueueStore/UserStore/
// PolicyStore implementations.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/encoding.hpp"
#include "store/postgres/pg.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/store.hpp"

namespace mailward::store::postgres {

using detail::decode_body_type;
using detail::decode_ret;
using detail::decode_state;
using detail::domain_of;
using detail::encode;
using detail::from_ms;
using detail::to_ms;

// A connection used from many threads, one at a time.
struct SharedConn {
    std::mutex mu;
    Conn conn;
};

// ---- schema (migrations.cpp) ----
// The version recorded in schema_version (0 for an empty database).
Result<int> schema_version(Conn& c);
// Brings the schema to latest_schema_version() in one transaction under an advisory lock (several
// nodes starting at once migrate once). Errc::unsupported when the database is newer than this build.
Result<int> migrate(Conn& c);

// ---- queue rows (queue_store.cpp) ----
// Reads one envelope with all its recipients; the caller holds a transaction for one snapshot.
Result<Envelope> read_envelope(Conn& c, const std::string& id);
// Inserts msg (envelope, body, recipients) inside the caller's transaction; sets received_at when
// default and size from the body.
Result<void> insert_message(Conn& c, StoredMessage& msg);

// ---- the work hint (notify.cpp) ----
// Every writer NOTIFYs this channel in the transaction that stores new messages (PostgreSQL
// delivers it at COMMIT, to every session listening, on every node).
inline constexpr const char* kWorkChannel = "mailward_work";

// A thread with its own connection that LISTENs on kWorkChannel and calls hint for each batch of
// notifications (and once after each (re)connect: something may have been queued meanwhile). A lost
// connection is retried every 5 s; the destructor stops it at once (a pipe wakes its poll()).
class WorkListener {
  public:
    WorkListener(std::string dsn, std::function<void()> hint);
    ~WorkListener();
    WorkListener(const WorkListener&) = delete;
    WorkListener& operator=(const WorkListener&) = delete;

  private:
    void run();
    bool wait_stop(int timeout_ms);  // true when asked to stop
    const std::string dsn_;
    const std::function<void()> hint_;
    int stop_pipe_[2] = {-1, -1};
    std::thread thread_;
};

// ---- the group-commit writer (writer.cpp) ----
class PgWriter {
  public:
    PgWriter(Conn c, Options opts);  // starts the thread
    ~PgWriter();                     // close()
    PgWriter(const PgWriter&) = delete;
    PgWriter& operator=(const PgWriter&) = delete;

    void submit(StoredMessage msg, QueueStore::SubmitDone done);
    // A small write run inside the next batch under its own SAVEPOINT (attempt outcomes). delay > 0:
    // not before that long from now (a retry); pending delayed jobs get one last try at close().
    using Job = std::function<Result<void>(Conn&)>;
    void submit_job(Job job, QueueStore::SubmitDone done, std::chrono::milliseconds delay = {});
    void close();
    WriterStats stats() const;

  private:
    struct Pending {
        StoredMessage msg;
        QueueStore::SubmitDone done;
        std::size_t bytes = 0;
        Job job;  // set: a job instead of a message
    };
    void run();
    std::vector<Result<void>> write_batch(std::vector<Pending>& batch);

    Conn conn_;  // the writer thread's only
    const Options opts_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Pending> queue_;
    std::multimap<std::chrono::steady_clock::time_point, Pending> delayed_;  // jobs submitted with a delay
    std::size_t queued_bytes_ = 0;
    bool closing_ = false;

    std::atomic<std::uint64_t> submitted_{0}, stored_{0}, rejected_{0}, commits_{0}, failed_commits_{0},
        largest_batch_{0};

    std::mutex join_mu_;
    std::thread thread_;  // last: starts after everything above is ready
};

// ---- QueueStore (queue_store.cpp, delivery.cpp) ----
class PgQueueStore final : public QueueStore {
  public:
    PgQueueStore(SharedConn& conn, PgWriter& writer) : conn_(conn), writer_(writer) {}
    void submit(StoredMessage msg, SubmitDone done) override;
    Result<std::vector<QueueEntry>> list() override;
    Result<Envelope> envelope(const std::string& id) override;
    Result<std::string> body(const std::string& id) override;
    Result<void> remove(const std::string& id) override;
    Result<void> retry_now(const std::string& id) override;
    Result<std::size_t> count() override;
    Result<std::vector<std::pair<std::string, std::size_t>>> pending_by_state() override;
    Result<std::vector<QueueListing>> listing(TimePoint now) override;
    Result<void> hold(const std::string& id) override;
    Result<void> release(const std::string& id) override;
    Result<std::size_t> flush(TimePoint now) override;
    Result<std::vector<Envelope>> lease_due(TimePoint now, std::size_t limit, const std::string& owner,
                                            std::chrono::milliseconds lease_for) override;
    Result<void> complete_attempt(const std::string& id, const std::string& owner,
                                  const std::vector<RecipientUpdate>& updates) override;
    void complete_attempt_async(std::string id, std::string owner, std::vector<RecipientUpdate> updates,
                                SubmitDone done) override;
    Result<std::optional<TimePoint>> next_due() override;
    Result<std::size_t> release_leases(const std::string& owner) override;
    Result<std::size_t> renew_leases(const std::string& owner, const std::vector<std::string>& ids,
                                     TimePoint until) override;

  private:
    struct Attempt;  // an outcome being recorded (delivery.cpp)
    void record_attempt(std::shared_ptr<Attempt> a, std::chrono::milliseconds delay);

    // The generation of each lease this store object took (message id -> owner, generation):
    // complete_attempt applies an outcome only while that very lease is still the message's.
    std::int64_t generation_of(const std::string& id, const std::string& owner);
    void forget_lease(const std::string& id);

    SharedConn& conn_;
    PgWriter& writer_;
    std::mutex leases_mu_;
    std::map<std::string, std::pair<std::string, std::int64_t>> leases_;
    // The lease_for of the last lease_due: how long an outcome that could not be written is retried.
    std::atomic<std::int64_t> lease_for_ms_{0};
};

class PgUserStore final : public UserStore {
  public:
    explicit PgUserStore(SharedConn& conn) : conn_(conn) {}
    Result<void> add(const User& u) override;
    Result<void> update(const User& u) override;
    Result<void> remove(const std::string& name) override;
    Result<User> get(const std::string& name) override;
    Result<std::vector<User>> list() override;

  private:
    SharedConn& conn_;
};

// ---- PolicyStore (policy_store.cpp) ----
// The learned TLS policy shared by every node on the database: raises compare ranks in SQL under
// the domain's row lock, so no interleaving of nodes lowers a level (see policy_store.cpp).
class PgPolicyStore final : public PolicyStore {
  public:
    explicit PgPolicyStore(SharedConn& conn) : conn_(conn) {}
    using PolicyStore::forget;
    using PolicyStore::raise;
    Result<std::optional<LearnedPolicy>> get(const std::string& domain) override;
    Result<std::vector<LearnedPolicy>> list() override;
    Result<bool> raise(const std::string& domain, const std::string& level, const std::vector<MxEvidence>& mx,
                       const std::string& report, TimePoint now) override;
    Result<void> confirm(const std::string& domain, const std::vector<MxEvidence>& mx, TimePoint now) override;
    Result<void> forget(const std::string& domain, const std::string& who, TimePoint now) override;
    Result<void> record_probe(const std::string& domain, const std::string& level, const std::string& report,
                              TimePoint now) override;
    Result<std::vector<ProbeRecord>> probes(const std::string& domain, std::size_t limit) override;
    Result<void> add_incident(const PolicyIncident& incident) override;
    Result<std::vector<PolicyIncident>> incidents(const std::string& domain) override;
    Result<void> set_override(const std::string& domain, const std::string& level, const std::string& reason,
                              std::optional<TimePoint> expires, TimePoint now, const std::string& who) override;
    Result<void> clear_override(const std::string& domain, const std::string& who, TimePoint now) override;
    Result<std::optional<Override>> active_override(const std::string& domain, TimePoint now) override;
    Result<std::vector<Override>> overrides() override;
    Result<std::vector<PolicyAudit>> audit(const std::string& domain) override;
    // mta_sts_store.cpp
    Result<bool> put_mta_sts(const StoredMtaSts& p) override;
    Result<std::optional<StoredMtaSts>> mta_sts(const std::string& domain) override;
    Result<std::vector<StoredMtaSts>> mta_sts_all() override;
    Result<std::size_t> purge_mta_sts(TimePoint now) override;
    // tlsrpt_store.cpp
    Result<void> add_tlsrpt(const std::vector<TlsRptCount>& rows) override;
    Result<std::vector<TlsRptCount>> tlsrpt_day(const std::string& day) override;
    Result<bool> claim_tlsrpt(const std::string& day, const std::string& domain, const std::string& report_id,
                              TimePoint now) override;
    Result<std::size_t> purge_tlsrpt(const std::string& before) override;

  private:
    SharedConn& conn_;
};

}  // namespace mailward::store::postgres
