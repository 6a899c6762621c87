#include "cachecar/common/logging.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace cachecar {

namespace {

// Set once at startup from the config (and again on reload); read by every thread.
std::atomic<int>& threshold() {
  static std::atomic<int> value{static_cast<int>(LogLevel::kInfo)};
  return value;
}

}  // namespace

std::string_view toString(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

bool parseLogLevel(std::string_view text, LogLevel& out) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == toString(level)) {
      out = level;
      return true;
    }
  }
  return false;
}

void setLogThreshold(LogLevel level) {
  threshold().store(static_cast<int>(level), std::memory_order_relaxed);
}

bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= threshold().load(std::memory_order_relaxed);
}

void logLine(LogLevel level, std::string_view message) {
  using std::chrono::system_clock;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[40];
  const size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line;
  line.reserve(message.size() + 48);
  line.append(stamp, n);
  char ms[8];
  std::snprintf(ms, sizeof(ms), ".%03dZ ", static_cast<int>(millis));
  line.append(ms);
  line.append(toString(level));
  line.push_back(' ');
  line.append(message);
  line.push_back('\n');
  // One write per line: lines from several worker threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace cachecar
