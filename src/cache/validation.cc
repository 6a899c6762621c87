#include "cachecar/cache/validation.h"

#include <array>
#include <charconv>

#include "cachecar/cache/freshness.h"

namespace cachecar::cache {

namespace {

constexpr size_t kMaxStoredHeaders = 512;


std::string_view opaqueTag(std::string_view tag) {
  if (tag.size() >= 2 && tag[0] == 'W' && tag[1] == '/') {
    tag.remove_prefix(2);
  }
  return tag;
}

bool parseUint(std::string_view s, uint64_t& out) {
  if (s.empty()) {
    return false;
  }
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::optional<http::ResponseHead> parseStoredHead(std::string_view head) {
  const size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 9) != "HTTP/1.1 " ||
      (status_line.size() > 12 && status_line[12] != ' ') ||
      status_line.find_first_of("\r\n") != std::string_view::npos) {
    return std::nullopt;  // bare CR / LF could smuggle lines into a head written back out
  }
  http::ResponseHead out;
  int status = 0;
  auto [end, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
  if (ec != std::errc() || end != status_line.data() + 12 || status < 100 || status > 999) {
    return std::nullopt;
  }
  out.status = status;
  if (status_line.size() > 13) {
    out.reason = std::string(status_line.substr(13));
  }
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    const size_t line_end = rest.find("\r\n");
    if (line_end == std::string_view::npos) {
      return std::nullopt;  // every stored line ends with CRLF
    }
    const std::string_view line = rest.substr(0, line_end);
    rest.remove_prefix(line_end + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || out.headers.size() >= kMaxStoredHeaders ||
        line.find_first_of("\r\n") != std::string_view::npos) {
      return std::nullopt;
    }
    out.headers.add(std::string(line.substr(0, colon)),
                    std::string(http::trimOws(line.substr(colon + 1))));
  }
  return out;
}

bool isNotModified(const http::RequestHead& request, const http::HeaderMap& stored) {
  if (auto inm = request.headers.getCombined("If-None-Match")) {
    const auto etag = stored.get("ETag");
    bool match = false;
    http::forEachListItem(*inm, [&](std::string_view item) {
      if (item == "*" || (etag && opaqueTag(item) == opaqueTag(*etag))) {
        match = true;
      }
    });
    return match;
  }
  auto ims = request.headers.get("If-Modified-Since");
  if (!ims) {
    return false;
  }
  const auto since = parseHttpDate(*ims);
  auto last = stored.get("Last-Modified");
  if (!last) {
    last = stored.get("Date");
  }
  if (!since || !last) {
    return false;
  }
  const auto modified = parseHttpDate(*last);
  return modified && *modified <= *since;
}

bool hasValidator(const http::HeaderMap& stored) {
  return stored.has("ETag") || stored.has("Last-Modified");
}

bool headResponseDescribesStored(const http::HeaderMap& stored, uint64_t stored_body_size,
                                 const http::HeaderMap& head_response) {
  if (const std::optional<std::string_view> length = head_response.get("Content-Length")) {
    uint64_t declared = 0;
    if (!parseUint(*length, declared) || declared != stored_body_size) {
      return false;
    }
  }
  for (std::string_view validator : {"ETag", "Last-Modified"}) {
    if (const std::optional<std::string_view> received = head_response.get(validator)) {
      const std::optional<std::string_view> kept = stored.get(validator);
      return kept && *kept == *received;
    }
  }
  return !hasValidator(stored);
}

bool addValidators(http::HeaderMap& upstream_request, const http::HeaderMap& stored) {
  bool added = false;
  if (auto etag = stored.get("ETag")) {
    upstream_request.set("If-None-Match", std::string(*etag));
    added = true;
  }
  if (auto last = stored.get("Last-Modified")) {
    upstream_request.set("If-Modified-Since", std::string(*last));
    added = true;
  }
  return added;
}

void mergeNotModified(http::HeaderMap& stored, const http::HeaderMap& not_modified) {
  static constexpr std::array<std::string_view, 6> kKeep = {
      "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Content-Encoding",
      "Content-Range"};
  std::vector<std::string> replaced;
  for (const auto& h : not_modified.all()) {
    bool keep = false;
    for (std::string_view k : kKeep) {
      keep = keep || http::equalsIgnoreCase(h.name, k);
    }
    if (keep) {
      continue;
    }
    bool seen = false;
    for (const auto& r : replaced) {
      seen = seen || http::equalsIgnoreCase(r, h.name);
    }
    if (!seen) {
      stored.remove(h.name);
      replaced.push_back(h.name);
    }
    stored.add(h.name, h.value);
  }
}

http::HeaderMap notModifiedFields(const http::HeaderMap& stored) {
  static constexpr std::array<std::string_view, 7> kFields = {
      "Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary", "Last-Modified"};
  http::HeaderMap out;
  for (const auto& h : stored.all()) {
    for (std::string_view f : kFields) {
      if (http::equalsIgnoreCase(h.name, f)) {
        out.add(h.name, h.value);
      }
    }
  }
  return out;
}

RangeRequest parseRange(const http::RequestHead& request, uint64_t size) {
  RangeRequest out;
  auto range = request.headers.get("Range");
  if (!range) {
    return out;
  }
  out.kind = RangeRequest::Kind::kUnsupported;
  std::string_view spec = http::trimOws(*range);
  if (spec.substr(0, 6) != "bytes=" || spec.find(',') != std::string_view::npos) {
    return out;
  }
  spec.remove_prefix(6);
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return out;
  }
  const std::string_view first_text = http::trimOws(spec.substr(0, dash));
  const std::string_view last_text = http::trimOws(spec.substr(dash + 1));
  uint64_t first = 0;
  uint64_t last = 0;
  if (first_text.empty()) {
    // Suffix range: the last N bytes.
    if (!parseUint(last_text, last)) {
      return out;
    }
    if (last == 0 || size == 0) {
      out.kind = RangeRequest::Kind::kUnsatisfiable;
      return out;
    }
    out.kind = RangeRequest::Kind::kSatisfiable;
    out.first = last >= size ? 0 : size - last;
    out.last = size - 1;
    return out;
  }
  if (!parseUint(first_text, first)) {
    return out;
  }
  if (last_text.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else if (!parseUint(last_text, last) || last < first) {
    return out;
  }
  if (first >= size) {
    out.kind = RangeRequest::Kind::kUnsatisfiable;
    return out;
  }
  out.kind = RangeRequest::Kind::kSatisfiable;
  out.first = first;
  out.last = last >= size ? size - 1 : last;
  return out;
}

}  // namespace cachecar::cache
