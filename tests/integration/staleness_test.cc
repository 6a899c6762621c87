// Serving stale (RFC 5861, RFC 9111 §4.2.4): stale-while-revalidate answers at once and
// refreshes once in the background; stale-if-error hides a failing or absent app within its
// window, from the response or from the route's default. The waits here are real HTTP time
// (an entry has to age), each a little over a second.
#include <atomic>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

// Long enough for an entry with max-age=1 to be stale (ages are whole seconds).
constexpr auto kPastOneSecond = 1200ms;

class StaleWhileRevalidateTest : public ProxyFixture {};

TEST_F(StaleWhileRevalidateTest, StaleIsServedAtOnceAndRefreshedOnceInTheBackground) {
  origin_.handle("/static/swr", [](const OriginRequest& req) {
    if (req.sequence == 1) {
      return OriginResponse::text("version 1",
                                  {{"Cache-Control", "max-age=1, stale-while-revalidate=30"}});
    }
    // The refresh is slow, so a client that waited for it would notice.
    OriginResponse r = OriginResponse::text("version " + std::to_string(req.sequence),
                                            {{"Cache-Control", "max-age=60"}});
    r.delay = 1500ms;
    return r;
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/swr");
  ASSERT_EQ(first.status, 200) << first.describe();
  ASSERT_EQ(first.body, "version 1");
  std::this_thread::sleep_for(kPastOneSecond);

  auto start = Clock::now();
  HttpResponse stale = get("/static/swr");
  EXPECT_LT(msSince(start), 1000) << "the stale answer waited for the refresh";
  ASSERT_EQ(stale.status, 200) << stale.describe();
  EXPECT_EQ(stale.body, "version 1");
  EXPECT_EQ(stale.headerOr("X-Cache"), "STALE");
  EXPECT_TRUE(contains(stale.headerOr("Cache-Status"), "detail=stale-while-revalidate"))
      << stale.headerOr("Cache-Status");
  EXPECT_TRUE(stale.hasHeader("Age"));

  // More stale requests while the refresh is under way: all answered from the cache at once,
  // none starts another refresh.
  constexpr int kConcurrent = 5;
  std::vector<HttpResponse> more(kConcurrent);
  std::latch ready(kConcurrent);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConcurrent; ++i) {
    threads.emplace_back([&, i] {
      HttpClient client(port(), 5s);
      ready.arrive_and_wait();
      more[static_cast<size_t>(i)] = client.get("/static/swr");
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& r : more) {
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body, "version 1");
    EXPECT_EQ(r.headerOr("X-Cache"), "STALE");
  }
  EXPECT_LT(msSince(start), 1300) << "stale answers waited for the refresh";

  // The one refresh lands; then the new version is a plain hit.
  ASSERT_TRUE(origin_.waitForRequests("/static/swr", 2, 3s));
  HttpResponse fresh;
  for (int i = 0; i < 40; ++i) {
    fresh = get("/static/swr");
    if (fresh.body != "version 1") {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(fresh.body, "version 2") << fresh.describe();
  EXPECT_EQ(fresh.headerOr("X-Cache"), "HIT") << fresh.describe();
  EXPECT_EQ(origin_.requestCount("/static/swr"), 2);
}

TEST_F(StaleWhileRevalidateTest, BackgroundRefreshRevalidatesWithTheValidator) {
  origin_.handle("/static/swr-etag", [](const OriginRequest& req) {
    if (req.headerOr("If-None-Match") == "\"e1\"") {
      OriginResponse r;
      r.status = 304;
      r.headers = {{"ETag", "\"e1\""}, {"Cache-Control", "max-age=60"}, {"X-Refreshed", "yes"}};
      return r;
    }
    return OriginResponse::text("etag body #" + std::to_string(req.sequence),
                                {{"ETag", "\"e1\""},
                                 {"Cache-Control", "max-age=1, stale-while-revalidate=30"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/swr-etag");
  ASSERT_EQ(first.status, 200) << first.describe();
  std::this_thread::sleep_for(kPastOneSecond);
  HttpResponse stale = get("/static/swr-etag");
  EXPECT_EQ(stale.headerOr("X-Cache"), "STALE") << stale.describe();
  EXPECT_EQ(stale.body, first.body);
  ASSERT_TRUE(origin_.waitForRequests("/static/swr-etag", 2, 3s));
  EXPECT_EQ(origin_.lastRequest("/static/swr-etag")->headerOr("If-None-Match"), "\"e1\"");
  HttpResponse refreshed;
  for (int i = 0; i < 30; ++i) {
    refreshed = get("/static/swr-etag");
    if (refreshed.headerOr("X-Refreshed") == "yes") {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(refreshed.headerOr("X-Refreshed"), "yes") << refreshed.describe();
  EXPECT_EQ(refreshed.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(refreshed.body, first.body);
  EXPECT_EQ(origin_.requestCount("/static/swr-etag"), 2);
}

class StaleIfErrorTest : public ProxyFixture {
 protected:
  // First a good answer with `cache_control`, then 500s.
  void goodThenFailing(const std::string& path, const std::string& cache_control,
                       HeaderList extra = {}) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    origin_.handle(path, [cache_control, extra, calls](const OriginRequest& req) {
      if (calls->fetch_add(1) == 0) {
        HeaderList headers = extra;
        headers.emplace_back("Cache-Control", cache_control);
        return OriginResponse::text("good answer", headers);
      }
      OriginResponse r = OriginResponse::text("app error #" + std::to_string(req.sequence));
      r.status = 500;
      return r;
    });
  }

  void expectStaleServed(const std::string& path) {
    HttpResponse r = get(path);
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body, "good answer");
    EXPECT_EQ(r.headerOr("X-Cache"), "STALE");
    EXPECT_TRUE(contains(r.headerOr("Cache-Status"), "detail=stale-if-error"))
        << r.headerOr("Cache-Status");
  }
};

TEST_F(StaleIfErrorTest, AppErrorIsHiddenWithinTheWindow) {
  goodThenFailing("/static/sie", "max-age=1, stale-if-error=60");
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/sie").status, 200);
  std::this_thread::sleep_for(kPastOneSecond);
  expectStaleServed("/static/sie");
  EXPECT_EQ(origin_.requestCount("/static/sie"), 2) << "the app was not asked first";
  // The entry survives the error: still served while the app fails.
  expectStaleServed("/static/sie");
  EXPECT_EQ(origin_.requestCount("/static/sie"), 3);
}

TEST_F(StaleIfErrorTest, AppDownIsHiddenWithinTheWindow) {
  goodThenFailing("/static/sie-down", "max-age=1, stale-if-error=60");
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/sie-down").status, 200);
  std::this_thread::sleep_for(kPastOneSecond);
  origin_.stop();
  expectStaleServed("/static/sie-down");
}

TEST_F(StaleIfErrorTest, ErrorIsPassedOnPastTheWindow) {
  // With a validator the entry stays in the store long after it went stale, so this checks the
  // window itself, not the store's expiry.
  goodThenFailing("/static/sie-short", "max-age=1, stale-if-error=1", {{"ETag", "\"s1\""}});
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/sie-short").status, 200);
  std::this_thread::sleep_for(3200ms);  // stale by more than 2 s: past stale-if-error=1
  HttpResponse error = get("/static/sie-short");
  EXPECT_EQ(error.status, 500) << error.describe();
  EXPECT_NE(error.body, "good answer");
  EXPECT_NE(error.headerOr("X-Cache"), "STALE");
  // RFC 9211: fwd-status is the status the app answered the revalidation with.
  const std::string status = error.headerOr("Cache-Status");
  EXPECT_TRUE(contains(status, "fwd=stale")) << status;
  if (contains(status, "fwd-status=")) {
    EXPECT_TRUE(contains(status, "fwd-status=500")) << status;
  }
  EXPECT_EQ(origin_.requestCount("/static/sie-short"), 2);

  origin_.stop();
  HttpResponse down = get("/static/sie-short");
  EXPECT_EQ(down.status, 502) << down.describe();
  EXPECT_NE(down.body, "good answer");
}

TEST_F(StaleIfErrorTest, MustRevalidateForbidsServingStaleOnError) {
  goodThenFailing("/static/sie-mr", "max-age=1, must-revalidate, stale-if-error=60");
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/sie-mr").status, 200);
  std::this_thread::sleep_for(kPastOneSecond);
  HttpResponse r = get("/static/sie-mr");
  EXPECT_EQ(r.status, 500) << r.describe();
  EXPECT_NE(r.body, "good answer");
}

TEST_F(StaleIfErrorTest, RouteDefaultAppliesWhenTheAppGivesNone) {
  goodThenFailing("/sie-route/page", "max-age=1");
  goodThenFailing("/static/no-default", "max-age=1");
  ASSERT_NO_FATAL_FAILURE(
      startProxy(configWithRoutes("  - {match: /sie-route/, ttl: 1h, stale_if_error: 60s}\n")));
  ASSERT_EQ(get("/sie-route/page").status, 200);
  ASSERT_EQ(get("/static/no-default").status, 200);
  std::this_thread::sleep_for(kPastOneSecond);
  expectStaleServed("/sie-route/page");
  // The control: a route without the default passes the error on.
  HttpResponse control = get("/static/no-default");
  EXPECT_EQ(control.status, 500) << control.describe();
}

}  // namespace
}  // namespace cachecar::testing
