#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cachecar/config/config.h"
#include "cachecar/event/event_loop.h"
#include "cachecar/metrics/metrics.h"
#include "cachecar/server/cache_version.h"
#include "cachecar/server/proxy_settings.h"
#include "cachecar/storage/backend.h"

namespace cachecar::server {

// One configured cache as one event loop uses it (a worker, or the control plane). Held by
// shared_ptr: a reload that replaces the cache leaves requests in flight their own.
struct CacheInstance {
  config::CacheSettings settings;
  storage::BackendPtr backend;  // this loop's handle, measured
  std::shared_ptr<CacheVersion> version;
  const storage::BackendProvider* provider = nullptr;  // the runtime it was made for

  // The version keys are built with: settings.version plus the bumps; nullopt while the bumps
  // are unknown (the cache is then not used).
  std::optional<int64_t> currentVersion() const {
    const auto bumps = version->bumps();
    return bumps ? std::optional<int64_t>(settings.version + *bumps) : std::nullopt;
  }
};
using CacheInstances = std::map<std::string, std::shared_ptr<CacheInstance>>;

// The caches of `settings` for one loop: an instance of `current` whose runtime is unchanged
// is kept (same store, same Redis connection); the others get a new backend on `loop`,
// measured in `metrics` under `slot`.
CacheInstances makeCacheInstances(const ProxySettings& settings, const CacheInstances& current,
                                  event::EventLoop& loop, metrics::Registry& metrics, size_t slot);

}  // namespace cachecar::server
