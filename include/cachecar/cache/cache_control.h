#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cachecar/http/message.h"

namespace cachecar::cache {

// Response Cache-Control (RFC 9111 §5.2.2), all Cache-Control fields of the message combined.
// Delta-seconds that are invalid make the directive count as present with value 0 where the
// RFC says to treat it as stale (max-age / s-maxage); duplicated directives take the first
// value.
struct ResponseCacheControl {
  bool no_store = false;
  bool no_cache = false;                 // unqualified no-cache
  std::vector<std::string> no_cache_fields;  // no-cache="Field, Other"
  bool is_private = false;               // unqualified private
  std::vector<std::string> private_fields;   // private="Field"
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool must_understand = false;
  bool no_transform = false;
  bool immutable = false;
  std::optional<int64_t> max_age;   // seconds
  std::optional<int64_t> s_maxage;  // seconds
  std::optional<int64_t> stale_while_revalidate;
  std::optional<int64_t> stale_if_error;
};

// Request Cache-Control (RFC 9111 §5.2.1).
struct RequestCacheControl {
  bool no_store = false;
  bool no_cache = false;
  bool only_if_cached = false;
  std::optional<int64_t> max_age;
  bool max_stale_any = false;        // max-stale without a value
  std::optional<int64_t> max_stale;  // max-stale=N
  std::optional<int64_t> min_fresh;
};

ResponseCacheControl parseResponseCacheControl(const http::HeaderMap& headers);
RequestCacheControl parseRequestCacheControl(const http::HeaderMap& headers);

}  // namespace cachecar::cache
