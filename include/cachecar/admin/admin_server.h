#pragma once

#include <event2/listener.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "cachecar/admin/purge_target.h"
#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/event/event_loop.h"

// The admin listener: health and readiness probes, Prometheus metrics, purges. It runs on its
// own loop, apart from the proxy's workers, and reaches the running proxy only through
// AdminHooks. Low traffic by design: one request per connection, always `Connection: close`.
//
// Like the proxy listener, it expects SIGPIPE to be ignored process-wide (a client that resets
// while its answer is written must be an EPIPE, not the end of the process).
//
// Endpoints:
//   GET|HEAD /healthz  200 "ok"                                      (never needs a token)
//   GET|HEAD /readyz   200 "ready" | 503 "draining" | 503 "upstream unreachable: <why>"
//   GET|HEAD /metrics  200 Prometheus text                            (token or loopback)
//   POST /purge?url=<urlencoded absolute URL> | ?cache=<name>          (token or loopback)
namespace cachecar::admin {

// What the admin endpoints ask of the running proxy. Called on the admin loop's thread; the
// async ones may answer later (also on that thread: post() to the admin loop when the work
// finishes elsewhere) or at once. Answering after the server or the connection is gone is
// harmless (the answer is dropped), and so is answering twice (the second answer is ignored).
// Arguments passed by reference are valid only during the call: copy what an async answer needs.
class AdminHooks {
 public:
  virtual ~AdminHooks() = default;
  virtual bool draining() const = 0;
  // Done with Ok when the app accepts a TCP connection, else an Error saying why.
  virtual void probeUpstream(std::function<void(Status)> done) = 0;
  virtual std::string renderMetrics() = 0;  // Prometheus text
  // Done with a short human-readable summary ("purged 3 keys for shop.example/products/1").
  virtual void purgeUrl(const PurgeTarget& target,
                        std::function<void(Result<std::string>)> done) = 0;
  // An Error whose message starts with "unknown cache" becomes 404; other errors 503.
  virtual void bumpCacheVersion(const std::string& cache,
                                std::function<void(Result<std::string>)> done) = 0;
};

struct AdminServerSettings {
  // The bearer token, when the configured env var is set and non-empty. Without one, /metrics
  // and /purge are served to loopback peers only.
  std::optional<std::string> token;
  std::chrono::milliseconds request_timeout{10000};  // whole request must arrive within this
  size_t max_header_bytes = 16 << 10;
  // A hook that has not answered within this gets 503 (a probe must never hang).
  std::chrono::milliseconds response_timeout{30000};
  // Past this many open admin connections, new ones get 503 at once (fd exhaustion guard).
  size_t max_connections = 64;
};

// Request bodies are read and ignored up to this size; larger ones get 413.
inline constexpr size_t kMaxAdminBodyBytes = 64 << 10;

// True for 127.0.0.0/8, ::1 and IPv4-mapped ::ffff:127.0.0.0/104.
bool isLoopbackPeer(const sockaddr* addr);

class AdminConnection;

class AdminServer {
 public:
  AdminServer(event::EventLoop& loop, AdminHooks& hooks, AdminServerSettings settings);
  // Closes the listener and every open admin connection. Call on the loop's thread, or after
  // the loop stopped.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds (errors name the address, like the proxy listener's). Call on the loop's thread or
  // before the loop runs.
  Status listen(const config::HostPort& address);
  uint16_t boundPort() const;  // 0 when not listening; useful with port 0 in tests

  // Loop thread only.
  size_t openConnectionsForTest() const { return connections_.size(); }
  // Makes every peer count as non-loopback, to test the "no token, remote peer" rule without
  // a non-loopback address.
  void treatPeersAsRemoteForTest(bool remote) { peers_remote_for_test_ = remote; }

  // For AdminConnection.
  event::EventLoop& loop() { return loop_; }
  AdminHooks& hooks() { return hooks_; }
  const AdminServerSettings& settings() const { return settings_; }
  // Deletes the connection on a clean stack (the caller may be inside its methods).
  void closeConnection(AdminConnection* conn);

 private:
  struct ListenerDeleter {
    void operator()(evconnlistener* l) const { evconnlistener_free(l); }
  };

  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void onAcceptError(evconnlistener*, void* arg);
  void accept(evutil_socket_t fd, const sockaddr* addr);

  event::EventLoop& loop_;
  AdminHooks& hooks_;
  AdminServerSettings settings_;
  std::unique_ptr<evconnlistener, ListenerDeleter> listener_;
  std::string address_text_;
  // Shared so that hook answers and posted closes can hold weak references.
  std::unordered_map<AdminConnection*, std::shared_ptr<AdminConnection>> connections_;
  bool peers_remote_for_test_ = false;
};

}  // namespace cachecar::admin
