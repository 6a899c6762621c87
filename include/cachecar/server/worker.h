#pragma once

#include <event2/listener.h>
#include <sys/socket.h>

#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "cachecar/common/clock.h"
#include "cachecar/common/result.h"
#include "cachecar/event/event_loop.h"
#include "cachecar/metrics/metrics.h"
#include "cachecar/server/cache_instance.h"
#include "cachecar/server/inflight_table.h"
#include "cachecar/server/proxy_settings.h"
#include "cachecar/storage/backend.h"
#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::server {

class ClientConnection;

struct ListenerDeleter {
  void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};
using ListenerPtr = std::unique_ptr<evconnlistener, ListenerDeleter>;

class AccessLog;

// State shared by all workers of one process.
struct SharedState {
  explicit SharedState(metrics::Registry& registry, AccessLog& log);

  metrics::Registry& metrics;
  AccessLog& access_log;
  metrics::Histogram& origin_latency;
  metrics::Counter& coalesced_waiters;
  metrics::Counter& uncacheable_fetches;
  std::atomic<uint64_t> open_connections{0};
  InflightTable inflight;  // request coalescing across workers
};

// One event loop on one thread with its own listening socket (SO_REUSEPORT: the kernel spreads
// connections over workers), its own upstream pool and its own storage backends (the memory
// store behind them is shared by all workers).
class Worker {
 public:
  Worker(unsigned index, std::shared_ptr<const ProxySettings> settings, SharedState& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds the listening socket (on the caller's thread, so startup errors are reported there).
  Status listen();
  void startThread();
  // Thread-safe: stops the loop; join() waits for the thread.
  void stop();
  void join();

  // Loop thread: new requests use `settings` from now on (a reload); caches whose runtime did
  // not change keep their backend handles.
  void adopt(std::shared_ptr<const ProxySettings> settings);
  // Loop thread: stops accepting and closes idle connections; busy ones close after their
  // current response.
  void beginDrain();

  // For the request path (loop thread only).
  event::EventLoop& loop() { return loop_; }
  const ProxySettings& settings() const { return *settings_; }
  const std::shared_ptr<const ProxySettings>& sharedSettings() const { return settings_; }
  upstream::UpstreamPool& upstreamPool() { return *pool_; }
  std::shared_ptr<CacheInstance> cache(const std::string& name);
  InflightTable& inflight() { return shared_.inflight; }
  SharedState& shared() { return shared_; }
  bool draining() const { return draining_; }
  // Per-worker randomness (Vary epochs); not for secrets.
  uint64_t randomU64() { return random_(); }
  SystemTime now() const;
  void closeConnection(ClientConnection* conn);
  unsigned index() const { return index_; }

 private:
  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void onAcceptError(evconnlistener*, void* arg);
  void accept(evutil_socket_t fd, const sockaddr* addr, int len);

  unsigned index_;
  std::shared_ptr<const ProxySettings> settings_;
  SharedState& shared_;
  event::EventLoop loop_;
  ListenerPtr listener_;
  std::unique_ptr<upstream::UpstreamPool> pool_;
  CacheInstances caches_;
  bool draining_ = false;
  std::unordered_map<ClientConnection*, std::unique_ptr<ClientConnection>> connections_;
  std::mt19937_64 random_{std::random_device{}()};
  std::thread thread_;
};

}  // namespace cachecar::server
