#include "cachecar/config/config.h"

#include <thread>

namespace cachecar::config {

std::string HostPort::toString() const {
  // An IPv6 literal needs brackets, or its colons would run into the port's.
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

unsigned Config::effectiveWorkers() const {
  if (workers != 0) {
    return workers;
  }
  // hardware_concurrency() may return 0 when the count is unknown (some containers).
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

Config defaultConfig() {
  Config config;
  config.source = "<defaults>";
  CacheSettings cache;
  cache.name = "default";
  config.caches.emplace(cache.name, cache);
  return config;
}

}  // namespace cachecar::config
