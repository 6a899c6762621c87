// The redis backend through the binary: an entry shared by two cachecar processes, and Redis
// trouble (port closed, server killed, server frozen) costing speed, never answers.
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/free_port.h"
#include "support/proxy_fixture.h"
#include "support/redis_server.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRedisConfig =
    "listen: 127.0.0.1:{port}\n"
    "upstream: http://127.0.0.1:{origin_port}\n"
    "workers: 1\n"
    "caches:\n"
    "  default: {backend: memory, timeout: 5m, key_prefix: t, version: 1}\n"
    "  shared: {backend: redis, location: \"redis://127.0.0.1:{redis_port}/0\", timeout: 5m, "
    "key_prefix: s, options: {command_timeout: 100ms, connect_timeout: 100ms}}\n"
    "routes:\n"
    "  - {match: /static/, ttl: 1h}\n"
    "  - {match: /r/, cache: shared, ttl: 1h}\n"
    "limits: {header_read_timeout: 2s, max_header_bytes: 64KiB, max_request_body_bytes: 1MiB, "
    "upstream_response_timeout: 2s}\n";

class RedisSharedTest : public ProxyFixture {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) {
      GTEST_SKIP() << RedisServer::unavailableReason();
    }
    origin_.handlePrefix("/", [](const OriginRequest& req) {
      return OriginResponse::text(req.path + " #" + std::to_string(req.sequence));
    });
  }

  std::unique_ptr<CachecarProcess> startProxyOn(uint16_t redis_port) {
    CachecarOptions options;
    options.config_yaml = kRedisConfig;
    options.origin_port = origin_.port();
    options.redis_port = redis_port;
    auto proxy = std::make_unique<CachecarProcess>(std::move(options));
    ::testing::AssertionResult started = proxy->start();
    EXPECT_TRUE(started);
    return started ? std::move(proxy) : nullptr;
  }

  // Entries reach Redis after the answer was sent: wait (bounded) until `count` keys exist.
  bool waitForKeys(long long count, std::chrono::milliseconds limit = 2s) {
    auto start = Clock::now();
    while (msSince(start) < limit.count()) {
      if (redis_.dbSize() >= count) {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  RedisServer redis_;
};

TEST_F(RedisSharedTest, TwoProxiesShareOneEntry) {
  ASSERT_TRUE(redis_.start()) << redis_.lastError();
  auto first = startProxyOn(redis_.port());
  auto second = startProxyOn(redis_.port());
  ASSERT_TRUE(first && second);

  HttpResponse miss = httpGet(first->port(), "/r/shared");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");
  ASSERT_TRUE(waitForKeys(1)) << "nothing was written to Redis";

  HttpResponse hit = httpGet(second->port(), "/r/shared");
  ASSERT_EQ(hit.status, 200) << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.body, miss.body);
  EXPECT_TRUE(hit.hasHeader("Age"));
  EXPECT_EQ(origin_.requestCount("/r/shared"), 1);

  // Routes on the memory cache are not shared: the second proxy misses.
  ASSERT_EQ(httpGet(first->port(), "/static/local").headerOr("X-Cache"), "MISS");
  EXPECT_EQ(httpGet(second->port(), "/static/local").headerOr("X-Cache"), "MISS");
  EXPECT_EQ(origin_.requestCount("/static/local"), 2);
}

TEST_F(RedisSharedTest, ClosedRedisPortCostsNoTime) {
  const uint16_t nobody = findFreePort();  // nothing listens there
  auto proxy = startProxyOn(nobody);
  ASSERT_TRUE(proxy);
  for (int i = 0; i < 3; ++i) {
    auto start = Clock::now();
    HttpResponse r = httpGet(proxy->port(), "/r/page");
    const long elapsed = msSince(start);
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body.rfind("/r/page #", 0), 0u) << r.body;
    EXPECT_LT(elapsed, 1000) << "request " << i << " took " << elapsed << " ms";
  }
  EXPECT_EQ(origin_.requestCount("/r/page"), 3);
  EXPECT_TRUE(proxy->running());
}

TEST_F(RedisSharedTest, RedisKilledDuringARunCostsNoAnswers) {
  ASSERT_TRUE(redis_.start()) << redis_.lastError();
  auto proxy = startProxyOn(redis_.port());
  ASSERT_TRUE(proxy);
  HttpClient client(proxy->port());
  ASSERT_EQ(client.get("/r/a").headerOr("X-Cache"), "MISS");
  ASSERT_TRUE(waitForKeys(1));
  ASSERT_EQ(client.get("/r/a").headerOr("X-Cache"), "HIT");

  redis_.stop();
  for (int i = 0; i < 6; ++i) {
    const std::string path = i % 2 == 0 ? "/r/a" : "/r/b";
    auto start = Clock::now();
    HttpResponse r = i < 3 ? client.get(path) : httpGet(proxy->port(), path);
    const long elapsed = msSince(start);
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.describe();
    EXPECT_EQ(r.body.rfind(path + " #", 0), 0u) << r.body;
    EXPECT_LT(elapsed, 1000) << "request " << i << " took " << elapsed << " ms";
  }
  EXPECT_TRUE(proxy->running());
}

TEST_F(RedisSharedTest, FrozenRedisCostsAtMostTheCommandTimeout) {
  ASSERT_TRUE(redis_.start()) << redis_.lastError();
  auto proxy = startProxyOn(redis_.port());
  ASSERT_TRUE(proxy);
  ASSERT_EQ(httpGet(proxy->port(), "/r/warm").status, 200);  // connected to Redis

  redis_.pause();  // accepts nothing, answers nothing
  for (int i = 0; i < 3; ++i) {
    auto start = Clock::now();
    HttpResponse r = httpGet(proxy->port(), "/r/frozen");
    const long elapsed = msSince(start);
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_LT(elapsed, 1000) << "request " << i << " took " << elapsed << " ms";
  }
  redis_.resume();
}

TEST_F(RedisSharedTest, CachingResumesAfterRedisComesBack) {
  ASSERT_TRUE(redis_.start()) << redis_.lastError();
  auto proxy = startProxyOn(redis_.port());
  ASSERT_TRUE(proxy);
  ASSERT_EQ(httpGet(proxy->port(), "/r/before").status, 200);
  redis_.stop();
  ASSERT_EQ(httpGet(proxy->port(), "/r/down").status, 200);
  ASSERT_TRUE(redis_.start()) << redis_.lastError();  // same port

  // Reconnection may take a backoff period: try for up to 6 s.
  bool hit = false;
  auto start = Clock::now();
  for (int i = 0; !hit && msSince(start) < 6000; ++i) {
    const std::string path = "/r/after-" + std::to_string(i);
    ASSERT_EQ(httpGet(proxy->port(), path).status, 200);
    if (waitForKeys(1, 300ms)) {
      hit = httpGet(proxy->port(), path).headerOr("X-Cache") == "HIT";
    }
  }
  EXPECT_TRUE(hit) << "no Redis hit within 6 s after Redis came back";
}

}  // namespace
}  // namespace cachecar::testing

namespace cachecar::testing {
namespace {

// The version count lives in the shared store, where anyone with access can write anything.
// A count that no bump produces (one that would overflow the version) bypasses the cache:
// pages still come from the app, nothing is served from a namespace that cannot be named.
TEST_F(RedisSharedTest, AVersionCountOutOfRangeBypassesTheCache) {
  ASSERT_TRUE(redis_.start()) << redis_.lastError();
  ASSERT_TRUE(redis_.set("s:version-bumps", "9223372036854775807"));
  auto proxy = startProxyOn(redis_.port());
  ASSERT_TRUE(proxy);
  for (int i = 0; i < 2; ++i) {
    const HttpResponse r = httpGet(proxy->port(), "/r/page");
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.headerOr("X-Cache"), "BYPASS") << r.describe();
  }
  EXPECT_EQ(origin_.requestCount("/r/page"), 2);
  EXPECT_NE(proxy->logText().find("out of range"), std::string::npos) << proxy->logText();
  // Repaired: the cache is used again once the next poll reads a sane count.
  ASSERT_TRUE(redis_.set("s:version-bumps", "3"));
  const auto start = Clock::now();
  HttpResponse r;
  do {
    std::this_thread::sleep_for(50ms);
    r = httpGet(proxy->port(), "/r/page");
  } while (r.headerOr("X-Cache") == "BYPASS" && msSince(start) < 5000);
  EXPECT_EQ(r.headerOr("X-Cache"), "MISS") << r.describe();
}

}  // namespace
}  // namespace cachecar::testing
