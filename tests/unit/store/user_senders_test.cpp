// Users keep their sender list and allow_tls_optional across add, update, get and list (schema 7).
#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.hpp"
#include "store_test_util.hpp"

using namespace mailward;
using namespace mailward::store;
using store::test::TempDir;

TEST(UserSenders, RoundTrip) {
    TempDir tmp;
    auto s = store::test::open_sqlite(tmp.path());
    ASSERT_TRUE(s);
    auto& users = s->users();
    User a{"alice@example.test", "h", "", {}};
    a.senders = {"alice@example.test", "@corp.example"};
    ASSERT_TRUE(users.add(a));
    ASSERT_TRUE(users.add(User{"bob", "h", "", {}}));

    auto got = users.get("alice@example.test");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->senders, a.senders);
    EXPECT_FALSE(got->allow_tls_optional);
    auto bob = users.get("bob");
    ASSERT_TRUE(bob);
    EXPECT_TRUE(bob->senders.empty());

    got->senders = {"@other.example"};
    got->allow_tls_optional = true;
    ASSERT_TRUE(users.update(*got));
    auto list = users.list();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].name, "alice@example.test");
    EXPECT_EQ((*list)[0].senders, std::vector<std::string>{"@other.example"});
    EXPECT_TRUE((*list)[0].allow_tls_optional);
    EXPECT_FALSE((*list)[1].allow_tls_optional);

    got->senders.clear();
    ASSERT_TRUE(users.update(*got));
    EXPECT_TRUE(users.get("alice@example.test")->senders.empty());
}
