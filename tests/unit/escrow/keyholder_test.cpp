// The key holder (escrow/keyholder.hpp): what KeyHolderService answers, table-driven over the
// unwrap checks (the session and the message as stored: live session of this message, active and
// unexpired message, the message's own wrapped key); mac purposes; and the forked process with
// RemoteKeyHolder over the socketpair: same answers as the in-process holder, plain unwrap refused,
// a bad key file reported as one line, and a dead key holder ending the client with status 1.
#include "escrow/keyholder.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <map>

#include "escrow/keyholder_wire.hpp"
#include "temp_dir.hpp"

using namespace mailward;
using namespace mailward::escrow;
using Clock = std::chrono::system_clock;

namespace {

const Clock::time_point kNow{std::chrono::milliseconds(1'800'000'000'000)};

class FakeReader final : public store::EscrowReader {
  public:
    std::map<std::string, store::EscrowRecord> records;
    std::map<std::string, store::EscrowSession> sessions;
    Result<store::EscrowRecord> get(const std::string& id) override {
        auto it = records.find(id);
        if (it == records.end()) return common::Errc::not_found;
        return it->second;
    }
    Result<store::EscrowSession> session(const std::string& h) override {
        auto it = sessions.find(h);
        if (it == sessions.end()) return common::Errc::not_found;
        return it->second;
    }
};

std::unique_ptr<MasterKeyHolder> holder() {
    auto h = MasterKeyHolder::from_bytes(std::string(kMasterKeyBytes, 'm'));
    EXPECT_TRUE(h);
    return std::move(*h);
}

// Two messages, A (with a live session "cookie-a") and B (session "cookie-b").
struct World {
    std::unique_ptr<MasterKeyHolder> keys = holder();
    FakeReader reader;
    std::string key_a, key_b;  // wrapped data keys
    World() {
        for (const char* id : {"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}) {
            store::EscrowRecord r;
            r.id = id;
            r.state = store::EscrowState::active;
            r.created = kNow - std::chrono::hours(1);
            r.expires = kNow + std::chrono::hours(24);
            r.wrapped_key = *keys->wrap(std::string(32, id[0]), std::string("aad-") + id);
            reader.records[id] = r;
            store::EscrowSession s;
            s.escrow_id = id;
            s.created = kNow - std::chrono::minutes(30);
            s.last_seen = kNow - std::chrono::minutes(1);
            s.id_hash = keys->mac_hex("session", std::string("cookie-") + id[0]);
            reader.sessions[s.id_hash] = s;
        }
        key_a = reader.records["aaaaaaaaaaaaaaaa"].wrapped_key;
        key_b = reader.records["bbbbbbbbbbbbbbbb"].wrapped_key;
    }
    ReaderFactory factory() {
        return [this]() -> Result<std::unique_ptr<store::EscrowReader>> {
            return std::unique_ptr<store::EscrowReader>(new FakeReader(reader));
        };
    }
};

wire::Response ask(KeyHolderService& svc, wire::Op op, std::vector<std::string> fields, Clock::time_point now = kNow) {
    auto req = wire::encode_request({op, std::move(fields)});
    EXPECT_TRUE(req);
    auto resp = wire::parse_response(svc.handle(*req, now));
    EXPECT_TRUE(resp);
    return *resp;
}

constexpr auto kRefused = static_cast<std::uint8_t>(EscrowErrc::refused);

}  // namespace

TEST(KeyHolderService, UnwrapOnlyForALiveSessionOfThatMessage) {
    struct Case {
        const char* name;
        std::function<void(World&)> change;
        std::string id = "aaaaaaaaaaaaaaaa";
        std::string cookie = "cookie-a";
        bool use_key_b = false;
        Clock::time_point now = kNow;
        std::uint8_t want = 0;
    };
    auto a = [](World& w) -> store::EscrowRecord& { return w.reader.records["aaaaaaaaaaaaaaaa"]; };
    auto sa = [](World& w) -> store::EscrowSession& {
        return w.reader.sessions[w.keys->mac_hex("session", "cookie-a")];
    };
    const std::uint8_t ok = 0;
    const Case cases[] = {
        {"live session of this message", {}, "aaaaaaaaaaaaaaaa", "cookie-a", false, kNow, ok},
        {"unknown cookie", {}, "aaaaaaaaaaaaaaaa", "cookie-x", false, kNow, kRefused},
        {"empty cookie", {}, "aaaaaaaaaaaaaaaa", "", false, kNow, kRefused},
        {"session of another message", {}, "aaaaaaaaaaaaaaaa", "cookie-b", false, kNow, kRefused},
        {"the other message's key under this session", {}, "aaaaaaaaaaaaaaaa", "cookie-a", true, kNow, kRefused},
        {"other message named, its key, this session", {}, "bbbbbbbbbbbbbbbb", "cookie-a", true, kNow, kRefused},
        {"ended session", [&](World& w) { sa(w).ended_at = kNow - std::chrono::seconds(1); }},
        {"idle session", {}, "aaaaaaaaaaaaaaaa", "cookie-a", false, kNow + std::chrono::minutes(15), kRefused},
        {"session past its maximum", [&](World& w) { sa(w).created = kNow - std::chrono::hours(9); }},
        {"revoked message", [&](World& w) { a(w).state = store::EscrowState::revoked; }},
        {"expired message", [&](World& w) { a(w).expires = kNow; }},
        {"shredded key", [&](World& w) { a(w).wrapped_key.clear(); }},
        {"unknown message", [&](World& w) { w.reader.records.erase("aaaaaaaaaaaaaaaa"); }},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        World w;
        const std::string key = c.use_key_b ? w.key_b : w.key_a;
        const std::string aad = c.use_key_b ? "aad-bbbbbbbbbbbbbbbb" : "aad-aaaaaaaaaaaaaaaa";
        if (c.change) c.change(w);
        KeyHolderService svc(*w.keys, w.factory(), SessionLimits{});
        const std::uint8_t want = c.change ? kRefused : c.want;
        auto r = ask(svc, wire::Op::unwrap, {c.id, c.cookie, key, aad}, c.now);
        EXPECT_EQ(r.status, want) << r.payload;
        // The key on success; nothing of it in a refusal.
        EXPECT_EQ(r.payload, want == ok ? std::string(32, 'a') : std::string());
    }
}

TEST(KeyHolderService, KeyIdWrapMacAndBadRequests) {
    World w;
    KeyHolderService svc(*w.keys, w.factory(), SessionLimits{});
    auto id = ask(svc, wire::Op::key_id, {});
    ASSERT_EQ(id.status, 0);
    EXPECT_EQ(id.payload, std::string(reinterpret_cast<const char*>(w.keys->key_id().data()), kKeyIdBytes));
    auto wrapped = ask(svc, wire::Op::wrap, {std::string(32, 'd'), "ctx"});
    ASSERT_EQ(wrapped.status, 0);
    auto back = w.keys->unwrap(wrapped.payload, "ctx");  // wrapped under the same master key
    ASSERT_TRUE(back);
    EXPECT_EQ(back->view(), std::string(32, 'd'));
    for (const char* purpose : {"token", "otp", "session", "csrf-pre", "audit"}) {
        auto m = ask(svc, wire::Op::mac, {purpose, "data"});
        EXPECT_EQ(m.status, 0) << purpose;
        EXPECT_EQ(m.payload, w.keys->mac_hex(purpose, "data")) << purpose;
    }
    EXPECT_EQ(ask(svc, wire::Op::mac, {"anything", "data"}).status, kRefused);
    EXPECT_EQ(ask(svc, wire::Op::wrap, {"", "ctx"}).status, static_cast<std::uint8_t>(EscrowErrc::bad_parameters));
    for (std::string bad : {std::string(), std::string("\x01\x09\x00", 3), std::string("\x01\x02\x02\x00\x05", 5)}) {
        auto r = wire::parse_response(svc.handle(bad, kNow));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, static_cast<std::uint8_t>(EscrowErrc::malformed));
    }
}

class KeyHolderProcessTest : public ::testing::Test {
  protected:
    mailward::test::TempDir dir;
    World w;
    std::filesystem::path key_file() const { return dir.path() / "master.key"; }
    void write_key(mode_t mode) {
        std::ofstream(key_file(), std::ios::binary) << std::string(kMasterKeyBytes, 'm');
        ASSERT_EQ(::chmod(key_file().c_str(), mode), 0);
    }
    KeyHolderProcess spawn() {
        KeyHolderSettings s;
        s.master_key_file = key_file();
        s.open_reader = w.factory();
        auto p = spawn_key_holder(s);
        EXPECT_TRUE(p) << p.error().message();
        return *p;
    }
    static int reap(pid_t pid) {
        int status = 0;
        EXPECT_EQ(::waitpid(pid, &status, 0), pid);
        return status;
    }
};

TEST_F(KeyHolderProcessTest, RemoteAnswersAsTheKeyDoes) {
    write_key(0600);
    auto p = spawn();
    auto remote = RemoteKeyHolder::connect(p.fd, std::chrono::seconds(20));
    ASSERT_TRUE(remote) << remote.error().message;
    const KeyHolder& r = **remote;
    EXPECT_EQ(r.key_id(), w.keys->key_id());
    EXPECT_EQ(r.mac_hex("token", "t"), w.keys->mac_hex("token", "t"));
    auto wrapped = r.wrap(std::string(32, 'z'), "ctx");
    ASSERT_TRUE(wrapped);
    EXPECT_EQ(w.keys->unwrap(*wrapped, "ctx")->view(), std::string(32, 'z'));
    // Without a session the key holder opens nothing, not even a key it just wrapped.
    auto plain = r.unwrap(*wrapped, "ctx");
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error(), EscrowErrc::refused);
    auto denied = r.unwrap_for({"aaaaaaaaaaaaaaaa", "cookie-b"}, w.key_a, "aad-aaaaaaaaaaaaaaaa");
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error(), EscrowErrc::refused);
    remote->reset();  // closing the socket ends the key holder
    int st = reap(p.pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(KeyHolderProcessTest, UnwrapsForALiveSession) {
    write_key(0600);
    const auto now = Clock::now();
    auto& rec = w.reader.records["aaaaaaaaaaaaaaaa"];
    rec.expires = now + std::chrono::hours(1);
    for (auto& [h, s] : w.reader.sessions) s.created = s.last_seen = now;
    auto p = spawn();
    auto remote = RemoteKeyHolder::connect(p.fd, std::chrono::seconds(20));
    ASSERT_TRUE(remote) << remote.error().message;
    auto key = (*remote)->unwrap_for({"aaaaaaaaaaaaaaaa", "cookie-a"}, w.key_a, "aad-aaaaaaaaaaaaaaaa");
    ASSERT_TRUE(key) << key.error().message();
    EXPECT_EQ(key->view(), std::string(32, 'a'));
    remote->reset();
    reap(p.pid);
}

TEST_F(KeyHolderProcessTest, ABadKeyFileIsOneLineAndExitStatusOne) {
    write_key(0644);
    auto p = spawn();
    auto remote = RemoteKeyHolder::connect(p.fd, std::chrono::seconds(20));
    ASSERT_FALSE(remote);
    EXPECT_EQ(remote.error().code, EscrowErrc::master_key_bad_mode);
    EXPECT_EQ(remote.error().message, key_file().string() +
                                          ": master key has mode 0644; it must not be readable by group or others "
                                          "(chmod 600)");
    int st = reap(p.pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st;
}

TEST_F(KeyHolderProcessTest, FirstStartCreatesTheKeyFile) {
    auto p = spawn();
    auto remote = RemoteKeyHolder::connect(p.fd, std::chrono::seconds(20));
    ASSERT_TRUE(remote) << remote.error().message;
    struct stat st {};
    ASSERT_EQ(::stat(key_file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto loaded = MasterKeyHolder::load(key_file());
    ASSERT_TRUE(loaded);
    EXPECT_EQ((*loaded)->key_id(), (*remote)->key_id());
    remote->reset();
    reap(p.pid);
}

TEST_F(KeyHolderProcessTest, ADeadKeyHolderEndsTheClient) {
    write_key(0600);
    auto p = spawn();
    auto remote = RemoteKeyHolder::connect(p.fd, std::chrono::seconds(20));
    ASSERT_TRUE(remote) << remote.error().message;
    ::kill(p.pid, SIGKILL);
    reap(p.pid);
    EXPECT_EXIT((void)(*remote)->mac_hex("token", "t"), ::testing::ExitedWithCode(1), "");
}

// serve's children get their own connection (the portal process): each client is answered on its
// own socket; a child closing its end does not end the key holder, serve closing its end does.
TEST_F(KeyHolderProcessTest, ServesAnExtraClientOnItsOwnSocket) {
    write_key(0600);
    KeyHolderSettings s;
    s.master_key_file = key_file();
    s.open_reader = w.factory();
    s.extra_clients = 1;
    auto p = spawn_key_holder(s);
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_EQ(p->extra.size(), 1u);
    auto serve = RemoteKeyHolder::connect(p->fd, std::chrono::seconds(20));
    auto portal = RemoteKeyHolder::connect(p->extra[0], std::chrono::seconds(20));
    ASSERT_TRUE(serve) << serve.error().message;
    ASSERT_TRUE(portal) << portal.error().message;
    EXPECT_EQ((*portal)->key_id(), w.keys->key_id());
    EXPECT_EQ((*portal)->mac_hex("session", "c"), w.keys->mac_hex("session", "c"));
    EXPECT_EQ((*serve)->mac_hex("token", "t"), w.keys->mac_hex("token", "t"));
    portal->reset();  // the portal process is gone: serve's connection still works
    EXPECT_EQ((*serve)->mac_hex("audit", "a"), w.keys->mac_hex("audit", "a"));
    int st = 0;
    EXPECT_EQ(::waitpid(p->pid, &st, WNOHANG), 0) << "still running";
    serve->reset();
    st = reap(p->pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}
