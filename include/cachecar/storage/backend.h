#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cachecar/storage/stored_bytes.h"

namespace cachecar::storage {

enum class StorageStatus : uint8_t {
  kOk,
  kNotFound,     // a miss: not an error
  kUnavailable,  // backend down / not connected / shutting down
  kTimeout,      // no answer within the command timeout
  kTooLarge,     // value over max_object_bytes: not stored
  kError,        // the backend answered with an error
};
std::string_view toString(StorageStatus status);

struct GetResult {
  StorageStatus status;
  Blob blob;  // set only when status == kOk
};

using GetCallback = std::function<void(GetResult)>;
using DoneCallback = std::function<void(StorageStatus)>;
// status kOk carries the counter's value after the operation.
using CounterCallback = std::function<void(StorageStatus, int64_t value)>;

// What a backend holds, for metrics (memory: exact; redis: unknown = 0).
struct BackendStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t evictions = 0;
};

// The one storage interface the proxy sees (Django's BaseCache). Keys are printable strings
// already carrying the cache's "prefix:version:" namespace.
//
// Contract (checked by the conformance suite in tests/storage/):
//  1. Calls are made, and callbacks run, on the event loop the backend was created for.
//  2. Each callback runs exactly once: also when the backend is destroyed with operations
//     still pending (they complete with kUnavailable).
//  3. A callback may run before the call returns (the memory backend answers at once) or later
//     (redis); callers must not assume either.
//  4. A miss is kNotFound, never an error. Failures (kUnavailable, kTimeout, kError) are for
//     the caller to treat as a miss: the cache is never the source of truth.
//  5. Backends store opaque bytes and never parse HTTP. The TTL is when the store may drop
//     the value; freshness is decided above this layer.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view backendName() const = 0;
  virtual void get(const std::string& key, GetCallback cb) = 0;
  virtual void set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
                   DoneCallback cb) = 0;
  virtual void remove(const std::string& key, DoneCallback cb) = 0;
  // Removes every key that starts with `prefix` (and nothing else). May be O(n).
  virtual void clearPrefix(const std::string& prefix, DoneCallback cb) = 0;
  // A shared integer, such as a cache's version bumps (Django's incr_version for a whole
  // cache): adds `delta` (0 only reads) to the counter at `key`, absent = 0, atomically for
  // every client of the store, and answers the new value. Counters live apart from entries:
  // never evicted by the memory bounds, never expiring.
  virtual void addToCounter(const std::string& key, int64_t delta, CounterCallback cb) = 0;
  virtual BackendStats stats() const = 0;
  // True when values never leave this process (memory): readers may skip integrity checks
  // that only guard against a shared store's corruption.
  virtual bool inProcess() const { return false; }
};
using BackendPtr = std::unique_ptr<Backend>;

}  // namespace cachecar::storage
