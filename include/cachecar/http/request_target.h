#pragma once

#include <string>
#include <string_view>

#include "cachecar/common/result.h"

// The one normal form of a request target's path and query (RFC 3986 §6.2.2), shared by what
// is routed, keyed, purged, logged and forwarded, so that two spellings of one resource can
// never be routed or keyed apart while the app reads them as the same.
namespace cachecar::http {

// What `%2F` (an encoded '/') in a path means.
enum class EncodedSlashes {
  kReject,  // 400: apps disagree on whether it separates segments ("..%2F" climbs in some)
  kDecode,  // decoded to '/' before dot segments are removed, and forwarded decoded
};

// Normalizes a path (origin-form, starting with '/'):
//  - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded; other escapes keep their
//    byte with uppercase hex digits ("%7e" -> "~", "%c3%a9" -> "%C3%A9");
//  - bytes a browser would escape (space, non-ASCII, "<>^`{|}) are escaped;
//  - runs of '/' become one (as nginx's merge_slashes: "//account" is "/account");
//  - "." and ".." segments are removed (RFC 3986 §5.2.4), also when written "%2e%2E";
//  - `%2F` as `encoded_slashes` says.
// Error (the message says what) on: a path not starting with '/', a malformed escape ("%zz",
// "%4"), an escaped NUL, a backslash or `%5C` (some servers read it as '/'), control bytes,
// and `..` that climbs above the root.
Result<std::string> normalizePath(std::string_view path, EncodedSlashes encoded_slashes);

// Normalizes a query (without '?'): bytes a browser would escape are escaped, hex digits of
// escapes uppercased; nothing is decoded (an app's own decoding of the query is its business,
// and the cache key compares parameter names decoded: see cache_key.h), and a '%' that starts
// no escape is kept as it came ("?q=100%"). Error on control bytes.
Result<std::string> normalizeQueryString(std::string_view query);

// Percent-decodes `s` as an application/x-www-form-urlencoded name would be decoded ('+' is a
// space); a malformed escape is kept as it is. For comparisons only, never for forwarding.
std::string decodeFormComponent(std::string_view s);

}  // namespace cachecar::http
