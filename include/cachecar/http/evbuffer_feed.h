#pragma once

#include <event2/buffer.h>

#include <optional>

#include "cachecar/http/parser.h"

namespace cachecar::http {

// Feeds `parser` the first contiguous piece of `input` (no copy: llhttp reads libevent's own
// memory) and drains from `input` what the parser consumed. On an error status nothing is
// drained: the connection answers and closes, and the bytes no longer matter. Returns nullopt
// when `input` is empty. Every connection that parses from a bufferevent reads this way.
std::optional<ParseResult> feedFromBuffer(MessageParser& parser, evbuffer* input);

}  // namespace cachecar::http
