// The admin listener through the binary: health and readiness, Prometheus metrics, the bearer
// token, purge by URL, and version bumps shared by two cachecar processes on one Redis.
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/free_port.h"
#include "support/proxy_fixture.h"
#include "support/redis_server.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

// basicConfig() plus an admin listener on {admin_port}.
std::string adminConfig(const std::string& admin = "{listen: \"127.0.0.1:{admin_port}\"}") {
  return configWithRoutes("  - {match: /vary/, ttl: 1h}\n") + "admin: " + admin + "\n";
}

// The value of one sample line ("name{labels} value") in a Prometheus text body; -1 if absent.
double sampleValue(const std::string& metrics, const std::string& series) {
  size_t at = 0;
  while ((at = metrics.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || metrics[at - 1] == '\n') {
      return std::stod(metrics.substr(at + series.size() + 1));
    }
    at += series.size();
  }
  return -1;
}

class AdminTest : public ProxyFixture {
 protected:
  void SetUp() override {
    admin_port_ = findFreePort();
    origin_.handlePrefix("/", [](const OriginRequest& req) {
      HeaderList headers;
      if (req.path.starts_with("/vary/")) {
        headers.emplace_back("Vary", "Accept-Language");
      }
      if (req.path.starts_with("/static/private/")) {
        headers.emplace_back("Cache-Control", "private");
      }
      return OriginResponse::text(req.target + " " + req.headerOr("Accept-Language") + " #" +
                                      std::to_string(req.sequence),
                                  std::move(headers));
    });
  }

  void startWithAdmin(const std::string& config, std::map<std::string, std::string> env = {}) {
    CachecarOptions options;
    options.config_yaml = config;
    options.origin_port = origin_.port();
    options.placeholders["admin_port"] = std::to_string(admin_port_);
    options.env = std::move(env);
    proxy_ = std::make_unique<CachecarProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
  }

  HttpResponse admin(std::string_view method, std::string_view target,
                     const std::vector<std::string>& headers = {}) const {
    HttpClient client(admin_port_);
    return client.request(method, target, headers);
  }

  uint16_t admin_port_ = 0;
};

TEST_F(AdminTest, HealthzAndReadyzFollowTheApp) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(adminConfig()));
  HttpResponse health = admin("GET", "/healthz");
  ASSERT_EQ(health.status, 200) << health.describe();
  EXPECT_EQ(health.body, "ok\n");
  HttpResponse ready = admin("GET", "/readyz");
  ASSERT_EQ(ready.status, 200) << ready.describe();

  origin_.stop();
  HttpResponse not_ready = admin("GET", "/readyz");
  EXPECT_EQ(not_ready.status, 503) << not_ready.describe();
  EXPECT_TRUE(contains(not_ready.body, "upstream unreachable")) << not_ready.body;
  EXPECT_EQ(admin("GET", "/healthz").status, 200) << "alive even when the app is not";
}

TEST_F(AdminTest, NoAdminKeyMeansNoAdminListener) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(basicConfig()));
  EXPECT_EQ(listeningPortsOf(proxy_->pid()), std::set<uint16_t>{port()})
      << "only the proxy's own listener, no admin one";
  EXPECT_EQ(get("/static/a").status, 200);
}

TEST_F(AdminTest, MetricsCountRequestsByRouteAndCacheStatus) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(adminConfig()));
  EXPECT_EQ(get("/static/m").headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/static/m").headerOr("X-Cache"), "HIT");
  EXPECT_EQ(get("/static/m").headerOr("X-Cache"), "HIT");
  EXPECT_EQ(get("/account/x").headerOr("X-Cache"), "BYPASS");
  EXPECT_EQ(get("/elsewhere").status, 200);

  HttpResponse scrape = admin("GET", "/metrics");
  ASSERT_EQ(scrape.status, 200) << scrape.describe();
  EXPECT_TRUE(contains(scrape.headerOr("Content-Type"), "text/plain; version=0.0.4"));
  const std::string& m = scrape.body;
  EXPECT_EQ(sampleValue(m, "cachecar_requests_total{route=\"/static/\",cache_status=\"hit\"}"), 2)
      << m;
  EXPECT_EQ(sampleValue(m, "cachecar_requests_total{route=\"/static/\",cache_status=\"miss\"}"),
            1);
  EXPECT_EQ(
      sampleValue(m, "cachecar_requests_total{route=\"/account/\",cache_status=\"bypass\"}"), 1);
  EXPECT_EQ(sampleValue(m, "cachecar_requests_total{route=\"none\",cache_status=\"miss\"}"), 1);
  EXPECT_EQ(sampleValue(m, "cachecar_origin_request_duration_seconds_count"), 3);
  EXPECT_GE(sampleValue(m, "cachecar_memory_entries{cache=\"default\"}"), 1);
  EXPECT_GT(sampleValue(m, "cachecar_memory_bytes{cache=\"default\"}"), 0);
  EXPECT_GE(sampleValue(m, "cachecar_open_connections"), 0);
  EXPECT_EQ(sampleValue(m, "cachecar_config_reloads_total{result=\"failed\"}"), 0);
  EXPECT_EQ(sampleValue(m, "cachecar_coalesced_waiters_total"), 0);
  EXPECT_GE(sampleValue(m, "cachecar_storage_operations_total{cache=\"default\",backend=\"memory\","
                           "op=\"get\",result=\"ok\"}"),
            2);
  EXPECT_TRUE(contains(m, "# TYPE cachecar_origin_request_duration_seconds histogram"));
  EXPECT_TRUE(contains(m, "cachecar_storage_operation_duration_seconds_bucket{"));
}

// The first private answer is remembered: the misses after it go to the app without looking
// for an identical one in flight, and are counted.
TEST_F(AdminTest, MetricsCountMissesFetchedAloneAfterAnUncacheableAnswer) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(adminConfig()));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(get("/static/private/me").headerOr("X-Cache"), "MISS");
  }
  EXPECT_EQ(get("/static/public").headerOr("X-Cache"), "MISS");
  const std::string m = admin("GET", "/metrics").body;
  EXPECT_EQ(sampleValue(m, "cachecar_uncacheable_fetches_total"), 2) << m;
  EXPECT_EQ(sampleValue(m, "cachecar_coalesced_waiters_total"), 0);
  EXPECT_EQ(origin_.requestCount("/static/private/me"), 3);
}

TEST_F(AdminTest, BearerTokenProtectsMetricsAndPurgeButNotProbes) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(
      adminConfig("{listen: \"127.0.0.1:{admin_port}\", token_env: CACHECAR_ADMIN_TOKEN}"),
      {{"CACHECAR_ADMIN_TOKEN", "s3cret-token"}}));
  EXPECT_EQ(admin("GET", "/metrics").status, 401);
  EXPECT_EQ(admin("GET", "/metrics", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(admin("POST", "/purge?cache=default").status, 401);
  EXPECT_EQ(admin("GET", "/metrics", {"Authorization: Bearer s3cret-token"}).status, 200);
  EXPECT_EQ(
      admin("POST", "/purge?cache=default", {"Authorization: Bearer s3cret-token"}).status, 200);
  EXPECT_EQ(admin("GET", "/healthz").status, 200);
  EXPECT_EQ(admin("GET", "/readyz").status, 200);
}

TEST_F(AdminTest, PurgeByUrlRemovesEveryVariantOfThatUrlOnly) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(adminConfig()));
  const std::vector<std::string> en{"Host: shop.example", "Accept-Language: en"};
  const std::vector<std::string> de{"Host: shop.example", "Accept-Language: de"};
  const std::vector<std::string> host{"Host: shop.example"};
  ASSERT_EQ(get("/vary/p", en).headerOr("X-Cache"), "MISS");
  ASSERT_EQ(get("/vary/p", de).headerOr("X-Cache"), "MISS");
  ASSERT_EQ(get("/vary/p", en).headerOr("X-Cache"), "HIT");
  ASSERT_EQ(get("/vary/p", de).headerOr("X-Cache"), "HIT");
  ASSERT_EQ(get("/static/p1", host).headerOr("X-Cache"), "MISS");
  ASSERT_EQ(get("/static/p1", host).headerOr("X-Cache"), "HIT");
  ASSERT_EQ(get("/static/p", host).headerOr("X-Cache"), "MISS");

  HttpResponse purged = admin("POST", "/purge?url=http%3A%2F%2Fshop.example%2Fvary%2Fp");
  ASSERT_EQ(purged.status, 200) << purged.describe();
  EXPECT_EQ(get("/vary/p", en).headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/vary/p", de).headerOr("X-Cache"), "MISS");

  ASSERT_EQ(admin("POST", "/purge?url=http%3A%2F%2Fshop.example%2Fstatic%2Fp").status, 200);
  EXPECT_EQ(get("/static/p", host).headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/static/p1", host).headerOr("X-Cache"), "HIT") << "a longer URL is not that URL";

  // Another host's page at the same path is not touched.
  ASSERT_EQ(get("/static/q", {"Host: a.example"}).headerOr("X-Cache"), "MISS");
  ASSERT_EQ(admin("POST", "/purge?url=http%3A%2F%2Fb.example%2Fstatic%2Fq").status, 200);
  EXPECT_EQ(get("/static/q", {"Host: a.example"}).headerOr("X-Cache"), "HIT");
}

TEST_F(AdminTest, PurgeOfABarePathIsRefusedWithTheReason) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(adminConfig()));
  HttpResponse refused = admin("POST", "/purge?url=%2Fstatic%2Fp");
  EXPECT_EQ(refused.status, 400) << refused.describe();
  EXPECT_TRUE(contains(refused.body, "absolute")) << refused.body;
  EXPECT_TRUE(contains(refused.body, "host")) << refused.body;
  EXPECT_EQ(admin("POST", "/purge?cache=nope").status, 404);
}

TEST_F(AdminTest, VersionBumpMakesEveryEntryOfTheCacheUnreachable) {
  ASSERT_NO_FATAL_FAILURE(startWithAdmin(adminConfig()));
  ASSERT_EQ(get("/static/a").headerOr("X-Cache"), "MISS");
  ASSERT_EQ(get("/api/b?page=1").headerOr("X-Cache"), "MISS");
  ASSERT_EQ(get("/static/a").headerOr("X-Cache"), "HIT");
  HttpResponse bumped = admin("POST", "/purge?cache=default");
  ASSERT_EQ(bumped.status, 200) << bumped.describe();
  EXPECT_TRUE(contains(bumped.body, "version 2")) << bumped.body;
  EXPECT_EQ(get("/static/a").headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/api/b?page=1").headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/static/a").headerOr("X-Cache"), "HIT");
  HttpResponse scrape = admin("GET", "/metrics");
  EXPECT_EQ(sampleValue(scrape.body, "cachecar_cache_version{cache=\"default\"}"), 2);
  // The old entries were removed, not only made unreachable: two new ones remain.
  EXPECT_EQ(sampleValue(scrape.body, "cachecar_memory_entries{cache=\"default\"}"), 2);
}

// Two sidecars on one Redis: a bump through one admin endpoint reaches the other within 1 s,
// and only keys of that cache's own prefix are deleted.
TEST_F(AdminTest, VersionBumpOnRedisReachesTheOtherSidecarWithinOneSecond) {
  if (!RedisServer::available()) {
    GTEST_SKIP() << RedisServer::unavailableReason();
  }
  RedisServer redis;
  ASSERT_TRUE(redis.start()) << redis.lastError();
  ASSERT_TRUE(redis.set("someone-else:1:page", "keep me"));
  ASSERT_TRUE(redis.set("s:1-not-a-namespace", "keep me too"));
  const std::string config =
      "listen: 127.0.0.1:{port}\n"
      "upstream: http://127.0.0.1:{origin_port}\n"
      "workers: 1\n"
      "caches:\n"
      "  default: {backend: redis, location: \"redis://127.0.0.1:{redis_port}/0\", timeout: 5m, "
      "key_prefix: s, options: {command_timeout: 500ms, connect_timeout: 500ms}}\n"
      "routes:\n"
      "  - {match: /r/, ttl: 1h}\n"
      "admin: {listen: \"127.0.0.1:{admin_port}\"}\n";
  auto start = [&](uint16_t admin_port) {
    CachecarOptions options;
    options.config_yaml = config;
    options.origin_port = origin_.port();
    options.redis_port = redis.port();
    options.placeholders["admin_port"] = std::to_string(admin_port);
    auto proxy = std::make_unique<CachecarProcess>(std::move(options));
    EXPECT_TRUE(proxy->start());
    return proxy;
  };
  const uint16_t other_admin = findFreePort();
  auto first = start(admin_port_);
  auto second = start(other_admin);

  HttpResponse stored = httpGet(first->port(), "/r/page");
  ASSERT_EQ(stored.headerOr("X-Cache"), "MISS");
  // The entry reaches Redis just after the answer: wait (bounded) for the second to hit.
  bool shared = false;
  for (int i = 0; i < 100 && !shared; ++i) {
    shared = httpGet(second->port(), "/r/page").headerOr("X-Cache") == "HIT";
    if (!shared) {
      std::this_thread::sleep_for(20ms);
    }
  }
  ASSERT_TRUE(shared) << "the second sidecar never saw the first one's entry";

  HttpResponse bumped = admin("POST", "/purge?cache=default");
  ASSERT_EQ(bumped.status, 200) << bumped.describe();
  const auto bumped_at = Clock::now();
  EXPECT_EQ(httpGet(first->port(), "/r/page").headerOr("X-Cache"), "MISS");
  // The second sidecar serves the page stored before the bump until it has seen the bump.
  bool old_page = true;
  while (old_page && msSince(bumped_at) < 3000) {
    old_page = httpGet(second->port(), "/r/page").body == stored.body;
    if (old_page) {
      std::this_thread::sleep_for(20ms);
    }
  }
  const long elapsed = msSince(bumped_at);
  EXPECT_FALSE(old_page) << "the second sidecar still serves the old version";
  EXPECT_LT(elapsed, 1000) << "the bump took " << elapsed << " ms to reach the second sidecar";
  // Not only because the old entries were deleted: the second sidecar builds its keys with
  // the new version.
  double version = 0;
  while (version != 2 && msSince(bumped_at) < 3000) {
    HttpClient client(other_admin);
    version = sampleValue(client.get("/metrics").body, "cachecar_cache_version{cache=\"default\"}");
    if (version != 2) {
      std::this_thread::sleep_for(20ms);
    }
  }
  EXPECT_EQ(version, 2);
  EXPECT_LT(msSince(bumped_at), 1000);
  EXPECT_EQ(redis.get("s:version-bumps").value_or(""), "1");
  EXPECT_EQ(redis.get("someone-else:1:page").value_or(""), "keep me");
  EXPECT_EQ(redis.get("s:1-not-a-namespace").value_or(""), "keep me too");
}

}  // namespace
}  // namespace cachecar::testing
