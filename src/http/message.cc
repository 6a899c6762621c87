#include "cachecar/http/message.h"

#include <algorithm>

namespace cachecar::http {

namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) {
      return false;
    }
  }
  return true;
}

bool lessIgnoreCase(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = lowerAscii(a[i]);
    const char y = lowerAscii(b[i]);
    if (x != y) {
      return x < y;
    }
  }
  return a.size() < b.size();
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

void HeaderMap::add(std::string name, std::string value) {
  headers_.push_back(Header{std::move(name), std::move(value)});
}

void HeaderMap::set(std::string_view name, std::string value) {
  for (auto it = headers_.begin(); it != headers_.end(); ++it) {
    if (equalsIgnoreCase(it->name, name)) {
      it->value = std::move(value);
      // Drop any later duplicates.
      headers_.erase(std::remove_if(std::next(it), headers_.end(),
                                    [&](const Header& h) { return equalsIgnoreCase(h.name, name); }),
                     headers_.end());
      return;
    }
  }
  headers_.push_back(Header{std::string(name), std::move(value)});
}

size_t HeaderMap::remove(std::string_view name) {
  const size_t before = headers_.size();
  headers_.erase(std::remove_if(headers_.begin(), headers_.end(),
                                [&](const Header& h) { return equalsIgnoreCase(h.name, name); }),
                 headers_.end());
  return before - headers_.size();
}

bool HeaderMap::has(std::string_view name) const { return get(name).has_value(); }

std::optional<std::string_view> HeaderMap::get(std::string_view name) const {
  for (const auto& h : headers_) {
    if (equalsIgnoreCase(h.name, name)) {
      return std::string_view(h.value);
    }
  }
  return std::nullopt;
}

std::optional<std::string> HeaderMap::getCombined(std::string_view name) const {
  std::optional<std::string> out;
  for (const auto& h : headers_) {
    if (!equalsIgnoreCase(h.name, name)) {
      continue;
    }
    if (!out) {
      out = h.value;
    } else {
      out->append(", ");
      out->append(h.value);
    }
  }
  return out;
}

size_t HeaderMap::count(std::string_view name) const {
  return static_cast<size_t>(std::count_if(headers_.begin(), headers_.end(), [&](const Header& h) {
    return equalsIgnoreCase(h.name, name);
  }));
}

std::string_view RequestHead::path() const {
  std::string_view t = target;
  // absolute-form: "http://host/path?q" -> "/path?q"
  if (!t.empty() && t.front() != '/') {
    const size_t scheme = t.find("://");
    if (scheme != std::string_view::npos) {
      const size_t slash = t.find('/', scheme + 3);
      t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
    }
  }
  const size_t q = t.find('?');
  return q == std::string_view::npos ? t : t.substr(0, q);
}

std::string_view RequestHead::query() const {
  std::string_view t = target;
  const size_t q = t.find('?');
  return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace cachecar::http
