#include "cachecar/server/access_log.h"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <utility>

namespace cachecar::server {

namespace {

// The writer also wakes this often when nothing signals it, so a missed wake-up (there should be
// none) delays a line by at most this much.
constexpr std::chrono::milliseconds kWriterWakeInterval{100};
// Typical line length: enough that formatting rarely reallocates.
constexpr size_t kLineReserve = 256;

constexpr char kHexDigits[] = "0123456789abcdef";

void appendUnicodeEscape(unsigned char byte, std::string& out) {
  out += "\\u00";
  out += kHexDigits[byte >> 4];
  out += kHexDigits[byte & 0xf];
}

// Length of the well-formed UTF-8 sequence starting at text[i] (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when the bytes there are not one.
size_t utf8SequenceLength(std::string_view text, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = at(i);
  size_t length = 0;
  // The allowed range of the second byte depends on the lead byte; later bytes are 80..BF.
  unsigned char low = 0x80;
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) {
      low = 0xa0;  // below: an overlong form of a shorter sequence
    } else if (lead == 0xed) {
      high = 0x9f;  // above: UTF-16 surrogates
    }
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) {
      low = 0x90;  // overlong
    } else if (lead == 0xf4) {
      high = 0x8f;  // above U+10FFFF
    }
  } else {
    return 0;  // a continuation byte, C0, C1 or F5..FF
  }
  if (text.size() - i < length) {
    return 0;
  }
  if (at(i + 1) < low || at(i + 1) > high) {
    return 0;
  }
  for (size_t k = 2; k < length; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xbf) {
      return 0;
    }
  }
  return length;
}

// A JSON string, quotes included. Whatever the bytes, the result is valid JSON in valid UTF-8:
// a request target is client input and may hold anything.
void appendJsonString(std::string_view text, std::string& out) {
  out += '"';
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
      ++i;
    } else if (byte < 0x20 || byte == 0x7f) {
      // DEL is legal in JSON, but escaped all the same: it should not reach a terminal raw.
      appendUnicodeEscape(byte, out);
      ++i;
    } else if (byte < 0x80) {
      out += static_cast<char>(byte);
      ++i;
    } else if (const size_t length = utf8SequenceLength(text, i); length > 0) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      appendUnicodeEscape(byte, out);  // one stray byte; resynchronize on the next
      ++i;
    }
  }
  out += '"';
}

void appendUnsigned(uint64_t value, std::string& out) { out += std::to_string(value); }

// Three decimals of milliseconds: 42us -> "0.042", 1234567us -> "1234.567".
void appendMillis(std::chrono::microseconds time, std::string& out) {
  int64_t micros = time.count();
  if (micros < 0) {
    out += '-';  // a clock that went backwards: shown as it is, still a JSON number
    micros = -micros;
  }
  const auto value = static_cast<uint64_t>(micros);
  appendUnsigned(value / 1000, out);
  out += '.';
  const auto fraction = static_cast<unsigned>(value % 1000);
  out += static_cast<char>('0' + fraction / 100);
  out += static_cast<char>('0' + fraction / 10 % 10);
  out += static_cast<char>('0' + fraction % 10);
}

// RFC 3339 in UTC with milliseconds: "2026-11-22T06:51:38.123Z".
void appendTime(SystemTime time, std::string& out) {
  const auto millis = std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch());
  const auto seconds = std::chrono::floor<std::chrono::seconds>(millis);
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  std::tm parts{};
  char text[32];
  size_t length = 0;
  if (gmtime_r(&whole, &parts) != nullptr) {
    length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &parts);
  }
  if (length == 0) {
    out += "\"1970-01-01T00:00:00.000Z\"";  // out of the calendar's range: never a broken line
    return;
  }
  const auto fraction = static_cast<unsigned>((millis - seconds).count());
  out += '"';
  out.append(text, length);
  out += '.';
  out += static_cast<char>('0' + fraction / 100);
  out += static_cast<char>('0' + fraction / 10 % 10);
  out += static_cast<char>('0' + fraction % 10);
  out += "Z\"";
}

}  // namespace

AccessLog::AccessLog(int fd, size_t max_buffered_bytes)
    : fd_(fd), max_buffered_bytes_(max_buffered_bytes) {
  thread_ = std::thread([this] { run(); });
}

AccessLog::~AccessLog() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void AccessLog::write(const AccessRecord& record) {
  std::string line;
  line.reserve(kLineReserve);
  formatLine(record, line);  // outside the lock: only the append is serialized
  bool was_empty = false;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    // What the writer holds counts too, so the bound covers every byte the log keeps.
    if (buffer_.size() + in_flight_bytes_ + line.size() > max_buffered_bytes_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    was_empty = buffer_.empty();
    buffer_ += line;
    ++buffered_lines_;
  }
  // The writer only sleeps on an empty buffer: one wake-up per batch is enough.
  if (was_empty) {
    wake_.notify_one();
  }
}

uint64_t AccessLog::written() const { return written_.load(std::memory_order_relaxed); }

uint64_t AccessLog::dropped() const { return dropped_.load(std::memory_order_relaxed); }

void AccessLog::formatLine(const AccessRecord& record, std::string& out) {
  out += "{\"time\":";
  appendTime(record.time, out);
  out += ",\"method\":";
  appendJsonString(record.method, out);
  out += ",\"path\":";
  appendJsonString(record.path, out);
  out += ",\"status\":";
  out += std::to_string(record.status);
  out += ",\"cache\":";
  appendJsonString(record.cache_status, out);
  out += ",\"route\":";
  appendJsonString(record.route, out);
  out += ",\"bytes\":";
  appendUnsigned(record.bytes, out);
  out += ",\"upstream_ms\":";
  if (record.upstream_time) {
    appendMillis(*record.upstream_time, out);
  } else {
    out += "null";
  }
  out += ",\"total_ms\":";
  appendMillis(record.total_time, out);
  out += "}\n";
}

void AccessLog::run() {
  // A reader that went away must show up as EPIPE on this thread, not as a SIGPIPE that ends the
  // process (a signal raised by write() goes to the writing thread, so blocking it here is enough).
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);

  std::string batch;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, kWriterWakeInterval, [this] { return stopping_ || !buffer_.empty(); });
    if (buffer_.empty()) {
      if (stopping_) {
        return;
      }
      continue;
    }
    // Take the whole buffer: everything that arrived during the last write goes out in one call.
    batch.clear();
    batch.swap(buffer_);
    const uint64_t lines = std::exchange(buffered_lines_, 0);
    in_flight_bytes_ = batch.size();
    lock.unlock();
    writeBatch(batch, lines);
    lock.lock();
    in_flight_bytes_ = 0;
  }
}

void AccessLog::writeBatch(const std::string& batch, uint64_t lines) {
  size_t done = 0;
  while (done < batch.size()) {
    const ssize_t n = ::write(fd_, batch.data() + done, batch.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      const std::lock_guard<std::mutex> lock(mutex_);
      in_flight_bytes_ = batch.size() - done;  // room for new lines as soon as it frees up
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Someone made the descriptor non-blocking: wait until it takes more, without spinning.
      pollfd waiting{fd_, POLLOUT, 0};
      if (::poll(&waiting, 1, -1) >= 0 || errno == EINTR) {
        continue;
      }
    }
    // EPIPE, EBADF, ENOSPC, a zero-length write...: what is left is lost, and counted. Whole
    // lines already written count as written; a line cut short counts as dropped.
    const auto complete = static_cast<uint64_t>(
        std::count(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(done), '\n'));
    written_.fetch_add(complete, std::memory_order_relaxed);
    dropped_.fetch_add(lines - complete, std::memory_order_relaxed);
    return;
  }
  written_.fetch_add(lines, std::memory_order_relaxed);
}

}  // namespace cachecar::server
