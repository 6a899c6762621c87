#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cachecar/http/message.h"

namespace cachecar::cache {

// Parses a stored head ("HTTP/1.1 200 OK\r\nName: value\r\n...", no final blank line) back into
// a ResponseHead. Bounded and tolerant of anything (a shared store may hold hostile bytes):
// nullopt when it is not a status line followed by header lines.
std::optional<http::ResponseHead> parseStoredHead(std::string_view head);

// Whether a client's conditional GET/HEAD is satisfied by a stored response, so the answer is
// 304 (RFC 9110 §13.1.2-3, §13.2.2): If-None-Match (weak comparison; "*" matches) takes
// precedence; otherwise If-Modified-Since against Last-Modified (or Date).
bool isNotModified(const http::RequestHead& request, const http::HeaderMap& stored);

// Adds the stored response's validators to a revalidation request: If-None-Match from its ETag,
// If-Modified-Since from its Last-Modified. Returns false when it has neither.
bool addValidators(http::HeaderMap& upstream_request, const http::HeaderMap& stored);
bool hasValidator(const http::HeaderMap& stored);

// Updates a stored response's fields from a 304 (RFC 9111 §4.3.4): every field in the 304
// replaces the stored fields of that name, except the framing and hop-by-hop fields.
void mergeNotModified(http::HeaderMap& stored, const http::HeaderMap& not_modified);

// Whether a 200 answer to a HEAD describes the stored GET response, so that its fields may
// update it as a 304's would (RFC 9111 §4.3.5, selecting as §4.3.4 does): its Content-Length,
// when present, is the stored body's size, and its validator equals the stored one (an ETag,
// else a Last-Modified); with no validator on either side, the lengths decide. Otherwise the
// page changed and the stored response no longer describes it.
bool headResponseDescribesStored(const http::HeaderMap& stored, uint64_t stored_body_size,
                                 const http::HeaderMap& head_response);

// The fields a 304 built from a stored response carries (RFC 9110 §15.4.5).
http::HeaderMap notModifiedFields(const http::HeaderMap& stored);

// A single byte range of a Range request over a body of `size` bytes (RFC 9110 §14).
struct RangeRequest {
  enum class Kind { kNone, kSatisfiable, kUnsatisfiable, kUnsupported };
  Kind kind = Kind::kNone;
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};
// kNone: no Range header; kUnsupported: several ranges or another unit (pass to the app).
RangeRequest parseRange(const http::RequestHead& request, uint64_t size);

}  // namespace cachecar::cache
