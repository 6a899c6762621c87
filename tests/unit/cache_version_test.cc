#include "cachecar/server/cache_version.h"

#include <gtest/gtest.h>

#include <limits>

namespace cachecar::server {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(CacheVersionTest, UnknownUntilPublished) {
  CacheVersion version;
  EXPECT_FALSE(version.bumps().has_value());
  EXPECT_TRUE(version.publish(1, 0));
  EXPECT_EQ(version.bumps(), 0);
  EXPECT_TRUE(version.publish(1, 41));
  EXPECT_EQ(version.bumps(), 41);
}

TEST(CacheVersionTest, ACountThatWouldOverflowTheVersionMakesItUnknown) {
  CacheVersion version;
  ASSERT_TRUE(version.publish(5, 2));
  EXPECT_FALSE(version.publish(5, kMax));
  EXPECT_FALSE(version.bumps().has_value()) << "the cache must be bypassed, not keyed anew";
  EXPECT_TRUE(version.publish(5, kMax - 5));  // the largest version there is
  EXPECT_EQ(version.bumps(), kMax - 5);
  EXPECT_FALSE(version.publish(0, -1));
  EXPECT_FALSE(version.bumps().has_value());
}

}  // namespace
}  // namespace cachecar::server
