#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/http_client.h"

namespace cachecar::testing {

// One request as the origin received it.
struct OriginRequest {
  std::string method;
  std::string target;  // "/path?query" as sent
  std::string path;    // up to '?'
  std::string query;   // after '?', "" when none
  int version_minor = 1;
  HeaderList headers;
  std::string body;            // de-chunked
  uint64_t connection_id = 0;  // 1-based number of the origin TCP connection that carried it
  uint64_t sequence = 0;       // 1-based number of the request on the whole origin (set before the
                               // handler runs, so handlers can make every answer distinct)

  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
  bool hasHeader(std::string_view name) const { return findHeader(headers, name).has_value(); }
  std::string headerOr(std::string_view name, std::string_view fallback = "") const {
    auto value = header(name);
    return value ? *value : std::string(fallback);
  }
};

// What the origin answers. By default a 200 with Content-Length.
struct OriginResponse {
  int status = 200;
  std::string reason;  // "" = the usual phrase for the status
  HeaderList headers;  // sent as given (Content-Length / Transfer-Encoding are added unless set)
  std::string body;

  // Wait this long before sending anything (the proxy's upstream timeout, slow apps).
  std::chrono::milliseconds delay{0};
  // When non-empty, the body is sent with Transfer-Encoding: chunked, one chunk per element
  // (`body` is ignored).
  std::vector<std::string> chunks;
  // Pacing: with `chunks`, the pause between chunks; with a plain body and piece_size > 0, the
  // body is written in pieces of piece_size bytes with this pause between them.
  std::chrono::milliseconds pace{0};
  size_t piece_size = 0;
  // No Content-Length: the body ends when the origin closes the connection.
  bool until_close = false;
  // Close the connection without answering (after `delay`).
  bool close_without_response = false;
  // Send the head and only this many body bytes, then close (a truncated response).
  std::optional<size_t> truncate_body_at;
  // Close the connection after this response ("Connection: close" is added).
  bool close_after = false;

  static OriginResponse text(std::string body, HeaderList headers = {}) {
    OriginResponse r;
    r.body = std::move(body);
    r.headers = std::move(headers);
    if (!findHeader(r.headers, "Content-Type")) {
      r.headers.emplace_back("Content-Type", "text/plain");
    }
    return r;
  }
};

using OriginHandler = std::function<OriginResponse(const OriginRequest&)>;

// A real HTTP/1.1 origin server on 127.0.0.1 at a port chosen by the kernel. One thread accepts;
// every connection gets its own thread (blocking logic over poll(), so delays and pacing are
// simple and a slow answer never stalls other connections). Keep-alive, pipelining, chunked
// request bodies and "Expect: 100-continue" are supported. Handlers run on connection threads
// without any origin lock held.
class TestOrigin {
 public:
  TestOrigin();
  ~TestOrigin();
  TestOrigin(const TestOrigin&) = delete;
  TestOrigin& operator=(const TestOrigin&) = delete;

  uint16_t port() const { return port_; }
  // Why the server could not start (empty when it runs).
  const std::string& startError() const { return start_error_; }
  bool running() const { return listen_fd_ >= 0; }

  // Handler for an exact path (query not included), or for every path with this prefix; an exact
  // handler wins, then the longest prefix. Unknown paths get a 404.
  void handle(std::string path, OriginHandler handler);
  void handlePrefix(std::string prefix, OriginHandler handler);
  // A fixed answer for an exact path.
  void setResponse(std::string path, OriginResponse response);

  // Requests fully received for this path (query ignored), or for this exact target.
  int requestCount(std::string_view path) const;
  int targetCount(std::string_view target) const;
  int totalRequests() const;
  std::optional<OriginRequest> lastRequest(std::string_view path) const;
  std::vector<OriginRequest> requests() const;
  // TCP connections accepted so far, and those still open.
  int connectionCount() const;
  int openConnections() const;
  // Waits (bounded) until `path` has seen at least `count` requests.
  bool waitForRequests(std::string_view path, int count, std::chrono::milliseconds timeout) const;
  // Waits (bounded) until no connection is open.
  bool waitForNoOpenConnections(std::chrono::milliseconds timeout) const;

  // Stops accepting, closes every connection and joins all threads. Afterwards the port refuses
  // connections. Idempotent; the destructor calls it.
  void stop();

 private:
  struct Route {
    std::string path;
    bool prefix = false;
    OriginHandler handler;
  };

  void acceptLoop();
  void serveConnection(int fd, uint64_t connection_id);
  OriginHandler findHandler(std::string_view path) const;
  // Counts and keeps the request; sets its sequence number.
  void record(OriginRequest& request);
  void connectionClosed();
  // Sleeps up to `d`; false when the origin is stopping.
  bool pause(std::chrono::milliseconds d) const;
  // Writes everything; false when the peer went away or the origin stops.
  bool sendAll(int fd, std::string_view bytes) const;
  // Answers one request on `fd`; false when the connection must be closed.
  bool respond(int fd, const OriginRequest& request, bool keep_alive);

  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::string start_error_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Route> routes_;
  std::map<std::string, int, std::less<>> path_counts_;
  std::map<std::string, int, std::less<>> target_counts_;
  std::map<std::string, OriginRequest, std::less<>> last_requests_;
  std::vector<OriginRequest> all_requests_;
  std::vector<std::thread> connection_threads_;
  int connections_accepted_ = 0;
  int connections_open_ = 0;
};

}  // namespace cachecar::testing
