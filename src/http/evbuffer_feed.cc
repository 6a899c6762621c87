#include "cachecar/http/evbuffer_feed.h"

namespace cachecar::http {

std::optional<ParseResult> feedFromBuffer(MessageParser& parser, evbuffer* input) {
  evbuffer_iovec vec;
  if (evbuffer_peek(input, -1, nullptr, &vec, 1) < 1 || vec.iov_len == 0) {
    return std::nullopt;
  }
  const ParseResult r = parser.feed(static_cast<const char*>(vec.iov_base), vec.iov_len);
  if (r.status == ParseStatus::kNeedMore || r.status == ParseStatus::kMessageComplete) {
    evbuffer_drain(input, r.consumed);
  }
  return r;
}

}  // namespace cachecar::http
