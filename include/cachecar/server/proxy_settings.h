#pragma once

#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/server/route_table.h"
#include "cachecar/storage/registry.h"

namespace cachecar::server {

// The configuration in force, with what is derived from it: the route table and one storage
// provider per named cache. Immutable once built and shared by every worker.
class ProxySettings {
 public:
  // Creates the storage providers (fails on an unusable backend definition).
  static Result<std::shared_ptr<const ProxySettings>> build(config::Config config,
                                                            const storage::Registry& registry);

  const config::Config& config() const { return config_; }
  const RouteTable& routes() const { return routes_; }
  const std::map<std::string, storage::BackendProviderPtr>& providers() const {
    return providers_;
  }

  // The app's address, resolved once at build time.
  const sockaddr_storage& upstreamAddress() const { return upstream_address_; }
  socklen_t upstreamAddressLength() const { return upstream_address_len_; }

  explicit ProxySettings(config::Config config);

 private:
  sockaddr_storage upstream_address_{};
  socklen_t upstream_address_len_ = 0;
  config::Config config_;
  RouteTable routes_;
  std::map<std::string, storage::BackendProviderPtr> providers_;
};

}  // namespace cachecar::server
