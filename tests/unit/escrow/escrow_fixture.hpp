// A fixture for escrow tests over a real SQLite store: a temp data dir, the store, a master key
// from bytes, the service, and helpers to seal a message and to request a code (read back from
// the queued code mail).
#pragma once

#include <gtest/gtest.h>

#include "temp_dir.hpp"
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <regex>

#include "common/gcc_wrestrict.hpp"
#include "config/config.hpp"
#include "escrow/service.hpp"

namespace mailward::escrow::test {

using TempDir = mailward::test::TempDir;

inline const TimePoint kT0{std::chrono::milliseconds(1'800'000'000'000)};

struct EscrowFixture : ::testing::Test {
    TempDir dir;
    std::unique_ptr<store::Store> st;
    std::unique_ptr<MasterKeyHolder> keys;
    std::unique_ptr<EscrowService> svc;
    Client client{"192.0.2.7", "UnitTest/1"};
    ServiceSettings settings;

    void SetUp() override {
        config::Config cfg;
        cfg.server.data_dir = dir.path();
        auto s = store::open(cfg);
        ASSERT_TRUE(s) << s.error().message();
        st = std::move(*s);
        auto k = MasterKeyHolder::from_bytes(std::string(32, 'k'));
        ASSERT_TRUE(k);
        keys = std::move(*k);
        settings.portal_url = "https://portal.example.test:8443";
        settings.hostname = "relay.example.test";
    }
    void start() { svc = std::make_unique<EscrowService>(*st, *keys, settings); }

    // Queues a message from alice for bob, awaiting escrow; returns its queue id.
    std::string queue_awaiting(const std::string& body = "From: alice@example.org\r\nSubject: s\r\n\r\nbody\r\n") {
        store::StoredMessage m;
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "Q" + a temporary string
        m.envelope.id = "Q" + std::to_string(++n_);
        MAILWARD_GCC_WRESTRICT_ON
        m.envelope.sender = "alice@example.org";
        m.envelope.sender_mode = "tls-or-escrow";
        store::Recipient r;
        r.address = "bob@example.net";
        r.state = store::RcptState::awaiting_escrow;
        m.envelope.recipients.push_back(r);
        m.body = body;
        std::promise<Result<void>> p;
        auto f = p.get_future();
        st->queue().submit(m, [&p](Result<void> res) { p.set_value(res); });
        EXPECT_TRUE(f.get());
        return m.envelope.id;
    }

    // Queues a message for bob awaiting escrow and seals it; returns (escrow id, link token).
    std::pair<std::string, std::string> seal_one() {
        const std::string qid = queue_awaiting();
        EXPECT_TRUE(svc->seal_pending(kT0));
        std::string id, token;
        for (const auto& rec : *st->escrow().list(false))
            if (rec.queue_id == qid) id = rec.id;
        for (const auto& e : *st->queue().list()) {
            auto b = st->queue().body(e.id);
            std::smatch mt;
            static const std::regex link("/m/([A-Za-z0-9_-]{43})");
            if (b && std::regex_search(*b, mt, link)) {
                token = mt[1].str();
                (void)st->queue().remove(e.id);
            }
        }
        return {id, token};
    }
    // Requests a code; returns (the code as mailed, the address it was queued to).
    std::pair<std::string, std::string> code(std::string_view token, TimePoint now) {
        auto r = svc->request_code(token, client, now);
        EXPECT_TRUE(r && *r == CodeRequest::sent);
        std::string found, to;
        for (const auto& e : *st->queue().list()) {
            auto b = st->queue().body(e.id);
            std::smatch mt;
            static const std::regex re("one-time code is: ([0-9A-Z-]+)");
            if (b && std::regex_search(*b, mt, re)) {
                found = mt[1].str();
                to = st->queue().envelope(e.id)->recipients[0].address;
                (void)st->queue().remove(e.id);
            }
        }
        return {found, to};
    }
    int n_ = 0;
};

}  // namespace mailward::escrow::test
