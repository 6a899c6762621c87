#include "support/http_client.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cachecar::testing {

namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

timeval toTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

// What the llhttp callbacks fill while one response is parsed.
struct ParseState {
  HttpResponse* response = nullptr;
  bool head_request = false;
  bool complete = false;
  std::string field;
  std::string value;
};

ParseState& stateOf(llhttp_t* p) { return *static_cast<ParseState*>(p->data); }

int onStatus(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).response->reason.append(at, len);
  return 0;
}

int onHeaderField(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).field.append(at, len);
  return 0;
}

int onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).value.append(at, len);
  return 0;
}

int onHeaderValueComplete(llhttp_t* p) {
  ParseState& st = stateOf(p);
  st.response->headers.emplace_back(std::move(st.field), std::move(st.value));
  st.field.clear();
  st.value.clear();
  return 0;
}

int onHeadersComplete(llhttp_t* p) {
  ParseState& st = stateOf(p);
  st.response->status = llhttp_get_status_code(p);
  st.response->chunked = (p->flags & F_CHUNKED) != 0;
  if (st.head_request) {
    return 1;  // a response to HEAD carries no body whatever its headers say
  }
  st.response->until_close = llhttp_message_needs_eof(p) != 0;
  return 0;
}

int onBody(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).response->body.append(at, len);
  return 0;
}

int onMessageComplete(llhttp_t* p) {
  ParseState& st = stateOf(p);
  st.complete = true;
  st.response->keep_alive = llhttp_should_keep_alive(p) != 0;
  // Stop at the message boundary: what follows belongs to the next response.
  return HPE_PAUSED;
}

llhttp_settings_t makeSettings() {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_status = onStatus;
  settings.on_header_field = onHeaderField;
  settings.on_header_value = onHeaderValue;
  settings.on_header_value_complete = onHeaderValueComplete;
  settings.on_headers_complete = onHeadersComplete;
  settings.on_body = onBody;
  settings.on_message_complete = onMessageComplete;
  return settings;
}

HttpResponse failed(HttpResponse partial, std::string why) {
  partial.error = std::move(why);
  partial.status = 0;
  return partial;
}

}  // namespace

bool headerNameEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> findHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (headerNameEquals(n, name)) {
      return v;
    }
  }
  return std::nullopt;
}

size_t countHeader(const HeaderList& headers, std::string_view name) {
  size_t count = 0;
  for (const auto& [n, v] : headers) {
    if (headerNameEquals(n, name)) {
      ++count;
    }
  }
  return count;
}

std::string HttpResponse::headerOr(std::string_view name, std::string_view fallback) const {
  auto value = header(name);
  return value ? *value : std::string(fallback);
}

std::string HttpResponse::describe() const {
  std::string out = "status=" + std::to_string(status);
  if (!error.empty()) {
    out += " error=\"" + error + "\"";
  }
  for (const auto& [n, v] : headers) {
    out += " [" + n + ": " + v + "]";
  }
  out += " body(" + std::to_string(body.size()) + ")=\"";
  out += body.size() <= 200 ? body : body.substr(0, 200) + "...";
  out += "\"";
  return out;
}

HttpClient::HttpClient(uint16_t port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    connect_error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    connect_error_ = "connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setTimeout(timeout);
}

HttpClient::~HttpClient() { close(); }

void HttpClient::setTimeout(std::chrono::milliseconds timeout) {
  timeout_ = timeout;
  if (fd_ < 0) {
    return;
  }
  timeval tv = toTimeval(timeout);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // Sends are bounded too: a peer that stops reading must not block a test forever.
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void HttpClient::close(bool reset) {
  if (fd_ < 0) {
    return;
  }
  if (reset) {
    linger lg{};
    lg.l_onoff = 1;
    lg.l_linger = 0;
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  ::close(fd_);
  fd_ = -1;
}

bool HttpClient::sendRaw(std::string_view bytes) {
  if (fd_ < 0) {
    return false;
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      last_errno_ = errno;
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

long HttpClient::readSome() {
  if (fd_ < 0) {
    last_errno_ = EBADF;
    return -1;
  }
  char chunk[65536];
  while (true) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      last_errno_ = errno;
      return -1;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    return n;
  }
}

HttpResponse HttpClient::readResponse(bool head_request) {
  HttpResponse response;
  ParseState state;
  state.response = &response;
  state.head_request = head_request;
  const llhttp_settings_t settings = makeSettings();
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  parser.data = &state;
  const auto deadline = std::chrono::steady_clock::now() + timeout_;

  while (true) {
    if (!buffer_.empty()) {
      const char* data = buffer_.data();
      llhttp_errno_t err = llhttp_execute(&parser, data, buffer_.size());
      if (err == HPE_OK) {
        buffer_.clear();
      } else if (err == HPE_PAUSED && state.complete) {
        const char* pos = llhttp_get_error_pos(&parser);
        size_t consumed = pos != nullptr ? static_cast<size_t>(pos - data) : buffer_.size();
        buffer_.erase(0, consumed);
        return response;
      } else {
        std::string why =
            std::string("parse error ") + llhttp_errno_name(err) + ": " +
            (llhttp_get_error_reason(&parser) ? llhttp_get_error_reason(&parser) : "");
        buffer_.clear();
        return failed(std::move(response), why);
      }
    }
    if (peer_closed_) {
      llhttp_errno_t err = llhttp_finish(&parser);
      if (state.complete && (err == HPE_OK || err == HPE_PAUSED)) {
        return response;
      }
      return failed(std::move(response), response.status == 0
                                             ? "connection closed before a response"
                                             : "connection closed in the middle of the response (" +
                                                   std::to_string(response.body.size()) +
                                                   " body bytes read)");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return failed(std::move(response), "timed out waiting for the response");
    }
    long n = readSome();
    if (n == 0) {
      peer_closed_ = true;
    } else if (n < 0) {
      if (last_errno_ == ECONNRESET) {
        peer_closed_ = true;
        continue;
      }
      const bool timed_out = last_errno_ == EAGAIN || last_errno_ == EWOULDBLOCK;
      return failed(std::move(response),
                    timed_out ? "timed out waiting for the response (" +
                                    std::to_string(response.body.size()) + " body bytes read)"
                              : std::string("recv: ") + std::strerror(last_errno_));
    }
  }
}

std::string HttpClient::buildRequest(std::string_view method, std::string_view path,
                                     const std::vector<std::string>& extra_headers,
                                     std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(path).append(" HTTP/1.1\r\n");
  bool has_host = false;
  bool has_length = false;
  for (const std::string& h : extra_headers) {
    std::string_view name = std::string_view(h).substr(0, h.find(':'));
    has_host = has_host || headerNameEquals(name, "Host");
    has_length = has_length || headerNameEquals(name, "Content-Length") ||
                 headerNameEquals(name, "Transfer-Encoding");
  }
  if (!has_host) {
    out += "Host: localhost\r\n";
  }
  for (const std::string& h : extra_headers) {
    out += h;
    out += "\r\n";
  }
  if (!body.empty() && !has_length) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out.append(body);
  return out;
}

HttpResponse HttpClient::request(std::string_view method, std::string_view path,
                                 const std::vector<std::string>& extra_headers,
                                 std::string_view body) {
  if (fd_ < 0) {
    return failed(HttpResponse{}, connect_error_.empty() ? "not connected" : connect_error_);
  }
  if (!sendRaw(buildRequest(method, path, extra_headers, body))) {
    // The peer may have answered and closed already (e.g. an early error): still try to read.
    HttpResponse r = readResponse(method == "HEAD");
    if (!r.ok()) {
      r.error = std::string("send failed (") + std::strerror(last_errno_) + "), then " + r.error;
    }
    return r;
  }
  return readResponse(method == "HEAD");
}

HttpResponse HttpClient::get(std::string_view path, const std::vector<std::string>& extra_headers) {
  return request("GET", path, extra_headers);
}

HttpResponse HttpClient::head(std::string_view path,
                              const std::vector<std::string>& extra_headers) {
  return request("HEAD", path, extra_headers);
}

bool HttpClient::isClosedByPeer() { return isClosedByPeer(timeout_); }

bool HttpClient::isClosedByPeer(std::chrono::milliseconds timeout) {
  if (peer_closed_) {
    return true;
  }
  if (fd_ < 0) {
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    timeval tv = toTimeval(std::max(left, std::chrono::milliseconds(1)));
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    long n = readSome();
    if (n == 0 || (n < 0 && last_errno_ == ECONNRESET)) {
      peer_closed_ = true;
      break;
    }
    if (n < 0) {
      break;  // timeout
    }
  }
  setTimeout(timeout_);
  return peer_closed_;
}

HttpResponse httpGet(uint16_t port, std::string_view path,
                     const std::vector<std::string>& extra_headers) {
  HttpClient client(port);
  return client.get(path, extra_headers);
}

uint64_t fnv1a(std::string_view bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace cachecar::testing
