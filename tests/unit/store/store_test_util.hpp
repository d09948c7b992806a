// Helpers for the store tests: a temp dir per test (mkdtemp, removed afterwards), a config pointing
// data_dir at it, a synchronous submit, a message builder, and raw SQLite access to the file for
// checks the store's interface does not expose (schema version, stored domain).
#pragma once

#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <string>

#include "config/config.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace mailward::store::test {

using TempDir = mailward::test::TempDir;

inline config::Config config_for(const std::filesystem::path& data_dir) {
    config::Config cfg;
    cfg.server.data_dir = data_dir;
    return cfg;
}

// Opens the SQLite store at dir/mailward.db; a failure fails the test (nullptr).
inline std::unique_ptr<sqlite::SqliteStore> open_sqlite(const std::filesystem::path& dir, sqlite::Options opts = {}) {
    auto s = sqlite::SqliteStore::open(dir / "mailward.db", std::move(opts));
    if (!s) ADD_FAILURE() << "open: " << s.error().message();
    return s ? std::move(*s) : nullptr;
}

inline Result<void> submit_sync(QueueStore& q, StoredMessage m) {
    std::promise<Result<void>> done;
    auto f = done.get_future();
    q.submit(std::move(m), [&done](Result<void> r) { done.set_value(r); });
    return f.get();
}

inline TimePoint ms(std::int64_t v) { return TimePoint(std::chrono::milliseconds(v)); }

inline StoredMessage simple_message(std::string id, std::string body = "Subject: x\r\n\r\nhi\r\n",
                                    TimePoint received = ms(1'700'000'000'000)) {
    StoredMessage m;
    m.envelope.id = std::move(id);
    m.envelope.sender = "alice@example.test";
    m.envelope.received_at = received;
    Recipient r;
    r.address = "bob@example.org";
    m.envelope.recipients.push_back(r);
    m.body = std::move(body);
    m.envelope.size = m.body.size();
    return m;
}

// Every envelope field set, non-ASCII addresses, a recipient without a domain, a binary body.
inline StoredMessage full_message() {
    StoredMessage m;
    auto& e = m.envelope;
    e.id = "01hq3zk7x9abcdefgh";
    e.sender = "sénder@exämple.test";
    e.body_type = BodyType::binary_mime;
    e.smtputf8 = true;
    e.requiretls = true;
    e.ret = DsnRet::hdrs;
    e.envid = "env+2Did-42";
    e.auth_user = "alice@example.test";
    e.client_address = "2001:db8::7";
    e.client_helo = "client.example.test";
    e.sender_mode = "tls-only";
    e.received_at = ms(1'712'345'678'901);

    Recipient a;
    a.address = "bob@Example.ORG";
    a.orcpt = "rfc822;bob@example.org";
    a.notify = notify_success | notify_failure | notify_delay;
    a.state = RcptState::queued;
    a.attempts = 3;
    a.next_attempt = ms(1'712'345'999'000);
    a.last_error = "451 4.7.0 try again later";
    Recipient b;
    b.address = "用户@例子.测试";
    b.orcpt = "utf-8;用户@例子.测试";
    b.notify = notify_never;
    b.state = RcptState::awaiting_escrow;
    b.next_attempt = ms(1'712'346'000'000);
    Recipient c;
    c.address = "Postmaster";  // RFC 5321 4.5.1: no domain
    c.state = RcptState::delivered;
    c.attempts = 1;
    e.recipients = {a, b, c};

    m.body = "Received: from x\r\nSubject: bin\r\n\r\n";
    m.body += std::string_view("\0\0\x01\xff\xfe\x80 NUL inside\0\r\n.\r\n", 23);
    for (int i = 0; i < 256; ++i) m.body.push_back(static_cast<char>(i));
    e.size = m.body.size();
    return m;
}

// Raw access to the database file, independent of the store's code.
class RawDb {
  public:
    explicit RawDb(const std::filesystem::path& file) {
        if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("sqlite3_open");
        sqlite3_busy_timeout(db_, 10000);
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    void exec(const std::string& sql) {
        char* err = nullptr;
        int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
        std::string msg = err ? err : "";
        sqlite3_free(err);
        if (rc != SQLITE_OK) throw std::runtime_error("sqlite: " + msg);
    }
    // First column of the first row as text ("" when there is no row).
    std::string text(const std::string& sql) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
            throw std::runtime_error(sqlite3_errmsg(db_));
        std::string out;
        if (sqlite3_step(st) == SQLITE_ROW) {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
            if (p) out.assign(p, static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
        }
        sqlite3_finalize(st);
        return out;
    }
    long long integer(const std::string& sql) { return std::stoll(text(sql)); }

  private:
    sqlite3* db_ = nullptr;
};

}  // namespace mailward::store::test
