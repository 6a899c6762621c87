#include "cachecar/storage/measured_backend.h"

#include <array>
#include <chrono>
#include <memory>
#include <utility>

namespace cachecar::storage {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::array kAllStatuses = {
    StorageStatus::kOk,      StorageStatus::kNotFound, StorageStatus::kUnavailable,
    StorageStatus::kTimeout, StorageStatus::kTooLarge, StorageStatus::kError,
};
constexpr size_t kStatusCount = kAllStatuses.size();

constexpr bool isError(StorageStatus status) {
  return status == StorageStatus::kUnavailable || status == StorageStatus::kTimeout ||
         status == StorageStatus::kError;
}

// The series of one operation, resolved once. Copied by value into each wrapping callback
// (a few pointers), so a callback never depends on the wrapper being alive; the series live as
// long as the registry.
struct OpSeries {
  std::array<metrics::Counter*, kStatusCount> by_status{};
  metrics::Counter* errors = nullptr;
  metrics::Histogram* duration = nullptr;

  void record(size_t slot, StorageStatus status, Clock::time_point start) const noexcept {
    duration->observe(slot, Clock::now() - start);
    auto index = static_cast<size_t>(status);
    if (index >= kStatusCount) {
      index = static_cast<size_t>(StorageStatus::kError);  // an unknown status is a failure
    }
    by_status[index]->add(slot);
    if (isError(status) || index != static_cast<size_t>(status)) {
      errors->add(slot);
    }
  }
};

enum Op : size_t { kGet, kSet, kRemove, kClear, kAddToCounter, kOpCount };
constexpr std::array<std::string_view, kOpCount> kOpNames = {kOpGet, kOpSet, kOpRemove, kOpClear,
                                                             kOpAddToCounter};

class MeasuredBackend final : public Backend {
 public:
  MeasuredBackend(BackendPtr inner, metrics::Registry& registry, size_t slot,
                  const std::string& cache_name)
      : inner_(std::move(inner)), slot_(slot) {
    const std::string backend(inner_->backendName());
    for (size_t op = 0; op < kOpCount; ++op) {
      const std::string op_name(kOpNames[op]);
      OpSeries& series = ops_[op];
      for (size_t s = 0; s < kStatusCount; ++s) {
        series.by_status[s] = &registry.counter(
            kStorageOperationsTotal,
            {cache_name, backend, op_name, std::string(toString(kAllStatuses[s]))});
      }
      series.errors = &registry.counter(kStorageErrorsTotal, {cache_name, backend, op_name});
      series.duration =
          &registry.histogram(kStorageOperationDuration, {cache_name, backend, op_name});
    }
  }

  std::string_view backendName() const override { return inner_->backendName(); }

  void get(const std::string& key, GetCallback cb) override {
    inner_->get(key, [series = ops_[kGet], slot = slot_, start = Clock::now(),
                      cb = std::move(cb)](GetResult result) {
      series.record(slot, result.status, start);
      cb(std::move(result));
    });
  }

  void set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
           DoneCallback cb) override {
    inner_->set(key, std::move(value), ttl, wrapDone(kSet, std::move(cb)));
  }

  void remove(const std::string& key, DoneCallback cb) override {
    inner_->remove(key, wrapDone(kRemove, std::move(cb)));
  }

  void clearPrefix(const std::string& prefix, DoneCallback cb) override {
    inner_->clearPrefix(prefix, wrapDone(kClear, std::move(cb)));
  }

  void addToCounter(const std::string& key, int64_t delta, CounterCallback cb) override {
    inner_->addToCounter(key, delta,
                         [series = ops_[kAddToCounter], slot = slot_, start = Clock::now(),
                          cb = std::move(cb)](StorageStatus status, int64_t value) {
                           series.record(slot, status, start);
                           cb(status, value);
                         });
  }

  BackendStats stats() const override { return inner_->stats(); }
  bool inProcess() const override { return inner_->inProcess(); }

 private:
  DoneCallback wrapDone(Op op, DoneCallback cb) const {
    return [series = ops_[op], slot = slot_, start = Clock::now(),
            cb = std::move(cb)](StorageStatus status) {
      series.record(slot, status, start);
      cb(status);
    };
  }

  std::array<OpSeries, kOpCount> ops_;
  BackendPtr inner_;
  size_t slot_;
};

}  // namespace

void declareStorageMetrics(metrics::Registry& registry) {
  registry.declareCounter(std::string(kStorageOperationsTotal),
                          "Storage backend operations, by cache, backend, operation and result.",
                          {"cache", "backend", "op", "result"});
  registry.declareCounter(std::string(kStorageErrorsTotal),
                          "Storage backend operations that failed (unavailable, timeout or "
                          "error); the proxy treats each as a miss.",
                          {"cache", "backend", "op"});
  registry.declareHistogram(std::string(kStorageOperationDuration),
                            "Time from a storage call to its callback, in seconds.",
                            {"cache", "backend", "op"});
}

BackendPtr measureBackend(BackendPtr inner, metrics::Registry& registry, size_t slot,
                          std::string cache_name) {
  return std::make_unique<MeasuredBackend>(std::move(inner), registry, slot, cache_name);
}

}  // namespace cachecar::storage
