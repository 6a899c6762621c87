// One conformance suite for every storage backend (Envoy's HttpCacheImplementationTest idea):
// each backend is instantiated below and must pass every test. The contract is the one written
// in include/cachecar/storage/backend.h.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/config/config.h"
#include "cachecar/event/event_loop.h"
#include "cachecar/storage/backend.h"
#include "cachecar/storage/memory_backend.h"
#include "cachecar/storage/redis_backend.h"
#include "cachecar/storage/registry.h"
#include "support/redis_server.h"

namespace cachecar::storage {

// Readable gtest output for statuses (found by argument-dependent lookup).
void PrintTo(StorageStatus status, std::ostream* out) { *out << toString(status); }

namespace {

using std::chrono::milliseconds;
using testing::RedisServer;
using testing::runLoopFor;
using testing::runLoopUntil;

constexpr uint64_t kMaxObjectBytes = 2ull << 20;
constexpr milliseconds kLongTtl = std::chrono::minutes(5);


// A backend's world for one test: a provider (and a redis-server for redis).
class BackendEnv {
 public:
  virtual ~BackendEnv() = default;
  // Empty when ready; otherwise why the test must be skipped or fails.
  virtual std::string setUp() = 0;
  virtual bool needsServer() const = 0;
  BackendPtr make(event::EventLoop& loop) { return provider_->createForLoop(loop); }

 protected:
  std::string createProvider(config::CacheSettings settings) {
    Registry registry;
    registerBuiltinBackends(registry);
    settings.name = "conformance";
    settings.max_object_bytes = kMaxObjectBytes;
    Result<BackendProviderPtr> provider = registry.create(settings);
    if (!provider) {
      return provider.error().message;
    }
    provider_ = std::move(provider).value();
    return {};
  }

 private:
  BackendProviderPtr provider_;
};

class MemoryEnv : public BackendEnv {
 public:
  std::string setUp() override {
    config::CacheSettings settings;
    settings.backend = "memory";
    settings.max_entries = 100000;
    settings.max_bytes = 64ull << 20;
    return createProvider(settings);
  }
  bool needsServer() const override { return false; }
};

class RedisEnv : public BackendEnv {
 public:
  std::string setUp() override {
    if (!server_.start()) {
      return server_.lastError();
    }
    config::CacheSettings settings;
    settings.backend = "redis";
    settings.location = server_.url();
    // Generous: these tests check behaviour, not speed, and may run under sanitizers.
    settings.connect_timeout = milliseconds(2000);
    settings.command_timeout = milliseconds(3000);
    return createProvider(settings);
  }
  bool needsServer() const override { return true; }

 private:
  RedisServer server_;
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<BackendEnv>()> make_env;
};

void PrintTo(const BackendParam& param, std::ostream* out) { *out << param.name; }

// Records one callback's calls: how many, the last result, and on which thread.
template <typename T>
struct Outcome {
  int calls = 0;
  T result{};
  std::thread::id thread;

  auto callback() {
    return [this](T value) {
      ++calls;
      result = std::move(value);
      thread = std::this_thread::get_id();
    };
  }
};

class BackendConformanceTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    env_ = GetParam().make_env();
    if (env_->needsServer() && !RedisServer::available()) {
      GTEST_SKIP() << RedisServer::unavailableReason();
    }
    const std::string error = env_->setUp();
    ASSERT_EQ(error, "");
    backend_ = env_->make(loop_);
    ASSERT_NE(backend_, nullptr);
  }

  void TearDown() override {
    backend_.reset();
    env_.reset();
  }

  // Runs the loop until the outcome has its callback, bounded.
  template <typename T>
  void await(const Outcome<T>& outcome, event::EventLoop& loop) {
    ASSERT_TRUE(runLoopUntil(
        loop, [&] { return outcome.calls > 0; }, milliseconds(8000)))
        << "callback never ran";
  }

  GetResult getSync(Backend& backend, event::EventLoop& loop, const std::string& key) {
    Outcome<GetResult> outcome;
    backend.get(key, outcome.callback());
    await(outcome, loop);
    EXPECT_EQ(outcome.calls, 1);
    return outcome.result;
  }
  GetResult getSync(const std::string& key) { return getSync(*backend_, loop_, key); }

  StorageStatus setSync(Backend& backend, event::EventLoop& loop, const std::string& key,
                        Blob value, milliseconds ttl = kLongTtl) {
    Outcome<StorageStatus> outcome;
    backend.set(key, std::move(value), ttl, outcome.callback());
    await(outcome, loop);
    EXPECT_EQ(outcome.calls, 1);
    return outcome.result;
  }
  StorageStatus setSync(const std::string& key, const std::string& value,
                        milliseconds ttl = kLongTtl) {
    return setSync(*backend_, loop_, key, makeBlob(value), ttl);
  }

  StorageStatus removeSync(const std::string& key) {
    Outcome<StorageStatus> outcome;
    backend_->remove(key, outcome.callback());
    await(outcome, loop_);
    EXPECT_EQ(outcome.calls, 1);
    return outcome.result;
  }

  StorageStatus clearPrefixSync(const std::string& prefix) {
    Outcome<StorageStatus> outcome;
    backend_->clearPrefix(prefix, outcome.callback());
    await(outcome, loop_);
    EXPECT_EQ(outcome.calls, 1);
    return outcome.result;
  }

  // Asserts the key holds exactly `bytes`.
  void expectValue(const std::string& key, const std::string& bytes) {
    GetResult result = getSync(key);
    ASSERT_EQ(result.status, StorageStatus::kOk) << key << ": " << toString(result.status);
    ASSERT_NE(result.blob, nullptr);
    EXPECT_EQ(result.blob->size(), bytes.size());
    EXPECT_TRUE(result.blob->view() == bytes) << key << ": bytes differ";
  }
  void expectMissing(const std::string& key) {
    EXPECT_EQ(getSync(key).status, StorageStatus::kNotFound) << key;
  }

  event::EventLoop loop_;  // first: outlives the backend and the env
  std::unique_ptr<BackendEnv> env_;
  BackendPtr backend_;
};

TEST_P(BackendConformanceTest, ReportsItsName) {
  EXPECT_EQ(backend_->backendName(), GetParam().name);
}

TEST_P(BackendConformanceTest, MissingKeyIsNotFoundWithoutBlob) {
  GetResult result = getSync("conf:1:missing");
  EXPECT_EQ(result.status, StorageStatus::kNotFound);
  EXPECT_EQ(result.blob, nullptr);
}

TEST_P(BackendConformanceTest, SetThenGetReturnsIdenticalBinaryBytes) {
  constexpr char kBinary[] = "head\0mid\xff\xfe\r\n\0tail";
  const std::string bytes(kBinary, sizeof(kBinary) - 1);
  ASSERT_EQ(bytes.size(), 17u);
  ASSERT_EQ(setSync("conf:1:binary", bytes), StorageStatus::kOk);
  expectValue("conf:1:binary", bytes);
}

TEST_P(BackendConformanceTest, EmptyValueRoundTrips) {
  ASSERT_EQ(setSync("conf:1:empty", ""), StorageStatus::kOk);
  expectValue("conf:1:empty", "");
}

TEST_P(BackendConformanceTest, OneMebibyteValueRoundTrips) {
  std::string bytes(1u << 20, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>((i * 131 + i / 256) & 0xff);  // every byte value, no period 256
  }
  ASSERT_EQ(setSync("conf:1:large", bytes), StorageStatus::kOk);
  expectValue("conf:1:large", bytes);
}

TEST_P(BackendConformanceTest, BinaryKeysAreDistinct) {
  const std::string key_a("conf:1:k\0a", 10);
  const std::string key_b("conf:1:k\0b", 10);
  ASSERT_EQ(setSync(key_a, "A"), StorageStatus::kOk);
  ASSERT_EQ(setSync(key_b, "B"), StorageStatus::kOk);
  expectValue(key_a, "A");
  expectValue(key_b, "B");
}

TEST_P(BackendConformanceTest, OverwriteReplacesValue) {
  ASSERT_EQ(setSync("conf:1:k", "first value"), StorageStatus::kOk);
  ASSERT_EQ(setSync("conf:1:k", "second"), StorageStatus::kOk);
  expectValue("conf:1:k", "second");
}

TEST_P(BackendConformanceTest, RemoveDeletesKeyAndIsOkForMissingKeys) {
  ASSERT_EQ(setSync("conf:1:gone", "v"), StorageStatus::kOk);
  ASSERT_EQ(setSync("conf:1:kept", "w"), StorageStatus::kOk);
  EXPECT_EQ(removeSync("conf:1:gone"), StorageStatus::kOk);
  expectMissing("conf:1:gone");
  expectValue("conf:1:kept", "w");
  EXPECT_EQ(removeSync("conf:1:never-there"), StorageStatus::kOk);
}

TEST_P(BackendConformanceTest, EntryExpiresAfterItsTtl) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(setSync("conf:1:ttl", "short-lived", milliseconds(300)), StorageStatus::kOk);
  ASSERT_EQ(setSync("conf:1:long", "long-lived", kLongTtl), StorageStatus::kOk);
  expectValue("conf:1:ttl", "short-lived");

  // Poll through the backend until it misses (the backend's own clock, bounded).
  StorageStatus status = StorageStatus::kOk;
  const bool expired = runLoopUntil(
      loop_,
      [&] {
        status = getSync("conf:1:ttl").status;
        return status != StorageStatus::kOk;
      },
      milliseconds(5000));
  ASSERT_TRUE(expired) << "entry still there after 5 s";
  EXPECT_EQ(status, StorageStatus::kNotFound);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(250));
  expectValue("conf:1:long", "long-lived");
}

TEST_P(BackendConformanceTest, ZeroOrNegativeTtlLeavesNothingStored) {
  ASSERT_EQ(setSync("conf:1:zero", "old"), StorageStatus::kOk);
  EXPECT_EQ(setSync("conf:1:zero", "new", milliseconds(0)), StorageStatus::kOk);
  expectMissing("conf:1:zero");
  EXPECT_EQ(setSync("conf:1:negative", "v", milliseconds(-5)), StorageStatus::kOk);
  expectMissing("conf:1:negative");
}

TEST_P(BackendConformanceTest, ClearPrefixRemovesOnlyKeysWithThatPrefix) {
  for (const char* key : {"a:1:x", "a:1:y", "a:2:x", "ab:1:x", "a:1", "b:a:1:x"}) {
    ASSERT_EQ(setSync(key, std::string("v-") + key), StorageStatus::kOk);
  }
  EXPECT_EQ(clearPrefixSync("a:1:"), StorageStatus::kOk);
  expectMissing("a:1:x");
  expectMissing("a:1:y");
  expectValue("a:2:x", "v-a:2:x");
  expectValue("ab:1:x", "v-ab:1:x");
  expectValue("a:1", "v-a:1");
  expectValue("b:a:1:x", "v-b:a:1:x");
}

TEST_P(BackendConformanceTest, ClearPrefixTakesGlobCharactersLiterally) {
  const std::vector<std::string> keys = {"p*:1", "p?:1", "p[a]:1", "pa:1", "p\\:1", "pz:1", "p]:1"};
  for (const std::string& key : keys) {
    ASSERT_EQ(setSync(key, "v"), StorageStatus::kOk);
  }
  EXPECT_EQ(clearPrefixSync("p*"), StorageStatus::kOk);
  expectMissing("p*:1");
  EXPECT_EQ(clearPrefixSync("p?"), StorageStatus::kOk);
  expectMissing("p?:1");
  EXPECT_EQ(clearPrefixSync("p[a]"), StorageStatus::kOk);
  expectMissing("p[a]:1");
  EXPECT_EQ(clearPrefixSync("p\\"), StorageStatus::kOk);
  expectMissing("p\\:1");
  for (const char* key : {"pa:1", "pz:1", "p]:1"}) {
    expectValue(key, "v");
  }
}

TEST_P(BackendConformanceTest, ClearPrefixWithNoMatchesIsOk) {
  ASSERT_EQ(setSync("keep:1", "v"), StorageStatus::kOk);
  EXPECT_EQ(clearPrefixSync("nothing-here:"), StorageStatus::kOk);
  expectValue("keep:1", "v");
}

TEST_P(BackendConformanceTest, ValueOverMaxObjectBytesIsTooLargeAndNotStored) {
  EXPECT_EQ(setSync("conf:1:big", std::string(kMaxObjectBytes + 1, 'x')), StorageStatus::kTooLarge);
  expectMissing("conf:1:big");
  // Exactly at the bound is fine.
  EXPECT_EQ(setSync("conf:1:edge", std::string(kMaxObjectBytes, 'y')), StorageStatus::kOk);
  expectValue("conf:1:edge", std::string(kMaxObjectBytes, 'y'));
}

TEST_P(BackendConformanceTest, NullValueIsAnError) {
  EXPECT_EQ(setSync(*backend_, loop_, "conf:1:null", nullptr), StorageStatus::kError);
  expectMissing("conf:1:null");
}

TEST_P(BackendConformanceTest, CountersStartAtZeroAddAndAreReadWithDeltaZero) {
  auto add = [&](const std::string& key, int64_t delta) {
    struct Answer {
      int calls = 0;
      StorageStatus status = StorageStatus::kError;
      int64_t value = -1;
    } answer;
    backend_->addToCounter(key, delta, [&answer](StorageStatus status, int64_t value) {
      ++answer.calls;
      answer.status = status;
      answer.value = value;
    });
    EXPECT_TRUE(runLoopUntil(loop_, [&] { return answer.calls > 0; }, milliseconds(8000)));
    EXPECT_EQ(answer.calls, 1);
    EXPECT_EQ(answer.status, StorageStatus::kOk) << toString(answer.status);
    return answer.value;
  };
  EXPECT_EQ(add("conf:bumps", 0), 0);
  EXPECT_EQ(add("conf:bumps", 1), 1);
  EXPECT_EQ(add("conf:bumps", 1), 2);
  EXPECT_EQ(add("conf:bumps", 0), 2);
  EXPECT_EQ(add("conf:other-bumps", 5), 5);
  // Clearing a cache's entries leaves counters outside its namespace alone.
  EXPECT_EQ(clearPrefixSync("conf:1:"), StorageStatus::kOk);
  EXPECT_EQ(add("conf:bumps", 0), 2);
}

TEST_P(BackendConformanceTest, CounterIsSharedByBackendsOnTwoLoops) {
  event::EventLoop other_loop;
  BackendPtr other = env_->make(other_loop);
  ASSERT_NE(other, nullptr);
  int64_t seen = -1;
  int calls = 0;
  backend_->addToCounter("conf:shared", 3, [&](StorageStatus, int64_t value) {
    ++calls;
    seen = value;
  });
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return calls > 0; }, milliseconds(8000)));
  ASSERT_EQ(seen, 3);
  other->addToCounter("conf:shared", 0, [&](StorageStatus, int64_t value) {
    ++calls;
    seen = value;
  });
  ASSERT_TRUE(runLoopUntil(other_loop, [&] { return calls > 1; }, milliseconds(8000)));
  EXPECT_EQ(seen, 3);
  other.reset();
}

TEST_P(BackendConformanceTest, EveryCallbackRunsExactlyOnce) {
  ASSERT_EQ(setSync("conf:1:once", "v"), StorageStatus::kOk);
  Outcome<GetResult> hit;
  Outcome<GetResult> miss;
  Outcome<StorageStatus> set;
  Outcome<StorageStatus> too_large;
  Outcome<StorageStatus> remove;
  Outcome<StorageStatus> clear;
  backend_->get("conf:1:once", hit.callback());
  backend_->get("conf:1:none", miss.callback());
  backend_->set("conf:1:other", makeBlob("w"), kLongTtl, set.callback());
  backend_->set("conf:1:huge", makeBlob(std::string(kMaxObjectBytes + 1, 'z')), kLongTtl,
                too_large.callback());
  backend_->remove("conf:1:other2", remove.callback());
  backend_->clearPrefix("conf:2:", clear.callback());
  auto all_done = [&] {
    return hit.calls > 0 && miss.calls > 0 && set.calls > 0 && too_large.calls > 0 &&
           remove.calls > 0 && clear.calls > 0;
  };
  ASSERT_TRUE(runLoopUntil(loop_, all_done, milliseconds(8000)));
  runLoopFor(loop_, milliseconds(100));  // any second call would show up here
  EXPECT_EQ(hit.calls, 1);
  EXPECT_EQ(miss.calls, 1);
  EXPECT_EQ(set.calls, 1);
  EXPECT_EQ(too_large.calls, 1);
  EXPECT_EQ(remove.calls, 1);
  EXPECT_EQ(clear.calls, 1);
  EXPECT_EQ(hit.result.status, StorageStatus::kOk);
  EXPECT_EQ(miss.result.status, StorageStatus::kNotFound);
  EXPECT_EQ(set.result, StorageStatus::kOk);
  EXPECT_EQ(too_large.result, StorageStatus::kTooLarge);
  EXPECT_EQ(remove.result, StorageStatus::kOk);
  EXPECT_EQ(clear.result, StorageStatus::kOk);
}

TEST_P(BackendConformanceTest, CallbacksRunOnTheOwningLoopThread) {
  // The backend lives on a loop driven by another thread; every callback must run there.
  std::thread::id worker_id;
  std::vector<std::thread::id> callback_threads;
  int completed = 0;
  std::string failure;
  std::thread worker([&] {
    worker_id = std::this_thread::get_id();
    event::EventLoop loop;
    BackendPtr backend = env_->make(loop);
    auto note = [&] {
      callback_threads.push_back(std::this_thread::get_id());
      ++completed;
    };
    backend->set("conf:1:thread", makeBlob("v"), kLongTtl, [&](StorageStatus) { note(); });
    backend->get("conf:1:thread", [&](GetResult) { note(); });
    backend->remove("conf:1:thread", [&](StorageStatus) { note(); });
    backend->clearPrefix("conf:1:", [&](StorageStatus) { note(); });
    if (!runLoopUntil(
            loop, [&] { return completed == 4; }, milliseconds(8000))) {
      failure = "callbacks did not complete";
    }
  });
  worker.join();
  ASSERT_EQ(failure, "");
  ASSERT_EQ(callback_threads.size(), 4u);
  for (const std::thread::id& id : callback_threads) {
    EXPECT_EQ(id, worker_id);
  }
  EXPECT_NE(worker_id, std::this_thread::get_id());
}

TEST_P(BackendConformanceTest, DestroyingBackendCompletesPendingOperations) {
  ASSERT_EQ(setSync("conf:1:pending", "v"), StorageStatus::kOk);
  Outcome<GetResult> get;
  Outcome<StorageStatus> set;
  Outcome<StorageStatus> remove;
  Outcome<StorageStatus> clear;
  backend_->get("conf:1:pending", get.callback());
  backend_->set("conf:1:pending2", makeBlob("w"), kLongTtl, set.callback());
  backend_->remove("conf:1:pending", remove.callback());
  backend_->clearPrefix("conf:1:", clear.callback());
  const bool in_process = backend_->inProcess();
  backend_.reset();  // without running the loop: remote operations are still in flight
  EXPECT_EQ(get.calls, 1);
  EXPECT_EQ(set.calls, 1);
  EXPECT_EQ(remove.calls, 1);
  EXPECT_EQ(clear.calls, 1);
  if (!in_process) {
    EXPECT_EQ(get.result.status, StorageStatus::kUnavailable);
    EXPECT_EQ(get.result.blob, nullptr);
    EXPECT_EQ(set.result, StorageStatus::kUnavailable);
    EXPECT_EQ(remove.result, StorageStatus::kUnavailable);
    EXPECT_EQ(clear.result, StorageStatus::kUnavailable);
  }
  runLoopFor(loop_, milliseconds(100));  // late replies must reach nobody
  EXPECT_EQ(get.calls, 1);
  EXPECT_EQ(set.calls, 1);
  EXPECT_EQ(remove.calls, 1);
  EXPECT_EQ(clear.calls, 1);
}

TEST_P(BackendConformanceTest, CallbackMayDestroyTheBackend) {
  ASSERT_EQ(setSync("conf:1:self", "v"), StorageStatus::kOk);
  Outcome<GetResult> second;
  int first_calls = 0;
  StorageStatus first_status = StorageStatus::kError;
  const bool in_process = backend_->inProcess();
  backend_->get("conf:1:self", [&](GetResult result) {
    ++first_calls;
    first_status = result.status;
    backend_.reset();
  });
  if (backend_) {
    backend_->get("conf:1:self", second.callback());
  }
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return first_calls > 0; }, milliseconds(8000)));
  runLoopFor(loop_, milliseconds(50));
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(first_status, StorageStatus::kOk);
  EXPECT_EQ(backend_, nullptr);
  if (!in_process) {
    // Queued behind the first: completed when the backend went away.
    EXPECT_EQ(second.calls, 1);
    EXPECT_EQ(second.result.status, StorageStatus::kUnavailable);
  }
}

TEST_P(BackendConformanceTest, BackendsOnTwoLoopsShareEntries) {
  event::EventLoop other_loop;
  BackendPtr other = env_->make(other_loop);
  ASSERT_EQ(setSync("conf:1:shared", "from-first"), StorageStatus::kOk);
  GetResult seen = getSync(*other, other_loop, "conf:1:shared");
  ASSERT_EQ(seen.status, StorageStatus::kOk);
  EXPECT_EQ(seen.blob->view(), "from-first");
  ASSERT_EQ(setSync(*other, other_loop, "conf:1:shared", makeBlob("from-second")),
            StorageStatus::kOk);
  expectValue("conf:1:shared", "from-second");
  other.reset();
}

INSTANTIATE_TEST_SUITE_P(
    Backends, BackendConformanceTest,
    ::testing::Values(BackendParam{"memory", [] { return std::make_unique<MemoryEnv>(); }},
                      BackendParam{"redis", [] { return std::make_unique<RedisEnv>(); }}),
    [](const ::testing::TestParamInfo<BackendParam>& param_info) { return param_info.param.name; });

// The registry is how the config reaches the backends.
TEST(RegistryTest, BuiltinNamesAreRegisteredSorted) {
  Registry registry;
  registerBuiltinBackends(registry);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"memory", "redis"}));
  EXPECT_EQ(builtinBackendNames(), registry.names());
  EXPECT_TRUE(registry.has("memory"));
  EXPECT_TRUE(registry.has("redis"));
  EXPECT_FALSE(registry.has("mem"));
}

TEST(RegistryTest, UnknownBackendNamesTheValidOnes) {
  Registry registry;
  registerBuiltinBackends(registry);
  config::CacheSettings settings;
  settings.backend = "mem";
  Result<BackendProviderPtr> provider = registry.create(settings);
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.error().message, "unknown backend 'mem'; valid: memory, redis");
}

TEST(RegistryTest, CustomFactoriesCanBeAdded) {
  Registry registry;
  int calls = 0;
  registry.add("fake", [&](const config::CacheSettings&) -> Result<BackendProviderPtr> {
    ++calls;
    return Error{"fake refuses"};
  });
  config::CacheSettings settings;
  settings.backend = "fake";
  Result<BackendProviderPtr> provider = registry.create(settings);
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.error().message, "fake refuses");
  EXPECT_EQ(calls, 1);
}

TEST(RegistryTest, ProvidersValidateTheirOptions) {
  Registry registry;
  registerBuiltinBackends(registry);
  config::CacheSettings memory;
  memory.name = "local";
  memory.backend = "memory";
  EXPECT_TRUE(registry.create(memory).ok());
  memory.max_entries = 0;
  Result<BackendProviderPtr> bad_memory = registry.create(memory);
  ASSERT_FALSE(bad_memory.ok());
  EXPECT_NE(bad_memory.error().message.find("max_entries"), std::string::npos);

  config::CacheSettings redis;
  redis.name = "shared";
  redis.backend = "redis";
  EXPECT_FALSE(registry.create(redis).ok());  // no location
  redis.location = "http://127.0.0.1:6379";
  Result<BackendProviderPtr> bad_scheme = registry.create(redis);
  ASSERT_FALSE(bad_scheme.ok());
  EXPECT_NE(bad_scheme.error().message.find("redis://"), std::string::npos);
  redis.location = "redis://127.0.0.1:6379/2";
  redis.command_timeout = milliseconds(0);
  EXPECT_FALSE(registry.create(redis).ok());
  redis.command_timeout = milliseconds(100);
  Result<BackendProviderPtr> good = registry.create(redis);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ((*good)->backendName(), "redis");
}

}  // namespace
}  // namespace cachecar::storage
