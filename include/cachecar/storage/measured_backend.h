#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cachecar/metrics/metrics.h"
#include "cachecar/storage/backend.h"

namespace cachecar::storage {

// The storage families (declared by declareStorageMetrics):
//   cachecar_storage_operations_total{cache,backend,op,result}
//   cachecar_storage_errors_total{cache,backend,op}      results unavailable|timeout|error
//   cachecar_storage_operation_duration_seconds{cache,backend,op}   histogram, latencyBuckets()
// op is one of the kOp* values below; result is toString(StorageStatus).
inline constexpr std::string_view kStorageOperationsTotal = "cachecar_storage_operations_total";
inline constexpr std::string_view kStorageErrorsTotal = "cachecar_storage_errors_total";
inline constexpr std::string_view kStorageOperationDuration =
    "cachecar_storage_operation_duration_seconds";

inline constexpr std::string_view kOpGet = "get";
inline constexpr std::string_view kOpSet = "set";
inline constexpr std::string_view kOpRemove = "remove";
inline constexpr std::string_view kOpClear = "clear";                  // clearPrefix
inline constexpr std::string_view kOpAddToCounter = "add_to_counter";  // addToCounter

// Declares the three families above. Call once per registry (declaring again is a no-op).
void declareStorageMetrics(metrics::Registry& registry);

// Wraps `inner` so every operation is counted and timed in `registry` (which must already have
// the storage families declared, and must outlive the returned backend). `slot` is the worker
// index the wrapper counts on (it lives on that worker's loop); `cache_name` is the configured
// cache's name; the backend label is inner->backendName().
//
// Every series (each op x each result) is looked up once here and exists from the start, so a
// scrape shows zeros rather than missing series, and an operation costs two steady_clock reads
// and three relaxed atomic adds: no map lookup, no string building, no lock.
//
// The Backend contract carries over unchanged: each callback runs exactly once (also when the
// wrapper, and so the inner backend, is destroyed with operations pending), possibly before
// the call returns. The wrapping callbacks hold only pointers into the registry, never the
// wrapper itself, so they stay valid whenever the inner backend chooses to run them.
// backendName(), stats() and inProcess() forward to the inner backend.
BackendPtr measureBackend(BackendPtr inner, metrics::Registry& registry, size_t slot,
                          std::string cache_name);

}  // namespace cachecar::storage
