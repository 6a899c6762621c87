#include "cachecar/upstream/upstream_pool.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstdint>
#include <limits>

#include "cachecar/common/logging.h"
#include "cachecar/event/socket_io.h"
#include "cachecar/http/evbuffer_feed.h"

namespace cachecar::upstream {

namespace {

timeval toTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

// Response headers from the app are bounded too (a broken app must not exhaust memory).
constexpr size_t kMaxResponseHeaderBytes = 256 * 1024;
// More than a request may carry (an app may set many cookies), still bounding the per-field
// work of merging and storing one response.
constexpr size_t kMaxResponseHeaderFields = 256;
// How much of the app's response one read callback takes.
constexpr size_t kMaxSingleRead = 256 * 1024;

}  // namespace

std::string_view toString(UpstreamError e) {
  switch (e) {
    case UpstreamError::kConnectFailed:
      return "connect-failed";
    case UpstreamError::kTimeout:
      return "timeout";
    case UpstreamError::kClosed:
      return "closed";
    case UpstreamError::kMalformed:
      return "malformed";
  }
  return "unknown";
}

UpstreamConnection::UpstreamConnection(UpstreamPool& pool, BufferEventPtr bev, bool connecting)
    : pool_(pool),
      bev_(std::move(bev)),
      parser_(http::MessageParser::Kind::kResponse, *this, kMaxResponseHeaderBytes,
              std::numeric_limits<uint64_t>::max(), kMaxResponseHeaderFields),
      connecting_(connecting) {
  bufferevent_setcb(bev_.get(), &UpstreamConnection::onRead, &UpstreamConnection::onWrite,
                    &UpstreamConnection::onEvent, this);
  // Writing is ours (flush()) once connected: the write event only serves the connect and a
  // full socket.
  bufferevent_enable(bev_.get(), connecting_ ? EV_READ | EV_WRITE : EV_READ);
  if (connecting_) {
    connect_timer_.reset(
        evtimer_new(pool_.loop().base(), &UpstreamConnection::onConnectTimeout, this));
    const timeval tv = toTimeval(pool_.settings().connect_timeout);
    evtimer_add(connect_timer_.get(), &tv);
  }
}

UpstreamConnection::~UpstreamConnection() = default;

void UpstreamConnection::begin(ResponseHandler* handler, bool head_request) {
  handler_ = handler;
  idle_ = false;
  response_complete_ = false;
  received_any_ = false;
  ++exchanges_;
  parser_.nextMessage();
  parser_.setNoBodyExpected(head_request);
  const timeval tv = toTimeval(pool_.settings().response_timeout);
  bufferevent_set_timeouts(bev_.get(), &tv, &tv);
  resumeReading();
}

void UpstreamConnection::pauseReading() {
  if (reading_) {
    reading_ = false;
    bufferevent_disable(bev_.get(), EV_READ);
  }
}

void UpstreamConnection::resumeReading() {
  if (!reading_) {
    reading_ = true;
    bufferevent_enable(bev_.get(), EV_READ);
  }
  // Bytes that arrived while paused are still in the input buffer.
  if (handler_ != nullptr && evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0) {
    readResponse();
  }
}

void UpstreamConnection::send(std::string_view bytes) {
  evbuffer_add(bufferevent_get_output(bev_.get()), bytes.data(), bytes.size());
  flush();
}

void UpstreamConnection::flush() {
  if (!connecting_) {  // while connecting, the bufferevent sends the output once connected
    event::flushOutput(bev_.get());
  }
}

void UpstreamConnection::onWrite(bufferevent* bev, void*) {
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
    bufferevent_disable(bev, EV_WRITE);
  }
}

void UpstreamConnection::onRead(bufferevent*, void* arg) {
  auto* self = static_cast<UpstreamConnection*>(arg);
  if (self->reading_ && self->handler_ != nullptr) {
    // A large response in a few trips around the loop, not one per 4 KiB.
    event::readRestOfSocket(self->bev_.get(), kMaxSingleRead);
  }
  self->readResponse();
}

void UpstreamConnection::readResponse() {
  evbuffer* input = bufferevent_get_input(bev_.get());
  if (handler_ == nullptr) {
    // Bytes on an idle connection: the app is not speaking HTTP/1.1 keep-alive correctly.
    broken_ = true;
    if (idle_) {
      pool_.dropIdle(this);
    }
    return;
  }
  while (handler_ != nullptr && reading_ && evbuffer_get_length(input) > 0) {
    received_any_ = true;
    const std::optional<http::ParseResult> parsed = http::feedFromBuffer(parser_, input);
    if (!parsed) {
      break;
    }
    const http::ParseResult r = *parsed;
    if (handler_ == nullptr) {
      // The handler let go of this connection from inside a callback (it answered the client
      // some other way); whatever else the app sends is not wanted.
      broken_ = true;
      return;
    }
    if (r.status == http::ParseStatus::kMessageComplete) {
      response_complete_ = true;
      keep_alive_ = parser_.response().keep_alive;
      if (evbuffer_get_length(input) > 0) {
        // Bytes after a complete response that nobody asked for: don't reuse this connection.
        broken_ = true;
      }
      bufferevent_set_timeouts(bev_.get(), nullptr, nullptr);
      ResponseHandler* h = handler_;
      handler_ = nullptr;
      h->onUpstreamComplete();
      return;
    }
    if (r.status != http::ParseStatus::kNeedMore) {
      log(LogLevel::kWarn, "upstream response malformed: ", parser_.errorReason());
      fail(UpstreamError::kMalformed);
      return;
    }
  }
  if (handler_ != nullptr) {
    handler_->onUpstreamReadDone();
  }
}

void UpstreamConnection::onHeadComplete() {
  if (handler_ != nullptr) {
    handler_->onUpstreamHead(parser_.response());
  }
}

void UpstreamConnection::onInterim() {
  if (handler_ != nullptr) {
    handler_->onUpstreamInterim(parser_.response());
  }
}

void UpstreamConnection::onBody(std::string_view chunk) {
  if (handler_ != nullptr) {
    handler_->onUpstreamBody(chunk);
  }
}

void UpstreamConnection::onEvent(bufferevent*, short what, void* arg) {
  auto* self = static_cast<UpstreamConnection*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    self->connecting_ = false;
    self->connect_timer_.reset();
    const int one = 1;
    setsockopt(bufferevent_getfd(self->bev_.get()), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return;
  }
  if (self->idle_) {
    self->broken_ = true;
    self->pool_.dropIdle(self);
    return;
  }
  if ((what & BEV_EVENT_TIMEOUT) != 0) {
    self->fail(UpstreamError::kTimeout);
    return;
  }
  if (self->connecting_) {
    self->fail(UpstreamError::kConnectFailed);
    return;
  }
  if ((what & BEV_EVENT_EOF) != 0 && self->handler_ != nullptr) {
    // Read whatever is left, then let a read-until-close response end here.
    self->readResponse();
    if (self->handler_ != nullptr && self->parser_.headComplete() &&
        self->parser_.finish() == http::ParseStatus::kMessageComplete) {
      self->response_complete_ = true;
      self->keep_alive_ = false;
      ResponseHandler* h = self->handler_;
      self->handler_ = nullptr;
      h->onUpstreamComplete();
      return;
    }
  }
  self->fail(UpstreamError::kClosed);
}

void UpstreamConnection::onConnectTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<UpstreamConnection*>(arg);
  self->fail(UpstreamError::kConnectFailed);
}

void UpstreamConnection::fail(UpstreamError error) {
  broken_ = true;
  connect_timer_.reset();
  bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
  if (handler_ != nullptr) {
    ResponseHandler* h = handler_;
    handler_ = nullptr;
    h->onUpstreamError(error);
  }
}

void UpstreamConnection::becomeIdle() {
  idle_ = true;
  handler_ = nullptr;
  // Idle: no timeouts; any byte or EOF from the app means the connection is gone.
  bufferevent_set_timeouts(bev_.get(), nullptr, nullptr);
  reading_ = true;
  bufferevent_enable(bev_.get(), EV_READ);
}

UpstreamPool::UpstreamPool(event::EventLoop& loop, const sockaddr_storage& address,
                           socklen_t address_len, PoolSettings settings)
    : loop_(loop), address_(address), address_len_(address_len), settings_(settings) {}

UpstreamPool::~UpstreamPool() { *alive_ = false; }

UpstreamConnectionPtr UpstreamPool::acquire() {
  if (!idle_.empty()) {
    UpstreamConnectionPtr conn = std::move(idle_.front());
    idle_.pop_front();
    conn->idle_ = false;
    return conn;
  }
  BufferEventPtr bev(bufferevent_socket_new(loop_.base(), -1, BEV_OPT_CLOSE_ON_FREE));
  if (!bev) {
    return nullptr;
  }
  ++connects_;
  auto conn = std::make_unique<UpstreamConnection>(*this, std::move(bev), true);
  // A connect that fails at once (refused on loopback) is reported through a deferred error
  // event, so the caller always hears about it from the loop, never inside this call.
  if (bufferevent_socket_connect(conn->bev_.get(), reinterpret_cast<sockaddr*>(&address_),
                                 static_cast<int>(address_len_)) != 0) {
    return nullptr;
  }
  return conn;
}

void UpstreamPool::release(UpstreamConnectionPtr conn) {
  if (!conn) {
    return;
  }
  if (conn->reusable() && idle_.size() < settings_.max_idle) {
    conn->becomeIdle();
    idle_.push_front(std::move(conn));
    idle_.front()->idle_pos_ = idle_.begin();
    return;
  }
  destroyLater(std::move(conn));
}

void UpstreamPool::dropIdle(UpstreamConnection* conn) {
  if (!conn->idle_) {
    return;
  }
  conn->idle_ = false;
  UpstreamConnectionPtr owned = std::move(*conn->idle_pos_);
  idle_.erase(conn->idle_pos_);
  destroyLater(std::move(owned));
}

void UpstreamPool::destroyLater(UpstreamConnectionPtr conn) {
  bufferevent_disable(conn->bev_.get(), EV_READ | EV_WRITE);
  bufferevent_setcb(conn->bev_.get(), nullptr, nullptr, nullptr, nullptr);
  conn->handler_ = nullptr;
  // Deleting from inside the connection's own callback would pull the object out from under
  // the caller; the loop deletes it on a clean stack instead.
  loop_.post([raw = conn.release()] { delete raw; });
}

}  // namespace cachecar::upstream
