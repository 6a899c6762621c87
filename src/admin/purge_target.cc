#include "cachecar/admin/purge_target.h"

#include <cstdint>

namespace cachecar::admin {

namespace {

constexpr std::string_view kWhyHost =
    "cached pages are keyed by host, so a path alone does not say which entries to purge";

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
char toLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string hexByte(unsigned char b) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string{'%', kHex[b >> 4], kHex[b & 0xF]};
}

// RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool isScheme(std::string_view s) {
  if (s.empty() || !isAlpha(s.front())) {
    return false;
  }
  for (char c : s) {
    if (!isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// reg-name characters (unreserved, sub-delims and '%' of pct-encoded), RFC 3986 §3.2.2.
bool isRegNameChar(char c) {
  if (isAlpha(c) || isDigit(c)) {
    return true;
  }
  return std::string_view("-._~!$&'()*+,;=%").find(c) != std::string_view::npos;
}

bool isIpLiteralChar(char c) {
  return isAlpha(c) || isDigit(c) || c == ':' || c == '.' || c == '%' || c == '-' || c == '_' ||
         c == '~';
}

Status checkPort(std::string_view port) {
  // An empty port ("host:") is allowed by RFC 3986 and means the default one.
  if (port.size() > 5) {
    return Error{"url port '" + std::string(port) + "' is not a port number"};
  }
  uint32_t value = 0;
  for (char c : port) {
    if (!isDigit(c)) {
      return Error{"url port '" + std::string(port) + "' is not a port number"};
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) {
    return Error{"url port " + std::string(port) + " is out of range (the largest is 65535)"};
  }
  return Ok{};
}

Status checkAuthority(std::string_view authority) {
  std::string_view host = authority;
  std::string_view port;
  bool has_port = false;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) {
      return Error{"url host '" + std::string(authority) + "' has an unclosed '['"};
    }
    const std::string_view rest = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Error{"url host '" + std::string(authority) + "' has bytes after ']'"};
      }
      has_port = true;
      port = rest.substr(1);
    }
    for (char c : host) {
      if (!isIpLiteralChar(c)) {
        return Error{"url host '" + std::string(authority) + "' is not a valid IP literal"};
      }
    }
  } else {
    const size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      has_port = true;
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    for (char c : host) {
      if (!isRegNameChar(c)) {
        return Error{"url host '" + std::string(authority) +
                     "' has a character not allowed in a host name"};
      }
    }
  }
  if (host.empty()) {
    return Error{"url has no host (like http://shop.example/products/1): " + std::string(kWhyHost)};
  }
  if (has_port) {
    return checkPort(port);
  }
  return Ok{};
}

// Percent-encodes what a browser would encode before sending a request target, leaving every
// other byte (and existing escapes) exactly as given.
std::string encodeLikeBrowser(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b == ' ' || b >= 0x80 ||
        std::string_view("\"<>\\^`{|}").find(c) != std::string_view::npos) {
      out += hexByte(b);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Result<PurgeTarget> parsePurgeUrl(std::string_view url) {
  if (url.empty()) {
    return Error{"url is empty: give an absolute URL, like http://shop.example/products/1 (" +
                 std::string(kWhyHost) + ")"};
  }
  for (size_t i = 0; i < url.size(); ++i) {
    const auto b = static_cast<unsigned char>(url[i]);
    if (b < 0x20 || b == 0x7F) {
      return Error{"url has a control character (byte " + hexByte(b) + " at offset " +
                   std::to_string(i) + "); no request target can contain one"};
    }
  }
  if (url.front() == '/') {
    if (url.size() > 1 && url[1] == '/') {
      return Error{
          "url must be absolute, like http://shop.example/products/1, with http: or "
          "https: before the '//'"};
    }
    return Error{"url must be absolute, like http://shop.example/products/1, not the path '" +
                 std::string(url) + "' alone: " + std::string(kWhyHost)};
  }
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || !isScheme(url.substr(0, scheme_end))) {
    return Error{
        "url must be absolute (http:// or https://, then the host), like "
        "http://shop.example/products/1: " +
        std::string(kWhyHost)};
  }
  PurgeTarget target;
  for (char c : url.substr(0, scheme_end)) {
    target.scheme.push_back(toLower(c));
  }
  if (target.scheme != "http" && target.scheme != "https") {
    return Error{"url scheme '" + target.scheme +
                 "' is not supported: only http and https pages are cached"};
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  // Userinfo never reaches the proxy in a request, so it is not part of any key.
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.empty()) {
    return Error{"url has no host (like http://shop.example/products/1): " + std::string(kWhyHost)};
  }
  if (Status ok = checkAuthority(authority); !ok.ok()) {
    return ok.error();
  }
  for (char c : authority) {
    target.host.push_back(toLower(c));
  }
  // Browsers never send the fragment, so no cached entry has one.
  rest = rest.substr(0, rest.find('#'));
  const size_t question = rest.find('?');
  const std::string_view path = rest.substr(0, question);
  target.path = path.empty() ? "/" : encodeLikeBrowser(path);
  if (question != std::string_view::npos) {
    target.query = encodeLikeBrowser(rest.substr(question + 1));
  }
  return target;
}

Result<std::string> decodeQueryValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      const int hi = i + 1 < value.size() ? hexValue(value[i + 1]) : -1;
      const int lo = i + 2 < value.size() ? hexValue(value[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Error{"malformed percent-escape '" + std::string(value.substr(i, 3)) +
                     "' at offset " + std::to_string(i) + " (a literal '%' is written %25)"};
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::vector<QueryParam>> parseQueryString(std::string_view query) {
  std::vector<QueryParam> params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) {
      continue;
    }
    const size_t eq = piece.find('=');
    const std::string_view raw_name = piece.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1);
    auto name = decodeQueryValue(raw_name);
    if (!name.ok()) {
      return Error{"query parameter name '" + std::string(raw_name) + "': " + name.error().message};
    }
    auto value = decodeQueryValue(raw_value);
    if (!value.ok()) {
      return Error{"query parameter '" + *name + "': " + value.error().message};
    }
    params.push_back({std::move(name).value(), std::move(value).value()});
  }
  return params;
}

bool constantTimeEquals(std::string_view secret, std::string_view candidate) {
  if (secret.empty()) {
    return candidate.empty();
  }
  // The loop runs over the candidate (whose length the caller already knows), reading the
  // secret cyclically, so neither the time nor the memory access pattern depends on the
  // secret's bytes or on where a mismatch is.
  unsigned diff = secret.size() == candidate.size() ? 0U : 1U;
  for (size_t i = 0; i < candidate.size(); ++i) {
    diff |= static_cast<unsigned char>(candidate[i]) ^
            static_cast<unsigned char>(secret[i % secret.size()]);
  }
  return diff == 0;
}

}  // namespace cachecar::admin
