#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachecar::testing {

// Header fields as (name, value) pairs in wire order. The harness keeps its own tiny type so
// that it does not depend on the code under test (cachecar::http).
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// ASCII case-insensitive comparison of field names.
bool headerNameEquals(std::string_view a, std::string_view b);
// First value of `name` in `headers`, nullopt when absent.
std::optional<std::string> findHeader(const HeaderList& headers, std::string_view name);
size_t countHeader(const HeaderList& headers, std::string_view name);

// One parsed response. `status` is 0 when no response could be read; `error` says why.
struct HttpResponse {
  int status = 0;
  std::string reason;
  HeaderList headers;
  std::string body;          // de-chunked
  bool chunked = false;      // the response used Transfer-Encoding: chunked
  bool keep_alive = false;   // llhttp_should_keep_alive() after the message
  bool until_close = false;  // the body was delimited by the connection close
  std::string error;         // set when status == 0

  bool ok() const { return status != 0; }
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
  bool hasHeader(std::string_view name) const { return findHeader(headers, name).has_value(); }
  // The value, or "" when absent (handy in EXPECT_EQ).
  std::string headerOr(std::string_view name, std::string_view fallback = "") const;
  // A one-line description for failure messages.
  std::string describe() const;
};

// A blocking HTTP/1.1 client over one TCP connection to 127.0.0.1:port. Every read is bounded by
// a receive timeout, so a test can never hang on a silent peer. Responses are parsed with
// llhttp; bytes past the end of one response are kept for the next (pipelining).
class HttpClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  explicit HttpClient(uint16_t port, std::chrono::milliseconds timeout = kDefaultTimeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Why the connection could not be made (empty when connected).
  const std::string& connectError() const { return connect_error_; }
  uint16_t port() const { return port_; }

  // Sends all bytes; false when the peer reset or closed the connection (no SIGPIPE).
  bool sendRaw(std::string_view bytes);
  // Reads the next response. `head_request`: the request was HEAD, so no body follows.
  // Interim 1xx responses are returned like any other (status 100).
  HttpResponse readResponse(bool head_request = false);

  // "GET path HTTP/1.1\r\nHost: localhost\r\n<extra>\r\n" (extra header lines without the
  // final CRLF, e.g. {"Accept: text/html"}).
  static std::string buildRequest(std::string_view method, std::string_view path,
                                  const std::vector<std::string>& extra_headers = {},
                                  std::string_view body = {});
  // Sends a request and reads its response.
  HttpResponse request(std::string_view method, std::string_view path,
                       const std::vector<std::string>& extra_headers = {},
                       std::string_view body = {});
  HttpResponse get(std::string_view path, const std::vector<std::string>& extra_headers = {});
  HttpResponse head(std::string_view path, const std::vector<std::string>& extra_headers = {});

  // Reads until the peer closes the connection (read returns 0, or a reset) or the timeout
  // passes. Bytes that arrive first are kept (see pending()). True when closed.
  bool isClosedByPeer();
  bool isClosedByPeer(std::chrono::milliseconds timeout);
  // Changes the receive timeout for later reads.
  void setTimeout(std::chrono::milliseconds timeout);
  // Closes now. `reset`: with SO_LINGER 0, so the peer sees a RST instead of a FIN.
  void close(bool reset = false);
  // Bytes received but not yet consumed by a parsed response.
  const std::string& pending() const { return buffer_; }

 private:
  // One recv() into buffer_; >0 bytes read, 0 closed, -1 error (errno kept in last_errno_).
  long readSome();

  uint16_t port_;
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string connect_error_;
  std::string buffer_;  // received, not yet parsed
  bool peer_closed_ = false;
  int last_errno_ = 0;
};

// Opens a connection, sends one GET, reads the response, closes. status 0 on failure.
HttpResponse httpGet(uint16_t port, std::string_view path,
                     const std::vector<std::string>& extra_headers = {});

// 64-bit FNV-1a over the bytes: compares large bodies without printing them.
uint64_t fnv1a(std::string_view bytes);

}  // namespace cachecar::testing
