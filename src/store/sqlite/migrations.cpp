// Schema of the embedded store and the steps that create and upgrade it. Append new steps at the
// end of kMigrations; never edit a step that has shipped. Times are INTEGER milliseconds since the
// Unix epoch; tables are STRICT so a wrong type is an error, not a silent conversion.
#include "store/sqlite/migrations.hpp"

#include <spdlog/spdlog.h>

#include <string>

namespace mailward::store::sqlite {
namespace {

// Version 1: the queue (messages, bodies, recipients) and user accounts.
// - messages keeps its row after delivery (history for `queue show`, bounces, audit); the
//   lease_* columns are for the delivery engine (NULL = not leased).
// - bodies is separate so listing and scheduling never page through message data, and remove()
//   can drop the data while keeping the envelope.
// - recipients carries the per-recipient state machine; recipients_due serves the scheduler
//   ("state = 'queued' AND next_attempt <= now") and list(); recipients_domain serves per-domain
//   work (policy changes, probes, per-destination concurrency).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE messages (
    id             TEXT    NOT NULL PRIMARY KEY,
    sender         TEXT    NOT NULL,
    body_type      TEXT    NOT NULL CHECK (body_type IN ('7bit', '8bitmime', 'binarymime')),
    smtputf8       INTEGER NOT NULL CHECK (smtputf8 IN (0, 1)),
    requiretls     INTEGER NOT NULL CHECK (requiretls IN (0, 1)),
    ret            TEXT    NOT NULL CHECK (ret IN ('', 'full', 'hdrs')),
    envid          TEXT    NOT NULL,
    auth_user      TEXT    NOT NULL,
    client_address TEXT    NOT NULL,
    client_helo    TEXT    NOT NULL,
    sender_mode    TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    size           INTEGER NOT NULL CHECK (size >= 0),
    lease_owner    TEXT,
    lease_until    INTEGER
) STRICT;
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_lease ON messages (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE bodies (
    message_id TEXT NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    data       BLOB NOT NULL
) STRICT;

CREATE TABLE recipients (
    message_id   TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL CHECK (idx >= 0),
    address      TEXT    NOT NULL,
    domain       TEXT    NOT NULL,
    orcpt        TEXT    NOT NULL,
    notify       INTEGER NOT NULL CHECK (notify BETWEEN 0 AND 15),
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'failed',
                                                  'awaiting_escrow', 'escrowed', 'deleted')),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt INTEGER NOT NULL,
    last_error   TEXT    NOT NULL,
    PRIMARY KEY (message_id, idx)
) STRICT, WITHOUT ROWID;
CREATE INDEX recipients_due ON recipients (state, next_attempt);
CREATE INDEX recipients_domain ON recipients (domain, state);

CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    created       INTEGER NOT NULL
) STRICT;
)sql";

// Version 2: the learned TLS policy (one row per domain, raised only) and its incidents
// (append-only history of what looked like downgrades).
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE learned_policy (
    domain         TEXT    NOT NULL PRIMARY KEY,
    level          TEXT    NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    rank           INTEGER NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_confirmed INTEGER NOT NULL,
    evidence       TEXT    NOT NULL
) STRICT;

CREATE TABLE policy_incidents (
    id     INTEGER PRIMARY KEY,
    domain TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    detail TEXT    NOT NULL
) STRICT;
CREATE INDEX policy_incidents_domain ON policy_incidents (domain, at);
)sql";

// Version 3: the rest of the learned policy store.
// - policy_evidence: per MX address facts of a learned domain (replaced on raise/confirm, dropped
//   with the domain by forget).
// - probe_history, policy_incidents and policy_audit are append-only: triggers refuse UPDATE and
//   DELETE, so history cannot be rewritten through the store (only by dropping the triggers).
// - policy_overrides: the administrator's current level per domain; every change is in policy_audit.
// learned_policy.evidence keeps the report (JSON) that raised the level; last_probe is read from
// probe_history.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE policy_evidence (
    domain       TEXT    NOT NULL REFERENCES learned_policy (domain) ON DELETE CASCADE,
    host         TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    level        TEXT    NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    starttls     INTEGER NOT NULL CHECK (starttls IN (0, 1)),
    protocol     TEXT    NOT NULL,
    cipher       TEXT    NOT NULL,
    chain_valid  INTEGER NOT NULL CHECK (chain_valid IN (0, 1)),
    name_matched INTEGER NOT NULL CHECK (name_matched IN (0, 1)),
    spki_sha256  TEXT    NOT NULL,
    dane_matched INTEGER NOT NULL CHECK (dane_matched IN (0, 1)),
    seen_at      INTEGER NOT NULL,
    PRIMARY KEY (domain, host, address)
) STRICT, WITHOUT ROWID;

CREATE TABLE probe_history (
    id     INTEGER PRIMARY KEY,
    domain TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    level  TEXT    NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    report TEXT    NOT NULL
) STRICT;
CREATE INDEX probe_history_domain ON probe_history (domain, at);

ALTER TABLE policy_incidents ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE policy_incidents ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE policy_incidents ADD COLUMN raw_evidence TEXT NOT NULL DEFAULT '';

CREATE TABLE policy_overrides (
    domain  TEXT    NOT NULL PRIMARY KEY,
    level   TEXT    NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    reason  TEXT    NOT NULL CHECK (length(reason) > 0),
    expires INTEGER CHECK (expires IS NULL OR expires > set_at),
    set_at  INTEGER NOT NULL,
    set_by  TEXT    NOT NULL
) STRICT;

CREATE TABLE policy_audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    who    TEXT    NOT NULL,
    action TEXT    NOT NULL CHECK (action IN ('raise', 'set_override', 'clear_override', 'forget')),
    domain TEXT    NOT NULL,
    level  TEXT    NOT NULL CHECK (level IN ('', 'none', 'may', 'encrypt', 'verify', 'dane')),
    detail TEXT    NOT NULL
) STRICT;
CREATE INDEX policy_audit_domain ON policy_audit (domain, id);

CREATE TRIGGER probe_history_no_update BEFORE UPDATE ON probe_history
BEGIN SELECT RAISE(ABORT, 'probe_history is append-only'); END;
CREATE TRIGGER probe_history_no_delete BEFORE DELETE ON probe_history
BEGIN SELECT RAISE(ABORT, 'probe_history is append-only'); END;
CREATE TRIGGER policy_incidents_no_update BEFORE UPDATE ON policy_incidents
BEGIN SELECT RAISE(ABORT, 'policy_incidents is append-only'); END;
CREATE TRIGGER policy_incidents_no_delete BEFORE DELETE ON policy_incidents
BEGIN SELECT RAISE(ABORT, 'policy_incidents is append-only'); END;
CREATE TRIGGER policy_audit_no_update BEFORE UPDATE ON policy_audit
BEGIN SELECT RAISE(ABORT, 'policy_audit is append-only'); END;
CREATE TRIGGER policy_audit_no_delete BEFORE DELETE ON policy_audit
BEGIN SELECT RAISE(ABORT, 'policy_audit is append-only'); END;
)sql";

// Version 4: escrow (src/escrow, the portal).
// - escrow_messages: one sealed copy per (queued message, recipient); the wrapped data key and the
//   ciphertext are separate columns so crypto-shredding (wrapped_key NULL) and purging (sealed
//   NULL) are plain updates. Link tokens, codes and session ids are stored as keyed hashes only.
// - escrow_codes / escrow_sessions: the portal's one-time codes and server-side sessions.
// - escrow_audit: append-only (triggers), each row chained to the previous row of its message.
// - recipients_awaiting: the sealer's scan of recipients awaiting escrow.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE escrow_messages (
    id            TEXT    NOT NULL PRIMARY KEY,
    queue_id      TEXT    NOT NULL,
    rcpt_index    INTEGER NOT NULL CHECK (rcpt_index >= 0),
    sender        TEXT    NOT NULL,
    sender_name   TEXT    NOT NULL,
    sender_mode   TEXT    NOT NULL,
    recipient     TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    wrapped_key   BLOB,
    sealed        BLOB,
    state         TEXT    NOT NULL CHECK (state IN ('active', 'revoked', 'expired', 'purged')),
    created       INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    ended_at      INTEGER,
    failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until  INTEGER,
    UNIQUE (queue_id, rcpt_index)
) STRICT;
CREATE INDEX escrow_messages_state ON escrow_messages (state, expires);

CREATE TABLE escrow_codes (
    id        INTEGER PRIMARY KEY,
    escrow_id TEXT    NOT NULL REFERENCES escrow_messages (id),
    code_hash TEXT    NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER NOT NULL,
    tries     INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0),
    live      INTEGER NOT NULL DEFAULT 1 CHECK (live IN (0, 1))
) STRICT;
CREATE INDEX escrow_codes_message ON escrow_codes (escrow_id, id);

CREATE TABLE escrow_sessions (
    id_hash   TEXT    NOT NULL PRIMARY KEY,
    escrow_id TEXT    NOT NULL REFERENCES escrow_messages (id),
    csrf      TEXT    NOT NULL,
    created   INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    ended_at  INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX escrow_sessions_message ON escrow_sessions (escrow_id);

CREATE TABLE escrow_audit (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    escrow_id  TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
) STRICT;
CREATE INDEX escrow_audit_message ON escrow_audit (escrow_id, seq);
CREATE TRIGGER escrow_audit_no_update BEFORE UPDATE ON escrow_audit
BEGIN SELECT RAISE(ABORT, 'escrow_audit is append-only'); END;
CREATE TRIGGER escrow_audit_no_delete BEFORE DELETE ON escrow_audit
BEGIN SELECT RAISE(ABORT, 'escrow_audit is append-only'); END;

CREATE INDEX recipients_awaiting ON recipients (message_id) WHERE state = 'awaiting_escrow';
)sql";

// Version 5: the body spool (spool.hpp). A large body lives in a segment file; its bodies row keeps
// an empty data blob (so every "DELETE FROM bodies" still means "the body is no longer needed")
// and spooled_bodies says where it is. Deleting the bodies row deletes the spooled_bodies row
// (cascade); that records the range in spool_free, which the writer releases (hole punched;
// scrub = zeros first, for plaintext that was escrowed or deleted by an administrator) and then
// forgets.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE spooled_bodies (
    message_id TEXT    NOT NULL PRIMARY KEY REFERENCES bodies (message_id) ON DELETE CASCADE,
    segment    INTEGER NOT NULL CHECK (segment > 0),
    start      INTEGER NOT NULL CHECK (start >= 0),
    length     INTEGER NOT NULL CHECK (length >= 0)
) STRICT;
CREATE INDEX spooled_bodies_segment ON spooled_bodies (segment);

CREATE TABLE spool_free (
    segment INTEGER NOT NULL,
    start   INTEGER NOT NULL,
    length  INTEGER NOT NULL,
    scrub   INTEGER NOT NULL CHECK (scrub IN (0, 1))
) STRICT;

CREATE TRIGGER spooled_bodies_free AFTER DELETE ON spooled_bodies BEGIN
    INSERT INTO spool_free (segment, start, length, scrub) VALUES (old.segment, old.start, old.length,
        EXISTS (SELECT 1 FROM recipients WHERE message_id = old.message_id AND state IN ('escrowed', 'deleted')));
END;
)sql";

// Version 6: escrow at rest and code lockouts.
// - escrow_keys: the wrapped data keys, one narrow row each (never in an overflow page, never
//   rewritten with the ciphertext's row), so shredding is one DELETE that secure_delete=ON zeroes.
//   The keys of existing rows move here; escrow_messages.wrapped_key stays NULL from now on.
// - escrow_messages.total_failures / lockouts: wrong codes over the message's life and the
//   lockouts so far (each lockout twice as long as the one before).
// - escrow_codes.strong: a long code (sent during a lockout or after the failure cap), accepted
//   while short-code sign-in is locked.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE escrow_keys (
    escrow_id   TEXT NOT NULL PRIMARY KEY REFERENCES escrow_messages (id),
    wrapped_key BLOB NOT NULL CHECK (length(wrapped_key) BETWEEN 1 AND 512)
) STRICT, WITHOUT ROWID;
INSERT INTO escrow_keys (escrow_id, wrapped_key)
    SELECT id, wrapped_key FROM escrow_messages WHERE wrapped_key IS NOT NULL AND length(wrapped_key) > 0;
UPDATE escrow_messages SET wrapped_key = NULL WHERE wrapped_key IS NOT NULL;

ALTER TABLE escrow_messages ADD COLUMN total_failures INTEGER NOT NULL DEFAULT 0 CHECK (total_failures >= 0);
ALTER TABLE escrow_messages ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0 CHECK (lockouts >= 0);
ALTER TABLE escrow_codes ADD COLUMN strong INTEGER NOT NULL DEFAULT 0 CHECK (strong IN (0, 1));
)sql";

// Version 7: sender binding and the TLS-Required: No permission, per account.
// - senders: the envelope/From: addresses and @domains the account may use, one pattern a line
//   (patterns have no whitespace); '' = none listed ([submission] sender_login_match decides).
// - allow_tls_optional: 1 when the account may send with the header TLS-Required: No (RFC 8689).
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE users ADD COLUMN senders TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN allow_tls_optional INTEGER NOT NULL DEFAULT 0 CHECK (allow_tls_optional IN (0, 1));
)sql";

// Version 8: administrative hold (`mailward queue hold|release ID`, like Postfix's postsuper -h).
// A held message is never leased for delivery (nor counted by next_due) until it is released;
// recipients awaiting escrow are still sealed (plaintext never waits longer than policy says).
constexpr const char* kSchemaV8 = R"sql(
ALTER TABLE messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1));
)sql";

// Version 9: the MTA-STS policies as fetched (RFC 8461 section 5.1), one row per domain; they were
// a JSON file in data_dir before (serve imports that file once, mta_sts_store.hpp).
constexpr const char* kSchemaV9 = R"sql(
CREATE TABLE mta_sts_policies (
    domain     TEXT    NOT NULL PRIMARY KEY,
    id         TEXT    NOT NULL CHECK (id <> ''),
    policy     TEXT    NOT NULL CHECK (policy <> ''),
    fetched_at INTEGER NOT NULL,
    expires    INTEGER NOT NULL CHECK (expires > fetched_at)
) STRICT;
)sql";

// Version 10: a delay notification (RFC 3464 Action: delayed) is sent once per recipient; this
// remembers that it was queued, across attempts, restarts and nodes.
constexpr const char* kSchemaV10 = R"sql(
ALTER TABLE recipients ADD COLUMN delay_warned INTEGER NOT NULL DEFAULT 0 CHECK (delay_warned IN (0, 1));
)sql";

// Version 11: TLS-RPT (RFC 8460) counts per UTC day and policy outcome (added to by every node),
// and the claims that make each day's report for a domain go out once.
constexpr const char* kSchemaV11 = R"sql(
CREATE TABLE tlsrpt_counts (
    day            TEXT    NOT NULL,
    policy_domain  TEXT    NOT NULL CHECK (policy_domain <> ''),
    policy_type    TEXT    NOT NULL CHECK (policy_type <> ''),
    policy_strings TEXT    NOT NULL,
    mx_hosts       TEXT    NOT NULL,
    result_type    TEXT    NOT NULL,
    sending_ip     TEXT    NOT NULL,
    receiving_mx   TEXT    NOT NULL,
    receiving_ip   TEXT    NOT NULL,
    count          INTEGER NOT NULL CHECK (count > 0),
    PRIMARY KEY (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip,
                 receiving_mx, receiving_ip)
) STRICT;
CREATE TABLE tlsrpt_sent (
    day        TEXT    NOT NULL,
    domain     TEXT    NOT NULL,
    report_id  TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (day, domain)
) STRICT;
)sql";

// Version 12: read and expiry receipts. users.receipts: the account wants them; escrow_messages:
// whether the sealed message's sender wanted them (from the account at the seal) and whether the
// read receipt went out (the expiry receipt goes with the expiry, once).
constexpr const char* kSchemaV12 = R"sql(
ALTER TABLE users ADD COLUMN receipts INTEGER NOT NULL DEFAULT 0 CHECK (receipts IN (0, 1));
ALTER TABLE escrow_messages ADD COLUMN receipts INTEGER NOT NULL DEFAULT 0 CHECK (receipts IN (0, 1));
ALTER TABLE escrow_messages ADD COLUMN read_receipt_sent INTEGER NOT NULL DEFAULT 0 CHECK (read_receipt_sent IN (0, 1));
)sql";

constexpr Migration kMigrations[] = {
    {1, "queue and users", kSchemaV1},
    {2, "learned TLS policy", kSchemaV2},
    {3, "policy evidence, probes, overrides, audit", kSchemaV3},
    {4, "escrow", kSchemaV4},
    {5, "body spool", kSchemaV5},
    {6, "escrow keys apart, code lockouts", kSchemaV6},
    {7, "sender binding, TLS-Required: No permission", kSchemaV7},
    {8, "administrative hold", kSchemaV8},
    {9, "shared MTA-STS policies", kSchemaV9},
    {10, "delay notifications", kSchemaV10},
    {11, "TLS-RPT counts and reports sent", kSchemaV11},
    {12, "read and expiry receipts", kSchemaV12},
};

Result<int> read_int_pragma(Db& db, const char* sql) {
    auto st = db.prepare(sql);
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return common::Errc::storage_error;
    return static_cast<int>(st->int64(0));
}

// A file with tables but neither our application_id nor a schema version was not made by us.
Result<bool> has_foreign_content(Db& db) {
    auto st = db.prepare("SELECT count(*) FROM sqlite_schema");
    if (!st) return Result<bool>(boost::system::in_place_error, st.error());
    auto row = st->step();
    if (!row) return row;
    return *row && st->int64(0) > 0;
}

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

int latest_schema_version() { return kMigrations[std::size(kMigrations) - 1].version; }

Result<int> schema_version(Db& db) { return read_int_pragma(db, "PRAGMA user_version"); }

Result<int> migrate(Db& db) { return migrate(db, migrations()); }

// The schema version of a file mailward may use with these steps; refuses foreign and newer files.
static Result<int> usable_version(Db& db, int known) {
    auto app = read_int_pragma(db, "PRAGMA application_id");
    if (!app) return app.error();
    auto version = schema_version(db);
    if (!version) return version.error();
    if (*app != 0 && *app != kApplicationId) {
        spdlog::error("store: database application_id {:#x} is not mailward's", *app);
        return common::Errc::corrupt;
    }
    if (*app == 0 && *version == 0) {
        auto foreign = has_foreign_content(db);
        if (!foreign) return foreign.error();
        if (*foreign) {
            spdlog::error("store: the database file has tables but no mailward schema version");
            return common::Errc::corrupt;
        }
    }
    if (*version > known) {
        spdlog::error(
            "store: database schema version {} is newer than this build knows ({}); "
            "refusing to open it with an older mailward",
            *version, known);
        return common::Errc::unsupported;
    }
    return *version;
}

Result<int> migrate(Db& db, std::span<const Migration> steps) {
    const int known = steps.empty() ? 0 : steps.back().version;
    // Look before touching anything: a foreign or newer file is refused unchanged.
    if (auto v = usable_version(db, known); !v) return v.error();

    // WAL: readers never block the writer and a commit is one sequential append + fsync.
    // journal_mode cannot change inside a transaction; it is persistent in the file.
    {
        auto mode = db.prepare("PRAGMA journal_mode=WAL");
        if (!mode) return mode.error();
        auto row = mode->step();
        if (!row) return row.error();
        std::string got = *row ? mode->text(0) : std::string();
        if (got != "wal") {
            spdlog::error("store: cannot switch the database to WAL mode (got '{}')", got);
            return common::Errc::storage_error;
        }
    }
    // Limit the WAL file that remains after a checkpoint (it is reused, not shrunk, otherwise).
    if (auto r = db.exec("PRAGMA journal_size_limit=67108864", "journal_size_limit"); !r) return r.error();

    for (;;) {
        // Read the version again inside the write transaction: two processes opening a fresh file
        // at once serialise here, and the second sees the first one's work.
        auto tx = Tx::begin(db, true);
        if (!tx) return tx.error();
        auto version = usable_version(db, known);
        if (!version) return version.error();
        if (*version == known) return *version;  // Tx rolls back the empty transaction

        const Migration* next = nullptr;
        for (const auto& m : steps)
            if (m.version == *version + 1) next = &m;
        if (!next) {
            spdlog::error("store: no migration from schema version {}", *version);
            return common::Errc::corrupt;
        }
        if (auto r = db.exec(next->sql, next->name); !r) return r.error();
        std::string pragmas = "PRAGMA user_version=" + std::to_string(next->version) +
                              "; PRAGMA application_id=" + std::to_string(kApplicationId) + ";";
        if (auto r = db.exec(pragmas.c_str(), "set schema version"); !r) return r.error();
        if (auto r = tx->commit(); !r) return r.error();
        spdlog::info("store: schema migrated to version {} ({})", next->version, next->name);
    }
}

}  // namespace mailward::store::sqlite
