// The audit anchor (issue 11, item 8): check_anchor over a table of tampering cases, and end to
// end over a real store: every committed audit row is anchored in the file with its seq and hash;
// deleting a message's last rows (trigger dropped, as an attacker with the database would) keeps
// the chain intact but breaks the anchor's verdict.
#include "escrow/anchor.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "escrow/audit.hpp"
#include "escrow_fixture.hpp"

using namespace mailward;
using namespace mailward::escrow;
using namespace mailward::escrow::test;
using namespace std::chrono_literals;

namespace {

std::vector<store::EscrowAuditEntry> rows_1_to_4() {
    std::vector<store::EscrowAuditEntry> rows;
    for (int i = 1; i <= 4; ++i) {
        store::EscrowAuditEntry e;
        e.seq = i * 10;
        e.hash = std::string(8, static_cast<char>('a' + i));
        rows.push_back(e);
    }
    return rows;
}

TEST(CheckAnchor, FindsRowsCutOffOrChanged) {
    struct Case {
        const char* what;
        std::vector<AnchorEntry> anchored;
        bool matches;
        const char* problem_has;
    } cases[] = {
        {"nothing anchored (older messages)", {}, true, ""},
        {"all anchored", {{10, "bbbbbbbb"}, {20, "cccccccc"}, {30, "dddddddd"}, {40, "eeeeeeee"}}, true, ""},
        {"the database ahead of the anchor (crash before the anchor's write)", {{10, "bbbbbbbb"}}, true, ""},
        {"anchored in another order", {{20, "cccccccc"}, {10, "bbbbbbbb"}}, true, ""},
        {"last rows deleted",
         {{10, "bbbbbbbb"}, {50, "ffffffff"}, {60, "gggggggg"}},
         false,
         "rows at the end were removed"},
        {"a middle row deleted", {{25, "zzzzzzzz"}}, false, "seq 25 recorded in the anchor is missing"},
        {"a row changed", {{30, "00000000"}}, false, "differs from the anchor"},
    };
    for (const auto& c : cases) {
        auto v = check_anchor(rows_1_to_4(), c.anchored);
        EXPECT_EQ(v.matches, c.matches) << c.what;
        EXPECT_NE(v.problem.find(c.problem_has), std::string::npos) << c.what << ": " << v.problem;
        EXPECT_EQ(v.anchored, c.anchored.size());
    }
}

TEST(ReadAnchor, SkipsMalformedLinesAndOtherMessages) {
    TempDir dir;
    auto file = dir.path() / kAuditAnchorFile;
    auto none = read_anchor(file, "00aa");
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->file_exists);
    {
        std::ofstream out(file);
        out << "00aa 1 abcd\n00bb 2 ef01\nnonsense\n00aa x abcd\n00aa 3 ABCD\n00aa 4 0123\n00aa 5 12";  // torn end
    }
    auto r = read_anchor(file, "00aa");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->file_exists);
    ASSERT_EQ(r->entries.size(), 3u);
    EXPECT_EQ(r->entries[0].seq, 1);
    EXPECT_EQ(r->entries[1].seq, 4);
    EXPECT_EQ(r->entries[2].seq, 5) << "a complete-looking last line counts";
    EXPECT_EQ(r->malformed, 3u);
}

struct AnchorStoreTest : EscrowFixture {};

TEST_F(AnchorStoreTest, DeletingTheLastRowsIsSeenThroughTheAnchor) {
    const auto file = dir.path() / kAuditAnchorFile;
    ASSERT_TRUE(attach_audit_anchor(st->escrow(), file));
    start();
    auto [id, token] = seal_one();
    ASSERT_FALSE(id.empty());
    (void)code(token, kT0 + 1min);
    ASSERT_TRUE(svc->open_link(token, client, kT0 + 2min));
    ASSERT_TRUE(svc->revoke(id, "admin test", kT0 + 3min));

    auto rows = st->escrow().audit(id);
    ASSERT_TRUE(rows);
    ASSERT_GE(rows->size(), 5u);  // sealed, notice_sent, code_sent, link_opened, revoked
    auto anchored = read_anchor(file, id);
    ASSERT_TRUE(anchored);
    ASSERT_EQ(anchored->entries.size(), rows->size()) << "every committed row is anchored";
    for (std::size_t i = 0; i < rows->size(); ++i) {
        EXPECT_EQ(anchored->entries[i].seq, (*rows)[i].seq);
        EXPECT_EQ(anchored->entries[i].hash, (*rows)[i].hash);
    }
    EXPECT_TRUE(check_anchor(*rows, anchored->entries).matches);

    // The attacker's edit: drop the trigger, delete the last two rows.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() / "mailward.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    const std::string sql = "DROP TRIGGER escrow_audit_no_delete; DELETE FROM escrow_audit WHERE seq >= " +
                            std::to_string((*rows)[rows->size() - 2].seq) + ";";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);

    auto cut = st->escrow().audit(id);
    ASSERT_TRUE(cut);
    ASSERT_EQ(cut->size(), rows->size() - 2);
    EXPECT_TRUE(verify_audit(*cut, *keys).intact) << "the chain alone cannot see a cut end";
    auto v = check_anchor(*cut, anchored->entries);
    EXPECT_FALSE(v.matches);
    EXPECT_NE(v.problem.find("rows at the end were removed"), std::string::npos) << v.problem;
}

}  // namespace
