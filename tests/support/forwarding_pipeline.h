#pragma once

// Client bytes in, app bytes out: the parse -> normalize -> build steps of the request path as
// pure functions (the real ones, in the order ProxyExchange runs them), for table-driven tests
// and the fuzz targets. Header-only and free of gtest so fuzz targets can use it.

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cachecar/http/parser.h"
#include "cachecar/http/request_normalizer.h"
#include "cachecar/http/upstream_request.h"

namespace cachecar::testing {

// What became of one request from a client.
struct ForwardOutcome {
  int status = 0;      // 0: forwarded to the app; else what cachecar answered (400, 505, ...)
  std::string reason;  // why it was refused
  http::RequestHead request;  // the normalized request (when forwarded)
  std::string body;           // the body as the client sent it, de-chunked
  std::string upstream;       // exactly what the app receives: head, then the framed body
};

// Maps a parser error to the status the client connection answers with.
inline int statusOfParseError(http::ParseStatus status) {
  switch (status) {
    case http::ParseStatus::kHeaderTooLarge:
      return 431;
    case http::ParseStatus::kBodyTooLarge:
      return 413;
    default:
      return 400;
  }
}

// Runs the first request in `client_bytes` through the request path. `piece` > 0 feeds the
// parser that many bytes at a time (as a slow client's reads would arrive).
inline ForwardOutcome forwardFirstRequest(std::string_view client_bytes,
                                          const http::NormalizeOptions& options,
                                          size_t piece = 0, size_t max_header_fields = 100) {
  struct Sink : http::MessageParser::Sink {
    void onHeadComplete() override { head_done = true; }
    void onBody(std::string_view chunk) override { body.append(chunk); }
    bool head_done = false;
    std::string body;
  } sink;
  http::MessageParser parser(http::MessageParser::Kind::kRequest, sink, 64 << 10, 16 << 20,
                             max_header_fields);
  ForwardOutcome out;
  size_t offset = 0;
  bool complete = false;
  while (offset < client_bytes.size() && !complete) {
    const size_t n = piece == 0 ? client_bytes.size() - offset
                                : std::min(piece, client_bytes.size() - offset);
    const http::ParseResult r = parser.feed(client_bytes.data() + offset, n);
    if (r.status != http::ParseStatus::kNeedMore &&
        r.status != http::ParseStatus::kMessageComplete) {
      out.status = statusOfParseError(r.status);
      out.reason = std::string(parser.errorReason());
      return out;
    }
    complete = r.status == http::ParseStatus::kMessageComplete;
    offset += r.consumed;
  }
  if (!complete) {
    out.status = -1;  // incomplete: the client would be waited for
    out.reason = "incomplete request";
    return out;
  }
  out.request = parser.request();
  out.body = sink.body;
  if (auto rejected = http::normalizeRequest(out.request, options)) {
    out.status = rejected->status;
    out.reason = rejected->reason;
    return out;
  }
  http::UpstreamRequestOptions upstream_options;
  upstream_options.client_ip = "192.0.2.7";
  http::appendUpstreamRequestHead(out.upstream, out.request, upstream_options);
  http::appendUpstreamBodyPiece(out.upstream, out.request, out.body);
  http::appendUpstreamBodyEnd(out.upstream, out.request);
  return out;
}

// How the app reads the bytes cachecar sends it: every request in them, in order, or an error.
struct AppView {
  std::vector<http::RequestHead> requests;
  std::vector<std::string> bodies;
  bool error = false;
  size_t unparsed = 0;  // bytes left over after the last complete request
};

inline AppView readAsApp(std::string_view bytes) {
  struct Sink : http::MessageParser::Sink {
    void onHeadComplete() override {}
    void onBody(std::string_view chunk) override { body.append(chunk); }
    std::string body;
  } sink;
  http::MessageParser parser(http::MessageParser::Kind::kRequest, sink, 1 << 20, 1 << 30, 10000);
  AppView view;
  while (!bytes.empty()) {
    const http::ParseResult r = parser.feed(bytes.data(), bytes.size());
    if (r.status != http::ParseStatus::kMessageComplete) {
      view.error = r.status != http::ParseStatus::kNeedMore;
      view.unparsed = bytes.size();
      break;
    }
    view.requests.push_back(parser.request());
    view.bodies.push_back(sink.body);
    sink.body.clear();
    bytes.remove_prefix(r.consumed);
    parser.nextMessage();
  }
  return view;
}

}  // namespace cachecar::testing
