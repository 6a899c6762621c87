#include "cachecar/server/worker.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cachecar/cache/cache_key.h"
#include "cachecar/common/logging.h"
#include "cachecar/server/accepted_socket.h"
#include "cachecar/server/client_connection.h"
#include "cachecar/server/socket_address.h"

namespace cachecar::server {

namespace {

// SO_REUSEPORT lets our workers share the port, but it would also let a second cachecar on
// the same port start silently. A plain bind first proves that nobody else holds it.
Status checkPortFree(const SocketAddress& addr, const std::string& text) {
  const int fd = ::socket(addr.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Error{"socket: " + std::string(std::strerror(errno))};
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = ::bind(fd, addr.get(), addr.length);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) {
    return Error{"cannot listen on " + text + ": " + std::strerror(saved)};
  }
  return Ok{};
}

}  // namespace

SharedState::SharedState(metrics::Registry& registry, AccessLog& log)
    : metrics(registry),
      access_log(log),
      origin_latency(registry.histogram("cachecar_origin_request_duration_seconds", {})),
      coalesced_waiters(registry.counter("cachecar_coalesced_waiters_total", {})),
      uncacheable_fetches(registry.counter("cachecar_uncacheable_fetches_total", {})) {}

Worker::Worker(unsigned index, std::shared_ptr<const ProxySettings> settings,
               SharedState& shared)
    : index_(index), settings_(std::move(settings)), shared_(shared) {
  const auto& cfg = settings_->config();
  upstream::PoolSettings pool_settings;
  pool_settings.connect_timeout = cfg.limits.upstream_connect_timeout;
  pool_settings.response_timeout = cfg.limits.upstream_response_timeout;
  pool_settings.max_idle = cfg.limits.upstream_max_idle_connections;
  pool_ = std::make_unique<upstream::UpstreamPool>(loop_, settings_->upstreamAddress(),
                                                   settings_->upstreamAddressLength(),
                                                   pool_settings);
  caches_ = makeCacheInstances(*settings_, {}, loop_, shared_.metrics, index_);
}

void Worker::adopt(std::shared_ptr<const ProxySettings> settings) {
  caches_ = makeCacheInstances(*settings, caches_, loop_, shared_.metrics, index_);
  settings_ = std::move(settings);
}

void Worker::beginDrain() {
  draining_ = true;
  listener_.reset();
  std::vector<ClientConnection*> open;
  open.reserve(connections_.size());
  for (const auto& [conn, owned] : connections_) {
    open.push_back(conn);
  }
  for (ClientConnection* conn : open) {
    conn->drain();
  }
}

Worker::~Worker() {
  listener_.reset();
  // Connections first (their exchanges hand upstream connections back to the pool), then
  // whatever they posted, then the pool and the storage backends.
  connections_.clear();
  loop_.drainPosted();
  pool_.reset();
  caches_.clear();
  loop_.drainPosted();
}

Status Worker::listen() {
  const config::HostPort& address = settings_->config().listen;
  auto resolved = resolveAddress(address, /*passive=*/true);
  if (!resolved.ok()) {
    return Error{"listen: " + resolved.error().message};
  }
  if (index_ == 0) {
    if (auto free = checkPortFree(*resolved, address.toString()); !free.ok()) {
      return free.error();
    }
  }
  listener_.reset(evconnlistener_new_bind(
      loop_.base(), &Worker::onAccept, this,
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
      1024, resolved->get(), static_cast<int>(resolved->length)));
  if (!listener_) {
    return Error{"cannot listen on " + address.toString() + ": " + std::strerror(errno)};
  }
  evconnlistener_set_error_cb(listener_.get(), &Worker::onAcceptError);
  return Ok{};
}

void Worker::startThread() {
  thread_ = std::thread([this] { loop_.run(); });
}

void Worker::stop() { loop_.stop(); }

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::shared_ptr<CacheInstance> Worker::cache(const std::string& name) {
  auto it = caches_.find(name);
  return it == caches_.end() ? nullptr : it->second;
}

SystemTime Worker::now() const {
  // The loop's cached time: one clock read per loop iteration, not per request.
  timeval tv{};
  event_base_gettimeofday_cached(loop_.base(), &tv);
  return SystemTime(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
}

void Worker::closeConnection(ClientConnection* conn) {
  // Deleted on a clean stack: the caller may still be inside the connection's methods.
  loop_.post([this, conn] {
    if (connections_.erase(conn) > 0) {
      shared_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    }
  });
}

void Worker::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg) {
  static_cast<Worker*>(arg)->accept(fd, addr, len);
}

void Worker::accept(evutil_socket_t fd, const sockaddr* addr, int) {
  if (shared_.open_connections.load(std::memory_order_relaxed) >=
      settings_->config().limits.max_connections) {
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
        "too many connections\n";
    refuseAccepted(fd, kBusy);
    return;
  }
  upstream::BufferEventPtr bev = adoptAccepted(loop_.base(), fd);
  if (!bev) {
    return;
  }
  shared_.open_connections.fetch_add(1, std::memory_order_relaxed);
  auto conn = std::make_unique<ClientConnection>(*this, std::move(bev), peerAddressOf(addr));
  ClientConnection* raw = conn.get();
  connections_.emplace(raw, std::move(conn));
  raw->start();
}

void Worker::onAcceptError(evconnlistener*, void* arg) {
  auto* self = static_cast<Worker*>(arg);
  // EMFILE and friends: log and keep serving the connections we have.
  log(LogLevel::kWarn, "worker ", self->index_, ": accept failed: ", std::strerror(errno));
}

}  // namespace cachecar::server
