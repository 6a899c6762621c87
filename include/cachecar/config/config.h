#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cachecar/common/cidr.h"
#include "cachecar/common/logging.h"
#include "cachecar/http/request_target.h"

namespace cachecar::config {

using std::chrono::milliseconds;

struct HostPort {
  std::string host;  // "127.0.0.1", "0.0.0.0", "::1", "localhost"
  uint16_t port = 0;
  std::string toString() const;  // "host:port" ("[::1]:port" for IPv6)
  bool operator==(const HostPort&) const = default;
};

// The app behind the proxy. Only http:// is supported (the sidecar talks to localhost).
struct UpstreamSettings {
  HostPort address;
  std::string url;  // as written, for logs
};

// Django's CACHES entry. Backend-specific options are typed here and validated at load, so a
// typo is an error at startup rather than a silently ignored setting.
struct CacheSettings {
  std::string name;
  std::string backend = "memory";  // a name known to the storage registry
  std::string location;            // redis://host:port/db for redis
  milliseconds timeout{std::chrono::minutes(5)};  // default TTL (Django TIMEOUT)
  std::string key_prefix;          // Django KEY_PREFIX
  int64_t version = 1;             // Django VERSION
  // memory
  uint64_t max_entries = 10000;
  uint64_t max_bytes = 256ull << 20;
  // all backends
  uint64_t max_object_bytes = 8ull << 20;
  // redis
  milliseconds connect_timeout{200};
  milliseconds command_timeout{100};

  bool operator==(const CacheSettings&) const = default;
};

// What enters the cache key besides method class, host and path.
struct KeySettings {
  // When set, only these query parameters enter the key (sorted); when unset, the whole query,
  // normalized by sorting its parameters.
  std::optional<std::vector<std::string>> query;
  std::vector<std::string> headers;  // request header values that enter the key
  std::vector<std::string> cookies;  // cookie values that enter the key
};

struct RouteSettings {
  std::string match;              // path prefix
  bool cache_off = false;         // `cache: off`: never looked up or stored
  std::string cache = "default";  // which named cache
  std::optional<milliseconds> ttl;  // freshness when the app gives none; unset = cache timeout
  // `override: true`: ttl wins over the app's own max-age, s-maxage and Expires. Needs ttl.
  bool override_ttl = false;
  // RFC 5861 windows used when the app's response states none.
  std::optional<milliseconds> stale_while_revalidate, stale_if_error;
  KeySettings key;
  int line = 0;  // where it was defined, for messages
};

struct LimitSettings {
  milliseconds header_read_timeout{std::chrono::seconds(10)};
  milliseconds idle_timeout{std::chrono::seconds(60)};
  milliseconds upstream_connect_timeout{std::chrono::seconds(3)};
  milliseconds upstream_response_timeout{std::chrono::seconds(30)};
  uint64_t max_header_bytes = 64ull << 10;
  // Header fields per request (431 past it): bounds the per-field work of one request.
  uint64_t max_header_fields = 100;
  uint64_t max_request_body_bytes = 16ull << 20;
  uint64_t max_connections = 10000;
  uint64_t upstream_max_idle_connections = 64;  // per worker
  // How long a request waits for a concurrent identical miss before going to the app itself.
  milliseconds coalesce_wait{10000};
};

// Heuristic freshness (RFC 9111 §4.2.2) for responses with Last-Modified but no explicit
// freshness: `fraction` of the time since Last-Modified, at most `max`.
struct HeuristicSettings {
  double fraction = 0.1;  // 0..1
  milliseconds max{std::chrono::hours(24)};
};

// The admin listener (health, metrics, purge): a separate address, so it can stay off the
// network the proxy serves.
struct AdminSettings {
  HostPort listen{"127.0.0.1", 9901};
  // Name of the environment variable holding the bearer token; empty = none configured.
  std::string token_env;
  bool operator==(const AdminSettings&) const = default;
};

struct Config {
  std::string source;  // file path, or "<defaults>"
  HostPort listen{"127.0.0.1", 8080};
  UpstreamSettings upstream{{"127.0.0.1", 8000}, "http://127.0.0.1:8000"};
  unsigned workers = 0;  // 0 = auto (one per core)
  LogLevel log_level = LogLevel::kInfo;
  LimitSettings limits;
  HeuristicSettings heuristic;
  std::map<std::string, CacheSettings> caches;  // always holds "default"
  std::vector<RouteSettings> routes;             // in file order
  std::optional<AdminSettings> admin;           // unset: no admin listener at all
  // Graceful shutdown: how long requests in flight may still take after SIGTERM (0 = none).
  milliseconds drain_timeout{std::chrono::seconds(10)};
  bool access_log = false;  // one JSON line per request on stdout
  // Peers whose forwarding fields (X-Forwarded-*, Forwarded, X-Real-IP) are kept: the
  // deployment's own ingress or load balancer. Everyone else's are dropped.
  std::vector<CidrBlock> trusted_proxies;
  // What an encoded slash (%2F) in a request path means: refused (400) or decoded.
  http::EncodedSlashes encoded_slashes = http::EncodedSlashes::kReject;

  unsigned effectiveWorkers() const;
};

// Built-in defaults: listen 127.0.0.1:8080, upstream http://127.0.0.1:8000, one memory cache
// named "default", no routes (every response follows the app's own Cache-Control).
Config defaultConfig();

// Why the admin listener cannot bind beside the proxy's own listener, or nullopt when it can
// (or there is none): the same address, or the same port with a wildcard address on either
// side. The loader reports it at admin.listen; a command line that changes `listen` after
// loading should check again.
std::optional<std::string> adminListenConflict(const Config& config);

// Top-level settings a reload cannot change in a running process (they need a restart):
// names of those that differ between `running` and `next`, e.g. {"listen", "workers"}.
// Compared: listen, workers (the effective count, so `auto` equals the core count), upstream
// (its address, not how the URL is spelled), admin.
std::vector<std::string> restartRequiredChanges(const Config& running, const Config& next);

}  // namespace cachecar::config
