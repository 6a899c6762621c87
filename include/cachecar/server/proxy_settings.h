#pragma once

#include <sys/socket.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/http/request_normalizer.h"
#include "cachecar/metrics/metrics.h"
#include "cachecar/server/cache_status.h"
#include "cachecar/server/cache_version.h"
#include "cachecar/server/route_table.h"
#include "cachecar/storage/registry.h"

namespace cachecar::server {

// One configured cache's process-wide parts: its storage provider (the memory store itself, or
// how to reach Redis) and its version bumps. A reload that leaves the cache's definition
// unchanged hands the same runtime on, so the cache keeps its entries.
struct CacheRuntime {
  storage::BackendProviderPtr provider;
  std::shared_ptr<CacheVersion> version;
};

// cachecar_requests_total series of one route, by cache status (looked up once per reload).
using RequestCounters = std::array<metrics::Counter*, kCacheStatusCount>;

// The configuration in force, with what is derived from it: the route table, the caches and
// the metric series of the routes. Immutable once built; every worker and every exchange holds
// it by shared_ptr, so a reload never changes the settings under a request in flight.
class ProxySettings {
 public:
  // Creates the storage providers of new or changed caches and reuses `previous`'s for the
  // unchanged ones (fails on an unusable backend definition).
  static Result<std::shared_ptr<const ProxySettings>> build(
      config::Config config, const storage::Registry& registry, metrics::Registry& metrics,
      const ProxySettings* previous = nullptr);

  const config::Config& config() const { return config_; }
  const RouteTable& routes() const { return routes_; }
  const std::map<std::string, CacheRuntime>& caches() const { return caches_; }
  // `route` as returned by routes().match(), or nullptr for requests no route matches.
  const RequestCounters& requestCounters(const config::RouteSettings* route) const;

  // How a request from the peer at `peer_ip` is normalized (encoded slashes, the default Host,
  // whether the peer is a trusted proxy). The views stay valid while these settings live.
  http::NormalizeOptions normalizeOptions(std::string_view peer_ip) const;
  // The app's address, resolved once at build time.
  const sockaddr_storage& upstreamAddress() const { return upstream_address_; }
  socklen_t upstreamAddressLength() const { return upstream_address_len_; }

  explicit ProxySettings(config::Config config);

 private:
  sockaddr_storage upstream_address_{};
  socklen_t upstream_address_len_ = 0;
  config::Config config_;
  std::string default_host_;  // the Host of HTTP/1.0 requests without one: the app's address
  RouteTable routes_;
  std::map<std::string, CacheRuntime> caches_;
  std::vector<RequestCounters> request_counters_;  // per route in config order, then "none"
};

// Declares the cachecar_requests_total family (once per metrics registry).
void declareRequestMetrics(metrics::Registry& metrics);

}  // namespace cachecar::server
