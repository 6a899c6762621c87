#pragma once

#include <event2/bufferevent.h>

#include <memory>
#include <string>

#include "cachecar/event/event_loop.h"
#include "cachecar/http/parser.h"
#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::server {

class Worker;
class ProxyExchange;

// One client's HTTP/1.1 connection: reads requests in order (pipelined requests wait their
// turn in the input buffer), runs one ProxyExchange at a time, and enforces the header-read and
// idle timeouts and the size limits.
class ClientConnection : private http::MessageParser::Sink {
 public:
  ClientConnection(Worker& worker, upstream::BufferEventPtr bev, std::string peer_address);
  ~ClientConnection() override;
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  void start();
  // Graceful shutdown: closes an idle connection now, a busy one after its current response.
  void drain();

  // For the exchange.
  evbuffer* output() { return bufferevent_get_output(bev_.get()); }
  const std::string& peerAddress() const { return peer_address_; }
  // Sends what the output buffer holds now, straight from the caller (one writev, no event
  // loop round trip and no epoll changes when the socket takes it all); only a remainder
  // waits for the socket to become writable.
  void flush();
  // The exchange has queued its whole response. `close` ends the connection once it is sent.
  void onExchangeDone(bool close);
  // Asks for onClientDrained() on the exchange once the output buffer falls below the low mark.
  void watchDrain(bool on);
  static constexpr size_t kOutputHighWater = 1 << 20;
  static constexpr size_t kOutputLowWater = 256 << 10;

 private:
  enum class TimerMode { kIdle, kHeaderRead, kNone };

  static void onRead(bufferevent*, void* arg);
  static void onWrite(bufferevent*, void* arg);
  static void onEvent(bufferevent*, short what, void* arg);
  void onHeadComplete() override;
  void onBody(std::string_view chunk) override;

  void processInput();
  bool feedOnce();
  void rejectRequest(int status, std::string_view message);
  void closeAfterFlush();
  void closeNow();
  void armTimer(TimerMode mode);
  void onTimeout();

  Worker& worker_;
  upstream::BufferEventPtr bev_;
  std::string peer_address_;
  http::MessageParser parser_;
  std::shared_ptr<ProxyExchange> exchange_;
  event::Timer timer_;
  TimerMode timer_mode_ = TimerMode::kNone;
  bool request_complete_ = false;
  bool exchange_started_ = false;
  bool processing_ = false;
  bool reprocess_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool draining_watch_ = false;
};

}  // namespace cachecar::server
