#pragma once

#include <memory>
#include <vector>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/server/worker.h"
#include "cachecar/storage/registry.h"

namespace cachecar::server {

// The whole proxy: N workers sharing one configuration and the storage providers.
class Server {
 public:
  explicit Server(const storage::Registry& registry) : registry_(registry) {}
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Builds the workers and binds their listeners (errors are startup errors).
  Status start(config::Config config);
  // Blocks until SIGTERM or SIGINT, then stops the workers.
  void runUntilSignalled();
  void stop();

 private:
  const storage::Registry& registry_;
  std::shared_ptr<const ProxySettings> settings_;
  SharedCounters counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace cachecar::server
