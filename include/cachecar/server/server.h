#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/event/event_loop.h"
#include "cachecar/metrics/metrics.h"
#include "cachecar/server/access_log.h"
#include "cachecar/server/control_plane.h"
#include "cachecar/server/worker.h"
#include "cachecar/storage/registry.h"

namespace cachecar::server {

// Declares every metric family of the proxy (once per registry).
void declareServerMetrics(metrics::Registry& registry);

// The whole proxy: N workers sharing one configuration and the storage providers, and the
// control plane on its own thread.
//
// Lifecycle: SIGHUP reloads the configuration (so does a change of the file itself);
// SIGTERM / SIGINT drain: readiness turns 503, the listeners close, idle connections close,
// busy ones finish their response (with Connection: close) until drain_timeout; then the
// process exits. A second SIGTERM / SIGINT during the drain stops at once.
class Server {
 public:
  struct Options {
    // Loads the configuration again for a reload: the file plus the command line's overrides.
    ControlPlane::ConfigLoader load_config;
    std::optional<std::string> config_path;  // watched for changes when set
  };

  Server(const storage::Registry& registry, Options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Builds the workers, binds their listeners and the admin listener (errors are startup
  // errors) and starts every thread.
  Status start(config::Config config);
  // Blocks until SIGTERM or SIGINT, handling SIGHUP meanwhile; then drains and stops.
  void runUntilSignalled();
  void stop();

 private:
  void drain();

  const storage::Registry& registry_;
  Options options_;
  std::unique_ptr<metrics::Registry> metrics_;
  AccessLog access_log_;
  std::unique_ptr<SharedState> shared_;
  std::shared_ptr<const ProxySettings> settings_;
  std::vector<std::unique_ptr<Worker>> workers_;
  event::EventLoop control_loop_;
  std::unique_ptr<ControlPlane> control_;
  std::thread control_thread_;
};

}  // namespace cachecar::server
