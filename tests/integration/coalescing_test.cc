// Request coalescing: concurrent misses for one page cost one request to the app, with one
// worker or several; uncacheable answers and failed fetches release the waiters.
#include <atomic>
#include <latch>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kClients = 20;

std::string configWithWorkers(int workers) {
  std::string config = basicConfig();
  const std::string one = "workers: 1\n";
  const size_t at = config.find(one);
  if (at != std::string::npos) {
    config.replace(at, one.size(), "workers: " + std::to_string(workers) + "\n");
  }
  return config;
}

// `count` clients, each on its own connection (opened first), send one GET at the same moment.
std::vector<HttpResponse> concurrentGets(uint16_t port, const std::string& path, int count) {
  std::vector<HttpResponse> responses(static_cast<size_t>(count));
  std::latch ready(count);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      HttpClient client(port, 8s);
      ready.arrive_and_wait();
      if (client.connected()) {
        responses[static_cast<size_t>(i)] = client.get(path);
      } else {
        responses[static_cast<size_t>(i)].error = client.connectError();
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  return responses;
}

std::map<std::string, int> countBy(const std::vector<HttpResponse>& responses,
                                   std::string_view header) {
  std::map<std::string, int> counts;
  for (const auto& r : responses) {
    ++counts[r.headerOr(header, "(none)")];
  }
  return counts;
}

std::string summary(const std::vector<HttpResponse>& responses) {
  std::string out;
  for (const auto& r : responses) {
    out += r.describe() + " | " + r.headerOr("Cache-Status") + "\n";
  }
  return out;
}

class CoalescingTest : public ProxyFixture {
 protected:
  void slowCacheablePage() {
    origin_.handle("/static/slow", [](const OriginRequest& req) {
      OriginResponse r = OriginResponse::text("slow page #" + std::to_string(req.sequence),
                                              {{"Cache-Control", "max-age=60"}});
      r.delay = 500ms;
      return r;
    });
  }

  void expectOneFetchForAll() {
    const auto start = Clock::now();
    const std::vector<HttpResponse> responses = concurrentGets(port(), "/static/slow", kClients);
    SCOPED_TRACE(summary(responses));
    EXPECT_EQ(origin_.requestCount("/static/slow"), 1);
    ASSERT_EQ(responses.front().status, 200);
    for (const auto& r : responses) {
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, responses.front().body);
    }
    const auto x_cache = countBy(responses, "X-Cache");
    EXPECT_EQ(x_cache.count("MISS") ? x_cache.at("MISS") : 0, 1);
    EXPECT_EQ(x_cache.count("HIT") ? x_cache.at("HIT") : 0, kClients - 1);
    int collapsed = 0;
    for (const auto& r : responses) {
      collapsed += r.headerOr("Cache-Status").find("collapsed") != std::string::npos ? 1 : 0;
    }
    EXPECT_GE(collapsed, 1) << "no waiter says it was collapsed";
    // Waiters are told when the fetch ends; they do not poll.
    EXPECT_LT(msSince(start), 3000);
  }
};

TEST_F(CoalescingTest, TwentyConcurrentMissesCostOneOriginRequest) {
  slowCacheablePage();
  ASSERT_NO_FATAL_FAILURE(startProxy());
  expectOneFetchForAll();
}

TEST_F(CoalescingTest, TwentyConcurrentMissesAcrossTwoWorkersCostOneOriginRequest) {
  slowCacheablePage();
  ASSERT_NO_FATAL_FAILURE(startProxy(configWithWorkers(2)));
  expectOneFetchForAll();
}

TEST_F(CoalescingTest, UncacheableAnswerSendsTheWaitersToTheApp) {
  origin_.handle("/static/nostore", [](const OriginRequest& req) {
    OriginResponse r = OriginResponse::text("personal #" + std::to_string(req.sequence),
                                            {{"Cache-Control", "no-store"}});
    r.delay = 300ms;
    return r;
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const auto start = Clock::now();
  const std::vector<HttpResponse> responses = concurrentGets(port(), "/static/nostore", kClients);
  const long elapsed = msSince(start);
  SCOPED_TRACE(summary(responses));
  for (const auto& r : responses) {
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.headerOr("X-Cache"), "HIT");
  }
  // Nothing could be shared, so every client got its own answer from the app...
  EXPECT_EQ(origin_.requestCount("/static/nostore"), kClients);
  std::map<std::string, int> bodies;
  for (const auto& r : responses) {
    ++bodies[r.body];
  }
  EXPECT_EQ(bodies.size(), static_cast<size_t>(kClients)) << "a no-store answer was shared";
  // ...and the waiters went together once the first answer said so, not one after another
  // (20 x 300 ms) and not after the coalescing wait.
  EXPECT_LT(elapsed, 3000);
}

// After one uncacheable answer the key is remembered (hit-for-miss): the next burst of
// requests goes to the app side by side, none waits behind another. Once a response for the
// page is stored again, concurrent misses coalesce again.
TEST_F(CoalescingTest, AnUncacheablePageIsNotCoalescedAgainUntilItIsStored) {
  std::atomic<bool> cacheable{false};
  std::atomic<int> cacheable_answers{0};
  origin_.handle("/static/mood", [&](const OriginRequest& req) {
    // Private at first; then cacheable, the first such answer briefly (it must expire).
    const char* cache_control =
        !cacheable.load() ? "private" : (++cacheable_answers == 1 ? "max-age=1" : "max-age=60");
    OriginResponse r = OriginResponse::text("mood #" + std::to_string(req.sequence),
                                            {{"Cache-Control", cache_control}});
    r.delay = 300ms;
    return r;
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const auto collapsedCount = [](const std::vector<HttpResponse>& responses) {
    int n = 0;
    for (const auto& r : responses) {
      n += r.headerOr("Cache-Status").find("collapsed") != std::string::npos ? 1 : 0;
    }
    return n;
  };

  const std::vector<HttpResponse> first = concurrentGets(port(), "/static/mood", kClients);
  EXPECT_GE(collapsedCount(first), 1) << summary(first);  // nothing known yet: they waited

  const std::vector<HttpResponse> second = concurrentGets(port(), "/static/mood", kClients);
  SCOPED_TRACE(summary(second));
  EXPECT_EQ(collapsedCount(second), 0);
  for (const auto& r : second) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headerOr("X-Cache"), "MISS");
  }
  EXPECT_EQ(origin_.requestCount("/static/mood"), 2 * kClients);

  // The page becomes cacheable: stored once, the memory ends; after it expires (max-age=1, no
  // validator: gone from the store), a burst costs one request to the app again.
  cacheable = true;
  HttpResponse stored = get("/static/mood");
  ASSERT_EQ(stored.status, 200) << stored.describe();
  EXPECT_TRUE(contains(stored.headerOr("Cache-Status"), "stored")) << stored.headerOr("Cache-Status");
  std::this_thread::sleep_for(1200ms);
  const int before = origin_.requestCount("/static/mood");
  const std::vector<HttpResponse> third = concurrentGets(port(), "/static/mood", kClients);
  EXPECT_GE(collapsedCount(third), 1) << summary(third);
  EXPECT_EQ(origin_.requestCount("/static/mood"), before + 1) << summary(third);
}

TEST_F(CoalescingTest, FailedFirstFetchIsTakenOverByAWaiter) {
  std::atomic<int> calls{0};
  origin_.handle("/static/flaky", [&calls](const OriginRequest& req) {
    OriginResponse r = OriginResponse::text("recovered #" + std::to_string(req.sequence),
                                            {{"Cache-Control", "max-age=60"}});
    r.delay = 300ms;
    if (calls.fetch_add(1) == 0) {
      r.close_without_response = true;  // the first fetch breaks
    }
    return r;
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const auto start = Clock::now();
  const std::vector<HttpResponse> responses = concurrentGets(port(), "/static/flaky", kClients);
  SCOPED_TRACE(summary(responses));
  EXPECT_LT(msSince(start), 5000);
  int ok = 0;
  for (const auto& r : responses) {
    EXPECT_TRUE(r.ok()) << "a client got no answer at all: " << r.error;
    if (r.status == 200) {
      ++ok;
      EXPECT_NE(r.body.find("recovered"), std::string::npos) << r.body;
    } else {
      EXPECT_EQ(r.status, 502) << r.describe();
    }
  }
  // Only the client whose fetch broke may see the error; a waiter fetched again for the rest,
  // once (the others waited for it in turn).
  EXPECT_GE(ok, kClients - 1);
  EXPECT_GE(origin_.requestCount("/static/flaky"), 2);
  EXPECT_EQ(origin_.requestCount("/static/flaky"), 2);
}

}  // namespace
}  // namespace cachecar::testing
