#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "cachecar/cache/cache_control.h"
#include "cachecar/common/clock.h"
#include "cachecar/http/message.h"

namespace cachecar::cache {

// Whether a request may be answered from the cache and its response stored, judged from the
// request alone (RFC 9111 §3 and §5.2.1 for a shared cache): GET or HEAD, no Authorization
// (issue: never serve one user's page to another), no request no-store.
// `reason` says why not, for logs and metrics ("method", "authorization", "no-store").
struct RequestVerdict {
  bool cacheable = false;
  std::string_view reason;
};
RequestVerdict judgeRequest(const http::RequestHead& request);

// Whether a response may be stored, and for how long it is fresh.
struct StoreVerdict {
  bool store = false;
  std::chrono::milliseconds freshness{0};  // freshness lifetime to record in the entry
  std::string_view reason;                 // why not: "no-store", "private", "set-cookie", ...
};

// `fallback_ttl` is the matched route's ttl (or its cache's timeout); nullopt when no route
// matched, in which case only responses with explicit freshness are stored.
// Never stored: status other than 200, no-store, private, Set-Cookie, a request with
// Authorization, responses with Vary: *.
StoreVerdict judgeResponse(const http::RequestHead& request, const http::ResponseHead& response,
                           std::optional<std::chrono::milliseconds> fallback_ttl);

}  // namespace cachecar::cache
