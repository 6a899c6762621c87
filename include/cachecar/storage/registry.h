#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/storage/backend.h"

namespace cachecar::event {
class EventLoop;
}

namespace cachecar::storage {

// One configured cache's storage, shared by all workers. It hands each worker loop its own
// Backend: the memory provider returns handles onto one shared, thread-safe store (an entry
// stored by one worker is a hit on all); the redis provider opens one connection per loop.
class BackendProvider {
 public:
  virtual ~BackendProvider() = default;
  virtual std::string_view backendName() const = 0;
  virtual BackendPtr createForLoop(event::EventLoop& loop) = 0;
};
using BackendProviderPtr = std::shared_ptr<BackendProvider>;

using ProviderFactory =
    std::function<Result<BackendProviderPtr>(const config::CacheSettings& settings)>;

// Maps the names used in `backend:` to factories (Varnish's stevedore table). Built explicitly
// at startup: no static self-registration, which static libraries can silently drop.
class Registry {
 public:
  void add(std::string name, ProviderFactory factory);
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  // Error names the unknown backend and lists the valid ones.
  Result<BackendProviderPtr> create(const config::CacheSettings& settings) const;

 private:
  std::map<std::string, ProviderFactory> factories_;
};

// "memory" and "redis".
void registerBuiltinBackends(Registry& registry);
// Names of the built-in backends, for config validation: {"memory", "redis"}.
std::vector<std::string> builtinBackendNames();

}  // namespace cachecar::storage
