// InflightTable: who fetches, who waits and what they hear, and the memory of keys whose
// response could not be stored (they are fetched alone, for a bounded time and count).
#include "cachecar/server/inflight_table.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cachecar/event/event_loop.h"

namespace cachecar::server {
namespace {

using namespace std::chrono_literals;

class InflightTableTest : public ::testing::Test {
 protected:
  JoinRole join(InflightTable& table, const std::string& key) {
    return table.join(key, loop_, [this](FetchOutcome outcome) { heard_.push_back(outcome); });
  }
  // Fetches `key` as the first request and ends with `outcome`.
  void fetchAndComplete(InflightTable& table, const std::string& key, FetchOutcome outcome) {
    ASSERT_EQ(join(table, key), JoinRole::kFetch) << key;
    table.complete(key, outcome);
  }

  event::EventLoop loop_;
  std::vector<FetchOutcome> heard_;
};

TEST_F(InflightTableTest, TheFirstFetchesTheOthersWaitAndHearTheOutcome) {
  InflightTable table;
  EXPECT_EQ(join(table, "k"), JoinRole::kFetch);
  EXPECT_EQ(join(table, "k"), JoinRole::kWait);
  EXPECT_EQ(join(table, "k"), JoinRole::kWait);
  EXPECT_EQ(join(table, "other"), JoinRole::kFetch);
  EXPECT_EQ(table.inflightCountForTest(), 2u);

  table.complete("k", FetchOutcome::kStored);
  EXPECT_TRUE(heard_.empty()) << "waiters hear it through their loop, not inside complete()";
  loop_.drainPosted();
  EXPECT_EQ(heard_, (std::vector<FetchOutcome>{FetchOutcome::kStored, FetchOutcome::kStored}));
  EXPECT_EQ(join(table, "k"), JoinRole::kFetch);
}

TEST_F(InflightTableTest, AnUncacheableKeyIsFetchedAloneUntilAResponseIsStored) {
  InflightTable table;
  ASSERT_EQ(join(table, "private"), JoinRole::kFetch);
  EXPECT_EQ(join(table, "private"), JoinRole::kWait);
  table.complete("private", FetchOutcome::kUncacheable);
  loop_.drainPosted();
  EXPECT_EQ(heard_, std::vector<FetchOutcome>{FetchOutcome::kUncacheable});

  // Concurrent requests no longer queue behind each other.
  EXPECT_EQ(join(table, "private"), JoinRole::kFetchAlone);
  EXPECT_EQ(join(table, "private"), JoinRole::kFetchAlone);
  EXPECT_EQ(table.inflightCountForTest(), 0u);
  EXPECT_EQ(join(table, "public"), JoinRole::kFetch);

  table.forgetUncacheable("private");
  EXPECT_EQ(join(table, "private"), JoinRole::kFetch);
}

TEST_F(InflightTableTest, OnlyTheAppsAnswerIsRemembered) {
  InflightTable table;
  fetchAndComplete(table, "store-failed", FetchOutcome::kNotStored);
  fetchAndComplete(table, "fetch-failed", FetchOutcome::kFailed);
  EXPECT_EQ(join(table, "store-failed"), JoinRole::kFetch);
  EXPECT_EQ(join(table, "fetch-failed"), JoinRole::kFetch);
}

TEST_F(InflightTableTest, AStoredResponseEndsTheMemory) {
  InflightTable table;
  fetchAndComplete(table, "k", FetchOutcome::kUncacheable);
  ASSERT_EQ(join(table, "k"), JoinRole::kFetchAlone);
  table.complete("k", FetchOutcome::kStored);  // e.g. a background refresh stored it
  EXPECT_EQ(join(table, "k"), JoinRole::kFetch);
}

TEST_F(InflightTableTest, TheMemoryExpires) {
  InflightTable::Clock::time_point now{};
  InflightTable table(2min, InflightTable::kDefaultMaxUncacheableKeys, [&now] { return now; });
  fetchAndComplete(table, "early", FetchOutcome::kUncacheable);
  now += 1min;
  fetchAndComplete(table, "later", FetchOutcome::kUncacheable);
  now += 59s;
  EXPECT_EQ(join(table, "early"), JoinRole::kFetchAlone);
  now += 1s;  // two minutes after "early" was remembered
  EXPECT_EQ(join(table, "early"), JoinRole::kFetch);
  EXPECT_EQ(join(table, "later"), JoinRole::kFetchAlone);
  now += 1min;
  EXPECT_EQ(join(table, "later"), JoinRole::kFetch);
}

TEST_F(InflightTableTest, TheMemoryIsBounded) {
  InflightTable table(1min, 2);
  for (const char* key : {"a", "b", "c"}) {
    fetchAndComplete(table, key, FetchOutcome::kUncacheable);
  }
  EXPECT_EQ(join(table, "a"), JoinRole::kFetchAlone);
  EXPECT_EQ(join(table, "b"), JoinRole::kFetchAlone);
  EXPECT_EQ(join(table, "c"), JoinRole::kFetch) << "over the bound: coalesces as before";
}

TEST_F(InflightTableTest, AfterShutdownEveryoneFetches) {
  InflightTable table;
  fetchAndComplete(table, "k", FetchOutcome::kUncacheable);
  ASSERT_EQ(join(table, "other"), JoinRole::kFetch);
  table.shutdown();
  EXPECT_EQ(join(table, "k"), JoinRole::kFetch);
  EXPECT_EQ(join(table, "other"), JoinRole::kFetch);
  EXPECT_EQ(table.inflightCountForTest(), 0u);
}

}  // namespace
}  // namespace cachecar::server
