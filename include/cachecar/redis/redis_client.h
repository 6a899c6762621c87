#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cachecar/common/result.h"
#include "cachecar/event/event_loop.h"

struct redisAsyncContext;
struct redisReply;

namespace cachecar::redis {

struct RedisAddress {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  int db = 0;
  std::string toString() const;  // "redis://host:port/db"
};

// Parses `redis://host[:port][/db]` (IPv6 hosts in brackets: `redis://[::1]:6379/0`).
Result<RedisAddress> parseRedisLocation(std::string_view location);

struct RedisClientOptions {
  RedisAddress address;
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds command_timeout{100};
  // Reconnect delay after a failed connect or a lost connection: starts at reconnect_min and
  // doubles up to reconnect_max; back to reconnect_min once a reply arrives.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5000};
  // A connection whose oldest command has waited this long for its reply (even one that
  // already timed out) is presumed dead, e.g. half-open after its host vanished, and is
  // replaced. Zero means max(1 s, 10 x command_timeout).
  std::chrono::milliseconds stall_timeout{0};
  // Commands awaiting a reply, including timed-out ones whose late reply is still owed. Past
  // this, new commands fail at once: a stuck server never makes us queue without bound.
  size_t max_pending = 4096;
};

enum class CommandStatus : uint8_t {
  kOk,           // a reply arrived (it may be a Redis error reply: see ReplyView::isError)
  kUnavailable,  // not connected, connection lost, too many pending, or client destroyed
  kTimeout,      // no reply within command_timeout
};
std::string_view toString(CommandStatus status);

// A borrowed view of a hiredis reply. Valid only during the callback it is passed to: copy what
// you keep (hiredis frees the reply when the callback returns).
class ReplyView {
 public:
  enum class Type : uint8_t { kNone, kString, kStatus, kError, kInteger, kNil, kArray };

  ReplyView() = default;
  explicit ReplyView(const redisReply* reply) : reply_(reply) {}

  Type type() const;
  bool isError() const { return type() == Type::kError; }
  bool isNil() const { return type() == Type::kNil; }
  // Text of a string, status or error reply; empty for other types.
  std::string_view str() const;
  long long integer() const;  // 0 unless an integer reply
  size_t size() const;        // elements of an array reply
  ReplyView at(size_t index) const;

 private:
  const redisReply* reply_ = nullptr;
};

// status is kOk when a reply arrived; `reply` is empty (Type::kNone) otherwise.
using ReplyCallback = std::function<void(CommandStatus status, ReplyView reply)>;

struct RedisClientStats {
  uint64_t connects = 0;
  uint64_t connect_failures = 0;  // refused, timed out, or SELECT failed
  uint64_t disconnects = 0;       // established connections lost or dropped as stalled
  uint64_t timeouts = 0;          // commands completed with kTimeout
  uint64_t late_replies = 0;      // replies that arrived after their command timed out
  uint64_t rejected = 0;          // commands failed at once (not connected / too many pending)
};

// One Redis connection on one EventLoop, over hiredis's async API (0.14) attached to libevent.
//
// hiredis 0.14 has no connect or command timeouts; this class adds both with timers, plus
// reconnection with exponential backoff. While there is no connection (waiting to reconnect)
// commands fail at once with kUnavailable; while connecting they are queued (bounded by
// max_pending and by their command timeout) and sent once the connection is up.
//
// Every callback runs exactly once, on the loop thread: with the reply, kTimeout, or
// kUnavailable (connection lost, or the client destroyed with the command pending). A reply
// that arrives after its command timed out is dropped. Callbacks may destroy the client.
//
// Not thread-safe: use it on its loop's thread only; destroy it before the loop. Two hiredis
// 0.14 traits the process must live with: it writes with write(2), so SIGPIPE must be ignored
// (a lost connection would otherwise kill the process), and it resolves host names with a
// blocking getaddrinfo() on each connect attempt (prefer an IP address or a name the local
// resolver answers at once).
class RedisClient {
 public:
  RedisClient(event::EventLoop& loop, RedisClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends a command; arguments are binary-safe and copied before this returns.
  void command(std::span<const std::string_view> args, ReplyCallback cb);
  void command(std::initializer_list<std::string_view> args, ReplyCallback cb) {
    command(std::span<const std::string_view>(args.begin(), args.size()), std::move(cb));
  }

  // True once the TCP connection is up (SELECT may still be in flight).
  bool connected() const { return state_ == State::kConnected; }
  const RedisClientStats& stats() const { return stats_; }
  const RedisClientOptions& options() const { return options_; }
  // Commands hiredis still owes a reply, including timed-out ones.
  size_t pendingCountForTest() const { return outstanding(); }

 private:
  struct Pending;
  using PendingList = std::list<Pending*>;
  enum class State : uint8_t { kConnecting, kConnected, kBackoff, kClosed };

  static void onConnectThunk(const redisAsyncContext* context, int status);
  static void onDisconnectThunk(const redisAsyncContext* context, int status);
  static void onReplyThunk(redisAsyncContext* context, void* reply, void* privdata);

  void startConnect();
  void scheduleReconnect();
  void onConnect(int status);
  void onDisconnect();
  void onReply(Pending* pending, const redisReply* reply);
  void onConnectTimeout();
  void noteConnectFailure(std::string_view why);
  void onCommandTimer();
  void armCommandTimer(std::chrono::steady_clock::time_point now);
  // Detaches the current context (its remaining hiredis callbacks then touch nothing of ours)
  // and returns the callbacks of the commands still waiting, for the caller to complete.
  std::vector<ReplyCallback> detachContext();
  std::vector<ReplyCallback> dropConnection();
  static void completeAll(std::vector<ReplyCallback>& callbacks, CommandStatus status);
  size_t outstanding() const { return waiting_.size() + abandoned_.size(); }

  event::EventLoop& loop_;
  RedisClientOptions options_;
  std::chrono::milliseconds stall_timeout_;
  State state_ = State::kBackoff;
  redisAsyncContext* context_ = nullptr;
  // hiredis is tearing the context down (it is handing out NULL replies): send nothing more.
  bool context_failing_ = false;
  std::chrono::milliseconds backoff_;
  // Commands in send order. Replies arrive in that order and deadlines grow with it, so the
  // ones that time out are always the oldest: they move from waiting_ to abandoned_ (a splice,
  // which keeps each Pending's iterator valid) until their late reply, or the context's end,
  // frees them. hiredis owns the Pending objects (they are its privdata).
  PendingList waiting_;
  PendingList abandoned_;
  event::Timer connect_timer_;
  event::Timer command_timer_;
  std::chrono::steady_clock::time_point command_timer_due_;  // when command_timer_ fires
  event::Timer reconnect_timer_;
  RedisClientStats stats_;
  uint32_t failures_in_row_ = 0;  // for logging: the first failure is a warning, repeats debug
};

}  // namespace cachecar::redis
