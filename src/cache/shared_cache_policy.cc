#include "cachecar/cache/shared_cache_policy.h"

#include <algorithm>
#include <cctype>

#include "cachecar/cache/freshness.h"
#include "cachecar/cache/vary.h"

namespace cachecar::cache {

namespace {

// Statuses whose meaning this cache understands (for must-understand, RFC 9111 §5.2.2.3).
bool isUnderstood(int status) {
  switch (status) {
    case 200: case 203: case 204: case 300: case 301: case 302: case 303: case 307: case 308:
    case 404: case 405: case 410: case 414: case 501:
      return true;
    default:
      return false;
  }
}

// A route's ttl fills in freshness only for successful answers and permanent redirects: a
// route meant for pages must not pin an error page or a temporary redirect for a day.
bool routeTtlApplies(int status) {
  return status == 200 || status == 203 || status == 204 || status == 300 || status == 301 ||
         status == 308;
}

bool isKeyChar(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || c == '*') {
    return true;
  }
  return !first && ((c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.');
}

// A targeted field is a Structured Field Dictionary (RFC 8941, RFC 9213 §2.1); one that does
// not parse is ignored as a whole. Checked here: keys, and values that are integers, tokens or
// quoted strings, with the delta-seconds directives integers.
bool isValidTargetedField(std::string_view value) {
  bool any = false;
  while (true) {
    value = http::trimOws(value);
    if (value.empty()) {
      return any;
    }
    size_t i = 0;
    while (i < value.size() && isKeyChar(value[i], i == 0)) {
      ++i;
    }
    if (i == 0) {
      return false;
    }
    const std::string_view key = value.substr(0, i);
    if (i < value.size() && value[i] == '=') {
      ++i;
      const size_t start = i;
      if (i < value.size() && value[i] == '"') {
        if (key == "max-age" || key == "s-maxage" || key == "stale-while-revalidate" ||
            key == "stale-if-error") {
          return false;  // must be an integer
        }
        ++i;
        while (i < value.size() && value[i] != '"') {
          i += value[i] == '\\' ? 2 : 1;
        }
        if (i >= value.size()) {
          return false;
        }
        ++i;
      } else {
        while (i < value.size() && value[i] != ',' && value[i] != ';' && value[i] != ' ' &&
               value[i] != '\t') {
          ++i;
        }
        const std::string_view item = value.substr(start, i - start);
        if (item.empty()) {
          return false;
        }
        const bool digits = item.find_first_not_of("0123456789") == std::string_view::npos;
        const bool token = (std::isalpha(static_cast<unsigned char>(item[0])) != 0 ||
                            item[0] == '*') &&
                           item.find_first_of("\"()<>@[]{}=\\") == std::string_view::npos;
        if (!digits && !token) {
          return false;
        }
      }
    }
    // Parameters (";a=b") are allowed and ignored.
    while (i < value.size() && value[i] == ';') {
      ++i;
      while (i < value.size() && value[i] != ',' && value[i] != ';') {
        ++i;
      }
    }
    value = http::trimOws(value.substr(i));
    any = true;
    if (value.empty()) {
      return true;
    }
    if (value.front() != ',') {
      return false;
    }
    value.remove_prefix(1);
  }
}

}  // namespace

ResponseCacheControl effectiveCacheControl(const http::HeaderMap& headers) {
  // RFC 9213: a cache in front of the app (a CDN, or this sidecar) obeys CDN-Cache-Control
  // when it is present, and then ignores Cache-Control, which is left for browsers.
  if (auto targeted = headers.getCombined("CDN-Cache-Control");
      targeted && isValidTargetedField(*targeted)) {
    http::HeaderMap only;
    only.add("Cache-Control", *targeted);
    return parseResponseCacheControl(only);
  }
  return parseResponseCacheControl(headers);
}

bool isHeuristicallyCacheable(int status) {
  switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308: case 404: case 405:
    case 410: case 414: case 501:
      return true;
    default:
      return false;
  }
}

StorePlan planStore(const http::RequestHead& request, const http::ResponseHead& response,
                    const RoutePolicy& route, const HeuristicPolicy& heuristic,
                    SystemTime response_time) {
  StorePlan plan;
  const auto refuse = [&plan](std::string_view reason) {
    plan.store = false;
    plan.reason = reason;
    return plan;
  };
  if (request.method != "GET") {
    return refuse("method");
  }
  const int status = response.status;
  if (status < 200 || status == 206 || status == 304) {
    return refuse("status");
  }
  const RequestCacheControl request_cc = requestDirectives(request);
  if (request_cc.no_store) {
    return refuse("request-no-store");
  }
  const ResponseCacheControl cc = effectiveCacheControl(response.headers);
  if (cc.must_understand) {
    if (!isUnderstood(status)) {
      return refuse("must-understand");
    }
  } else if (cc.no_store) {
    return refuse("no-store");
  }
  if (cc.is_private || !cc.private_fields.empty()) {
    return refuse("private");
  }
  if (response.headers.has("Set-Cookie")) {
    return refuse("set-cookie");
  }
  if (request.headers.has("Authorization") && !cc.is_public && !cc.s_maxage &&
      !cc.must_revalidate) {
    return refuse("authorization");
  }
  if (!varyFields(response.headers)) {
    return refuse("vary-star");
  }

  const std::optional<seconds> explicit_lifetime =
      explicitFreshnessLifetime(response, cc, response_time);
  std::optional<milliseconds> lifetime;
  if (route.matched && route.override_ttl && route.ttl && routeTtlApplies(status)) {
    lifetime = *route.ttl;
  } else if (explicit_lifetime) {
    lifetime = *explicit_lifetime;
  } else if (route.matched && route.ttl && routeTtlApplies(status)) {
    lifetime = *route.ttl;
  } else if (isHeuristicallyCacheable(status) && status != 206) {
    if (auto last_modified = response.headers.get("Last-Modified")) {
      const auto modified = parseHttpDate(*last_modified);
      auto date = response.headers.get("Date");
      const auto now = date ? parseHttpDate(*date) : std::optional<SystemTime>(response_time);
      if (modified && now && *now > *modified) {
        const auto since = std::chrono::duration_cast<seconds>(*now - *modified);
        const auto guess = seconds(static_cast<int64_t>(
            static_cast<double>(since.count()) * heuristic.fraction));
        lifetime = std::min(guess, heuristic.max);
      }
    }
  }
  if (!lifetime) {
    // No freshness at all: worth keeping only when no-cache asks for revalidation anyway.
    if (!cc.no_cache || !(response.headers.has("ETag") || response.headers.has("Last-Modified"))) {
      return refuse("no-freshness");
    }
    lifetime = milliseconds(0);
  }
  const bool has_validator = response.headers.has("ETag") || response.headers.has("Last-Modified");
  if (*lifetime <= milliseconds(0) && !has_validator && !cc.stale_if_error &&
      !(route.matched && route.stale_if_error)) {
    return refuse("stale");  // could never be reused
  }
  plan.store = true;
  plan.reason = "ok";
  plan.freshness = *lifetime;
  plan.revalidate_always = cc.no_cache || !cc.no_cache_fields.empty();
  plan.no_stale = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.has_value();
  if (cc.stale_while_revalidate) {
    plan.stale_while_revalidate = seconds(*cc.stale_while_revalidate);
  } else if (route.matched && route.stale_while_revalidate) {
    plan.stale_while_revalidate = *route.stale_while_revalidate;
  }
  if (cc.stale_if_error) {
    plan.stale_if_error = seconds(*cc.stale_if_error);
  } else if (route.matched && route.stale_if_error) {
    plan.stale_if_error = *route.stale_if_error;
  }
  return plan;
}

std::string_view toString(Reuse r) {
  switch (r) {
    case Reuse::kFresh:
      return "fresh";
    case Reuse::kStaleAllowed:
      return "stale-allowed";
    case Reuse::kStaleWhileRevalidate:
      return "stale-while-revalidate";
    case Reuse::kRevalidate:
      return "revalidate";
  }
  return "revalidate";
}

Reuse decideReuse(const StoredState& stored, const RequestCacheControl& request_cc) {
  if (stored.revalidate_always || request_cc.no_cache) {
    return Reuse::kRevalidate;
  }
  const auto age = std::chrono::duration_cast<milliseconds>(stored.age);
  if (request_cc.max_age && age > seconds(*request_cc.max_age)) {
    return Reuse::kRevalidate;
  }
  const milliseconds remaining = stored.freshness - age;
  if (remaining > milliseconds(0)) {
    if (request_cc.min_fresh && remaining < seconds(*request_cc.min_fresh)) {
      return Reuse::kRevalidate;
    }
    return Reuse::kFresh;
  }
  if (stored.no_stale) {
    return Reuse::kRevalidate;
  }
  const milliseconds staleness = -remaining;
  if (request_cc.max_stale_any ||
      (request_cc.max_stale && staleness <= seconds(*request_cc.max_stale))) {
    return Reuse::kStaleAllowed;
  }
  if (staleness < stored.stale_while_revalidate && !request_cc.max_age) {
    return Reuse::kStaleWhileRevalidate;
  }
  return Reuse::kRevalidate;
}

RequestCacheControl requestDirectives(const http::RequestHead& request) {
  RequestCacheControl cc = parseRequestCacheControl(request.headers);
  if (!request.headers.has("Cache-Control")) {
    if (auto pragma = request.headers.get("Pragma")) {
      if (pragma->find("no-cache") != std::string_view::npos) {
        cc.no_cache = true;
      }
    }
  }
  return cc;
}

}  // namespace cachecar::cache
