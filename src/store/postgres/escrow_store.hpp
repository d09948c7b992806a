// Escrow over PostgreSQL (schema version 3, migrations.cpp): store::EscrowStore with the SQLite
// store's semantics, for several nodes on one database (docs/design.md, "PostgreSQL store"), and the
// key holder's read-only EscrowReader. Only the PostgreSQL store's own files include this header.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/escrow_reader.hpp"
#include "store/escrow_store.hpp"
#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {

class PgEscrowStore final : public EscrowStore {
  public:
    PgEscrowStore(SharedConn& conn, PgWriter& writer) : conn_(conn), writer_(writer) {}

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
    // Runs job in the writer's next batch and waits for its outcome (after COMMIT).
    Result<void> run_in_writer(PgWriter::Job job);
    // Hands rows that were just committed to the sink.
    void committed(const std::vector<EscrowAuditEntry>& rows);
    // VACUUM escrow_keys after a shred has committed, so the deleted key's dead tuple is gone.
    void vacuum_keys();

    SharedConn& conn_;
    PgWriter& writer_;
    std::mutex sink_mu_;
    AuditSink sink_;
};

// A connection that cannot write: default_transaction_read_only=on in the connection options (kept
// by a reconnect); refused (storage_error) unless the server confirms it. The key holder's reader
// uses it; tests try to write through it.
Result<Conn> open_read_only(const std::string& dsn);

}  // namespace mailward::store::postgres
