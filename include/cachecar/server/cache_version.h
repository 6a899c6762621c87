#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
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
  // Publishes the count read from the store when `configured_version + bumps` is a version
  // (no negative count, no overflow). Anything else (the store holds what no bump produced)
  // makes the count unknown again, so the cache is bypassed, and returns false: a counter in
  // a shared store is data from outside like any other.
  bool publish(int64_t configured_version, int64_t bumps) {
    const bool valid = bumps >= 0 && configured_version >= 0 &&
                       bumps <= std::numeric_limits<int64_t>::max() - configured_version;
    bumps_.store(valid ? bumps : -1, std::memory_order_release);
    return valid;
  }

 private:
  std::atomic<int64_t> bumps_{-1};
};

}  // namespace cachecar::server
