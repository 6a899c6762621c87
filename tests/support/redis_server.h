#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisReply;

namespace cachecar::event {
class EventLoop;
}

namespace cachecar::testing {

// A real `redis-server` child process on 127.0.0.1 at a free port, with no persistence and a
// private temporary directory. Killed (SIGKILL) and reaped in the destructor. If the test
// process dies, the kernel kills the server too (PR_SET_PDEATHSIG).
//
//   RedisServer redis;
//   if (!RedisServer::available()) GTEST_SKIP() << RedisServer::unavailableReason();
//   ASSERT_TRUE(redis.start()) << redis.lastError();
class RedisServer {
 public:
  struct ReplyDeleter {
    void operator()(redisReply* reply) const;
  };
  using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Whether a redis-server binary can be found (PATH, /usr/bin, /usr/local/bin).
  static bool available();
  static std::string unavailableReason();

  // Starts the server (on the same port as before after a stop()) and waits until it answers
  // PING, at most `wait`. False with lastError() set on failure.
  bool start(std::chrono::milliseconds wait = std::chrono::seconds(5));
  // SIGKILL and reap. Idempotent.
  void stop();
  // SIGSTOP / SIGCONT: the server keeps its socket (connections are accepted by the kernel)
  // but answers nothing: a "slow Redis".
  void pause();
  void resume();
  bool running() const { return pid_ > 0; }

  uint16_t port() const { return port_; }
  std::string url() const;  // "redis://127.0.0.1:N/0"
  const std::string& lastError() const { return last_error_; }

  // Runs one command synchronously over a fresh connection (hiredis's blocking API, 2 s
  // timeout); binary-safe arguments. Null on connection failure.
  ReplyPtr command(const std::vector<std::string>& args) const;
  // Shorthands for assertions. On failure: nullopt / -1 / false.
  std::optional<std::string> get(const std::string& key) const;
  bool set(const std::string& key, const std::string& value) const;
  long long dbSize() const;
  bool exists(const std::string& key) const;

 private:
  bool spawn();
  bool waitReady(std::chrono::milliseconds wait);

  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
  std::string dir_;
  std::string last_error_;
};

// Drives `loop` on the calling thread until `done()` is true or `limit` has passed; returns
// done(). Never blocks for long: a short wake-up timer bounds each loop iteration. Usable with
// any EventLoop (memory or redis tests alike).
bool runLoopUntil(event::EventLoop& loop, const std::function<bool()>& done,
                  std::chrono::milliseconds limit = std::chrono::seconds(5));
// Drives `loop` for `duration` (for "nothing happens in the meantime" checks).
void runLoopFor(event::EventLoop& loop, std::chrono::milliseconds duration);

}  // namespace cachecar::testing
