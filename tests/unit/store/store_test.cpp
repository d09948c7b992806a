// Store behaviour through the public interface (store::open and the Queue/User stores): data_dir
// creation, a full envelope and a binary body surviving close and reopen, queue listing and admin
// actions, user accounts. Each test has its own temp dir.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.hpp"
#include "store_test_util.hpp"

namespace mailward::store {
namespace {

using test::config_for;
using test::ms;
using test::RawDb;
using test::simple_message;
using test::submit_sync;
using test::TempDir;
using namespace std::literals;

std::unique_ptr<Store> must_open(const std::filesystem::path& dir) {
    auto s = open(config_for(dir));
    if (!s) ADD_FAILURE() << "open: " << s.error().message();
    return s ? std::move(*s) : nullptr;
}

unsigned mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

TEST(StoreOpen, CreatesPrivateDataDirAndDatabase) {
    TempDir tmp;
    auto dir = tmp.path() / "var" / "lib" / "mailward";
    auto s = must_open(dir);
    ASSERT_TRUE(s);
    EXPECT_EQ(mode_of(tmp.path() / "var"), 0700u);
    EXPECT_EQ(mode_of(dir), 0700u);
    EXPECT_EQ(mode_of(dir / "mailward.db"), 0600u);
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("m1")));
    EXPECT_EQ(mode_of(dir / "mailward.db-wal"), 0600u);  // WAL mode, same mode as the db
}

TEST(StoreOpen, RelativeDataDirIsRelativeToCwd) {
    TempDir tmp;
    auto old = std::filesystem::current_path();
    std::filesystem::current_path(tmp.path());
    auto s = open(config_for("rel/data"));
    std::filesystem::current_path(old);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_TRUE(std::filesystem::exists(tmp.path() / "rel" / "data" / "mailward.db"));
}

TEST(StoreOpen, BackendSelection) {
    TempDir tmp;
    auto cfg = config_for(tmp.path());
    cfg.store.backend = "postgres";
    auto pg = open(cfg);
    ASSERT_FALSE(pg);
    EXPECT_EQ(pg.error(), common::Errc::unsupported);

    cfg.store.backend = "oracle";
    auto bad = open(cfg);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error(), common::Errc::invalid_argument);

    auto cfg2 = config_for(tmp.path() / "file");
    { std::ofstream(tmp.path() / "file") << "x"; }
    auto notdir = open(cfg2);
    EXPECT_FALSE(notdir);
}

TEST(RcptStateNames, MatchTheStoredValues) {
    EXPECT_EQ(to_string(RcptState::queued), "queued");
    EXPECT_EQ(to_string(RcptState::delivered), "delivered");
    EXPECT_EQ(to_string(RcptState::failed), "failed");
    EXPECT_EQ(to_string(RcptState::awaiting_escrow), "awaiting_escrow");
    EXPECT_EQ(to_string(RcptState::escrowed), "escrowed");
    EXPECT_EQ(to_string(RcptState::deleted), "deleted");
}

StoredMessage full_message() {
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
    m.body += "\0\0\x01\xff\xfe\x80 NUL inside\0\r\n.\r\n"sv;
    for (int i = 0; i < 256; ++i) m.body.push_back(static_cast<char>(i));
    e.size = m.body.size();
    return m;
}

TEST(QueueStore, FullEnvelopeAndBinaryBodySurviveReopen) {
    TempDir tmp;
    const auto original = full_message();
    {
        auto s = must_open(tmp.path());
        ASSERT_TRUE(s);
        ASSERT_TRUE(submit_sync(s->queue(), original));
        s->close();
    }
    auto s = must_open(tmp.path());
    ASSERT_TRUE(s);
    auto e = s->queue().envelope(original.envelope.id);
    ASSERT_TRUE(e) << e.error().message();
    const auto& o = original.envelope;
    EXPECT_EQ(e->id, o.id);
    EXPECT_EQ(e->sender, o.sender);
    EXPECT_EQ(e->body_type, o.body_type);
    EXPECT_EQ(e->smtputf8, o.smtputf8);
    EXPECT_EQ(e->requiretls, o.requiretls);
    EXPECT_EQ(e->ret, o.ret);
    EXPECT_EQ(e->envid, o.envid);
    EXPECT_EQ(e->auth_user, o.auth_user);
    EXPECT_EQ(e->client_address, o.client_address);
    EXPECT_EQ(e->client_helo, o.client_helo);
    EXPECT_EQ(e->sender_mode, o.sender_mode);
    EXPECT_EQ(e->received_at, o.received_at);
    EXPECT_EQ(e->size, original.body.size());
    ASSERT_EQ(e->recipients.size(), o.recipients.size());
    for (std::size_t i = 0; i < o.recipients.size(); ++i) {
        SCOPED_TRACE(i);
        const auto& got = e->recipients[i];
        const auto& want = o.recipients[i];
        EXPECT_EQ(got.address, want.address);
        EXPECT_EQ(got.orcpt, want.orcpt);
        EXPECT_EQ(got.notify, want.notify);
        EXPECT_EQ(got.state, want.state);
        EXPECT_EQ(got.attempts, want.attempts);
        EXPECT_EQ(got.next_attempt, want.next_attempt);
        EXPECT_EQ(got.last_error, want.last_error);
    }
    auto body = s->queue().body(o.id);
    ASSERT_TRUE(body);
    EXPECT_EQ(body->size(), original.body.size());
    EXPECT_TRUE(*body == original.body);

    RawDb raw(tmp.path() / "mailward.db");
    EXPECT_EQ(raw.text("SELECT group_concat(domain, '|') FROM (SELECT domain FROM recipients ORDER BY idx)"),
              "example.org|例子.测试|");
    EXPECT_EQ(raw.text("SELECT typeof(data) FROM bodies"), "blob");
}

TEST(QueueStore, EmptyBodyIsStoredAsEmptyBlob) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    ASSERT_TRUE(submit_sync(s->queue(), simple_message("empty", "")));
    auto body = s->queue().body("empty");
    ASSERT_TRUE(body) << body.error().message();
    EXPECT_EQ(*body, "");
}

TEST(QueueStore, SizeIsTheStoredBodyLength) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto m = simple_message("sz", "12345");
    m.envelope.size = 999;
    ASSERT_TRUE(submit_sync(s->queue(), m));
    EXPECT_EQ(s->queue().envelope("sz")->size, 5u);
}

TEST(QueueStore, RejectsMessagesWithoutIdOrRecipients) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto no_rcpt = simple_message("x");
    no_rcpt.envelope.recipients.clear();
    auto r1 = submit_sync(s->queue(), no_rcpt);
    ASSERT_FALSE(r1);
    EXPECT_EQ(r1.error(), common::Errc::invalid_argument);
    auto r2 = submit_sync(s->queue(), simple_message(""));
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error(), common::Errc::invalid_argument);
    EXPECT_EQ(*s->queue().count(), 0u);
}

TEST(QueueStore, UnknownIdsAreNotFound) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto& q = s->queue();
    EXPECT_EQ(q.envelope("nope").error(), common::Errc::not_found);
    EXPECT_EQ(q.body("nope").error(), common::Errc::not_found);
    EXPECT_EQ(q.remove("nope").error(), common::Errc::not_found);
    EXPECT_EQ(q.retry_now("nope").error(), common::Errc::not_found);
}

TEST(QueueStore, ListCountRemoveRetryNow) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto& q = s->queue();
    const auto t0 = ms(1'700'000'000'000);
    const auto future = ms(4'000'000'000'000);

    // Submitted out of order: list() orders by received_at.
    auto c = simple_message("c", "ccc", t0 + std::chrono::seconds(2));
    auto a = simple_message("a", "a", t0);
    a.envelope.recipients[0].next_attempt = future;
    Recipient a2;
    a2.address = "x@escrow.test";
    a2.state = RcptState::awaiting_escrow;
    a2.next_attempt = future + std::chrono::hours(1);
    Recipient a3;
    a3.address = "done@example.org";
    a3.state = RcptState::delivered;
    a3.next_attempt = ms(5);  // not pending: must not count as earliest
    a.envelope.recipients.push_back(a2);
    a.envelope.recipients.push_back(a3);
    auto b = simple_message("b", "bb", t0 + std::chrono::seconds(1));
    b.envelope.recipients[0].state = RcptState::delivered;  // finished: not listed
    for (auto* m : {&c, &a, &b}) ASSERT_TRUE(submit_sync(q, *m));

    auto l = q.list();
    ASSERT_TRUE(l);
    ASSERT_EQ(l->size(), 2u);
    EXPECT_EQ((*l)[0].id, "a");
    EXPECT_EQ((*l)[0].sender, "alice@example.test");
    EXPECT_EQ((*l)[0].received_at, t0);
    EXPECT_EQ((*l)[0].size, 1u);
    EXPECT_EQ((*l)[0].recipients, 3u);
    EXPECT_EQ((*l)[0].pending, 2u);
    EXPECT_EQ((*l)[0].next_attempt, future);
    EXPECT_EQ((*l)[1].id, "c");
    EXPECT_EQ((*l)[1].pending, 1u);
    EXPECT_EQ(*q.count(), 2u);

    // retry_now: queued recipients become due now; awaiting_escrow and delivered are untouched.
    const auto before = Clock::now() - std::chrono::milliseconds(1);
    ASSERT_TRUE(q.retry_now("a"));
    const auto after = Clock::now() + std::chrono::milliseconds(1);
    auto e = q.envelope("a");
    ASSERT_TRUE(e);
    EXPECT_GE(e->recipients[0].next_attempt, before);
    EXPECT_LE(e->recipients[0].next_attempt, after);
    EXPECT_EQ(e->recipients[1].next_attempt, future + std::chrono::hours(1));
    EXPECT_EQ(e->recipients[2].next_attempt, ms(5));

    // remove: pending recipients deleted, finished ones kept, body gone, envelope kept.
    ASSERT_TRUE(q.remove("a"));
    e = q.envelope("a");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->recipients[0].state, RcptState::deleted);
    EXPECT_EQ(e->recipients[1].state, RcptState::deleted);
    EXPECT_EQ(e->recipients[2].state, RcptState::delivered);
    EXPECT_EQ(q.body("a").error(), common::Errc::not_found);
    l = q.list();
    ASSERT_TRUE(l);
    ASSERT_EQ(l->size(), 1u);
    EXPECT_EQ((*l)[0].id, "c");
    EXPECT_EQ(*q.count(), 1u);
    EXPECT_TRUE(q.remove("a"));  // removing again is harmless
    EXPECT_TRUE(q.body("b"));    // others untouched
    EXPECT_TRUE(q.body("c"));
}

TEST(UserStore, Crud) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto& users = s->users();
    User u{"alice@example.test", "$argon2id$v=19$m=65536,t=2,p=1$abc$def", "", ms(1'700'000'000'000)};
    ASSERT_TRUE(users.add(u));
    auto dup = users.add(User{"alice@example.test", "other", "tls-only", {}});
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error(), common::Errc::already_exists);
    ASSERT_TRUE(users.add(User{"bob@example.test", "h2", "escrow-always", {}}));

    auto got = users.get("alice@example.test");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->password_hash, u.password_hash);
    EXPECT_EQ(got->mode, "");
    EXPECT_EQ(got->created, u.created);
    auto bob = users.get("bob@example.test");
    ASSERT_TRUE(bob);
    EXPECT_GT(bob->created, ms(1'700'000'000'000));  // defaulted to now

    ASSERT_TRUE(users.update(User{"alice@example.test", "newhash", "tls-only", {}}));
    got = users.get("alice@example.test");
    EXPECT_EQ(got->password_hash, "newhash");
    EXPECT_EQ(got->mode, "tls-only");
    EXPECT_EQ(got->created, u.created);

    auto all = users.list();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].name, "alice@example.test");
    EXPECT_EQ((*all)[1].name, "bob@example.test");

    EXPECT_EQ(users.update(User{"carol@example.test", "h", "", {}}).error(), common::Errc::not_found);
    EXPECT_EQ(users.get("carol@example.test").error(), common::Errc::not_found);
    EXPECT_EQ(users.remove("carol@example.test").error(), common::Errc::not_found);
    ASSERT_TRUE(users.remove("alice@example.test"));
    EXPECT_EQ(users.get("alice@example.test").error(), common::Errc::not_found);
    EXPECT_EQ(users.list()->size(), 1u);
}

TEST(UserStore, ConcurrentAddsOfOneNameExactlyOneWins) {
    TempDir tmp;
    auto s = must_open(tmp.path());
    auto s2 = sqlite::SqliteStore::open(tmp.path() / "mailward.db");  // a second process, in effect
    ASSERT_TRUE(s2);
    std::atomic<int> ok{0}, exists{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i] {
            auto& users = (i % 2 ? s->users() : (*s2)->users());
            auto r = users.add(User{"same", "h" + std::to_string(i), "", {}});
            if (r) ++ok;
            else if (r.error() == common::Errc::already_exists) ++exists;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(exists.load(), 7);
}

}  // namespace
}  // namespace mailward::store
