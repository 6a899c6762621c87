// Several worker threads: every worker has its own listener (SO_REUSEPORT), and the memory
// store is shared, so an entry stored by one worker is a hit on every other.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

std::string workersConfig(int workers) {
  std::string config = basicConfig();
  const std::string one = "workers: 1\n";
  config.replace(config.find(one), one.size(), "workers: " + std::to_string(workers) + "\n");
  return config;
}

class WorkersTest : public ProxyFixture {
 protected:
  void SetUp() override {
    origin_.handlePrefix("/", [](const OriginRequest& req) {
      return OriginResponse::text(req.path + " #" + std::to_string(req.sequence));
    });
  }
};

TEST_F(WorkersTest, AnEntryStoredByOneWorkerIsAHitOnEvery) {
  ASSERT_NO_FATAL_FAILURE(startProxy(workersConfig(2)));
  HttpResponse miss = get("/static/shared");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  ASSERT_EQ(miss.headerOr("X-Cache"), "MISS");

  // Separate connections, so the kernel spreads them over both workers' listeners.
  int hits = 0;
  for (int i = 0; i < 20; ++i) {
    HttpClient client(port());
    ASSERT_TRUE(client.connected()) << client.connectError();
    HttpResponse r = client.get("/static/shared");
    ASSERT_EQ(r.status, 200) << "connection " << i << ": " << r.describe();
    EXPECT_EQ(r.headerOr("X-Cache"), "HIT") << "connection " << i;
    EXPECT_EQ(r.body, miss.body) << "connection " << i;
    hits += r.headerOr("X-Cache") == "HIT" ? 1 : 0;
  }
  EXPECT_EQ(hits, 20);
  EXPECT_EQ(origin_.requestCount("/static/shared"), 1);
}

TEST_F(WorkersTest, ConcurrentClientsAreAllServed) {
  ASSERT_NO_FATAL_FAILURE(startProxy(workersConfig(2)));
  constexpr int kClients = 8;
  constexpr int kRequests = 10;
  std::vector<int> ok(kClients, 0);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([this, c, &ok] {
      HttpClient client(port());
      for (int i = 0; i < kRequests; ++i) {
        // Half of the paths are shared by every client (hits after the first), half are not.
        const std::string path = i % 2 == 0
                                     ? "/static/common" + std::to_string(i)
                                     : "/static/own" + std::to_string(c) + "-" + std::to_string(i);
        HttpResponse r = client.get(path);
        if (r.status == 200 && r.body.rfind(path + " #", 0) == 0) {
          ++ok[static_cast<size_t>(c)];
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(ok[static_cast<size_t>(c)], kRequests) << "client " << c;
  }
  EXPECT_TRUE(proxy_->running());
}

}  // namespace
}  // namespace cachecar::testing
