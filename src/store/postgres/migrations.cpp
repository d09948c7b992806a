// Schema of the PostgreSQL store and the steps that create and upgrade it, recorded in
// schema_version (one row per applied step). Append new steps at the end of kSteps; never edit a
// step that has shipped. The whole migration runs in one transaction (PostgreSQL's DDL is
// transactional) under an advisory lock, so nodes starting together migrate exactly once.
// Times are bigint milliseconds since the Unix epoch, as in the SQLite schema.
#include <spdlog/spdlog.h>

#include <iterator>

#include "store/postgres/internal.hpp"

namespace mailward::store::postgres {
namespace {

// Version 1: the queue and the user accounts (the SQLite schema's versions 1, 7 and 8 in one).
// - messages keeps its row after delivery (history); lease_owner/lease_until/lease_generation are
//   the delivery lease (NULL owner = not leased). lease_generation only grows: each lease_due that
//   takes the message adds one, and an outcome is applied only for the generation it was leased at.
// - bodies: insert-once (a trigger refuses UPDATE), written in the same transaction as the messages
//   row; deleted when nothing is pending or an administrator removes the message.
// - recipients: the per-recipient state machine; recipients_due serves lease_due and next_due.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE messages (
    id               text    NOT NULL PRIMARY KEY,
    sender           text    NOT NULL,
    body_type        text    NOT NULL CHECK (body_type IN ('7bit', '8bitmime', 'binarymime')),
    smtputf8         boolean NOT NULL,
    requiretls       boolean NOT NULL,
    ret              text    NOT NULL CHECK (ret IN ('', 'full', 'hdrs')),
    envid            text    NOT NULL,
    auth_user        text    NOT NULL,
    client_address   text    NOT NULL,
    client_helo      text    NOT NULL,
    sender_mode      text    NOT NULL,
    received_at      bigint  NOT NULL,
    size             bigint  NOT NULL CHECK (size >= 0),
    held             boolean NOT NULL DEFAULT false,
    lease_owner      text,
    lease_until      bigint,
    lease_generation bigint  NOT NULL DEFAULT 0
);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_lease_owner ON messages (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE bodies (
    message_id text  NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    data       bytea NOT NULL
);
CREATE FUNCTION mailward_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are insert-once', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER bodies_insert_once BEFORE UPDATE ON bodies
    FOR EACH ROW EXECUTE FUNCTION mailward_refuse_update();

CREATE TABLE recipients (
    message_id   text    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx          integer NOT NULL CHECK (idx >= 0),
    address      text    NOT NULL,
    domain       text    NOT NULL,
    orcpt        text    NOT NULL,
    notify       integer NOT NULL CHECK (notify BETWEEN 0 AND 15),
    state        text    NOT NULL CHECK (state IN ('queued', 'delivered', 'failed',
                                                  'awaiting_escrow', 'escrowed', 'deleted')),
    attempts     integer NOT NULL CHECK (attempts >= 0),
    next_attempt bigint  NOT NULL,
    last_error   text    NOT NULL,
    PRIMARY KEY (message_id, idx)
);
CREATE INDEX recipients_due ON recipients (state, next_attempt);
CREATE INDEX recipients_domain ON recipients (domain, state);

CREATE TABLE users (
    name               text    NOT NULL PRIMARY KEY,
    password_hash      text    NOT NULL,
    mode               text    NOT NULL,
    created            bigint  NOT NULL,
    senders            text    NOT NULL DEFAULT '',
    allow_tls_optional boolean NOT NULL DEFAULT false
);
)sql";

// Version 2: the learned TLS policy (the SQLite schema's versions 2 and 3 in one).
// - learned_policy: one row per domain, raised only. rank is the level's place on the ladder
//   (none = 0 ... dane = 4; a CHECK keeps it equal to the level's) so that raises compare ranks in
//   SQL; a trigger refuses any UPDATE that lowers rank, whoever runs it. Only DELETE (an
//   administrator's forget) removes a level.
// - policy_evidence: per MX address facts of a learned domain (replaced on raise/confirm, dropped
//   with the domain by forget).
// - probe_history, policy_incidents and policy_audit are append-only: triggers refuse UPDATE,
//   DELETE and TRUNCATE, so history cannot be rewritten through the store (only by dropping them).
// - policy_overrides: the administrator's current level per domain; every change is in policy_audit.
// Ids come from identity columns: "oldest first" is id order.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE learned_policy (
    domain         text    NOT NULL PRIMARY KEY,
    level          text    NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    rank           integer NOT NULL,
    first_seen     bigint  NOT NULL,
    last_confirmed bigint  NOT NULL,
    evidence       text    NOT NULL,
    CHECK (rank = CASE level WHEN 'none' THEN 0 WHEN 'may' THEN 1 WHEN 'encrypt' THEN 2
                             WHEN 'verify' THEN 3 WHEN 'dane' THEN 4 END)
);
CREATE FUNCTION mailward_refuse_lowering() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.rank < OLD.rank THEN
        RAISE EXCEPTION 'learned_policy: % may not be lowered from % to %', OLD.domain, OLD.level, NEW.level;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER learned_policy_never_lowers BEFORE UPDATE ON learned_policy
    FOR EACH ROW EXECUTE FUNCTION mailward_refuse_lowering();

CREATE TABLE policy_evidence (
    domain       text    NOT NULL REFERENCES learned_policy (domain) ON DELETE CASCADE,
    host         text    NOT NULL,
    address      text    NOT NULL,
    level        text    NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    starttls     boolean NOT NULL,
    protocol     text    NOT NULL,
    cipher       text    NOT NULL,
    chain_valid  boolean NOT NULL,
    name_matched boolean NOT NULL,
    spki_sha256  text    NOT NULL,
    dane_matched boolean NOT NULL,
    seen_at      bigint  NOT NULL,
    PRIMARY KEY (domain, host, address)
);

CREATE TABLE probe_history (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain text   NOT NULL,
    at     bigint NOT NULL,
    level  text   NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    report text   NOT NULL
);
CREATE INDEX probe_history_domain ON probe_history (domain, id);

CREATE TABLE policy_incidents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain       text   NOT NULL,
    at           bigint NOT NULL,
    kind         text   NOT NULL CHECK (length(kind) > 0),
    detail       text   NOT NULL,
    host         text   NOT NULL DEFAULT '',
    address      text   NOT NULL DEFAULT '',
    raw_evidence text   NOT NULL DEFAULT ''
);
CREATE INDEX policy_incidents_domain ON policy_incidents (domain, id);

CREATE TABLE policy_overrides (
    domain  text   NOT NULL PRIMARY KEY,
    level   text   NOT NULL CHECK (level IN ('none', 'may', 'encrypt', 'verify', 'dane')),
    reason  text   NOT NULL CHECK (length(reason) > 0),
    expires bigint CHECK (expires IS NULL OR expires > set_at),
    set_at  bigint NOT NULL,
    set_by  text   NOT NULL
);

CREATE TABLE policy_audit (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     bigint NOT NULL,
    who    text   NOT NULL,
    action text   NOT NULL CHECK (action IN ('raise', 'set_override', 'clear_override', 'forget')),
    domain text   NOT NULL,
    level  text   NOT NULL CHECK (level IN ('', 'none', 'may', 'encrypt', 'verify', 'dane')),
    detail text   NOT NULL
);
CREATE INDEX policy_audit_domain ON policy_audit (domain, id);

CREATE FUNCTION mailward_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER probe_history_append_only BEFORE UPDATE OR DELETE ON probe_history
    FOR EACH ROW EXECUTE FUNCTION mailward_append_only();
CREATE TRIGGER probe_history_no_truncate BEFORE TRUNCATE ON probe_history
    FOR EACH STATEMENT EXECUTE FUNCTION mailward_append_only();
CREATE TRIGGER policy_incidents_append_only BEFORE UPDATE OR DELETE ON policy_incidents
    FOR EACH ROW EXECUTE FUNCTION mailward_append_only();
CREATE TRIGGER policy_incidents_no_truncate BEFORE TRUNCATE ON policy_incidents
    FOR EACH STATEMENT EXECUTE FUNCTION mailward_append_only();
CREATE TRIGGER policy_audit_append_only BEFORE UPDATE OR DELETE ON policy_audit
    FOR EACH ROW EXECUTE FUNCTION mailward_append_only();
CREATE TRIGGER policy_audit_no_truncate BEFORE TRUNCATE ON policy_audit
    FOR EACH STATEMENT EXECUTE FUNCTION mailward_append_only();
)sql";

// Version 3: escrow (the SQLite schema's versions 4 and 6 in one).
// - escrow_messages: one sealed copy per (queued message, recipient); sealed is NULL once purged.
//   Link tokens, codes and session ids are stored as keyed hashes only.
// - escrow_keys: the wrapped data keys, one narrow row each, never rewritten with the message's row,
//   so shredding is one DELETE (followed, after the commit, by VACUUM escrow_keys: docs/design.md).
// - escrow_codes / escrow_sessions: the portal's one-time codes and server-side sessions.
// - escrow_audit: append-only (triggers refuse UPDATE, DELETE and TRUNCATE), each row chained to the
//   previous row of its message; the unique (escrow_id, prev_hash) makes a fork of a chain (two rows
//   after the same head) impossible even if a writer forgot the chain's lock.
// - recipients_awaiting: the sealer's scan of recipients awaiting escrow.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE escrow_messages (
    id             text    NOT NULL PRIMARY KEY,
    queue_id       text    NOT NULL,
    rcpt_index     integer NOT NULL CHECK (rcpt_index >= 0),
    sender         text    NOT NULL,
    sender_name    text    NOT NULL,
    sender_mode    text    NOT NULL,
    recipient      text    NOT NULL,
    message_id     text    NOT NULL,
    token_hash     text    NOT NULL UNIQUE,
    sealed         bytea,
    state          text    NOT NULL CHECK (state IN ('active', 'revoked', 'expired', 'purged')),
    created        bigint  NOT NULL,
    expires        bigint  NOT NULL,
    ended_at       bigint,
    failed_logins  integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until   bigint,
    total_failures integer NOT NULL DEFAULT 0 CHECK (total_failures >= 0),
    lockouts       integer NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    UNIQUE (queue_id, rcpt_index)
);
CREATE INDEX escrow_messages_state ON escrow_messages (state, expires);

CREATE TABLE escrow_keys (
    escrow_id   text  NOT NULL PRIMARY KEY REFERENCES escrow_messages (id),
    wrapped_key bytea NOT NULL CHECK (length(wrapped_key) BETWEEN 1 AND 512)
);
-- Never compressed or moved out of line: the key stays in its one heap tuple.
ALTER TABLE escrow_keys ALTER COLUMN wrapped_key SET STORAGE PLAIN;

CREATE TABLE escrow_codes (
    id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    escrow_id text    NOT NULL REFERENCES escrow_messages (id),
    code_hash text    NOT NULL,
    created   bigint  NOT NULL,
    expires   bigint  NOT NULL,
    tries     integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    live      boolean NOT NULL DEFAULT true,
    strong    boolean NOT NULL DEFAULT false
);
CREATE INDEX escrow_codes_message ON escrow_codes (escrow_id, id);

CREATE TABLE escrow_sessions (
    id_hash   text   NOT NULL PRIMARY KEY,
    escrow_id text   NOT NULL REFERENCES escrow_messages (id),
    csrf      text   NOT NULL,
    created   bigint NOT NULL,
    last_seen bigint NOT NULL,
    ended_at  bigint
);
CREATE INDEX escrow_sessions_message ON escrow_sessions (escrow_id);

CREATE TABLE escrow_audit (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    escrow_id  text   NOT NULL,
    at         bigint NOT NULL,
    event      text   NOT NULL,
    address    text   NOT NULL,
    user_agent text   NOT NULL,
    detail     text   NOT NULL,
    prev_hash  text   NOT NULL,
    hash       text   NOT NULL,
    UNIQUE (escrow_id, prev_hash)
);
CREATE INDEX escrow_audit_message ON escrow_audit (escrow_id, seq);
CREATE TRIGGER escrow_audit_no_update BEFORE UPDATE OR DELETE ON escrow_audit
    FOR EACH ROW EXECUTE FUNCTION mailward_append_only();
CREATE TRIGGER escrow_audit_no_truncate BEFORE TRUNCATE ON escrow_audit
    FOR EACH STATEMENT EXECUTE FUNCTION mailward_append_only();

CREATE INDEX recipients_awaiting ON recipients (message_id) WHERE state = 'awaiting_escrow';
)sql";

// Version 4: the MTA-STS policies as fetched (the SQLite schema's version 9), one row per
// domain, shared by every node: a policy fetched by one node is used by all (RFC 8461 section 5.1).
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE mta_sts_policies (
    domain     text   NOT NULL PRIMARY KEY,
    id         text   NOT NULL CHECK (id <> ''),
    policy     text   NOT NULL CHECK (policy <> ''),
    fetched_at bigint NOT NULL,
    expires    bigint NOT NULL CHECK (expires > fetched_at)
);
)sql";

// Version 5: a delay notification is sent once per recipient (the SQLite schema's version 10).
constexpr const char* kSchemaV5 = R"sql(
ALTER TABLE recipients ADD COLUMN delay_warned boolean NOT NULL DEFAULT false;
)sql";

// Version 6: TLS-RPT (RFC 8460) counts per UTC day (the SQLite schema's version 11), added to by
// every node, and the claims that make each day's report for a domain go out once.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE tlsrpt_counts (
    day            text   NOT NULL,
    policy_domain  text   NOT NULL CHECK (policy_domain <> ''),
    policy_type    text   NOT NULL CHECK (policy_type <> ''),
    policy_strings text   NOT NULL,
    mx_hosts       text   NOT NULL,
    result_type    text   NOT NULL,
    sending_ip     text   NOT NULL,
    receiving_mx   text   NOT NULL,
    receiving_ip   text   NOT NULL,
    count          bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (day, policy_domain, policy_type, policy_strings, mx_hosts, result_type, sending_ip,
                 receiving_mx, receiving_ip)
);
CREATE TABLE tlsrpt_sent (
    day        text   NOT NULL,
    domain     text   NOT NULL,
    report_id  text   NOT NULL,
    claimed_at bigint NOT NULL,
    PRIMARY KEY (day, domain)
);
)sql";

// Version 7: read and expiry receipts (the SQLite schema's version 12).
constexpr const char* kSchemaV7 = R"sql(
ALTER TABLE users ADD COLUMN receipts boolean NOT NULL DEFAULT false;
ALTER TABLE escrow_messages ADD COLUMN receipts boolean NOT NULL DEFAULT false;
ALTER TABLE escrow_messages ADD COLUMN read_receipt_sent boolean NOT NULL DEFAULT false;
)sql";

struct Step {
    int version;
    const char* sql;
};
constexpr Step kSteps[] = {
    {1, kSchemaV1}, {2, kSchemaV2}, {3, kSchemaV3}, {4, kSchemaV4}, {5, kSchemaV5}, {6, kSchemaV6}, {7, kSchemaV7},
};

// Any constant: the lock that serialises migrations of one database across nodes.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7228316914001)";

}  // namespace

int latest_schema_version() { return std::prev(std::end(kSteps))->version; }

Result<int> schema_version(Conn& c) {
    auto exists = c.exec("SELECT to_regclass('schema_version') IS NOT NULL");
    if (!exists) return exists.error();
    if (!exists->boolean(0, 0)) return 0;
    auto v = c.exec("SELECT coalesce(max(version), 0) FROM schema_version");
    if (!v) return v.error();
    return static_cast<int>(v->int64(0, 0));
}

Result<int> migrate(Conn& c) {
    auto tx = Tx::begin(c);
    if (!tx) return tx.error();
    if (auto r = c.exec(kMigrationLock); !r) return r.error();
    if (auto r = c.script("CREATE TABLE IF NOT EXISTS schema_version ("
                          " version integer NOT NULL PRIMARY KEY, applied_at bigint NOT NULL)");
        !r)
        return r.error();
    auto current = schema_version(c);
    if (!current) return current.error();
    if (*current > latest_schema_version()) {
        spdlog::error("store: the PostgreSQL schema is version {}, newer than this build's {}", *current,
                      latest_schema_version());
        return common::Errc::unsupported;
    }
    for (const auto& step : kSteps) {
        if (step.version <= *current) continue;
        if (auto r = c.script(step.sql); !r) {
            spdlog::error("store: PostgreSQL migration to version {} failed", step.version);
            return r.error();
        }
        auto rec = c.exec("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                          Params().int64(step.version).int64(to_ms(Clock::now())));
        if (!rec) return rec.error();
        spdlog::info("store: PostgreSQL schema migrated to version {}", step.version);
    }
    if (auto r = tx->commit(); !r) return r.error();
    return latest_schema_version();
}

}  // namespace mailward::store::postgres
