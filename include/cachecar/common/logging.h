#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace cachecar {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

std::string_view toString(LogLevel level);
bool parseLogLevel(std::string_view text, LogLevel& out);

// The process-wide threshold is set once at startup, before worker threads start, and
// read without a lock afterwards (an atomic, so a later change is still safe).
void setLogThreshold(LogLevel level);
bool logEnabled(LogLevel level);

// Writes one line to stderr: "<utc time> <level> <message>". One write(2) per line, so
// lines from different worker threads never interleave.
void logLine(LogLevel level, std::string_view message);

namespace detail {
inline void appendAll(std::ostringstream&) {}
template <typename First, typename... Rest>
void appendAll(std::ostringstream& out, const First& first, const Rest&... rest) {
  out << first;
  appendAll(out, rest...);
}
}  // namespace detail

// log(LogLevel::kInfo, "listening on ", addr, " workers=", n): formats only when enabled.
template <typename... Parts>
void log(LogLevel level, const Parts&... parts) {
  if (!logEnabled(level)) {
    return;
  }
  std::ostringstream out;
  detail::appendAll(out, parts...);
  logLine(level, out.str());
}

}  // namespace cachecar
