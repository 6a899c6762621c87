#include "cachecar/server/proxy_settings.h"

#include <string>

#include "cachecar/server/socket_address.h"

namespace cachecar::server {

namespace {

constexpr const char* kRequestsTotal = "cachecar_requests_total";

// The label of requests that match no route.
constexpr const char* kNoRoute = "none";

RequestCounters countersFor(metrics::Registry& metrics, const std::string& route) {
  RequestCounters counters{};
  for (size_t i = 0; i < kCacheStatusCount; ++i) {
    const auto status = static_cast<CacheStatus>(i);
    counters[i] = &metrics.counter(kRequestsTotal, {route, std::string(metricLabel(status))});
  }
  return counters;
}

// The app's address as a normalized Host (as if the client had sent it).
std::string defaultHostOf(const config::HostPort& upstream) {
  const std::string text = upstream.toString();
  Result<std::string> host = http::normalizeAuthority(text, ":80");
  return host ? std::move(host).value() : text;
}

}  // namespace

void declareRequestMetrics(metrics::Registry& metrics) {
  metrics.declareCounter(kRequestsTotal,
                         "Requests answered, by route (its match prefix, or none) and by how "
                         "the cache took part.",
                         {"route", "cache_status"});
}

ProxySettings::ProxySettings(config::Config config)
    : config_(std::move(config)),
      default_host_(defaultHostOf(config_.upstream.address)),
      routes_(config_.routes) {}

http::NormalizeOptions ProxySettings::normalizeOptions(std::string_view peer_ip) const {
  http::NormalizeOptions options;
  options.encoded_slashes = config_.encoded_slashes;
  options.default_host = default_host_;
  for (const CidrBlock& block : config_.trusted_proxies) {
    if (block.contains(peer_ip)) {
      options.trusted_peer = true;
      break;
    }
  }
  return options;
}

Result<std::shared_ptr<const ProxySettings>> ProxySettings::build(
    config::Config config, const storage::Registry& registry, metrics::Registry& metrics,
    const ProxySettings* previous) {
  auto settings = std::make_shared<ProxySettings>(std::move(config));
  auto app = resolveAddress(settings->config_.upstream.address, /*passive=*/false);
  if (!app.ok()) {
    return Error{"upstream: " + app.error().message};
  }
  settings->upstream_address_ = app->storage;
  settings->upstream_address_len_ = app->length;
  for (const auto& [name, cache] : settings->config_.caches) {
    if (previous != nullptr) {
      const auto& old_caches = previous->config_.caches;
      const auto old = old_caches.find(name);
      if (old != old_caches.end() && old->second == cache) {
        settings->caches_.emplace(name, previous->caches_.at(name));
        continue;
      }
    }
    auto provider = registry.create(cache);
    if (!provider.ok()) {
      return Error{"caches." + name + ": " + provider.error().message};
    }
    settings->caches_.emplace(
        name, CacheRuntime{std::move(provider.value()), std::make_shared<CacheVersion>()});
  }
  for (const auto& route : settings->config_.routes) {
    settings->request_counters_.push_back(countersFor(metrics, route.match));
  }
  settings->request_counters_.push_back(countersFor(metrics, kNoRoute));
  return std::shared_ptr<const ProxySettings>(std::move(settings));
}

const RequestCounters& ProxySettings::requestCounters(const config::RouteSettings* route) const {
  if (route == nullptr) {
    return request_counters_.back();
  }
  return request_counters_[static_cast<size_t>(route - config_.routes.data())];
}

}  // namespace cachecar::server
