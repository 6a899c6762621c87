#pragma once

#include <string>

#include "cachecar/http/message.h"

namespace cachecar::http {

// "GET /x HTTP/1.1\r\nName: value\r\n...\r\n" (headers written as given; ends with the blank line).
void appendRequestHead(std::string& out, const RequestHead& head);
// "HTTP/1.1 200 OK\r\nName: value\r\n" — without the final blank line, so callers can add
// per-response fields (Age, X-Cache, Connection) before terminating it.
void appendResponseHeadOpen(std::string& out, const ResponseHead& head);
void appendHeaderLine(std::string& out, std::string_view name, std::string_view value);

// Chunked transfer coding, writer side.
void appendChunkHeader(std::string& out, size_t size);  // "1a2b\r\n"
inline constexpr std::string_view kChunkTrailer = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// A short error response that closes the connection: "HTTP/1.1 502 Bad Gateway" + text body.
std::string makeErrorResponse(int status, std::string_view body, bool close_connection = true);

}  // namespace cachecar::http
