#pragma once

#include <cstddef>
#include <string_view>

namespace cachecar::server {

// How the cache took part in an exchange: the X-Cache value, the access log's "cache" field and
// the cache_status label of cachecar_requests_total.
enum class CacheStatus { kHit, kStale, kRevalidated, kMiss, kBypass, kError };
inline constexpr size_t kCacheStatusCount = 6;

// "HIT", "STALE", ... (X-Cache, access log).
std::string_view toString(CacheStatus status);
// "hit", "stale", ... (metric labels).
std::string_view metricLabel(CacheStatus status);

}  // namespace cachecar::server
