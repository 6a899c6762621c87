#include "cachecar/storage/redis_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/event/event_loop.h"
#include "cachecar/redis/redis_client.h"
#include "support/free_port.h"
#include "support/redis_server.h"

namespace cachecar::storage {

// Readable gtest output for statuses (found by argument-dependent lookup).
void PrintTo(StorageStatus status, std::ostream* out) { *out << toString(status); }

namespace {

using redis::RedisClientOptions;
using std::chrono::milliseconds;
using testing::findFreePort;
using testing::RedisServer;
using testing::runLoopFor;
using testing::runLoopUntil;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kLongTtl = std::chrono::minutes(5);
constexpr uint64_t kMaxObjectBytes = 1ull << 20;


RedisClientOptions optionsFor(uint16_t port, int db = 0) {
  RedisClientOptions options;
  options.address.host = "127.0.0.1";
  options.address.port = port;
  options.address.db = db;
  options.connect_timeout = milliseconds(500);
  options.command_timeout = milliseconds(1000);
  options.reconnect_min = milliseconds(50);
  options.reconnect_max = milliseconds(400);
  return options;
}

template <typename T>
struct Outcome {
  int calls = 0;
  T result{};
  Clock::time_point at;

  auto callback() {
    return [this](T value) {
      ++calls;
      result = std::move(value);
      at = Clock::now();
    };
  }
};

class RedisBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) {
      GTEST_SKIP() << RedisServer::unavailableReason();
    }
  }

  void startServer() { ASSERT_TRUE(server_.start()) << server_.lastError(); }

  std::unique_ptr<RedisBackend> makeBackend(const RedisClientOptions& options) {
    return std::make_unique<RedisBackend>(loop_, options, kMaxObjectBytes);
  }

  GetResult getSync(RedisBackend& backend, const std::string& key,
                    milliseconds limit = milliseconds(5000)) {
    Outcome<GetResult> outcome;
    backend.get(key, outcome.callback());
    EXPECT_TRUE(runLoopUntil(
        loop_, [&] { return outcome.calls > 0; }, limit));
    return outcome.result;
  }

  StorageStatus setSync(RedisBackend& backend, const std::string& key, const std::string& value,
                        milliseconds limit = milliseconds(5000)) {
    Outcome<StorageStatus> outcome;
    backend.set(key, makeBlob(value), kLongTtl, outcome.callback());
    EXPECT_TRUE(runLoopUntil(
        loop_, [&] { return outcome.calls > 0; }, limit));
    return outcome.result;
  }

  RedisServer server_;
  event::EventLoop loop_;
};

TEST(RedisLocationTest, ParsesHostPortAndDatabase) {
  auto full = redis::parseRedisLocation("redis://cache.internal:6380/3");
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->host, "cache.internal");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->db, 3);

  auto bare = redis::parseRedisLocation("redis://redis");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host, "redis");
  EXPECT_EQ(bare->port, 6379);
  EXPECT_EQ(bare->db, 0);

  auto slash = redis::parseRedisLocation("redis://10.0.0.5/");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->db, 0);

  auto ipv6 = redis::parseRedisLocation("redis://[::1]:7000/1");
  ASSERT_TRUE(ipv6.ok());
  EXPECT_EQ(ipv6->host, "::1");
  EXPECT_EQ(ipv6->port, 7000);
  EXPECT_EQ(ipv6->toString(), "redis://[::1]:7000/1");
}

TEST(RedisLocationTest, RejectsMalformedLocations) {
  for (const char* bad :
       {"", "127.0.0.1:6379", "http://h:1/0", "redis://", "redis://:6379", "redis://h:0",
        "redis://h:65536", "redis://h:port", "redis://h/x", "redis://h/-1", "redis://user:pw@h",
        "redis://h:1/0?x=1", "redis://[::1", "redis://h:1/0/extra"}) {
    auto parsed = redis::parseRedisLocation(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) {
      EXPECT_NE(parsed.error().message.find("redis://host[:port][/db]"), std::string::npos);
    }
  }
}

TEST(RedisBackendPatternTest, EscapesGlobCharacters) {
  EXPECT_EQ(RedisBackend::prefixPattern("shop:1:"), "shop:1:*");
  EXPECT_EQ(RedisBackend::prefixPattern("a*b?c[d]e\\f"), "a\\*b\\?c\\[d\\]e\\\\f*");
  EXPECT_EQ(RedisBackend::prefixPattern(""), "*");
}

TEST_F(RedisBackendTest, ClosedPortFailsFast) {
  const uint16_t port = findFreePort();  // nothing listens there
  RedisClientOptions options = optionsFor(port);
  options.reconnect_min = milliseconds(2000);  // stay in backoff for the second command
  auto backend = makeBackend(options);

  const auto start = Clock::now();
  GetResult first = getSync(*backend, "k", milliseconds(2000));
  const auto elapsed = Clock::now() - start;
  EXPECT_TRUE(first.status == StorageStatus::kUnavailable ||
              first.status == StorageStatus::kTimeout)
      << toString(first.status);
  EXPECT_LT(elapsed, milliseconds(500));

  // While waiting to reconnect, commands fail at once, inside the call.
  int calls = 0;
  StorageStatus status = StorageStatus::kOk;
  backend->set("k", makeBlob("v"), kLongTtl, [&](StorageStatus s) {
    ++calls;
    status = s;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(status, StorageStatus::kUnavailable);
  EXPECT_GE(backend->client().stats().connect_failures, 1u);
  EXPECT_FALSE(backend->client().connected());
}

TEST_F(RedisBackendTest, ConnectTimeoutFailsQueuedCommands) {
  // A listener whose accept queue is full: further SYNs are dropped, so connect() hangs.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    fillers.push_back(fd);
  }

  RedisClientOptions options = optionsFor(ntohs(addr.sin_port));
  options.connect_timeout = milliseconds(200);
  options.command_timeout = milliseconds(3000);
  options.reconnect_min = milliseconds(2000);
  auto backend = makeBackend(options);
  const auto start = Clock::now();
  GetResult result = getSync(*backend, "k", milliseconds(3000));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(result.status, StorageStatus::kUnavailable);
  EXPECT_GE(elapsed, milliseconds(150));
  EXPECT_LT(elapsed, milliseconds(1500));
  EXPECT_GE(backend->client().stats().connect_failures, 1u);

  backend.reset();
  for (int fd : fillers) {
    ::close(fd);
  }
  ::close(listener);
}

TEST_F(RedisBackendTest, PausedRedisTimesOutAtCommandTimeoutWithoutBlocking) {
  startServer();
  RedisClientOptions options = optionsFor(server_.port());
  options.command_timeout = milliseconds(200);
  options.stall_timeout = milliseconds(5000);
  auto backend = makeBackend(options);
  ASSERT_EQ(setSync(*backend, "k", "v"), StorageStatus::kOk);

  server_.pause();
  Outcome<GetResult> outcome;
  int ticks = 0;
  event::Timer ticker(loop_, [&] { ++ticks; });
  const auto start = Clock::now();
  backend->get("k", outcome.callback());
  const auto call_time = Clock::now() - start;
  ticker.arm(milliseconds(50));
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return outcome.calls > 0; }, milliseconds(3000)));
  const auto elapsed = outcome.at - start;
  EXPECT_EQ(outcome.result.status, StorageStatus::kTimeout);
  EXPECT_GE(elapsed, milliseconds(190));
  EXPECT_LT(elapsed, milliseconds(1000));
  EXPECT_LT(call_time, milliseconds(50));  // the call itself never waits for Redis
  EXPECT_EQ(ticks, 1);                     // the loop kept running meanwhile
  EXPECT_EQ(backend->client().stats().timeouts, 1u);

  server_.resume();
  GetResult after = getSync(*backend, "k");
  ASSERT_EQ(after.status, StorageStatus::kOk);
  EXPECT_EQ(after.blob->view(), "v");
}

TEST_F(RedisBackendTest, LateReplyAfterTimeoutIsIgnored) {
  startServer();
  RedisClientOptions options = optionsFor(server_.port());
  options.command_timeout = milliseconds(150);
  options.stall_timeout = milliseconds(5000);
  auto backend = makeBackend(options);
  ASSERT_EQ(setSync(*backend, "a", "value-a"), StorageStatus::kOk);
  ASSERT_EQ(setSync(*backend, "b", "value-b"), StorageStatus::kOk);

  server_.pause();
  Outcome<GetResult> timed_out;
  backend->get("a", timed_out.callback());
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return timed_out.calls > 0; }, milliseconds(3000)));
  EXPECT_EQ(timed_out.result.status, StorageStatus::kTimeout);
  EXPECT_EQ(backend->client().pendingCountForTest(), 1u);  // its reply is still owed

  server_.resume();
  // The next command must get its own reply, not the late one for "a".
  GetResult b = getSync(*backend, "b");
  ASSERT_EQ(b.status, StorageStatus::kOk);
  EXPECT_EQ(b.blob->view(), "value-b");
  EXPECT_EQ(timed_out.calls, 1);
  EXPECT_EQ(backend->client().stats().late_replies, 1u);
  EXPECT_EQ(backend->client().pendingCountForTest(), 0u);
}

// Every command has its own deadline, whatever else is pending: a command sent while an older
// timed-out one still waits for its reply (and the stall check is armed for it) must not wait
// for that check.
TEST_F(RedisBackendTest, EachCommandGetsItsOwnDeadlineWhileOthersArePending) {
  startServer();
  RedisClientOptions options = optionsFor(server_.port());
  options.command_timeout = milliseconds(100);
  options.stall_timeout = milliseconds(5000);
  auto backend = makeBackend(options);
  ASSERT_EQ(setSync(*backend, "k", "v"), StorageStatus::kOk);

  server_.pause();
  Outcome<GetResult> first;
  backend->get("k", first.callback());
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return first.calls > 0; }, milliseconds(3000)));
  EXPECT_EQ(first.result.status, StorageStatus::kTimeout);

  Outcome<GetResult> second;
  const Clock::time_point sent = Clock::now();
  backend->get("k", second.callback());
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return second.calls > 0; }, milliseconds(6000)));
  EXPECT_EQ(second.result.status, StorageStatus::kTimeout);
  // Its own 100 ms deadline, with room for a loaded machine; never the 5 s stall check.
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(second.at - sent).count(), 1500);
  server_.resume();
}

TEST_F(RedisBackendTest, StalledConnectionIsReplaced) {
  startServer();
  RedisClientOptions options = optionsFor(server_.port());
  options.command_timeout = milliseconds(100);
  options.stall_timeout = milliseconds(300);
  auto backend = makeBackend(options);
  ASSERT_EQ(setSync(*backend, "k", "v"), StorageStatus::kOk);

  server_.pause();
  Outcome<GetResult> outcome;
  backend->get("k", outcome.callback());
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return backend->client().stats().disconnects > 0; }, milliseconds(3000)));
  EXPECT_EQ(outcome.calls, 1);
  EXPECT_EQ(outcome.result.status, StorageStatus::kTimeout);
  EXPECT_EQ(backend->client().pendingCountForTest(), 0u);  // dropped with the connection

  server_.resume();
  bool recovered = runLoopUntil(
      loop_, [&] { return getSync(*backend, "k").status == StorageStatus::kOk; },
      milliseconds(5000));
  EXPECT_TRUE(recovered);
}

TEST_F(RedisBackendTest, TooManyPendingCommandsFailAtOnce) {
  startServer();
  RedisClientOptions options = optionsFor(server_.port());
  options.max_pending = 3;
  options.command_timeout = milliseconds(300);
  options.stall_timeout = milliseconds(5000);
  auto backend = makeBackend(options);
  ASSERT_EQ(setSync(*backend, "k", "v"), StorageStatus::kOk);

  server_.pause();
  std::vector<Outcome<GetResult>> outcomes(5);
  for (auto& outcome : outcomes) {
    backend->get("k", outcome.callback());
  }
  EXPECT_EQ(outcomes[0].calls, 0);
  EXPECT_EQ(outcomes[2].calls, 0);
  EXPECT_EQ(outcomes[3].calls, 1);  // over the bound: refused inside the call
  EXPECT_EQ(outcomes[3].result.status, StorageStatus::kUnavailable);
  EXPECT_EQ(outcomes[4].calls, 1);
  EXPECT_GE(backend->client().stats().rejected, 2u);
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return outcomes[2].calls > 0; }, milliseconds(3000)));
  EXPECT_EQ(outcomes[0].result.status, StorageStatus::kTimeout);
  // Timed-out commands still count until their late replies arrive.
  EXPECT_EQ(backend->client().pendingCountForTest(), 3u);
  server_.resume();
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return backend->client().pendingCountForTest() == 0; }, milliseconds(3000)));
  GetResult after = getSync(*backend, "k");
  EXPECT_EQ(after.status, StorageStatus::kOk);
}

TEST_F(RedisBackendTest, KilledRedisFailsThenReconnectsAfterRestart) {
  startServer();
  auto backend = makeBackend(optionsFor(server_.port()));
  ASSERT_EQ(setSync(*backend, "k", "before"), StorageStatus::kOk);

  server_.stop();
  const auto start = Clock::now();
  GetResult down = getSync(*backend, "k", milliseconds(3000));
  EXPECT_TRUE(down.status == StorageStatus::kUnavailable || down.status == StorageStatus::kTimeout)
      << toString(down.status);
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  // Still down: every attempt fails, none hangs.
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(getSync(*backend, "k", milliseconds(2000)).status, StorageStatus::kOk);
    runLoopFor(loop_, milliseconds(30));
  }
  EXPECT_GE(backend->client().stats().disconnects, 1u);

  startServer();  // same port, empty data set
  StorageStatus status = StorageStatus::kUnavailable;
  const bool reconnected = runLoopUntil(
      loop_,
      [&] {
        status = setSync(*backend, "k", "after");
        if (status != StorageStatus::kOk) {
          runLoopFor(loop_, milliseconds(20));
        }
        return status == StorageStatus::kOk;
      },
      milliseconds(8000));
  ASSERT_TRUE(reconnected) << toString(status);
  GetResult up = getSync(*backend, "k");
  ASSERT_EQ(up.status, StorageStatus::kOk);
  EXPECT_EQ(up.blob->view(), "after");
  EXPECT_EQ(server_.get("k"), "after");
  EXPECT_GE(backend->client().stats().connects, 2u);
}

TEST_F(RedisBackendTest, ConnectionLossCallbackMayDestroyTheBackend) {
  startServer();
  auto backend = makeBackend(optionsFor(server_.port()));
  ASSERT_EQ(setSync(*backend, "k", "v"), StorageStatus::kOk);

  Outcome<GetResult> second;
  Outcome<GetResult> third;
  int first_calls = 0;
  StorageStatus first_status = StorageStatus::kOk;
  backend->get("k", [&](GetResult result) {
    ++first_calls;
    first_status = result.status;
    backend.reset();  // inside hiredis's teardown of the lost connection
  });
  backend->get("k", second.callback());
  backend->get("k", third.callback());
  server_.stop();  // the commands are still in the output buffer

  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return first_calls > 0; }, milliseconds(3000)));
  runLoopFor(loop_, milliseconds(50));
  EXPECT_EQ(backend, nullptr);
  EXPECT_EQ(first_calls, 1);
  EXPECT_NE(first_status, StorageStatus::kOk);
  EXPECT_EQ(second.calls, 1);
  EXPECT_EQ(third.calls, 1);
  EXPECT_EQ(second.result.status, StorageStatus::kUnavailable);
  EXPECT_EQ(third.result.status, StorageStatus::kUnavailable);
}

TEST_F(RedisBackendTest, ClearPrefixNeverDeletesOtherKeys) {
  startServer();
  // 1200 matching keys (several SCAN rounds of COUNT 500) and lookalikes that must survive.
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 1200; ++i) {
    mset.push_back("shop:1:" + std::to_string(i));
    mset.push_back("v");
  }
  const std::vector<std::string> survivors = {"shop:10:0",  "shop:1",   "shop:2:0", "Shop:1:0",
                                              "x:shop:1:0", "shop?1:0", "shop*1:0", "shop:11:x"};
  for (const std::string& key : survivors) {
    mset.push_back(key);
    mset.push_back("keep");
  }
  ASSERT_NE(server_.command(mset), nullptr);
  ASSERT_EQ(server_.dbSize(), 1200 + static_cast<long long>(survivors.size()));

  auto backend = makeBackend(optionsFor(server_.port()));
  Outcome<StorageStatus> outcome;
  backend->clearPrefix("shop:1:", outcome.callback());
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return outcome.calls > 0; }, milliseconds(8000)));
  EXPECT_EQ(outcome.result, StorageStatus::kOk);
  EXPECT_EQ(server_.dbSize(), static_cast<long long>(survivors.size()));
  for (const std::string& key : survivors) {
    EXPECT_TRUE(server_.exists(key)) << key;
  }

  // Glob characters in the prefix are literal: "shop*" must not match "shop:10:0".
  Outcome<StorageStatus> glob;
  backend->clearPrefix("shop*", glob.callback());
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return glob.calls > 0; }, milliseconds(5000)));
  EXPECT_EQ(glob.result, StorageStatus::kOk);
  EXPECT_FALSE(server_.exists("shop*1:0"));
  EXPECT_EQ(server_.dbSize(), static_cast<long long>(survivors.size()) - 1);
}

TEST_F(RedisBackendTest, UsesTheDatabaseFromTheLocation) {
  startServer();
  auto in_db3 = makeBackend(optionsFor(server_.port(), 3));
  auto in_db0 = makeBackend(optionsFor(server_.port(), 0));
  ASSERT_EQ(setSync(*in_db3, "k", "three"), StorageStatus::kOk);
  GetResult seen = getSync(*in_db3, "k");
  ASSERT_EQ(seen.status, StorageStatus::kOk);
  EXPECT_EQ(seen.blob->view(), "three");
  EXPECT_EQ(getSync(*in_db0, "k").status, StorageStatus::kNotFound);
  EXPECT_EQ(server_.dbSize(), 0);  // the helper talks to database 0
}

TEST_F(RedisBackendTest, FailedSelectDropsTheConnection) {
  startServer();
  auto backend = makeBackend(optionsFor(server_.port(), 999999));  // redis has 16 databases
  GetResult result = getSync(*backend, "k");
  EXPECT_EQ(result.status, StorageStatus::kUnavailable);
  EXPECT_GE(backend->client().stats().connect_failures, 1u);
  EXPECT_EQ(server_.dbSize(), 0);
}

TEST_F(RedisBackendTest, RedisErrorReplyIsError) {
  startServer();
  ASSERT_NE(server_.command({"LPUSH", "list", "x"}), nullptr);  // GET on a list is WRONGTYPE
  auto backend = makeBackend(optionsFor(server_.port()));
  EXPECT_EQ(getSync(*backend, "list").status, StorageStatus::kError);
}

TEST_F(RedisBackendTest, SetUsesPxExpiry) {
  startServer();
  auto backend = makeBackend(optionsFor(server_.port()));
  Outcome<StorageStatus> outcome;
  backend->set("k", makeBlob("v"), milliseconds(60000), outcome.callback());
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return outcome.calls > 0; }));
  ASSERT_EQ(outcome.result, StorageStatus::kOk);
  RedisServer::ReplyPtr pttl = server_.command({"PTTL", "k"});
  ASSERT_NE(pttl, nullptr);
  EXPECT_GT(pttl->integer, 50000);
  EXPECT_LE(pttl->integer, 60000);
}

TEST_F(RedisBackendTest, TwoBackendsOnTwoLoopThreadsShareEntries) {
  startServer();
  const RedisClientOptions options = optionsFor(server_.port());
  StorageStatus set_status = StorageStatus::kError;
  std::thread writer([&] {
    event::EventLoop loop;
    RedisBackend backend(loop, options, kMaxObjectBytes);
    int calls = 0;
    backend.set("shared", makeBlob("from-writer"), kLongTtl, [&](StorageStatus status) {
      set_status = status;
      ++calls;
    });
    runLoopUntil(
        loop, [&] { return calls > 0; }, milliseconds(5000));
  });
  writer.join();
  ASSERT_EQ(set_status, StorageStatus::kOk);

  GetResult seen{StorageStatus::kError, nullptr};
  std::thread reader([&] {
    event::EventLoop loop;
    RedisBackend backend(loop, options, kMaxObjectBytes);
    int calls = 0;
    backend.get("shared", [&](GetResult result) {
      seen = std::move(result);
      ++calls;
    });
    runLoopUntil(
        loop, [&] { return calls > 0; }, milliseconds(5000));
  });
  reader.join();
  ASSERT_EQ(seen.status, StorageStatus::kOk);
  EXPECT_EQ(seen.blob->view(), "from-writer");
}

}  // namespace
}  // namespace cachecar::storage
