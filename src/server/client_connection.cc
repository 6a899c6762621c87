#include "cachecar/server/client_connection.h"

#include <event2/buffer.h>

#include "cachecar/common/logging.h"
#include "cachecar/event/socket_io.h"
#include "cachecar/http/evbuffer_feed.h"
#include "cachecar/http/serializer.h"
#include "cachecar/server/proxy_exchange.h"
#include "cachecar/server/worker.h"

namespace cachecar::server {

namespace {

// Pipelined requests wait in the input buffer while an exchange runs; past this much, stop
// reading from the socket until the queue moves.
constexpr size_t kMaxBufferedInput = 512 << 10;
constexpr size_t kMaxSingleWrite = 4 << 20;

}  // namespace

ClientConnection::ClientConnection(Worker& worker, upstream::BufferEventPtr bev,
                                   std::string peer_address)
    : worker_(worker),
      bev_(std::move(bev)),
      peer_address_(std::move(peer_address)),
      parser_(http::MessageParser::Kind::kRequest, *this,
              worker.settings().config().limits.max_header_bytes,
              worker.settings().config().limits.max_request_body_bytes,
              worker.settings().config().limits.max_header_fields),
      timer_(worker.loop(), [this] { onTimeout(); }) {}

ClientConnection::~ClientConnection() {
  if (exchange_) {
    exchange_->detachClient();
  }
}

void ClientConnection::start() {
  bufferevent_setcb(bev_.get(), &ClientConnection::onRead, &ClientConnection::onWrite,
                    &ClientConnection::onEvent, this);
  bufferevent_setwatermark(bev_.get(), EV_READ, 0, kMaxBufferedInput);
  // libevent writes at most 16 KiB per loop iteration by default, which turns one 256 KiB hit
  // into sixteen trips around the loop; let the kernel take as much as it will.
  bufferevent_set_max_single_write(bev_.get(), kMaxSingleWrite);
  // Writing is ours (flush()): the bufferevent only takes over while the socket is full.
  bufferevent_enable(bev_.get(), EV_READ);
  bufferevent_disable(bev_.get(), EV_WRITE);
  armTimer(TimerMode::kIdle);
}

void ClientConnection::flush() {
  if (!closed_) {
    event::flushOutput(bev_.get());
  }
}

void ClientConnection::onRead(bufferevent*, void* arg) {
  auto* self = static_cast<ClientConnection*>(arg);
  // Request bodies (uploads) in large reads, not 4 KiB per trip around the loop.
  event::readRestOfSocket(self->bev_.get(), kMaxBufferedInput);
  self->processInput();
}

void ClientConnection::onWrite(bufferevent*, void* arg) {
  auto* self = static_cast<ClientConnection*>(arg);
  const bool empty = evbuffer_get_length(self->output()) == 0;
  if (self->closing_ && empty) {
    self->closeNow();
    return;
  }
  if (empty) {
    bufferevent_disable(self->bev_.get(), EV_WRITE);
  }
  if (self->draining_watch_ && self->exchange_) {
    auto exchange = self->exchange_;
    exchange->onClientDrained();
  }
}

void ClientConnection::onEvent(bufferevent*, short what, void* arg) {
  auto* self = static_cast<ClientConnection*>(arg);
  if ((what & BEV_EVENT_EOF) != 0 && !self->closing_ && self->exchange_ &&
      self->request_complete_ && (what & BEV_EVENT_ERROR) == 0) {
    // The client half-closed after its request: still send the response, then close.
    self->closing_ = true;
    return;
  }
  self->closeNow();
}

// Runs the parser over the buffered input until it needs more bytes or an exchange is busy.
// Re-entrant calls (an exchange finishing inside this loop) just ask for another pass.
void ClientConnection::processInput() {
  if (processing_) {
    reprocess_ = true;
    return;
  }
  processing_ = true;
  do {
    reprocess_ = false;
    while (!closing_ && !closed_ && feedOnce()) {
    }
  } while (reprocess_ && !closing_ && !closed_);
  processing_ = false;
  // One write for everything this batch produced (pipelined hits go out together).
  flush();
}

bool ClientConnection::feedOnce() {
  if (exchange_ && request_complete_) {
    return false;  // a pipelined request waits for the current response
  }
  evbuffer* input = bufferevent_get_input(bev_.get());
  if (evbuffer_get_length(input) == 0) {
    return false;
  }
  if (!exchange_ && timer_mode_ != TimerMode::kHeaderRead) {
    armTimer(TimerMode::kHeaderRead);
  } else if (exchange_) {
    armTimer(TimerMode::kIdle);  // request body: bounded wait between reads
  }
  const std::optional<http::ParseResult> r = http::feedFromBuffer(parser_, input);
  if (!r) {
    return false;
  }
  switch (r->status) {
    case http::ParseStatus::kNeedMore:
      break;
    case http::ParseStatus::kMessageComplete:
      request_complete_ = true;
      break;
    case http::ParseStatus::kHeaderTooLarge:
      rejectRequest(431, "request header fields too large");
      return false;
    case http::ParseStatus::kBodyTooLarge:
      rejectRequest(413, "request body too large");
      return false;
    case http::ParseStatus::kError:
      rejectRequest(400, "malformed request: " + std::string(parser_.errorReason()));
      return false;
  }
  if (exchange_ && !exchange_started_) {
    exchange_started_ = true;
    if (request_complete_) {
      armTimer(TimerMode::kNone);
    }
    auto exchange = exchange_;
    exchange->start();
  }
  if (request_complete_ && exchange_) {
    armTimer(TimerMode::kNone);
    auto exchange = exchange_;
    exchange->onRequestComplete();
  }
  return true;
}

void ClientConnection::onHeadComplete() {
  // Runs inside the parser: only record the exchange; it starts once the parser returns.
  exchange_ = std::make_shared<ProxyExchange>(worker_, *this, parser_.request());
  exchange_started_ = false;
}

void ClientConnection::onBody(std::string_view chunk) {
  if (exchange_) {
    exchange_->onRequestBody(chunk);
  }
}

void ClientConnection::drain() {
  if (closing_ || closed_) {
    return;
  }
  if (!exchange_ && evbuffer_get_length(bufferevent_get_input(bev_.get())) == 0) {
    closeNow();  // idle keep-alive connection
  }
  // Otherwise the exchange answers with Connection: close and onExchangeDone() closes.
}

void ClientConnection::onExchangeDone(bool close) {
  exchange_.reset();
  exchange_started_ = false;
  if (!processing_) {
    flush();  // an exchange that finished from the event loop (upstream, Redis)
  }
  if (close || !request_complete_ || worker_.draining()) {
    closeAfterFlush();
    return;
  }
  request_complete_ = false;
  parser_.nextMessage();
  armTimer(TimerMode::kIdle);
  if (evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0) {
    processInput();
  }
}

void ClientConnection::watchDrain(bool on) {
  draining_watch_ = on;
  bufferevent_setwatermark(bev_.get(), EV_WRITE, on ? kOutputLowWater : 0, 0);
}

void ClientConnection::rejectRequest(int status, std::string_view message) {
  log(LogLevel::kInfo, "client ", peer_address_, ": ", status, " ", message);
  if (exchange_) {
    exchange_->detachClient();
    exchange_.reset();
  }
  const std::string response = http::makeErrorResponse(status, message);
  evbuffer_add(output(), response.data(), response.size());
  closeAfterFlush();
}

void ClientConnection::closeAfterFlush() {
  closing_ = true;
  armTimer(TimerMode::kNone);
  bufferevent_disable(bev_.get(), EV_READ);
  flush();
  if (evbuffer_get_length(output()) == 0) {
    closeNow();
  } else {
    // Never wait forever for a client that does not read.
    armTimer(TimerMode::kIdle);
  }
}

void ClientConnection::closeNow() {
  if (closed_) {
    return;
  }
  closed_ = true;
  closing_ = true;
  timer_.cancel();
  if (exchange_) {
    exchange_->detachClient();
    exchange_.reset();
  }
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
  worker_.closeConnection(this);
}

void ClientConnection::armTimer(TimerMode mode) {
  timer_mode_ = mode;
  const auto& limits = worker_.settings().config().limits;
  switch (mode) {
    case TimerMode::kNone:
      timer_.cancel();
      break;
    case TimerMode::kIdle:
      timer_.arm(limits.idle_timeout);
      break;
    case TimerMode::kHeaderRead:
      timer_.arm(limits.header_read_timeout);
      break;
  }
}

void ClientConnection::onTimeout() {
  if (closing_) {
    closeNow();
    return;
  }
  if (timer_mode_ == TimerMode::kHeaderRead) {
    rejectRequest(408, "request header read timeout");
    return;
  }
  if (exchange_ && !request_complete_) {
    rejectRequest(408, "request body read timeout");
    return;
  }
  closeNow();
}

}  // namespace cachecar::server
