// The escrow audit chain: a chain built with audit_chain() verifies; any altered field, removed,
// inserted or reordered row, or another master key is found, and the first bad row is named.
#include "escrow/audit.hpp"

#include <gtest/gtest.h>

#include <functional>

using namespace mailward;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<escrow::MasterKeyHolder> holder(char fill) {
    auto h = escrow::MasterKeyHolder::from_bytes(std::string(escrow::kMasterKeyBytes, fill));
    if (!h) ADD_FAILURE() << h.error().message();
    return h ? std::move(*h) : nullptr;
}

// Builds a chain as the store does: prev = the last row's hash.
std::vector<store::EscrowAuditEntry> chain_of(const escrow::KeyHolder& keys, std::vector<std::string> events) {
    auto chain = escrow::audit_chain(keys);
    std::vector<store::EscrowAuditEntry> rows;
    auto t = store::EscrowTime(std::chrono::milliseconds(1'800'000'000'000));
    for (std::size_t i = 0; i < events.size(); ++i) {
        store::EscrowAuditEntry e;
        e.seq = static_cast<std::int64_t>(i + 1);
        e.escrow_id = "0123456789abcdef";
        e.at = t + std::chrono::minutes(i);
        e.event = events[i];
        e.address = i % 2 ? "127.0.0.1" : "";
        e.user_agent = i % 2 ? "Mozilla/5.0" : "";
        e.detail = "row " + std::to_string(i);
        e.prev_hash = rows.empty() ? "" : rows.back().hash;
        e.hash = chain(e.prev_hash, e);
        rows.push_back(e);
    }
    return rows;
}

TEST(EscrowAudit, IntactChainVerifies) {
    auto k = holder('k');
    auto rows = chain_of(*k, {"sealed", "link_opened", "code_sent", "code_accepted", "viewed"});
    auto v = escrow::verify_audit(rows, *k);
    EXPECT_TRUE(v.intact) << v.problem;
    EXPECT_EQ(v.rows, 5u);
    EXPECT_TRUE(escrow::verify_audit({}, *k).intact);
}

TEST(EscrowAudit, EveryTamperingIsFound) {
    auto k = holder('k');
    const auto good = chain_of(*k, {"sealed", "link_opened", "code_sent", "code_accepted", "viewed"});
    using Rows = std::vector<store::EscrowAuditEntry>;
    struct Case {
        const char* name;
        std::function<void(Rows&)> tamper;
        std::size_t first_bad;
    } cases[] = {
        {"detail altered", [](Rows& r) { r[2].detail = "row x"; }, 3},
        {"event altered", [](Rows& r) { r[0].event = "viewed"; }, 1},
        {"address altered", [](Rows& r) { r[1].address = "10.0.0.1"; }, 2},
        {"user agent altered", [](Rows& r) { r[3].user_agent = "curl"; }, 4},
        {"time altered", [](Rows& r) { r[4].at += 1ms; }, 5},
        {"escrow id altered", [](Rows& r) { r[0].escrow_id = "fedcba9876543210"; }, 1},
        {"row removed", [](Rows& r) { r.erase(r.begin() + 1); }, 2},
        {"first row removed", [](Rows& r) { r.erase(r.begin()); }, 1},
        {"rows swapped", [](Rows& r) { std::swap(r[2], r[3]); }, 3},
        {"row inserted", [](Rows& r) { r.insert(r.begin() + 2, r[1]); }, 3},
        {"hash recomputed without the key",
         [](Rows& r) {
             r[2].detail = "forged";
             r[2].hash = std::string(64, '0');
         },
         3},
    };
    for (const auto& c : cases) {
        Rows rows = good;
        c.tamper(rows);
        auto v = escrow::verify_audit(rows, *k);
        EXPECT_FALSE(v.intact) << c.name;
        EXPECT_EQ(v.first_bad, c.first_bad) << c.name;
        EXPECT_NE(v.problem.find("row " + std::to_string(c.first_bad)), std::string::npos)
            << c.name << ": " << v.problem;
    }
    auto other = holder('o');
    EXPECT_FALSE(escrow::verify_audit(good, *other).intact) << "another master key cannot vouch for the chain";
}

}  // namespace
