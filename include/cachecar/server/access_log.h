#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "cachecar/common/clock.h"

namespace cachecar::server {

// One finished request, as the access log records it. The views only need to live for the
// write() call: the line is formatted before it returns.
struct AccessRecord {
  SystemTime time;
  std::string_view method, path;  // path = request target as received (may hold a query)
  int status = 0;
  std::string_view cache_status;  // "HIT", "MISS", ...
  std::string_view route;         // route match, or "" when none matched
  uint64_t bytes = 0;             // response bytes sent to the client (head + body)
  std::optional<std::chrono::microseconds> upstream_time;  // unset when the app was not asked
  std::chrono::microseconds total_time{0};
};

// JSON lines on a file descriptor (stdout in production), written by the log's own thread: the
// request path only appends to a bounded buffer under a short lock and never waits for a slow
// reader of stdout. When the buffer is full, lines are dropped and counted (a log must never
// stall or grow the proxy without bound).
//
// The descriptor is borrowed, never closed, and written as it is (its O_NONBLOCK flag, shared
// with whoever else holds stdout, is left alone). A reader that stops reading for good therefore
// holds the writer thread in write(), and with it the destructor, until the reader goes away
// (EPIPE); requests are never held.
class AccessLog {
 public:
  explicit AccessLog(int fd, size_t max_buffered_bytes = 4u << 20);
  ~AccessLog();  // writes what is buffered, then stops the thread
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void write(const AccessRecord& record);  // thread-safe; never blocks on the descriptor
  uint64_t written() const;                // lines handed to the fd
  uint64_t dropped() const;                // lines lost to a full buffer or a write error

  // One JSON object and '\n': {"time":"2026-11-22T06:51:38.123Z","method":"GET","path":"/x",
  // "status":200,"cache":"HIT","route":"/static/","bytes":1234,"upstream_ms":null,"total_ms":0.042}
  // Strings escaped per RFC 8259 (quotes, backslash, control chars as \u00XX; bytes >= 0x80
  // that are not valid UTF-8 as \u00XX of the byte too, so every line is valid JSON).
  static void formatLine(const AccessRecord& record, std::string& out);  // appends

 private:
  void run();
  // Writes all of `batch` (`lines` lines), retrying partial writes and EINTR; on an error the
  // rest is dropped and counted.
  void writeBatch(const std::string& batch, uint64_t lines);

  const int fd_;
  const size_t max_buffered_bytes_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::string buffer_;           // whole lines waiting for the writer (guarded)
  uint64_t buffered_lines_ = 0;  // lines in buffer_ (guarded)
  size_t in_flight_bytes_ = 0;   // taken by the writer, not yet written (guarded)
  bool stopping_ = false;        // guarded

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace cachecar::server
