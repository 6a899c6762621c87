#include "cachecar/config/config.h"

#include <optional>
#include <string>
#include <thread>
#include <vector>

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

namespace {

bool isWildcardHost(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

}  // namespace

std::optional<std::string> adminListenConflict(const Config& config) {
  if (!config.admin) {
    return std::nullopt;
  }
  const HostPort& admin = config.admin->listen;
  const HostPort& proxy = config.listen;
  // Both in one process on one port: the bind fails, or, as the proxy's sockets use
  // SO_REUSEPORT, the kernel could hand proxy clients to the admin listener. A wildcard address
  // on either side overlaps every address of the same port.
  if (admin.port != proxy.port) {
    return std::nullopt;
  }
  std::string what;
  if (admin.host == proxy.host) {
    what = "same address as listen (" + proxy.toString() + ")";
  } else if (isWildcardHost(admin.host) || isWildcardHost(proxy.host)) {
    what = "same port as listen (" + proxy.toString() +
           "), and a wildcard address overlaps every other";
  } else {
    return std::nullopt;
  }
  return what + "; the admin listener needs its own port";
}

std::vector<std::string> restartRequiredChanges(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  if (running.listen != next.listen) {
    changed.emplace_back("listen");
  }
  // The number of threads actually running: `auto` and the core count it stands for are the
  // same process.
  if (running.effectiveWorkers() != next.effectiveWorkers()) {
    changed.emplace_back("workers");
  }
  // Where requests go, not how the URL was written: http://app and http://app:80/ are one app.
  if (running.upstream.address != next.upstream.address) {
    changed.emplace_back("upstream");
  }
  if (running.admin != next.admin) {
    changed.emplace_back("admin");
  }
  return changed;
}

}  // namespace cachecar::config
