#pragma once

#include <event2/bufferevent.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "cachecar/event/event_loop.h"
#include "cachecar/http/message.h"
#include "cachecar/http/parser.h"

namespace cachecar::upstream {

struct BufferEventDeleter {
  void operator()(bufferevent* b) const { bufferevent_free(b); }
};
using BufferEventPtr = std::unique_ptr<bufferevent, BufferEventDeleter>;

enum class UpstreamError {
  kConnectFailed,  // refused, unreachable or connect timeout -> 502
  kTimeout,        // no response (or no further bytes) within the response timeout -> 504
  kClosed,         // the app closed the connection before the response was complete -> 502
  kMalformed,      // the app's response could not be parsed -> 502
};
std::string_view toString(UpstreamError e);

// Receives one response from an upstream connection.
class ResponseHandler {
 public:
  virtual ~ResponseHandler() = default;
  virtual void onUpstreamInterim(const http::ResponseHead& /*interim*/) {}
  virtual void onUpstreamHead(http::ResponseHead& head) = 0;
  virtual void onUpstreamBody(std::string_view chunk) = 0;
  virtual void onUpstreamComplete() = 0;
  virtual void onUpstreamError(UpstreamError error) = 0;
  // Everything the last read brought has been delivered: a good moment to send it on in one
  // write rather than one per parsed piece.
  virtual void onUpstreamReadDone() {}
};

struct PoolSettings {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds response_timeout{30000};
  size_t max_idle = 64;
};

class UpstreamPool;

// One keep-alive HTTP/1.1 connection to the app. Serves one exchange at a time: begin() attaches
// a handler, the request goes out through send(), and the handler hears the response. Never
// deleted from inside its own callbacks (the pool defers that), so a handler may release it
// from any callback.
class UpstreamConnection : private http::MessageParser::Sink {
 public:
  UpstreamConnection(UpstreamPool& pool, BufferEventPtr bev, bool connecting);
  ~UpstreamConnection() override;
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  void begin(ResponseHandler* handler, bool head_request);
  // Sends request bytes (head, then body): at once when connected, else as soon as the
  // connect completes.
  void send(std::string_view bytes);
  // Stop/restart reading the app's response (backpressure from a slow client).
  void pauseReading();
  void resumeReading();
  // Whether the connection may carry another exchange (response complete, keep-alive).
  bool reusable() const { return response_complete_ && keep_alive_ && !broken_; }
  // Whether any response byte arrived (a reused connection closed before that may be retried).
  bool receivedAny() const { return received_any_; }
  bool wasReused() const { return exchanges_ > 1; }

 private:
  friend class UpstreamPool;
  static void onRead(bufferevent* bev, void* arg);
  static void onWrite(bufferevent* bev, void* arg);
  static void onEvent(bufferevent* bev, short what, void* arg);
  static void onConnectTimeout(evutil_socket_t, short, void* arg);
  void onHeadComplete() override;
  void onBody(std::string_view chunk) override;
  void onInterim() override;
  void readResponse();
  void flush();
  void fail(UpstreamError error);
  void becomeIdle();

  UpstreamPool& pool_;
  BufferEventPtr bev_;
  http::MessageParser parser_;
  ResponseHandler* handler_ = nullptr;
  event::EventPtr connect_timer_;
  bool connecting_;
  bool response_complete_ = false;
  bool keep_alive_ = true;
  bool broken_ = false;
  bool received_any_ = false;
  bool reading_ = true;
  uint64_t exchanges_ = 0;
  std::list<std::unique_ptr<UpstreamConnection>>::iterator idle_pos_;
  bool idle_ = false;
};
using UpstreamConnectionPtr = std::unique_ptr<UpstreamConnection>;

// Keep-alive connections from one worker to the app.
class UpstreamPool {
 public:
  UpstreamPool(event::EventLoop& loop, const sockaddr_storage& address, socklen_t address_len,
               PoolSettings settings);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // An idle connection, or a new one whose connect has started. nullptr only when no socket
  // could be made at all (the caller answers 502).
  UpstreamConnectionPtr acquire();
  // Keeps the connection for reuse when it is reusable and the pool has room; otherwise
  // closes it (deferred: safe from inside the connection's callbacks).
  void release(UpstreamConnectionPtr conn);

  const PoolSettings& settings() const { return settings_; }
  event::EventLoop& loop() { return loop_; }
  size_t idleCount() const { return idle_.size(); }
  uint64_t connectsForTest() const { return connects_; }

 private:
  friend class UpstreamConnection;
  void dropIdle(UpstreamConnection* conn);
  void destroyLater(UpstreamConnectionPtr conn);

  event::EventLoop& loop_;
  sockaddr_storage address_;
  socklen_t address_len_;
  PoolSettings settings_;
  std::list<UpstreamConnectionPtr> idle_;
  uint64_t connects_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace cachecar::upstream
