#include "cachecar/server/cache_status.h"

namespace cachecar::server {

std::string_view toString(CacheStatus status) {
  switch (status) {
    case CacheStatus::kHit:
      return "HIT";
    case CacheStatus::kStale:
      return "STALE";
    case CacheStatus::kRevalidated:
      return "REVALIDATED";
    case CacheStatus::kMiss:
      return "MISS";
    case CacheStatus::kBypass:
      return "BYPASS";
    case CacheStatus::kError:
      return "ERROR";
  }
  return "BYPASS";
}

std::string_view metricLabel(CacheStatus status) {
  switch (status) {
    case CacheStatus::kHit:
      return "hit";
    case CacheStatus::kStale:
      return "stale";
    case CacheStatus::kRevalidated:
      return "revalidated";
    case CacheStatus::kMiss:
      return "miss";
    case CacheStatus::kBypass:
      return "bypass";
    case CacheStatus::kError:
      return "error";
  }
  return "bypass";
}

}  // namespace cachecar::server
