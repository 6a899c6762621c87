#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cachecar/config/config.h"
#include "cachecar/http/message.h"

namespace cachecar::cache {

// A request's place in the store.
//  storage_key: what the backend sees, "{key_prefix}:{version}:{request part}", printable and
//               at most ~250 bytes (memcached's limit): a request part that is long or holds
//               unprintable bytes is replaced by "h" + 32 hex digits of its XXH3-128 hash.
//  identity:    the full request part, stored inside the entry and compared on every read, so
//               a hash collision is a miss, never the wrong page.
// Request part: "g|{host}|{path}|{query}" + "|h:{name}={value}" for each key header +
// "|c:{name}={value}" for each key cookie. "g" is the method class shared by GET and HEAD; host
// is lowercased without a default port; query parameters are sorted (and filtered to the
// route's `key.query` list when it has one).
struct CacheKey {
  std::string storage_key;
  std::string identity;
};

// The namespace prefix of a cache: "{key_prefix}:{version}:" (what clearPrefix removes).
std::string keyNamespace(std::string_view key_prefix, int64_t version);

// Where a cache's version bumps are counted in its store: "{key_prefix}:version-bumps". Outside
// every "{key_prefix}:{version}:" namespace, so clearing one never touches it.
std::string versionBumpsKey(std::string_view key_prefix);

CacheKey buildCacheKey(std::string_view key_prefix, int64_t version,
                       const config::KeySettings& key_settings, const http::RequestHead& request);

// Sorts query parameters ("b=2&a=1" -> "a=1&b=2"), keeping only `allowed` when given.
std::string normalizeQuery(std::string_view query, const std::vector<std::string>* allowed);

}  // namespace cachecar::cache
