#include "cachecar/server/cache_instance.h"

#include "cachecar/storage/measured_backend.h"

namespace cachecar::server {

CacheInstances makeCacheInstances(const ProxySettings& settings, const CacheInstances& current,
                                  event::EventLoop& loop, metrics::Registry& metrics,
                                  size_t slot) {
  CacheInstances caches;
  for (const auto& [name, runtime] : settings.caches()) {
    auto kept = current.find(name);
    if (kept != current.end() && kept->second->provider == runtime.provider.get()) {
      caches.emplace(name, kept->second);
      continue;
    }
    auto instance = std::make_shared<CacheInstance>();
    instance->settings = settings.config().caches.at(name);
    instance->backend =
        storage::measureBackend(runtime.provider->createForLoop(loop), metrics, slot, name);
    instance->version = runtime.version;
    instance->provider = runtime.provider.get();
    caches.emplace(name, std::move(instance));
  }
  return caches;
}

}  // namespace cachecar::server
