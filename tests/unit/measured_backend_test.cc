#include "cachecar/storage/measured_backend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "cachecar/event/event_loop.h"
#include "cachecar/metrics/metrics.h"
#include "cachecar/redis/redis_client.h"
#include "cachecar/storage/memory_backend.h"
#include "cachecar/storage/redis_backend.h"
#include "support/redis_server.h"

namespace cachecar::storage {

// Readable gtest output for statuses (found by argument-dependent lookup).
void PrintTo(StorageStatus status, std::ostream* out) { *out << toString(status); }

namespace {

using std::chrono::milliseconds;
using testing::RedisServer;
using testing::runLoopFor;
using testing::runLoopUntil;

constexpr milliseconds kLongTtl = std::chrono::minutes(5);
constexpr uint64_t kMaxObjectBytes = 1024;
constexpr size_t kSlot = 1;

const std::vector<std::string> kResults = {"ok",      "not_found", "unavailable",
                                           "timeout", "too_large", "error"};
const std::vector<std::string> kOps = {"get", "set", "remove", "clear", "add_to_counter"};


template <typename T>
struct Outcome {
  int calls = 0;
  T result{};

  auto callback() {
    return [this](T value) {
      ++calls;
      result = std::move(value);
    };
  }
};

// Reads the storage series of one cache and backend out of a registry.
class StorageSeries {
 public:
  StorageSeries(metrics::Registry& registry, std::string cache, std::string backend)
      : registry_(registry), cache_(std::move(cache)), backend_(std::move(backend)) {}

  uint64_t ops(const std::string& op, const std::string& result) const {
    return registry_.counter(kStorageOperationsTotal, {cache_, backend_, op, result}).value();
  }
  uint64_t opsOfAnyResult(const std::string& op) const {
    uint64_t total = 0;
    for (const std::string& result : kResults) {
      total += ops(op, result);
    }
    return total;
  }
  uint64_t errors(const std::string& op) const {
    return registry_.counter(kStorageErrorsTotal, {cache_, backend_, op}).value();
  }
  metrics::Histogram::Snapshot duration(const std::string& op) const {
    return registry_.histogram(kStorageOperationDuration, {cache_, backend_, op}).snapshot();
  }

 private:
  metrics::Registry& registry_;
  std::string cache_;
  std::string backend_;
};

class MeasuredMemoryBackendTest : public ::testing::Test {
 protected:
  MeasuredMemoryBackendTest() : registry_(4), provider_(memoryOptions()) {
    declareStorageMetrics(registry_);
    backend_ = measureBackend(provider_.createForLoop(loop_), registry_, kSlot, "main");
  }

  static MemoryStoreOptions memoryOptions() {
    MemoryStoreOptions options;
    options.max_entries = 100;
    options.max_bytes = 1 << 20;
    options.max_object_bytes = kMaxObjectBytes;
    return options;
  }

  StorageStatus setSync(const std::string& key, std::string value) {
    Outcome<StorageStatus> outcome;
    backend_->set(key, makeBlob(std::move(value)), kLongTtl, outcome.callback());
    EXPECT_EQ(outcome.calls, 1);  // the memory backend answers inside the call
    return outcome.result;
  }
  GetResult getSync(const std::string& key) {
    Outcome<GetResult> outcome;
    backend_->get(key, outcome.callback());
    EXPECT_EQ(outcome.calls, 1);
    return outcome.result;
  }

  metrics::Registry registry_;
  event::EventLoop loop_;
  MemoryProvider provider_;
  BackendPtr backend_;
  StorageSeries series_{registry_, "main", "memory"};
};

TEST_F(MeasuredMemoryBackendTest, CountsEachOperationByResult) {
  EXPECT_EQ(getSync("k").status, StorageStatus::kNotFound);
  EXPECT_EQ(series_.ops("get", "not_found"), 1u);
  EXPECT_EQ(series_.opsOfAnyResult("get"), 1u);

  EXPECT_EQ(setSync("k", "value"), StorageStatus::kOk);
  EXPECT_EQ(series_.ops("set", "ok"), 1u);

  const GetResult hit = getSync("k");
  ASSERT_EQ(hit.status, StorageStatus::kOk);
  EXPECT_EQ(hit.blob->view(), "value");  // the result passes through untouched
  EXPECT_EQ(series_.ops("get", "ok"), 1u);
  EXPECT_EQ(series_.ops("get", "not_found"), 1u);

  Outcome<StorageStatus> removed;
  backend_->remove("k", removed.callback());
  EXPECT_EQ(removed.calls, 1);
  EXPECT_EQ(removed.result, StorageStatus::kOk);
  EXPECT_EQ(series_.ops("remove", "ok"), 1u);
  EXPECT_EQ(getSync("k").status, StorageStatus::kNotFound);
  EXPECT_EQ(series_.ops("get", "not_found"), 2u);

  ASSERT_EQ(setSync("p:1", "a"), StorageStatus::kOk);
  Outcome<StorageStatus> cleared;
  backend_->clearPrefix("p:", cleared.callback());
  EXPECT_EQ(cleared.calls, 1);
  EXPECT_EQ(cleared.result, StorageStatus::kOk);
  EXPECT_EQ(series_.ops("clear", "ok"), 1u);
  EXPECT_EQ(series_.ops("set", "ok"), 2u);

  int counter_calls = 0;
  int64_t counter_value = 0;
  backend_->addToCounter("v", 3, [&](StorageStatus status, int64_t value) {
    ++counter_calls;
    EXPECT_EQ(status, StorageStatus::kOk);
    counter_value = value;
  });
  EXPECT_EQ(counter_calls, 1);
  EXPECT_EQ(counter_value, 3);
  EXPECT_EQ(series_.ops("add_to_counter", "ok"), 1u);

  // None of these is an error.
  for (const std::string& op : kOps) {
    EXPECT_EQ(series_.errors(op), 0u) << op;
  }
}

TEST_F(MeasuredMemoryBackendTest, ObjectOverMaxObjectBytesIsTooLarge) {
  EXPECT_EQ(setSync("big", std::string(kMaxObjectBytes + 1, 'x')), StorageStatus::kTooLarge);
  EXPECT_EQ(series_.ops("set", "too_large"), 1u);
  EXPECT_EQ(series_.ops("set", "ok"), 0u);
  EXPECT_EQ(series_.errors("set"), 0u);  // refusing a large object is not a backend failure
  EXPECT_EQ(series_.duration("set").count, 1u);
}

TEST_F(MeasuredMemoryBackendTest, HistogramCountEqualsOperationCount) {
  ASSERT_EQ(setSync("a", "1"), StorageStatus::kOk);
  ASSERT_EQ(setSync("b", "2"), StorageStatus::kOk);
  ASSERT_EQ(setSync("huge", std::string(kMaxObjectBytes * 2, 'y')), StorageStatus::kTooLarge);
  for (int i = 0; i < 5; ++i) {
    getSync(i % 2 == 0 ? "a" : "missing");
  }
  Outcome<StorageStatus> removed;
  backend_->remove("a", removed.callback());
  for (const std::string& op : kOps) {
    const metrics::Histogram::Snapshot duration = series_.duration(op);
    EXPECT_EQ(duration.count, series_.opsOfAnyResult(op)) << op;
    EXPECT_GE(duration.sum_seconds, 0.0);
    // A memory operation takes well under 10 s: nothing lands in the +Inf bucket only.
    EXPECT_EQ(duration.cumulative.back(), duration.count) << op;
  }
  EXPECT_EQ(series_.duration("get").count, 5u);
  EXPECT_EQ(series_.duration("set").count, 3u);
  EXPECT_EQ(series_.duration("remove").count, 1u);
  EXPECT_EQ(series_.duration("clear").count, 0u);
}

TEST_F(MeasuredMemoryBackendTest, ForwardsNameStatsAndInProcess) {
  EXPECT_EQ(backend_->backendName(), "memory");
  EXPECT_TRUE(backend_->inProcess());
  EXPECT_EQ(backend_->stats().entries, 0u);
  ASSERT_EQ(setSync("a", "12345"), StorageStatus::kOk);
  const BackendStats wrapped = backend_->stats();
  const BackendStats inner = provider_.store()->stats();
  EXPECT_EQ(wrapped.entries, 1u);
  EXPECT_EQ(wrapped.entries, inner.entries);
  EXPECT_EQ(wrapped.bytes, inner.bytes);
  EXPECT_EQ(wrapped.bytes, MemoryStore::entryCost(1, 5));
  EXPECT_EQ(wrapped.evictions, inner.evictions);
}

TEST_F(MeasuredMemoryBackendTest, EverySeriesExistsFromTheStartAndRenders) {
  getSync("x");
  const std::string text = registry_.render();
  // Series the wrapper never touched are there with zeros.
  const std::string prefix =
      "cachecar_storage_operations_total{cache=\"main\",backend=\"memory\",op=\"";
  for (const std::string& op : kOps) {
    for (const std::string& result : kResults) {
      const std::string line = prefix + op + "\",result=\"" + result + "\"} ";
      EXPECT_NE(text.find(line), std::string::npos) << line;
    }
    const std::string errors =
        "cachecar_storage_errors_total{cache=\"main\",backend=\"memory\",op=\"" + op + "\"} 0\n";
    EXPECT_NE(text.find(errors), std::string::npos) << errors;
  }
  EXPECT_NE(text.find("cachecar_storage_operations_total{cache=\"main\",backend=\"memory\","
                      "op=\"get\",result=\"not_found\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("cachecar_storage_operation_duration_seconds_count{cache=\"main\","
                      "backend=\"memory\",op=\"get\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE cachecar_storage_operation_duration_seconds histogram\n"),
            std::string::npos);
}

TEST_F(MeasuredMemoryBackendTest, TwoCachesOnOneRegistryCountApart) {
  MemoryProvider other_provider(memoryOptions());
  BackendPtr other = measureBackend(other_provider.createForLoop(loop_), registry_, 0, "other");
  Outcome<GetResult> miss;
  other->get("k", miss.callback());
  EXPECT_EQ(miss.calls, 1);
  StorageSeries other_series(registry_, "other", "memory");
  EXPECT_EQ(other_series.ops("get", "not_found"), 1u);
  EXPECT_EQ(series_.ops("get", "not_found"), 0u);
}

// An inner backend that answers later (like a network store): holds its callbacks until told
// to complete them, and completes what is left with kUnavailable when destroyed (the contract).
class DeferredBackend final : public Backend {
 public:
  ~DeferredBackend() override { completeAll(StorageStatus::kUnavailable); }

  std::string_view backendName() const override { return "deferred"; }
  void get(const std::string&, GetCallback cb) override { gets_.push_back(std::move(cb)); }
  void set(const std::string&, Blob, std::chrono::milliseconds, DoneCallback cb) override {
    dones_.push_back(std::move(cb));
  }
  void remove(const std::string&, DoneCallback cb) override { dones_.push_back(std::move(cb)); }
  void clearPrefix(const std::string&, DoneCallback cb) override {
    dones_.push_back(std::move(cb));
  }
  void addToCounter(const std::string&, int64_t, CounterCallback cb) override {
    counters_.push_back(std::move(cb));
  }
  BackendStats stats() const override { return {7, 8, 9}; }

  void completeAll(StorageStatus status) {
    auto gets = std::move(gets_);
    auto dones = std::move(dones_);
    auto counters = std::move(counters_);
    gets_.clear();
    dones_.clear();
    counters_.clear();
    for (auto& cb : gets) {
      cb(GetResult{status, nullptr});
    }
    for (auto& cb : dones) {
      cb(status);
    }
    for (auto& cb : counters) {
      cb(status, 0);
    }
  }

 private:
  std::vector<GetCallback> gets_;
  std::vector<DoneCallback> dones_;
  std::vector<CounterCallback> counters_;
};

TEST(MeasuredBackendTest, CompletesPendingOperationsOnceWhenDestroyed) {
  metrics::Registry registry(2);
  declareStorageMetrics(registry);
  auto inner = std::make_unique<DeferredBackend>();
  DeferredBackend* raw = inner.get();
  BackendPtr backend = measureBackend(std::move(inner), registry, 0, "c");
  EXPECT_EQ(backend->backendName(), "deferred");
  EXPECT_FALSE(backend->inProcess());
  EXPECT_EQ(backend->stats().evictions, 9u);

  Outcome<GetResult> answered;
  backend->get("a", answered.callback());
  EXPECT_EQ(answered.calls, 0);  // not before the inner backend answers
  raw->completeAll(StorageStatus::kTimeout);
  EXPECT_EQ(answered.calls, 1);
  EXPECT_EQ(answered.result.status, StorageStatus::kTimeout);

  Outcome<GetResult> get;
  Outcome<StorageStatus> set;
  Outcome<StorageStatus> remove;
  Outcome<StorageStatus> clear;
  int counter_calls = 0;
  backend->get("a", get.callback());
  backend->set("a", makeBlob("v"), kLongTtl, set.callback());
  backend->remove("a", remove.callback());
  backend->clearPrefix("", clear.callback());
  backend->addToCounter("n", 1, [&](StorageStatus, int64_t) { ++counter_calls; });
  backend.reset();
  EXPECT_EQ(get.calls, 1);
  EXPECT_EQ(get.result.status, StorageStatus::kUnavailable);
  EXPECT_EQ(set.calls, 1);
  EXPECT_EQ(set.result, StorageStatus::kUnavailable);
  EXPECT_EQ(remove.calls, 1);
  EXPECT_EQ(clear.calls, 1);
  EXPECT_EQ(counter_calls, 1);

  StorageSeries series(registry, "c", "deferred");
  EXPECT_EQ(series.ops("get", "timeout"), 1u);
  EXPECT_EQ(series.ops("get", "unavailable"), 1u);
  EXPECT_EQ(series.errors("get"), 2u);
  for (const std::string op : {"set", "remove", "clear", "add_to_counter"}) {
    EXPECT_EQ(series.ops(op, "unavailable"), 1u) << op;
    EXPECT_EQ(series.errors(op), 1u) << op;
    EXPECT_EQ(series.duration(op).count, 1u) << op;
  }
  EXPECT_EQ(series.duration("get").count, 2u);
}

TEST(MeasuredBackendTest, CallbackMayDestroyTheWrapper) {
  metrics::Registry registry(1);
  declareStorageMetrics(registry);
  auto inner = std::make_unique<DeferredBackend>();
  DeferredBackend* raw = inner.get();
  BackendPtr backend = measureBackend(std::move(inner), registry, 0, "c");
  int calls = 0;
  backend->get("a", [&](GetResult) {
    ++calls;
    backend.reset();  // destroys the wrapper (and the inner backend) from inside a callback
  });
  raw->completeAll(StorageStatus::kNotFound);  // raw is destroyed during this; not used after
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(backend, nullptr);
  EXPECT_EQ(StorageSeries(registry, "c", "deferred").ops("get", "not_found"), 1u);
}

// The real network backend: answers after the call returns; timeouts and teardown are errors.
class MeasuredRedisBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) {
      GTEST_SKIP() << RedisServer::unavailableReason();
    }
    ASSERT_TRUE(server_.start()) << server_.lastError();
    declareStorageMetrics(registry_);
  }

  BackendPtr makeBackend() {
    redis::RedisClientOptions options;
    options.address.host = "127.0.0.1";
    options.address.port = server_.port();
    options.connect_timeout = milliseconds(500);
    options.command_timeout = milliseconds(150);
    options.stall_timeout = milliseconds(5000);
    auto inner = std::make_unique<RedisBackend>(loop_, options, kMaxObjectBytes);
    return measureBackend(std::move(inner), registry_, 0, "shared");
  }

  metrics::Registry registry_{2};
  RedisServer server_;
  event::EventLoop loop_;
  StorageSeries series_{registry_, "shared", "redis"};
};

TEST_F(MeasuredRedisBackendTest, CountsAsynchronousResultsTimeoutsAndTeardown) {
  BackendPtr backend = makeBackend();
  EXPECT_EQ(backend->backendName(), "redis");
  EXPECT_FALSE(backend->inProcess());

  Outcome<StorageStatus> set;
  backend->set("k", makeBlob("v"), kLongTtl, set.callback());
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return set.calls > 0; }));
  EXPECT_EQ(set.result, StorageStatus::kOk);
  Outcome<GetResult> hit;
  Outcome<GetResult> miss;
  backend->get("k", hit.callback());
  backend->get("absent", miss.callback());
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return hit.calls > 0 && miss.calls > 0; }));
  EXPECT_EQ(hit.result.status, StorageStatus::kOk);
  EXPECT_EQ(miss.result.status, StorageStatus::kNotFound);
  EXPECT_EQ(series_.ops("set", "ok"), 1u);
  EXPECT_EQ(series_.ops("get", "ok"), 1u);
  EXPECT_EQ(series_.ops("get", "not_found"), 1u);

  // A too-large value is refused before anything is sent.
  Outcome<StorageStatus> big;
  backend->set("big", makeBlob(std::string(kMaxObjectBytes + 1, 'x')), kLongTtl, big.callback());
  ASSERT_TRUE(runLoopUntil(loop_, [&] { return big.calls > 0; }));
  EXPECT_EQ(series_.ops("set", "too_large"), 1u);

  // A paused server: the command times out (an error).
  server_.pause();
  Outcome<GetResult> slow;
  backend->get("k", slow.callback());
  ASSERT_TRUE(runLoopUntil(
      loop_, [&] { return slow.calls > 0; }, milliseconds(3000)));
  EXPECT_EQ(slow.result.status, StorageStatus::kTimeout);
  EXPECT_EQ(series_.ops("get", "timeout"), 1u);
  EXPECT_EQ(series_.errors("get"), 1u);
  // Its duration is at least the command timeout.
  const metrics::Histogram::Snapshot get_duration = series_.duration("get");
  EXPECT_EQ(get_duration.count, 3u);
  EXPECT_GE(get_duration.sum_seconds, 0.15);

  // Destroyed with an operation in flight: completed once, as unavailable.
  Outcome<StorageStatus> pending;
  backend->remove("k", pending.callback());
  backend.reset();
  EXPECT_EQ(pending.calls, 1);
  EXPECT_EQ(pending.result, StorageStatus::kUnavailable);
  server_.resume();
  runLoopFor(loop_, milliseconds(50));  // a late reply must reach nobody
  EXPECT_EQ(pending.calls, 1);
  EXPECT_EQ(series_.ops("remove", "unavailable"), 1u);
  EXPECT_EQ(series_.errors("remove"), 1u);
  EXPECT_EQ(series_.duration("remove").count, 1u);
}

}  // namespace
}  // namespace cachecar::storage
