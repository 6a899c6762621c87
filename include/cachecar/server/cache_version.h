#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace cachecar::server {

// How many times a cache's version was bumped (POST /purge?cache=NAME, Django's incr_version
// for a whole cache), as every worker sees it. The count lives in the cache's store, so every
// sidecar on one Redis shares it; the control loop reads it there and publishes it here.
// Unknown until the store has answered once: a cache whose bumps are unknown is not used,
// since an entry from before a bump must never be served.
class CacheVersion {
 public:
  std::optional<int64_t> bumps() const {
    const int64_t value = bumps_.load(std::memory_order_acquire);
    return value < 0 ? std::nullopt : std::optional<int64_t>(value);
  }
  void publish(int64_t bumps) { bumps_.store(bumps, std::memory_order_release); }

 private:
  std::atomic<int64_t> bumps_{-1};
};

}  // namespace cachecar::server
