#pragma once

#include <event2/buffer.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cachecar/cache/entry_codec.h"
#include "cachecar/http/message.h"
#include "cachecar/storage/backend.h"

namespace cachecar::server {

// A decoded entry and the bytes it points into.
struct StoredResponse {
  storage::Blob blob;
  cache::EntryView view;
};

// Fields that differ per delivery of the same stored response.
struct DeliveryFields {
  int64_t age_seconds = 0;
  std::string_view x_cache;       // "HIT", "STALE", "REVALIDATED"
  std::string cache_status;       // RFC 9211 Cache-Status value
  bool close = false;             // Connection: close
  bool http10_keep_alive = false;  // Connection: keep-alive for an HTTP/1.0 client
  std::string_view extra;          // whole header lines for this delivery only (Set-Cookie)
};

// Writes a stored response to a client: the whole response (body by reference to the stored
// bytes, never copied), a 304 when the client's conditional matches, or a 206 / 416 for a
// single byte range. Returns the status written.
int writeStoredResponse(evbuffer* out, const StoredResponse& stored,
                        const http::RequestHead& request, const DeliveryFields& fields);

}  // namespace cachecar::server
