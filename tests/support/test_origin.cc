#include "support/test_origin.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cachecar::testing {

namespace {

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// What the llhttp callbacks fill while one request is parsed.
struct RequestParse {
  OriginRequest request;
  std::string field;
  std::string value;
  bool complete = false;
  bool keep_alive = true;
  std::function<void()> on_expect_continue;
};

RequestParse& stateOf(llhttp_t* p) { return *static_cast<RequestParse*>(p->data); }

int onUrl(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).request.target.append(at, len);
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
  RequestParse& st = stateOf(p);
  st.request.headers.emplace_back(std::move(st.field), std::move(st.value));
  st.field.clear();
  st.value.clear();
  return 0;
}

int onHeadersComplete(llhttp_t* p) {
  RequestParse& st = stateOf(p);
  st.request.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
  st.request.version_minor = llhttp_get_http_minor(p);
  auto expect = findHeader(st.request.headers, "Expect");
  if (expect && headerNameEquals(*expect, "100-continue") && st.on_expect_continue) {
    st.on_expect_continue();
  }
  return 0;
}

int onBody(llhttp_t* p, const char* at, size_t len) {
  stateOf(p).request.body.append(at, len);
  return 0;
}

int onMessageComplete(llhttp_t* p) {
  RequestParse& st = stateOf(p);
  st.complete = true;
  st.keep_alive = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;  // one request at a time: the rest of the buffer waits its turn
}

llhttp_settings_t makeSettings() {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_url = onUrl;
  settings.on_header_field = onHeaderField;
  settings.on_header_value = onHeaderValue;
  settings.on_header_value_complete = onHeaderValueComplete;
  settings.on_headers_complete = onHeadersComplete;
  settings.on_body = onBody;
  settings.on_message_complete = onMessageComplete;
  return settings;
}

std::string hex(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%zx", n);
  return buf;
}

}  // namespace

TestOrigin::TestOrigin() {
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    return;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    start_error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // the kernel picks a free port: no race with other tests
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 128) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    start_error_ = std::string("bind/listen: ") + std::strerror(errno);
    ::close(fd);
    return;
  }
  listen_fd_ = fd;
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { acceptLoop(); });
}

TestOrigin::~TestOrigin() {
  stop();
  for (int& fd : stop_pipe_) {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
}

void TestOrigin::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  if (stop_pipe_[1] >= 0) {
    // Never drained: the read end stays readable and wakes every poll() for good.
    char byte = 1;
    ssize_t ignored = ::write(stop_pipe_[1], &byte, 1);
    (void)ignored;
  }
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    threads.swap(connection_threads_);
  }
  for (std::thread& t : threads) {
    t.join();
  }
}

void TestOrigin::handle(std::string path, OriginHandler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  routes_.push_back(Route{std::move(path), false, std::move(handler)});
}

void TestOrigin::handlePrefix(std::string prefix, OriginHandler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  routes_.push_back(Route{std::move(prefix), true, std::move(handler)});
}

void TestOrigin::setResponse(std::string path, OriginResponse response) {
  handle(std::move(path), [response](const OriginRequest&) { return response; });
}

OriginHandler TestOrigin::findHandler(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Route* best = nullptr;
  // Later registrations replace earlier ones for the same path.
  for (auto it = routes_.rbegin(); it != routes_.rend(); ++it) {
    if (!it->prefix && it->path == path) {
      return it->handler;
    }
  }
  for (auto it = routes_.rbegin(); it != routes_.rend(); ++it) {
    if (it->prefix && path.substr(0, it->path.size()) == it->path &&
        (best == nullptr || it->path.size() > best->path.size())) {
      best = &*it;
    }
  }
  return best != nullptr ? best->handler : OriginHandler{};
}

int TestOrigin::requestCount(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = path_counts_.find(path);
  return it == path_counts_.end() ? 0 : it->second;
}

int TestOrigin::targetCount(std::string_view target) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = target_counts_.find(target);
  return it == target_counts_.end() ? 0 : it->second;
}

int TestOrigin::totalRequests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(all_requests_.size());
}

std::optional<OriginRequest> TestOrigin::lastRequest(std::string_view path) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = last_requests_.find(path);
  if (it == last_requests_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::vector<OriginRequest> TestOrigin::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return all_requests_;
}

int TestOrigin::connectionCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return connections_accepted_;
}

int TestOrigin::openConnections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return connections_open_;
}

bool TestOrigin::waitForRequests(std::string_view path, int count,
                                 std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    auto it = path_counts_.find(path);
    return it != path_counts_.end() && it->second >= count;
  });
}

bool TestOrigin::waitForNoOpenConnections(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return connections_open_ == 0; });
}

void TestOrigin::record(OriginRequest& request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    request.sequence = all_requests_.size() + 1;
    OriginRequest copy = request;
    ++path_counts_[copy.path];
    ++target_counts_[copy.target];
    last_requests_[copy.path] = copy;
    all_requests_.push_back(std::move(copy));
  }
  changed_.notify_all();
}

void TestOrigin::connectionClosed() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --connections_open_;
  }
  changed_.notify_all();
}

bool TestOrigin::pause(std::chrono::milliseconds d) const {
  if (d.count() <= 0) {
    return !stopping_;
  }
  pollfd p{stop_pipe_[0], POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(d.count())) == 0;
}

bool TestOrigin::sendAll(int fd, std::string_view bytes) const {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_pipe_[0], POLLIN, 0}};
      // The proxy may legitimately stop reading for a while; 10 s is far past any test.
      int ready = ::poll(fds, 2, 10000);
      if (ready <= 0 || (fds[1].revents & POLLIN) != 0) {
        return false;
      }
      continue;
    }
    return false;
  }
  return true;
}

void TestOrigin::acceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      return;
    }
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t id = static_cast<uint64_t>(++connections_accepted_);
    ++connections_open_;
    connection_threads_.emplace_back([this, fd, id] { serveConnection(fd, id); });
  }
}

void TestOrigin::serveConnection(int fd, uint64_t connection_id) {
  const llhttp_settings_t settings = makeSettings();
  std::string buffer;
  bool open = true;
  while (open && !stopping_) {
    RequestParse state;
    state.request.connection_id = connection_id;
    state.on_expect_continue = [this, fd] { sendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n"); };
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    parser.data = &state;

    while (open && !state.complete) {
      if (!buffer.empty()) {
        const char* data = buffer.data();
        llhttp_errno_t err = llhttp_execute(&parser, data, buffer.size());
        if (err == HPE_OK) {
          buffer.clear();
        } else if (err == HPE_PAUSED && state.complete) {
          const char* pos = llhttp_get_error_pos(&parser);
          buffer.erase(0, pos != nullptr ? static_cast<size_t>(pos - data) : buffer.size());
          break;
        } else {
          sendAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
          open = false;
          break;
        }
        continue;
      }
      pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) {
          continue;
        }
        open = false;
        break;
      }
      if ((fds[1].revents & POLLIN) != 0) {
        open = false;
        break;
      }
      char chunk[65536];
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        continue;
      }
      if (n <= 0) {
        open = false;
        break;
      }
      buffer.append(chunk, static_cast<size_t>(n));
    }
    if (!open || !state.complete) {
      break;
    }
    OriginRequest& request = state.request;
    size_t q = request.target.find('?');
    request.path = request.target.substr(0, q);
    request.query = q == std::string::npos ? "" : request.target.substr(q + 1);
    record(request);
    open = respond(fd, request, state.keep_alive);
  }
  ::close(fd);
  connectionClosed();
}

bool TestOrigin::respond(int fd, const OriginRequest& request, bool keep_alive) {
  OriginHandler handler = findHandler(request.path);
  OriginResponse r;
  if (handler) {
    r = handler(request);
  } else {
    r = OriginResponse::text("no handler for " + request.path);
    r.status = 404;
  }
  if (!pause(r.delay)) {
    return false;
  }
  if (r.close_without_response) {
    return false;
  }
  const bool head = request.method == "HEAD";
  const bool no_body_status = r.status < 200 || r.status == 204 || r.status == 304;
  const bool chunked = !r.chunks.empty() && !findHeader(r.headers, "Transfer-Encoding");
  const bool close =
      r.close_after || r.until_close || r.truncate_body_at.has_value() || !keep_alive;

  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " ";
  out += r.reason.empty() ? std::string(reasonPhrase(r.status)) : r.reason;
  out += "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name + ": " + value + "\r\n";
  }
  if (!no_body_status && !findHeader(r.headers, "Content-Length") &&
      !findHeader(r.headers, "Transfer-Encoding")) {
    if (chunked) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (!r.until_close) {
      out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    }
  }
  if (close && !findHeader(r.headers, "Connection")) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (!sendAll(fd, out)) {
    return false;
  }
  if (head || no_body_status) {
    return !close;
  }
  if (chunked) {
    for (size_t i = 0; i < r.chunks.size(); ++i) {
      if (i > 0 && !pause(r.pace)) {
        return false;
      }
      const std::string& c = r.chunks[i];
      if (c.empty()) {
        continue;  // an empty chunk would end the body early
      }
      if (!sendAll(fd, hex(c.size()) + "\r\n" + c + "\r\n")) {
        return false;
      }
    }
    if (!sendAll(fd, "0\r\n\r\n")) {
      return false;
    }
    return !close;
  }
  std::string_view body = r.body;
  if (r.truncate_body_at) {
    body = body.substr(0, *r.truncate_body_at);
  }
  const size_t piece = r.piece_size > 0 ? r.piece_size : std::max<size_t>(body.size(), 1);
  for (size_t off = 0; off < body.size(); off += piece) {
    if (off > 0 && !pause(r.pace)) {
      return false;
    }
    if (!sendAll(fd, body.substr(off, piece))) {
      return false;
    }
  }
  return !close;
}

}  // namespace cachecar::testing
