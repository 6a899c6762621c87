#include "cachecar/storage/registry.h"

#include <utility>

#include "cachecar/storage/memory_backend.h"
#include "cachecar/storage/redis_backend.h"

namespace cachecar::storage {

// Declared in backend.h; lives here because the interface header has no source file of its own.
std::string_view toString(StorageStatus status) {
  switch (status) {
    case StorageStatus::kOk:
      return "ok";
    case StorageStatus::kNotFound:
      return "not_found";
    case StorageStatus::kUnavailable:
      return "unavailable";
    case StorageStatus::kTimeout:
      return "timeout";
    case StorageStatus::kTooLarge:
      return "too_large";
    case StorageStatus::kError:
      return "error";
  }
  return "unknown";
}

void Registry::add(std::string name, ProviderFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

bool Registry::has(const std::string& name) const { return factories_.count(name) != 0; }

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  out.reserve(factories_.size());
  for (const auto& [name, factory] : factories_) {
    out.push_back(name);  // std::map iterates in sorted order
  }
  return out;
}

Result<BackendProviderPtr> Registry::create(const config::CacheSettings& settings) const {
  auto it = factories_.find(settings.backend);
  if (it == factories_.end()) {
    std::string valid;
    for (const auto& [name, factory] : factories_) {
      if (!valid.empty()) {
        valid += ", ";
      }
      valid += name;
    }
    return Error{"unknown backend '" + settings.backend + "'; valid: " + valid};
  }
  return it->second(settings);
}

void registerBuiltinBackends(Registry& registry) {
  registry.add("memory", &MemoryProvider::create);
  registry.add("redis", &RedisProvider::create);
}

std::vector<std::string> builtinBackendNames() { return {"memory", "redis"}; }

}  // namespace cachecar::storage
