#pragma once

#include <chrono>

namespace cachecar {

using SystemTime = std::chrono::system_clock::time_point;

// Policy code never reads the clock itself: callers pass `now`, so tests use fixed times.
inline SystemTime systemNow() { return std::chrono::system_clock::now(); }

inline int64_t toUnixMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline SystemTime fromUnixMillis(int64_t ms) {
  return SystemTime(std::chrono::milliseconds(ms));
}

}  // namespace cachecar
