#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "cachecar/cache/cache_control.h"
#include "cachecar/common/clock.h"
#include "cachecar/http/message.h"

namespace cachecar::cache {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What a route adds to the app's own caching headers.
struct RoutePolicy {
  bool matched = false;                 // a route matched (else only the app's headers count)
  std::optional<milliseconds> ttl;      // the route's ttl, or its cache's timeout
  bool override_ttl = false;            // `override: true`: ttl wins over the app's max-age
  std::optional<seconds> stale_while_revalidate;  // defaults when the app gives none
  std::optional<seconds> stale_if_error;
};

// Heuristic freshness (RFC 9111 §4.2.2) for heuristically cacheable statuses that carry
// Last-Modified but no explicit freshness: `fraction` of the time since Last-Modified, capped.
struct HeuristicPolicy {
  double fraction = 0.1;
  seconds max{std::chrono::hours(24)};
};

// Whether and how to store a response (RFC 9111 §3, shared cache).
struct StorePlan {
  bool store = false;
  std::string_view reason;  // why not (or "ok")
  milliseconds freshness{0};
  bool revalidate_always = false;  // no-cache: validate before every reuse
  bool no_stale = false;           // must-revalidate, proxy-revalidate, s-maxage: never stale
  seconds stale_while_revalidate{0};
  seconds stale_if_error{0};
};

// The response directives this cache obeys: CDN-Cache-Control (RFC 9213) when present, else
// Cache-Control.
ResponseCacheControl effectiveCacheControl(const http::HeaderMap& headers);

// Statuses a cache may store with heuristic freshness (RFC 9110 §15.1).
bool isHeuristicallyCacheable(int status);

StorePlan planStore(const http::RequestHead& request, const http::ResponseHead& response,
                    const RoutePolicy& route, const HeuristicPolicy& heuristic,
                    SystemTime response_time);

// Whether a stored response may answer a request (RFC 9111 §4.2, §4.2.4, §5.2.1, RFC 5861).
struct StoredState {
  seconds age{0};
  milliseconds freshness{0};
  bool revalidate_always = false;
  bool no_stale = false;
  seconds stale_while_revalidate{0};
};
enum class Reuse {
  kFresh,                    // serve it
  kStaleAllowed,             // stale, but the request's max-stale accepts it: serve it
  kStaleWhileRevalidate,     // serve it now, refresh it in the background
  kRevalidate,               // ask the app first (conditionally when there is a validator)
};
std::string_view toString(Reuse r);
Reuse decideReuse(const StoredState& stored, const RequestCacheControl& request_cc);

// Request-side Cache-Control, with `Pragma: no-cache` read as `no-cache` when the request has
// no Cache-Control (RFC 9111 §5.4).
RequestCacheControl requestDirectives(const http::RequestHead& request);

}  // namespace cachecar::cache
