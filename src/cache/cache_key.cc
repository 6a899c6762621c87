#include "cachecar/cache/cache_key.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

#include "cachecar/http/request_normalizer.h"
#include "cachecar/http/request_target.h"

namespace cachecar::cache {

namespace {

// A request part longer than this is hashed, so that "{prefix}:{version}:" plus the part stays
// under memcached's 250-byte key limit for any sensible prefix.
constexpr size_t kMaxPrintableRequestPart = 200;
// Queries with up to this many parameters are sorted without a heap allocation.
constexpr size_t kInlineQueryParams = 16;

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// '|' separates the parts of the request part, so it is escaped inside every variable part
// (as is the escape byte itself); then no crafted Host, path or header value can make one
// request's key equal another's. Both bytes are rare in real URLs, so keys stay readable.
void appendEscaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '|' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
}

void appendEscapedLower(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '|' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(lowerAscii(c));
  }
}

bool hasSuffix(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The authority the request is for: absolute-form "http://Host:80/x" wins over the Host header
// (RFC 9112 §3.2.2). Userinfo is dropped and the scheme's default port removed, so
// "Example.com:80" and "example.com" share entries.
std::string_view requestHost(const http::RequestHead& request, std::string_view& default_port) {
  default_port = ":80";
  const std::string_view target = request.target;
  if (!target.empty() && target.front() != '/') {
    const size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      if (http::equalsIgnoreCase(target.substr(0, scheme_end), "https")) {
        default_port = ":443";
      }
      std::string_view authority = target.substr(scheme_end + 3);
      authority = authority.substr(0, authority.find_first_of("/?#"));
      const size_t at = authority.rfind('@');
      if (at != std::string_view::npos) {
        authority.remove_prefix(at + 1);
      }
      return authority;
    }
  }
  return http::trimOws(request.headers.get("host").value_or(std::string_view()));
}

void appendHost(std::string& out, const http::RequestHead& request) {
  std::string_view default_port;
  std::string_view host = requestHost(request, default_port);
  if (hasSuffix(host, default_port)) {
    host.remove_suffix(default_port.size());
  } else if (hasSuffix(host, ":")) {
    host.remove_suffix(1);  // an empty port means the default one (RFC 3986 §6.2.3)
  }
  appendEscapedLower(out, host);
}

std::string_view paramName(std::string_view param) { return param.substr(0, param.find('=')); }

// Whether an app could read `raw_name` as one of the allowed names: it compares the name
// percent-decoded ("pag%65" is "page") and case-insensitively (some frameworks do).
bool nameMatches(std::string_view raw_name, const std::vector<std::string>& allowed) {
  const std::string name = http::decodeFormComponent(raw_name);
  return std::any_of(allowed.begin(), allowed.end(),
                     [&name](const std::string& a) { return http::equalsIgnoreCase(a, name); });
}

// A parameter enters a filtered key when an app could take it for an allowed one, whole (its
// raw bytes): as its own name, or under a name after a ';' ("utm=x;page=2"), since some
// frameworks split parameters on ';' too. Leaving out anything the app may read as `page`
// would store its answer under another request's key.
bool isAllowed(std::string_view param, const std::vector<std::string>* allowed) {
  if (allowed == nullptr) {
    return true;
  }
  if (nameMatches(paramName(param), *allowed)) {
    return true;
  }
  for (size_t semi = param.find(';'); semi != std::string_view::npos;
       semi = param.find(';', semi + 1)) {
    if (nameMatches(paramName(param.substr(semi + 1)), *allowed)) {
      return true;
    }
  }
  return false;
}

template <typename Params>
void appendSorted(std::string& out, Params& params, size_t n, bool escape) {
  // Sorting whole "name=value" strings orders duplicates of a name by value, so "a=2&a=1" and
  // "a=1&a=2" share a key. Apps that care about the order of repeated parameters should not
  // route them through a cache.
  std::sort(params.begin(), params.begin() + static_cast<std::ptrdiff_t>(n));
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) {
      out.push_back('&');
    }
    if (escape) {
      appendEscaped(out, params[i]);
    } else {
      out.append(params[i]);
    }
  }
}

// Splits on '&', drops empty and unwanted parameters, sorts, appends joined with '&'.
void appendNormalizedQuery(std::string& out, std::string_view query,
                           const std::vector<std::string>* allowed, bool escape) {
  std::array<std::string_view, kInlineQueryParams> inline_params;
  std::vector<std::string_view> heap_params;
  size_t n = 0;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty() || !isAllowed(param, allowed)) {
      continue;
    }
    if (n < kInlineQueryParams) {
      inline_params[n] = param;
    } else {
      if (heap_params.empty()) {
        heap_params.assign(inline_params.begin(), inline_params.end());
      }
      heap_params.push_back(param);
    }
    ++n;
  }
  if (n > kInlineQueryParams) {
    appendSorted(out, heap_params, n, escape);
  } else {
    appendSorted(out, inline_params, n, escape);
  }
}

// "|h:{name}={values}" with every field of that name combined as ", "-separated list, or
// "|h:{name}!" when the request has none, so an absent header and an empty one differ.
void appendKeyHeader(std::string& out, const http::HeaderMap& headers, std::string_view name) {
  out.append("|h:");
  appendEscapedLower(out, name);
  const size_t marker = out.size();
  out.push_back('!');
  bool first = true;
  for (const http::Header& h : headers.all()) {
    if (!http::equalsIgnoreCase(h.name, name)) {
      continue;
    }
    if (first) {
      out[marker] = '=';
      first = false;
    } else {
      out.append(", ");
    }
    appendEscaped(out, http::trimOws(h.value));
  }
}

// Calls fn(value) for every cookie an app could read as `name`, in order, across all Cookie
// fields: the name compared percent-decoded and case-insensitively (PHP decodes cookie names,
// ASP.NET compares them without case). Which of several an app takes differs between
// frameworks, so all of them enter the key.
template <typename Fn>
void forEachCookieNamed(const http::HeaderMap& headers, std::string_view name, Fn&& fn) {
  for (const http::Header& h : headers.all()) {
    if (!http::equalsIgnoreCase(h.name, "cookie")) {
      continue;
    }
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const size_t semi = rest.find(';');
      const std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos) {
        continue;
      }
      const std::string_view raw_name = http::trimOws(pair.substr(0, eq));
      if (http::equalsIgnoreCase(raw_name, name) ||
          http::equalsIgnoreCase(http::decodeFormComponent(raw_name), name)) {
        fn(http::trimOws(pair.substr(eq + 1)));
      }
    }
  }
}

// "|x:{name}={value}" for each forwarding field that is still in the request: after
// normalization only a trusted proxy's, and an app may build its links from them.
void appendForwardingContext(std::string& out, const http::HeaderMap& headers) {
  for (const http::Header& h : headers.all()) {
    if (!http::isKeyedForwardingField(h.name)) {
      continue;
    }
    out.append("|x:");
    appendEscapedLower(out, h.name);
    out.push_back('=');
    appendEscaped(out, http::trimOws(h.value));
  }
}

// "|c:{name}={value}" ("={v1}; {v2}" when the cookie comes more than once; a value never
// holds ';'), or "|c:{name}!" when the request has none.
void appendKeyCookie(std::string& out, const http::HeaderMap& headers, std::string_view name) {
  out.append("|c:");
  appendEscaped(out, name);
  bool first = true;
  forEachCookieNamed(headers, name, [&](std::string_view value) {
    out.append(first ? "=" : "; ");
    appendEscaped(out, value);
    first = false;
  });
  if (first) {
    out.push_back('!');
  }
}

// Whether the request part may appear in a storage key as is: printable ASCII without spaces
// (what every backend, memcached included, accepts) and short.
bool isPlainKeyPart(std::string_view part) {
  if (part.size() > kMaxPrintableRequestPart) {
    return false;
  }
  return std::all_of(part.begin(), part.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e;
  });
}

// "h" + 32 lowercase hex digits of XXH3-128 (canonical, big-endian byte order: the same on
// every machine, unlike std::hash).
void appendHashedPart(std::string& out, std::string_view part) {
  static constexpr char kHex[] = "0123456789abcdef";
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits(part.data(), part.size()));
  out.push_back('h');
  for (const unsigned char byte : canonical.digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0x0f]);
  }
}

void appendNamespace(std::string& out, std::string_view key_prefix, int64_t version) {
  out.append(key_prefix);
  out.push_back(':');
  std::array<char, 24> digits;
  const auto result = std::to_chars(digits.data(), digits.data() + digits.size(), version);
  out.append(digits.data(), result.ptr);
  out.push_back(':');
}

}  // namespace

std::string keyNamespace(std::string_view key_prefix, int64_t version) {
  std::string out;
  out.reserve(key_prefix.size() + 22);
  appendNamespace(out, key_prefix, version);
  return out;
}

std::string versionBumpsKey(std::string_view key_prefix) {
  std::string out(key_prefix);
  out.append(":version-bumps");
  return out;
}

CacheKey buildCacheKey(std::string_view key_prefix, int64_t version,
                       const config::KeySettings& key_settings, const http::RequestHead& request) {
  CacheKey key;
  std::string& id = key.identity;
  const std::string_view path = request.path();
  const std::string_view query = request.query();
  // Room for the fixed parts and the usual case of short key headers and cookies.
  id.reserve(16 + request.target.size() + 64 +
             32 * (key_settings.headers.size() + key_settings.cookies.size()));

  if (request.isMethod("GET") || request.isMethod("HEAD")) {
    id.push_back('g');
  } else {
    id.append("m:");
    appendEscaped(id, request.method);
  }
  id.push_back('|');
  appendHost(id, request);
  id.push_back('|');
  // absolute-form without a path ("http://host") means "/" (RFC 9112 §3.2.2).
  appendEscaped(id, path.empty() ? std::string_view("/") : path);
  id.push_back('|');
  const std::vector<std::string>* allowed = key_settings.query ? &*key_settings.query : nullptr;
  appendNormalizedQuery(id, query, allowed, /*escape=*/true);
  for (const std::string& name : key_settings.headers) {
    appendKeyHeader(id, request.headers, name);
  }
  for (const std::string& name : key_settings.cookies) {
    appendKeyCookie(id, request.headers, name);
  }
  appendForwardingContext(id, request.headers);

  const bool plain = isPlainKeyPart(id);
  key.storage_key.reserve(key_prefix.size() + 22 + (plain ? id.size() : 33));
  appendNamespace(key.storage_key, key_prefix, version);
  if (plain) {
    key.storage_key.append(id);
  } else {
    appendHashedPart(key.storage_key, id);
  }
  return key;
}

std::string normalizeQuery(std::string_view query, const std::vector<std::string>* allowed) {
  std::string out;
  out.reserve(query.size());
  appendNormalizedQuery(out, query, allowed, /*escape=*/false);
  return out;
}

}  // namespace cachecar::cache
