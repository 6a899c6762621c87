#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cachecar/admin/admin_server.h"
#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/event/event_loop.h"
#include "cachecar/server/cache_instance.h"
#include "cachecar/server/config_watcher.h"
#include "cachecar/server/proxy_settings.h"
#include "cachecar/server/upstream_probe.h"
#include "cachecar/server/worker.h"
#include "cachecar/storage/registry.h"

namespace cachecar::server {

// Everything that is not a request, on its own event loop and thread: the admin endpoints,
// configuration reloads, cache version bumps and their propagation, purges, readiness.
//
// Version bumps: each cache's bump count lives in its store (Backend::addToCounter), so every
// sidecar on one Redis shares it. The control loop reads it every kVersionPollInterval and
// publishes it to the workers through the cache's CacheVersion; a bump made by another sidecar
// is seen here within that interval.
class ControlPlane final : public admin::AdminHooks {
 public:
  static constexpr std::chrono::milliseconds kVersionPollInterval{500};
  static constexpr std::chrono::milliseconds kConfigPollInterval{1000};
  static constexpr std::chrono::milliseconds kProbeTimeout{1000};

  using ConfigLoader = std::function<Result<config::Config>()>;
  // Hands new settings to every worker (called on the control loop).
  using Publisher = std::function<void(std::shared_ptr<const ProxySettings>)>;

  struct Options {
    ConfigLoader load_config;
    Publisher publish;
    std::optional<std::string> watch_path;  // the config file to watch, when there is one
  };

  ControlPlane(event::EventLoop& loop, const storage::Registry& registry, SharedState& shared,
               size_t metrics_slot, Options options);
  ~ControlPlane() override;

  // Control loop: adopts the initial settings, reads every cache's version bumps (answers once
  // all stores answered or failed) and opens the admin listener when configured.
  void start(std::shared_ptr<const ProxySettings> settings, std::function<void(Status)> started);
  // Control loop: loads, validates and applies the configuration file again.
  void reload(std::string_view why);
  // Any thread.
  void beginDrain() { draining_.store(true, std::memory_order_release); }

  // admin::AdminHooks (control loop)
  bool draining() const override { return draining_.load(std::memory_order_acquire); }
  void probeUpstream(std::function<void(Status)> done) override;
  std::string renderMetrics() override;
  void purgeUrl(const admin::PurgeTarget& target,
                std::function<void(Result<std::string>)> done) override;
  void bumpCacheVersion(const std::string& cache,
                        std::function<void(Result<std::string>)> done) override;

 private:
  // Reads the bump counts of `caches` and calls `done` once every store answered or failed.
  void readVersions(const CacheInstances& caches, std::function<void()> done);
  void pollVersions();
  void apply(std::shared_ptr<const ProxySettings> settings, CacheInstances caches,
             std::string_view why);
  void reloadFailed(std::string_view why, const std::string& message);
  std::shared_ptr<CacheInstance> cacheNamed(const std::string& name) const;

  event::EventLoop& loop_;
  const storage::Registry& registry_;
  SharedState& shared_;
  size_t metrics_slot_;
  Options options_;
  std::atomic<bool> draining_{false};

  std::shared_ptr<const ProxySettings> settings_;
  CacheInstances caches_;
  uint64_t reload_generation_ = 0;

  metrics::Counter& reloads_ok_;
  metrics::Counter& reloads_failed_;
  TcpProber prober_;
  event::Timer version_timer_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<admin::AdminServer> admin_;
  // Last: outstanding callbacks check it, so nothing runs against a destroyed control plane.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace cachecar::server
