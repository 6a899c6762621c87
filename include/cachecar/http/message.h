#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar::http {

// ASCII case-insensitive comparison, as HTTP field names require.
bool equalsIgnoreCase(std::string_view a, std::string_view b);
// ASCII case-insensitive ordering (for sorted lists of field names and tokens).
bool lessIgnoreCase(std::string_view a, std::string_view b);
// Trims optional whitespace (SP / HTAB) from both ends.
std::string_view trimOws(std::string_view s);

// Calls fn(item) for each non-empty, trimmed element of a comma-separated field value
// (RFC 9110 §5.6.1). Quoted strings are not special-cased: callers parse the items.
template <typename Fn>
void forEachListItem(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trimOws(list.substr(0, comma));
    if (!item.empty()) {
      fn(item);
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
}

struct Header {
  std::string name;
  std::string value;
};

// Ordered, multi-valued header list with case-insensitive names. Small (tens of entries),
// so a vector with linear search beats any map.
class HeaderMap {
 public:
  void add(std::string name, std::string value);
  // Replaces every field with this name by one field.
  void set(std::string_view name, std::string value);
  // Removes every field with this name; returns how many were removed.
  size_t remove(std::string_view name);
  bool has(std::string_view name) const;
  // First value with this name.
  std::optional<std::string_view> get(std::string_view name) const;
  // All values with this name joined by ", " (RFC 9110 §5.3 list combination).
  std::optional<std::string> getCombined(std::string_view name) const;
  size_t count(std::string_view name) const;

  const std::vector<Header>& all() const { return headers_; }
  std::vector<Header>& all() { return headers_; }
  bool empty() const { return headers_.empty(); }
  size_t size() const { return headers_.size(); }
  void clear() { headers_.clear(); }

 private:
  std::vector<Header> headers_;
};

enum class BodyFraming {
  kNone,           // no body (GET without length, 204, 304, HEAD response)
  kContentLength,  // body of content_length bytes
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // response delimited by connection close
};

struct RequestHead {
  std::string method;  // "GET"
  std::string target;  // request-target as received: "/path?query" (or absolute-form)
  int version_major = 1;
  int version_minor = 1;  // HTTP/1.<minor>
  HeaderMap headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // the client wants the connection kept after this exchange
  bool expect_continue = false;

  std::string_view path() const;   // target up to '?', without any scheme://authority
  std::string_view query() const;  // after '?', empty when none
  bool isMethod(std::string_view m) const { return method == m; }
};

struct ResponseHead {
  int status = 200;
  std::string reason;
  int version_minor = 1;
  HeaderMap headers;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // the origin allows reuse of the connection
};

// The standard reason phrase for a status ("Not Found"); "Unknown" when none.
std::string_view reasonPhrase(int status);

}  // namespace cachecar::http
