// Pieces shared by the SQLite store's files and nobody else: the mutex-guarded shared connection,
// the text/integer encodings of envelope fields as stored, the group-commit writer, and the
// QueueStore/UserStore/PolicyStore implementations over the shared connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/encoding.hpp"
#include "store/sqlite/db.hpp"
#include "store/sqlite/spool.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace mailward::store::sqlite {

// A connection used from many threads, one at a time.
struct SharedConn {
    std::mutex mu;
    Db db;
};

// ---- encodings (the values the schema's CHECK constraints allow): store/encoding.hpp ----
using detail::decode_body_type;
using detail::decode_ret;
using detail::decode_state;
using detail::domain_of;
using detail::encode;
using detail::from_ms;
using detail::to_ms;

// Reads one envelope with all its recipients; the caller holds the connection and a transaction.
Result<Envelope> read_envelope(Db& db, const std::string& id);
// The ids of the messages with a recipient the caller's WHERE picks (r the recipient, m its
// message); read with read_ids, then each with read_envelope.
inline constexpr const char* kSelectMessageIds =
    "SELECT DISTINCT r.message_id FROM recipients r JOIN messages m ON m.id = r.message_id";
// Every row's first column as text.
Result<std::vector<std::string>> read_ids(Stmt& st);
// Inserts msg (envelope, body, recipients); sets received_at when default and size from the body.
// spooled: the body is in the spool there (msg.body is then not used; size is its length).
// The caller holds a write transaction (the writer's batch, or a job in it).
Result<void> insert_message(Db& db, StoredMessage& msg, const SpoolRef* spooled = nullptr);

// Installs role's write limits on db (role.cpp): nothing for Role::main; otherwise writes to tables
// outside writable_tables(role), schema changes and PRAGMA assignments fail with SQLITE_AUTH.
Result<void> restrict_writes(Db& db, Role role);

// Removes the spool segments no row of db uses (BodySpool::sweep); at open and now and then.
std::size_t sweep_spool_segments(Db& db, BodySpool& spool);

// ---- the group-commit writer ----
class GroupWriter {
  public:
    GroupWriter(Db db, Options opts, BodySpool* spool);  // starts the thread; spool may be null
    ~GroupWriter();                                      // close()
    GroupWriter(const GroupWriter&) = delete;
    GroupWriter& operator=(const GroupWriter&) = delete;

    void submit(StoredMessage msg, QueueStore::SubmitDone done);
    // A small write run by the writer thread inside the next batch (under its own SAVEPOINT), so
    // that it shares the batch's single commit instead of contending for the write lock.
    using Job = std::function<Result<void>(Db&)>;
    // scrub: the job removes secrets or plaintext (sealing, shredding, purging). After its batch
    // (once the completions have run) the writer releases the spool ranges freed (zeroed) and
    // truncates the WAL (checkpoint TRUNCATE), so no old page image keeps them; when readers are
    // in the way it tries again shortly.
    void submit_job(Job job, QueueStore::SubmitDone done, bool scrub = false);
    void close();
    WriterStats stats() const;

  private:
    struct Pending {
        StoredMessage msg;
        QueueStore::SubmitDone done;
        std::size_t bytes = 0;
        Job job;                          // set: a job instead of a message
        std::optional<SpoolRef> spooled;  // the body, written to the spool by submit()
        bool scrub = false;               // a job that destroys secrets (submit_job)
    };

    void run();
    std::vector<Result<void>> write_batch(std::vector<Pending>& batch);
    std::vector<Result<void>> write_batch_tx(std::vector<Pending>& batch);
    // Releases spool ranges whose bodies were deleted (spool_free), inside the batch transaction.
    std::size_t reclaim_spool();
    void sweep_spool();
    // The scrub pass (see submit_job): true when the WAL is truncated.
    bool scrub_pass();

    Db db_;  // used by the writer thread only
    const Options opts_;
    BodySpool* spool_;
    std::chrono::steady_clock::time_point last_sweep_{};
    bool scrub_owed_ = false;  // writer thread only
    std::chrono::steady_clock::time_point scrub_owed_since_{}, last_scrub_try_{};
    bool scrub_warned_ = false;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Pending> queue_;
    std::size_t queued_bytes_ = 0;
    bool closing_ = false;

    std::atomic<std::uint64_t> submitted_{0}, stored_{0}, rejected_{0}, commits_{0}, failed_commits_{0},
        largest_batch_{0};

    std::mutex join_mu_;
    std::thread thread_;  // last: starts after everything above is ready
};

// ---- reads and small writes on the shared connection ----
class SqliteQueueStore final : public QueueStore {
  public:
    SqliteQueueStore(SharedConn& conn, GroupWriter& writer, BodySpool* spool)
        : conn_(conn), writer_(writer), spool_(spool) {}
    void submit(StoredMessage msg, SubmitDone done) override;
    Result<std::vector<QueueEntry>> list() override;
    Result<Envelope> envelope(const std::string& id) override;
    Result<std::string> body(const std::string& id) override;
    Result<void> remove(const std::string& id) override;
    Result<void> retry_now(const std::string& id) override;
    Result<std::size_t> count() override;
    Result<std::vector<QueueListing>> listing(TimePoint now) override;
    Result<void> hold(const std::string& id) override;
    Result<void> release(const std::string& id) override;
    Result<std::size_t> flush(TimePoint now) override;
    Result<std::vector<std::pair<std::string, std::size_t>>> pending_by_state() override;
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
    SharedConn& conn_;
    GroupWriter& writer_;
    BodySpool* spool_;
};

class SqliteUserStore final : public UserStore {
  public:
    explicit SqliteUserStore(SharedConn& conn) : conn_(conn) {}
    Result<void> add(const User& u) override;
    Result<void> update(const User& u) override;
    Result<void> remove(const std::string& name) override;
    Result<User> get(const std::string& name) override;
    Result<std::vector<User>> list() override;

  private:
    SharedConn& conn_;
};

// Escrow (escrow_store.cpp): creation, codes and audit appends that queue mail run as writer jobs.
class SqliteEscrowStore final : public EscrowStore {
  public:
    SqliteEscrowStore(SharedConn& conn, GroupWriter& writer) : conn_(conn), writer_(writer) {}
    Result<std::vector<Envelope>> awaiting_seal(std::size_t limit) override;
    void create(EscrowRecord rec, EscrowAuditEntry first, StoredMessage notice, AuditChain chain, Done done) override;
    Result<EscrowRecord> get(const std::string& id) override;
    Result<EscrowRecord> find_by_token(const std::string& token_hash) override;
    Result<std::vector<EscrowRecord>> list(bool include_ended) override;
    Result<void> shred(const std::string& id, EscrowState to, EscrowTime now, EscrowAuditEntry audit,
                       const AuditChain& chain) override;
    Result<void> purge(const std::string& id, EscrowTime now, EscrowAuditEntry audit, const AuditChain& chain) override;
    Result<std::vector<std::string>> expired_ids(EscrowTime now) override;
    Result<std::vector<std::string>> purgeable_ids(EscrowTime ended_before) override;
    Result<std::vector<std::string>> read_receipts_due() override;
    Result<bool> mark_read_receipt(const std::string& id) override;
    Result<int> codes_sent_since(const std::string& id, EscrowTime since) override;
    Result<void> add_code(const std::string& id, const std::string& code_hash, bool strong, EscrowTime now,
                          EscrowTime expires, StoredMessage msg, EscrowAuditEntry audit,
                          const AuditChain& chain) override;
    Result<CodeCheck> check_code(const std::string& id, const std::string& code_hash, EscrowTime now,
                                 const CodeRules& rules, EscrowAuditEntry audit, const AuditChain& chain) override;
    Result<void> create_session(const EscrowSession& s) override;
    Result<EscrowSession> session(const std::string& id_hash) override;
    Result<void> touch_session(const std::string& id_hash, EscrowTime now) override;
    Result<void> end_session(const std::string& id_hash, EscrowTime now) override;
    Result<void> end_sessions_of(const std::string& id, EscrowTime now) override;
    Result<void> append_audit(EscrowAuditEntry e, const AuditChain& chain) override;
    Result<std::vector<EscrowAuditEntry>> audit(const std::string& id) override;
    void set_audit_sink(AuditSink sink) override;

  private:
    // Hands rows that were just committed to the sink.
    void committed(const std::vector<EscrowAuditEntry>& rows);
    std::mutex sink_mu_;
    AuditSink sink_;
    // Runs job in the writer's next batch and waits for its commit.
    Result<void> run_in_writer(GroupWriter::Job job, bool scrub = false);
    SharedConn& conn_;
    GroupWriter& writer_;
};

// The learned TLS policy (policy_store.cpp).
class SqlitePolicyStore final : public PolicyStore {
  public:
    explicit SqlitePolicyStore(SharedConn& conn) : conn_(conn) {}
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

}  // namespace mailward::store::sqlite
