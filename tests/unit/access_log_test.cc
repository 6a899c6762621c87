#include "cachecar/server/access_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cachecar::server {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;

// ---------------------------------------------------------------------------------------------
// Helpers: a pipe, a bounded reader, and a small checker for the flat JSON objects of the log.

class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      read_ = fds[0];
      write_ = fds[1];
    }
  }
  ~Pipe() {
    closeRead();
    closeWrite();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  bool ok() const { return read_ >= 0 && write_ >= 0; }
  int readFd() const { return read_; }
  int writeFd() const { return write_; }
  void closeRead() { closeFd(read_); }
  void closeWrite() { closeFd(write_); }

 private:
  static void closeFd(int& fd) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  int read_ = -1;
  int write_ = -1;
};

// Everything readable from `fd` until end of file, or until `limit` passes (the test then fails
// on the missing lines rather than hanging).
std::string readUntilEof(int fd, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::string out;
  char buffer[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << "no end of file within " << limit.count() << "ms";
      return out;
    }
    pollfd waiting{fd, POLLIN, 0};
    const int ready = ::poll(&waiting, 1, static_cast<int>(left.count()));
    if (ready <= 0) {
      continue;
    }
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) {
      return out;
    }
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
    }
  }
}

// Polls a counter the writer thread updates; false if it does not reach `want` in time.
template <typename Get>
bool waitFor(Get get, uint64_t want, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (get() != want) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));  // a last line without '\n': malformed
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// Whether `text` is well-formed UTF-8, decoding each code point and checking its range (the
// opposite angle from the log's own check, which looks at lead and second bytes).
bool isValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = 1;
    uint32_t code = lead;
    uint32_t min = 0;
    if (lead >= 0x80) {
      if ((lead & 0xe0) == 0xc0) {
        length = 2, code = lead & 0x1fu, min = 0x80;
      } else if ((lead & 0xf0) == 0xe0) {
        length = 3, code = lead & 0x0fu, min = 0x800;
      } else if ((lead & 0xf8) == 0xf0) {
        length = 4, code = lead & 0x07u, min = 0x10000;
      } else {
        return false;
      }
      if (text.size() - i < length) {
        return false;
      }
      for (size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(text[i + k]);
        if ((next & 0xc0) != 0x80) {
          return false;
        }
        code = (code << 6) | (next & 0x3fu);
      }
      if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

// Parses one log line: a flat JSON object whose values are strings, numbers or null (RFC 8259
// grammar for those). Values come back as their JSON text, strings unescaped. nullopt when the
// line is not such an object.
class FlatJson {
 public:
  static std::optional<std::map<std::string, std::string>> parse(std::string_view text) {
    FlatJson p(text);
    std::map<std::string, std::string> out;
    if (!isValidUtf8(text) || !p.eat('{')) {
      return std::nullopt;
    }
    if (p.eat('}')) {
      return p.atEnd() ? std::optional(out) : std::nullopt;
    }
    for (;;) {
      std::optional<std::string> key = p.string();
      if (!key || !p.eat(':')) {
        return std::nullopt;
      }
      std::optional<std::string> value = p.value();
      if (!value || !out.emplace(*key, *value).second) {
        return std::nullopt;
      }
      if (p.eat('}')) {
        return p.atEnd() ? std::optional(out) : std::nullopt;
      }
      if (!p.eat(',')) {
        return std::nullopt;
      }
    }
  }

 private:
  explicit FlatJson(std::string_view text) : text_(text) {}

  bool atEnd() const { return pos_ == text_.size(); }
  bool eat(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  std::optional<std::string> value() {
    if (pos_ < text_.size() && text_[pos_] == '"') {
      return string();
    }
    if (text_.substr(pos_, 4) == "null") {
      pos_ += 4;
      return "null";
    }
    return number();
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?
  std::optional<std::string> number() {
    const size_t start = pos_;
    eat('-');
    const auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        ++pos_;
      }
      return pos_ - from;
    };
    const size_t first = pos_;
    const size_t whole = digits();
    if (whole == 0 || (whole > 1 && text_[first] == '0')) {
      return std::nullopt;
    }
    if (eat('.') && digits() == 0) {
      return std::nullopt;
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  std::optional<std::string> string() {
    if (!eat('"')) {
      return std::nullopt;
    }
    std::string out;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') {
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return std::nullopt;  // raw control characters are not allowed in JSON strings
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) {
        return std::nullopt;
      }
      const char e = text_[pos_++];
      const std::string_view simple = "\"\\/bfnrt";
      const std::string_view meaning = "\"\\/\b\f\n\r\t";
      if (const size_t k = simple.find(e); k != std::string_view::npos) {
        out += meaning[k];
      } else if (e == 'u' && text_.size() - pos_ >= 4) {
        const std::string hex(text_.substr(pos_, 4));
        pos_ += 4;
        char* end = nullptr;
        const unsigned long code = std::strtoul(hex.c_str(), &end, 16);
        if (end != hex.c_str() + 4 || code > 0xff) {
          return std::nullopt;  // the log only ever escapes single bytes
        }
        out += static_cast<char>(code);  // the byte the log escaped
      } else {
        return std::nullopt;
      }
    }
    return std::nullopt;  // unterminated
  }

  std::string_view text_;
  size_t pos_ = 0;
};

AccessRecord sampleRecord() {
  AccessRecord record;
  record.time = SystemTime(microseconds(1'795'330'298'123'456));  // 2026-11-22T06:51:38.123456Z
  record.method = "GET";
  record.path = "/static/app.css?v=3";
  record.status = 200;
  record.cache_status = "HIT";
  record.route = "/static/";
  record.bytes = 1234;
  record.total_time = microseconds(42);
  return record;
}

std::string formatted(const AccessRecord& record) {
  std::string out;
  AccessLog::formatLine(record, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// formatLine

TEST(AccessLogFormatTest, HitWithoutUpstreamTime) {
  EXPECT_EQ(formatted(sampleRecord()),
            "{\"time\":\"2026-11-22T06:51:38.123Z\",\"method\":\"GET\","
            "\"path\":\"/static/app.css?v=3\",\"status\":200,\"cache\":\"HIT\","
            "\"route\":\"/static/\",\"bytes\":1234,\"upstream_ms\":null,\"total_ms\":0.042}\n");
}

TEST(AccessLogFormatTest, MissWithUpstreamTimeAndNoRoute) {
  AccessRecord record = sampleRecord();
  record.time = SystemTime(std::chrono::milliseconds(951'868'799'999));
  record.method = "POST";
  record.path = "/api/orders";
  record.status = 503;
  record.cache_status = "MISS";
  record.route = "";
  record.bytes = 18'446'744'073'709'551'615ull;
  record.upstream_time = microseconds(1'234'567);
  record.total_time = microseconds(2'000'000);
  EXPECT_EQ(formatted(record),
            "{\"time\":\"2000-02-29T23:59:59.999Z\",\"method\":\"POST\",\"path\":\"/api/orders\","
            "\"status\":503,\"cache\":\"MISS\",\"route\":\"\",\"bytes\":18446744073709551615,"
            "\"upstream_ms\":1234.567,\"total_ms\":2000.000}\n");
}

TEST(AccessLogFormatTest, TimesAndDurationsAtTheEdges) {
  AccessRecord record = sampleRecord();
  record.time = SystemTime(microseconds(-1));  // just before the epoch: floored, not rounded up
  record.upstream_time = microseconds(0);
  record.total_time = microseconds(999);
  const std::string line = formatted(record);
  EXPECT_NE(line.find("\"time\":\"1969-12-31T23:59:59.999Z\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"upstream_ms\":0.000,\"total_ms\":0.999}"), std::string::npos) << line;

  record.time = SystemTime(microseconds(999));
  record.upstream_time = microseconds(1'000);
  record.total_time = microseconds(-5);  // a clock gone backwards still gives a JSON number
  const std::string later = formatted(record);
  EXPECT_NE(later.find("\"time\":\"1970-01-01T00:00:00.000Z\""), std::string::npos) << later;
  EXPECT_NE(later.find("\"upstream_ms\":1.000,\"total_ms\":-0.005}"), std::string::npos) << later;
  EXPECT_TRUE(FlatJson::parse(later.substr(0, later.size() - 1)).has_value()) << later;
}

TEST(AccessLogFormatTest, AppendsToWhatIsThere) {
  std::string out = "earlier\n";
  AccessLog::formatLine(sampleRecord(), out);
  AccessLog::formatLine(sampleRecord(), out);
  EXPECT_EQ(out, "earlier\n" + formatted(sampleRecord()) + formatted(sampleRecord()));
}

TEST(AccessLogFormatTest, EscapesQuotesBackslashesControlsAndInvalidUtf8) {
  using namespace std::string_literals;
  // Pieces joined so that no \x escape swallows the character after it.
  const std::string path = "/a\"b\\c\n\t"s + "\x01" + "\x1f" + "\x7f" + " \xc3\xa9 " +  // é
                           "\xff" + " " + "\xe2\x82" + "x " +  // a 3-byte sequence cut short
                           "\xc0\xaf" + " " +                  // overlong '/'
                           "\xed\xa0\x80" + " " +              // a UTF-16 surrogate
                           "\xf0\x9f\x98\x80" + " " +          // U+1F600, valid
                           "\xf4\x90\x80\x80" + " " +          // above U+10FFFF
                           "\xe2\x82\xac" + "/" + "\xc3";      // €, then a lead byte at the end
  AccessRecord record = sampleRecord();
  record.path = path;
  record.method = "GE\"T";
  record.cache_status = "a\\b";
  record.route = "/r\r/";
  const std::string line = formatted(record);
  EXPECT_EQ(line,
            "{\"time\":\"2026-11-22T06:51:38.123Z\",\"method\":\"GE\\\"T\","
            "\"path\":\"/a\\\"b\\\\c\\u000a\\u0009\\u0001\\u001f\\u007f \xc3\xa9 \\u00ff "
            "\\u00e2\\u0082x \\u00c0\\u00af \\u00ed\\u00a0\\u0080 \xf0\x9f\x98\x80 "
            "\\u00f4\\u0090\\u0080\\u0080 \xe2\x82\xac/\\u00c3\","
            "\"status\":200,\"cache\":\"a\\\\b\",\"route\":\"/r\\u000d/\",\"bytes\":1234,"
            "\"upstream_ms\":null,\"total_ms\":0.042}\n");
  // And it is one valid JSON line whose path reads back as the bytes that came in.
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  const auto parsed = FlatJson::parse(line.substr(0, line.size() - 1));
  ASSERT_TRUE(parsed.has_value()) << line;
  EXPECT_EQ(parsed->at("path"), path);
  EXPECT_EQ(parsed->at("method"), "GE\"T");
  EXPECT_EQ(parsed->at("route"), "/r\r/");
}

TEST(AccessLogFormatTest, AnyBytesGiveOneValidJsonLine) {
  // Every single byte value; and every high byte followed by every byte, then by continuation
  // bytes or by plain text (so overlong forms, surrogates and cut-short sequences all occur).
  std::vector<std::string> paths;
  for (int b = 0; b < 0x100; ++b) {
    paths.emplace_back(1, static_cast<char>(b));
  }
  for (int a = 0x80; a < 0x100; ++a) {
    for (int b = 0; b < 0x100; ++b) {
      const char lead = static_cast<char>(a);
      const char second = static_cast<char>(b);
      paths.push_back({lead, second, 'z'});
      paths.push_back({lead, second, '\x80', '\x80', 'z'});
    }
  }
  for (const std::string& path : paths) {
    AccessRecord record = sampleRecord();
    record.path = path;
    const std::string line = formatted(record);
    ASSERT_EQ(line.find('\n'), line.size() - 1) << ::testing::PrintToString(path);
    const auto parsed = FlatJson::parse(line.substr(0, line.size() - 1));
    ASSERT_TRUE(parsed.has_value()) << ::testing::PrintToString(path) << " -> " << line;
    // Valid UTF-8 reads back as itself; stray bytes as the same bytes, escaped one by one.
    EXPECT_EQ(parsed->at("path"), path) << line;
  }
}

// ---------------------------------------------------------------------------------------------
// The writer

TEST(AccessLogTest, LinesFromFourThreadsArriveWholeAndInOrderPerThread) {
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());
  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 2000;
  auto reader = std::async(std::launch::async, [&] { return readUntilEof(pipe.readFd(), 10s); });
  {
    AccessLog log(pipe.writeFd());
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&log, t] {
        for (int i = 0; i < kLinesPerThread; ++i) {
          const std::string path = "/t" + std::to_string(t) + "/" + std::to_string(i) + "?q=\"x\"";
          AccessRecord record = sampleRecord();
          record.path = path;
          record.status = 200 + t;
          log.write(record);
        }
      });
    }
    for (std::thread& writer : writers) {
      writer.join();
    }
    EXPECT_TRUE(waitFor([&] { return log.written(); }, kThreads * kLinesPerThread))
        << "written " << log.written() << " dropped " << log.dropped();
    EXPECT_EQ(log.dropped(), 0u);
  }
  pipe.closeWrite();  // the log never closes the descriptor it was given
  const std::string text = reader.get();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');

  const std::vector<std::string> lines = splitLines(text);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLinesPerThread));
  std::vector<int> next(kThreads, 0);  // each thread's lines keep their order
  for (const std::string& line : lines) {
    const auto parsed = FlatJson::parse(line);
    ASSERT_TRUE(parsed.has_value()) << line;
    ASSERT_EQ(parsed->size(), 9u) << line;
    const int t = std::stoi(parsed->at("status")) - 200;
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(parsed->at("path"),
              "/t" + std::to_string(t) + "/" + std::to_string(next[t]) + "?q=\"x\"");
    ++next[t];
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(next[t], kLinesPerThread) << "thread " << t;
  }
}

TEST(AccessLogTest, ReaderThatDoesNotReadCostsDroppedLinesNotBlockedWrites) {
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());
  const int pipe_capacity = ::fcntl(pipe.writeFd(), F_GETPIPE_SZ);
  ASSERT_GT(pipe_capacity, 0);
  constexpr size_t kMaxBuffered = 4096;
  constexpr int kLines = 20000;
  const size_t line_bytes = formatted(sampleRecord()).size();  // every line below is this long

  auto log = std::make_unique<AccessLog>(pipe.writeFd(), kMaxBuffered);
  std::promise<void> finished;
  std::thread producer([&] {
    for (int i = 0; i < kLines; ++i) {
      log->write(sampleRecord());
    }
    finished.set_value();
  });
  // Far more than the pipe and the buffer hold, and nobody reads: write() must still return.
  const bool returned = finished.get_future().wait_for(5s) == std::future_status::ready;
  EXPECT_TRUE(returned) << "write() blocked behind a reader that does not read";

  // From here on, read, so that everything can end even if the check above failed.
  auto reader = std::async(std::launch::async, [&] { return readUntilEof(pipe.readFd(), 10s); });
  producer.join();
  const uint64_t dropped = log->dropped();  // final: no more writes, and the reader is there now
  // At most what the pipe and the buffer hold got through; the rest was dropped.
  const uint64_t most_kept = (static_cast<size_t>(pipe_capacity) + kMaxBuffered) / line_bytes + 1;
  EXPECT_GE(dropped, kLines - most_kept);
  EXPECT_LT(dropped, static_cast<uint64_t>(kLines));

  log.reset();  // writes what the buffer still holds
  pipe.closeWrite();
  const std::vector<std::string> lines = splitLines(reader.get());
  EXPECT_EQ(lines.size(), kLines - dropped);  // every line not counted as dropped arrived
  for (const std::string& line : lines) {
    ASSERT_EQ(line + "\n", formatted(sampleRecord()));
  }
}

TEST(AccessLogTest, ALineLargerThanTheBufferIsDroppedAndLaterOnesStillGo) {
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());
  const std::string big(1000, 'x');
  {
    AccessLog log(pipe.writeFd(), 600);
    AccessRecord record = sampleRecord();
    record.path = big;
    log.write(record);
    EXPECT_EQ(log.dropped(), 1u);  // counted at once, on the caller's thread
    log.write(sampleRecord());
    EXPECT_TRUE(waitFor([&] { return log.written(); }, 1));
    EXPECT_EQ(log.dropped(), 1u);
  }
  pipe.closeWrite();
  EXPECT_EQ(readUntilEof(pipe.readFd(), 5s), formatted(sampleRecord()));
}

TEST(AccessLogTest, WriteErrorsAreCountedAsDroppedWithoutStalling) {
  {
    // The reader went away: EPIPE (and no SIGPIPE ending this process).
    Pipe pipe;
    ASSERT_TRUE(pipe.ok());
    pipe.closeRead();
    AccessLog log(pipe.writeFd());
    for (int i = 0; i < 50; ++i) {
      log.write(sampleRecord());
    }
    EXPECT_TRUE(waitFor([&] { return log.dropped(); }, 50)) << log.dropped();
    EXPECT_EQ(log.written(), 0u);
    log.write(sampleRecord());  // later lines meet the same fate, one failed write per batch
    EXPECT_TRUE(waitFor([&] { return log.dropped(); }, 51)) << log.dropped();
  }
  {
    // A descriptor open for reading only: EBADF.
    const int read_only = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(read_only, 0);
    {
      AccessLog log(read_only);
      for (int i = 0; i < 10; ++i) {
        log.write(sampleRecord());
      }
      EXPECT_TRUE(waitFor([&] { return log.dropped(); }, 10)) << log.dropped();
      EXPECT_EQ(log.written(), 0u);
    }
    ::close(read_only);
  }
}

TEST(AccessLogTest, DestructionWritesWhatIsBufferedInOrder) {
  char name[] = "/tmp/cachecar_access_log_XXXXXX";
  const int fd = ::mkstemp(name);
  ASSERT_GE(fd, 0);
  ::unlink(name);
  std::string expected;
  {
    AccessLog log(fd);
    for (int i = 0; i < 500; ++i) {
      AccessRecord record = sampleRecord();
      const std::string path = "/page/" + std::to_string(i);
      record.path = path;
      record.bytes = static_cast<uint64_t>(i);
      log.write(record);
      AccessLog::formatLine(record, expected);
    }
    // Destroyed at once: whatever the writer thread has not reached yet is written now.
  }
  std::string text;
  char buffer[65536];
  ssize_t n = 0;
  off_t offset = 0;
  while ((n = ::pread(fd, buffer, sizeof(buffer), offset)) > 0) {
    text.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  ::close(fd);
  EXPECT_EQ(text, expected);
}

TEST(AccessLogTest, IdleLogStopsPromptly) {
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());
  const auto start = std::chrono::steady_clock::now();
  {
    AccessLog log(pipe.writeFd());
    EXPECT_EQ(log.written(), 0u);
    EXPECT_EQ(log.dropped(), 0u);
  }
  // The writer is woken for the stop, not left to its periodic wake-up (generous bound).
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  pipe.closeWrite();
  EXPECT_EQ(readUntilEof(pipe.readFd(), 5s), "");
}

}  // namespace
}  // namespace cachecar::server
