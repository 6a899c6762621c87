#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cachecar/common/result.h"

// Pure parsing for the admin endpoints (no sockets, no libevent): what `POST /purge?url=...`
// names, and application/x-www-form-urlencoded query strings.
namespace cachecar::admin {

// What `POST /purge?url=...` names: an absolute URL split into its parts.
struct PurgeTarget {
  std::string scheme;  // "http" or "https", lowercased (tells which port is the default one)
  std::string host;    // authority as given, lowercased, without userinfo ("shop.example",
                       // "shop.example:8080")
  std::string path;    // "/products/1" ("/" when the URL has none); percent-escapes kept as sent
  std::string query;   // without '?', "" when none

  bool operator==(const PurgeTarget&) const = default;
};

// Parses the (already URL-decoded) value of `url=`. A bare path ("/products/1"), a missing host,
// or a scheme other than http/https is an Error whose message says what is wrong and why the
// host is needed (cached entries are keyed by host). A fragment ("#top") is dropped: browsers
// never send it, so no cached entry has one. Bytes a browser would percent-encode in a request
// target (space, non-ASCII, `"<>\^`{|}`) are encoded as %XX, so "/café" finds the entry that
// "/caf%C3%A9" stored; control characters are an Error.
Result<PurgeTarget> parsePurgeUrl(std::string_view url);

// application/x-www-form-urlencoded decoding of one query parameter's value ('+' = space, %XX);
// Error on a malformed escape.
Result<std::string> decodeQueryValue(std::string_view value);

struct QueryParam {
  std::string name;   // decoded
  std::string value;  // decoded; "" for "name" and "name="
  bool operator==(const QueryParam&) const = default;
};

// Splits a query string ("a=1&b=x%20y", without '?') on '&' and decodes every name and value.
// Empty pieces ("a=1&&b=2") are skipped. Error (naming the parameter) on a malformed escape.
Result<std::vector<QueryParam>> parseQueryString(std::string_view query);

// Compares a secret with a candidate in time that depends only on their lengths, not on where
// they first differ (a bearer token must not be guessable byte by byte from response times).
bool constantTimeEquals(std::string_view secret, std::string_view candidate);

}  // namespace cachecar::admin
