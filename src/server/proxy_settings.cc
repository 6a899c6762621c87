#include "cachecar/server/proxy_settings.h"

#include <netdb.h>

#include <cstring>
#include <string>

namespace cachecar::server {

ProxySettings::ProxySettings(config::Config config)
    : config_(std::move(config)), routes_(config_.routes) {}

Result<std::shared_ptr<const ProxySettings>> ProxySettings::build(
    config::Config config, const storage::Registry& registry) {
  auto settings = std::make_shared<ProxySettings>(std::move(config));
  const config::HostPort& app = settings->config_.upstream.address;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(app.port);
  const int rc = getaddrinfo(app.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Error{"upstream: cannot resolve '" + app.host + "': " + gai_strerror(rc)};
  }
  std::memcpy(&settings->upstream_address_, found->ai_addr, found->ai_addrlen);
  settings->upstream_address_len_ = found->ai_addrlen;
  freeaddrinfo(found);
  for (const auto& [name, cache] : settings->config_.caches) {
    auto provider = registry.create(cache);
    if (!provider.ok()) {
      return Error{"caches." + name + ": " + provider.error().message};
    }
    settings->providers_.emplace(name, std::move(provider.value()));
  }
  return std::shared_ptr<const ProxySettings>(std::move(settings));
}

}  // namespace cachecar::server
