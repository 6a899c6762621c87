#include "cachecar/http/request_target.h"

#include <vector>

namespace cachecar::http {

namespace {

constexpr char kHexDigits[] = "0123456789ABCDEF";

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

// The escaped byte at s[i] ('%' there), or -1 when no two hex digits follow.
int escapedByte(std::string_view s, size_t i) {
  if (i + 2 >= s.size()) {
    return -1;
  }
  const int hi = hexValue(s[i + 1]);
  const int lo = hexValue(s[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool isUnreserved(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool isControl(unsigned char b) { return b < 0x21 || b == 0x7f; }

// What a browser escapes before it sends a request target (the WHATWG URL path set, and every
// byte outside ASCII), so "/café" and "/caf%C3%A9" are one path here, as they are to the app.
bool browserEscapes(unsigned char b) {
  return b >= 0x80 || std::string_view("\"<>^`{|}").find(static_cast<char>(b)) !=
                          std::string_view::npos;
}

void appendEscape(std::string& out, unsigned char b) {
  out.push_back('%');
  out.push_back(kHexDigits[b >> 4]);
  out.push_back(kHexDigits[b & 0x0f]);
}

std::string hexOf(unsigned char b) {
  std::string out;
  appendEscape(out, b);
  return out;
}

// Pass one: every byte in its normal spelling; '/' in the output separates segments.
Result<std::string> normalizeEscapes(std::string_view path, EncodedSlashes encoded_slashes) {
  std::string out;
  out.reserve(path.size() + 8);
  for (size_t i = 0; i < path.size(); ++i) {
    const auto b = static_cast<unsigned char>(path[i]);
    if (b == '%') {
      const int value = escapedByte(path, i);
      if (value < 0) {
        return Error{"malformed percent-escape in the path (a literal '%' is written %25)"};
      }
      i += 2;
      if (value == 0) {
        return Error{"escaped NUL (%00) in the path"};
      }
      if (value == '\\') {
        return Error{"escaped backslash (%5C) in the path: some servers read it as '/'"};
      }
      if (value == '/') {
        if (encoded_slashes == EncodedSlashes::kReject) {
          return Error{"encoded slash (%2F) in the path: apps disagree on whether it separates "
                       "segments"};
        }
        out.push_back('/');
      } else if (isUnreserved(value)) {
        out.push_back(static_cast<char>(value));
      } else {
        appendEscape(out, static_cast<unsigned char>(value));
      }
    } else if (b == '\\') {
      return Error{"backslash in the path: some servers read it as '/'"};
    } else if (isControl(b)) {
      return Error{"control character " + hexOf(b) + " in the path"};
    } else if (browserEscapes(b)) {
      appendEscape(out, b);
    } else {
      out.push_back(static_cast<char>(b));
    }
  }
  return out;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::string> normalizePath(std::string_view path, EncodedSlashes encoded_slashes) {
  if (path.empty() || path.front() != '/') {
    return Error{"the path must start with '/'"};
  }
  Result<std::string> escaped = normalizeEscapes(path, encoded_slashes);
  if (!escaped) {
    return escaped;
  }
  // Pass two: merge slashes and remove dot segments over the segments of pass one.
  const std::string_view text = *escaped;
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  size_t start = 1;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('/', start), text.size());
    const std::string_view segment = text.substr(start, end - start);
    start = end + 1;
    if (segment.empty() || segment == ".") {
      trailing_slash = true;
    } else if (segment == "..") {
      if (segments.empty()) {
        return Error{"the path climbs above the root with '..'"};
      }
      segments.pop_back();
      trailing_slash = true;
    } else if (startsWith(segment, ".;") || startsWith(segment, "..;")) {
      // Servlet containers drop ";params" from a segment and then see a dot segment.
      return Error{"a dot segment with parameters (\"..;\") in the path"};
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
  }
  std::string out;
  out.reserve(text.size());
  for (const std::string_view segment : segments) {
    out.push_back('/');
    out.append(segment);
  }
  if (out.empty() || trailing_slash) {
    out.push_back('/');
  }
  return out;
}

Result<std::string> normalizeQueryString(std::string_view query) {
  std::string out;
  out.reserve(query.size());
  for (size_t i = 0; i < query.size(); ++i) {
    const auto b = static_cast<unsigned char>(query[i]);
    if (b == '%') {
      const int value = escapedByte(query, i);
      if (value < 0) {
        out.push_back('%');
        continue;
      }
      appendEscape(out, static_cast<unsigned char>(value));
      i += 2;
    } else if (isControl(b)) {
      return Error{"control character " + hexOf(b) + " in the query"};
    } else if (browserEscapes(b)) {
      appendEscape(out, b);
    } else {
      out.push_back(static_cast<char>(b));
    }
  }
  return out;
}

std::string decodeFormComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
      continue;
    }
    const int value = s[i] == '%' ? escapedByte(s, i) : -1;
    if (value < 0) {
      out.push_back(s[i]);
      continue;
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

}  // namespace cachecar::http
