#include "cachecar/admin/admin_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "cachecar/common/logging.h"
#include "cachecar/http/message.h"
#include "cachecar/http/evbuffer_feed.h"
#include "cachecar/http/parser.h"
#include "cachecar/server/accepted_socket.h"
#include "cachecar/server/socket_address.h"
#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::admin {

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kPurgeUsage =
    "usage: POST /purge?url=<absolute URL, urlencoded> (e.g. "
    "/purge?url=http%3A%2F%2Fshop.example%2Fproducts%2F1) to purge one page, or "
    "POST /purge?cache=<cache name> to invalidate a whole cache (bumps its version); "
    "urlencode the URL, or its own '?' and '&' split the purge request's query\n";
constexpr std::string_view kEndpoints = "endpoints: /healthz /readyz /metrics /purge\n";
// After the response is sent, how long to keep reading (and discarding) what the client still
// sends, so that closing with unread input does not reset the connection before the client has
// read the response.
constexpr std::chrono::milliseconds kLingerTimeout = 2s;
// Request paths are echoed in 404 bodies; never echo an unbounded amount.
constexpr size_t kMaxEchoedPath = 200;

enum class Endpoint { kHealthz, kReadyz, kMetrics, kPurge };

struct Route {
  std::string_view path;
  Endpoint endpoint;
  std::array<std::string_view, 2> methods;  // "" = unused slot
  std::string_view allow;                   // the Allow header of a 405
  bool needs_auth;
};

constexpr std::array<Route, 4> kRoutes{{
    {"/healthz", Endpoint::kHealthz, {"GET", "HEAD"}, "GET, HEAD", false},
    {"/readyz", Endpoint::kReadyz, {"GET", "HEAD"}, "GET, HEAD", false},
    {"/metrics", Endpoint::kMetrics, {"GET", "HEAD"}, "GET, HEAD", true},
    {"/purge", Endpoint::kPurge, {"POST", ""}, "POST", true},
}};

const Route* findRoute(std::string_view path) {
  for (const Route& route : kRoutes) {
    if (route.path == path) {
      return &route;
    }
  }
  return nullptr;
}

bool allowsMethod(const Route& route, std::string_view method) {
  return std::any_of(route.methods.begin(), route.methods.end(),
                     [method](std::string_view m) { return !m.empty() && m == method; });
}

std::string withNewline(std::string text) {
  if (text.empty() || text.back() != '\n') {
    text.push_back('\n');
  }
  return text;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The credentials of "Authorization: Bearer <token>" (scheme case-insensitive, RFC 9110 §11.1);
// nullopt when the header is absent or uses another scheme.
std::optional<std::string_view> bearerCredentials(const http::HeaderMap& headers) {
  const auto value = headers.get("Authorization");
  if (!value) {
    return std::nullopt;
  }
  const std::string_view v = http::trimOws(*value);
  constexpr std::string_view kScheme = "Bearer";
  if (v.size() <= kScheme.size() || !http::equalsIgnoreCase(v.substr(0, kScheme.size()), kScheme) ||
      (v[kScheme.size()] != ' ' && v[kScheme.size()] != '\t')) {
    return std::nullopt;
  }
  return http::trimOws(v.substr(kScheme.size()));
}

}  // namespace

bool isLoopbackPeer(const sockaddr* addr) {
  if (addr == nullptr) {
    return false;
  }
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) {
      return true;
    }
    // A dual-stack socket sees IPv4 peers as ::ffff:a.b.c.d.
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

// One admin request on one connection: read it (bounded in time and size), answer it (perhaps
// after a hook answers), send the answer, close.
class AdminConnection : private http::MessageParser::Sink,
                        public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(AdminServer& server, upstream::BufferEventPtr bev, bool loopback,
                  std::string peer)
      : server_(server),
        bev_(std::move(bev)),
        loopback_(loopback),
        peer_(std::move(peer)),
        parser_(http::MessageParser::Kind::kRequest, *this, server.settings().max_header_bytes,
                kMaxAdminBodyBytes),
        timer_(server.loop(), [this] { onTimeout(); }) {}
  ~AdminConnection() override {
    // libevent 2.1 finishes freeing a bufferevent (and closes its socket) from the loop, which
    // may never run again at shutdown: end the TCP connection now so the client is not left
    // waiting.
    shutdown(bufferevent_getfd(bev_.get()), SHUT_RDWR);
  }
  AdminConnection(const AdminConnection&) = delete;
  AdminConnection& operator=(const AdminConnection&) = delete;

  void start() {
    bufferevent_setcb(bev_.get(), &AdminConnection::onRead, &AdminConnection::onWrite,
                      &AdminConnection::onEvent, this);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    timer_.arm(server_.settings().request_timeout);
  }

 private:
  enum class State {
    kReading,    // the request is arriving
    kWaiting,    // a hook has not answered yet
    kWriting,    // the response is being sent
    kLingering,  // sent and shut down for writing; discarding input until the client closes
    kClosed,
  };

  static void onRead(bufferevent*, void* arg) { static_cast<AdminConnection*>(arg)->readInput(); }

  static void onWrite(bufferevent*, void* arg) {
    auto* self = static_cast<AdminConnection*>(arg);
    if (self->state_ == State::kWriting) {
      self->finishWriting();
    }
  }

  static void onEvent(bufferevent*, short what, void* arg) {
    auto* self = static_cast<AdminConnection*>(arg);
    if ((what & BEV_EVENT_ERROR) != 0) {
      self->closeNow();
      return;
    }
    if ((what & BEV_EVENT_EOF) != 0) {
      self->peer_eof_ = true;
      // A client that half-closes after its request still gets the answer.
      if (self->state_ == State::kReading || self->state_ == State::kLingering) {
        self->closeNow();
      }
    }
  }

  // MessageParser::Sink
  void onHeadComplete() override {
    const http::RequestHead& request = parser_.request();
    if (request.expect_continue && request.framing != http::BodyFraming::kNone) {
      // The body is read (and ignored) before answering; don't make the client wait for it.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      bufferevent_write(bev_.get(), kContinue.data(), kContinue.size());
    }
  }
  void onBody(std::string_view chunk) override { body_bytes_ += chunk.size(); }

  void readInput() {
    evbuffer* input = bufferevent_get_input(bev_.get());
    while (state_ == State::kReading) {
      const std::optional<http::ParseResult> r = http::feedFromBuffer(parser_, input);
      if (!r) {
        break;
      }
      received_any_ = true;
      switch (r->status) {
        case http::ParseStatus::kNeedMore:
          break;
        case http::ParseStatus::kMessageComplete:
          dispatch();
          break;
        case http::ParseStatus::kHeaderTooLarge:
          respond(431, "request header fields too large (limit " +
                           std::to_string(server_.settings().max_header_bytes) + " bytes)\n");
          break;
        case http::ParseStatus::kBodyTooLarge:
          respond(413, "request body too large (limit " + std::to_string(kMaxAdminBodyBytes) +
                           " bytes; admin endpoints ignore bodies)\n");
          break;
        case http::ParseStatus::kError:
          respond(400, "malformed request: " + std::string(parser_.errorReason()) + "\n");
          break;
      }
    }
    if (state_ != State::kReading && state_ != State::kClosed) {
      // One request per connection: whatever follows it is read and dropped.
      evbuffer_drain(input, evbuffer_get_length(input));
    }
  }

  void dispatch() {
    const http::RequestHead& request = parser_.request();
    head_request_ = request.isMethod("HEAD");
    request_line_ = request.method + " " + std::string(request.path());
    const std::string_view path = request.path();
    const Route* route = findRoute(path);
    if (route == nullptr) {
      const std::string echoed(path.substr(0, kMaxEchoedPath));
      respond(404, "not found: " + echoed + "\n" + std::string(kEndpoints));
      return;
    }
    if (!allowsMethod(*route, request.method)) {
      respond(405,
              "method " + request.method + " not allowed on " + std::string(route->path) +
                  "; use " + std::string(route->allow) + "\n",
              kTextPlain, {{"Allow", std::string(route->allow)}});
      return;
    }
    if (route->needs_auth && !authorized(request)) {
      return;
    }
    switch (route->endpoint) {
      case Endpoint::kHealthz:
        respond(200, "ok\n");
        return;
      case Endpoint::kReadyz:
        if (server_.hooks().draining()) {
          respond(503, "draining\n");
          return;
        }
        awaitHook();
        server_.hooks().probeUpstream(whenAnswered<Status>(&AdminConnection::onProbed));
        return;
      case Endpoint::kMetrics:
        respond(200, server_.hooks().renderMetrics(), kPrometheusText);
        return;
      case Endpoint::kPurge:
        purge(request.query());
        return;
    }
  }

  // Answers 401 itself when the request may not proceed.
  bool authorized(const http::RequestHead& request) {
    const std::vector<std::pair<std::string, std::string>> challenge{
        {"WWW-Authenticate", "Bearer"}};
    const std::optional<std::string>& token = server_.settings().token;
    if (!token) {
      if (loopback_) {
        return true;
      }
      respond(401,
              "no admin token is configured, so /metrics and /purge are served to loopback "
              "clients only; to use them from other hosts, set admin.token_env to the name of an "
              "environment variable holding a token and send 'Authorization: Bearer <token>'\n",
              kTextPlain, challenge);
      return false;
    }
    const std::optional<std::string_view> presented = bearerCredentials(request.headers);
    if (!presented) {
      respond(401, "missing bearer token: send 'Authorization: Bearer <token>'\n", kTextPlain,
              challenge);
      return false;
    }
    if (!constantTimeEquals(*token, *presented)) {
      respond(401, "invalid bearer token\n", kTextPlain, challenge);
      return false;
    }
    return true;
  }

  void purge(std::string_view query) {
    auto params = parseQueryString(query);
    if (!params.ok()) {
      respond(400, params.error().message + "\n" + std::string(kPurgeUsage));
      return;
    }
    const std::string* url = nullptr;
    const std::string* cache = nullptr;
    for (const QueryParam& param : *params) {
      const std::string** slot = param.name == "url"     ? &url
                                 : param.name == "cache" ? &cache
                                                         : nullptr;
      if (slot == nullptr) {
        respond(400, "unknown parameter '" + param.name.substr(0, kMaxEchoedPath) + "'\n" +
                         std::string(kPurgeUsage));
        return;
      }
      if (*slot != nullptr) {
        respond(400, "parameter '" + param.name + "' given twice\n" + std::string(kPurgeUsage));
        return;
      }
      *slot = &param.value;
    }
    if (url == nullptr && cache == nullptr) {
      // A form-encoded body is the usual mistake (curl --data-urlencode without -G).
      const std::string hint =
          body_bytes_ > 0 ? " (the request body is ignored; with curl, add -G to "
                            "--data-urlencode so the parameter goes into the query string)"
                          : "";
      respond(400, "nothing to purge: give url or cache in the query string" + hint + "\n" +
                       std::string(kPurgeUsage));
      return;
    }
    if (url != nullptr && cache != nullptr) {
      respond(400, "give either url or cache, not both\n" + std::string(kPurgeUsage));
      return;
    }
    if (url != nullptr) {
      auto target = parsePurgeUrl(*url);
      if (!target.ok()) {
        respond(400, target.error().message + "\n");
        return;
      }
      awaitHook();
      server_.hooks().purgeUrl(*target,
                               whenAnswered<Result<std::string>>(&AdminConnection::onPurged));
      return;
    }
    if (cache->empty()) {
      respond(400, "cache name is empty\n" + std::string(kPurgeUsage));
      return;
    }
    awaitHook();
    server_.hooks().bumpCacheVersion(
        *cache, whenAnswered<Result<std::string>>(&AdminConnection::onCacheBumped));
  }

  void awaitHook() {
    state_ = State::kWaiting;
    timer_.arm(server_.settings().response_timeout);
  }

  // Wraps a hook's answer: dropped when the connection is gone, timed out, or already answered.
  template <typename Arg>
  std::function<void(Arg)> whenAnswered(void (AdminConnection::*handler)(Arg)) {
    std::weak_ptr<AdminConnection> weak = weak_from_this();
    return [weak, handler](Arg answer) {
      const std::shared_ptr<AdminConnection> self = weak.lock();
      if (!self || self->state_ != State::kWaiting) {
        return;
      }
      assert(self->server_.loop().isInLoopThread());
      (self.get()->*handler)(std::move(answer));
    };
  }

  void onProbed(Status status) {
    if (status.ok()) {
      respond(200, "ready\n");
    } else {
      respond(503, withNewline("upstream unreachable: " + status.error().message));
    }
  }

  void onPurged(Result<std::string> summary) {
    if (summary.ok()) {
      respond(200, withNewline(std::move(summary).value()));
    } else {
      respond(503, withNewline("purge failed: " + summary.error().message));
    }
  }

  void onCacheBumped(Result<std::string> summary) {
    if (summary.ok()) {
      respond(200, withNewline(std::move(summary).value()));
    } else if (startsWith(summary.error().message, "unknown cache")) {
      respond(404, withNewline(summary.error().message));
    } else {
      respond(503, withNewline("cache version bump failed: " + summary.error().message));
    }
  }

  void respond(int status, const std::string& body, std::string_view content_type = kTextPlain,
               const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) {
    if (state_ != State::kReading && state_ != State::kWaiting) {
      return;
    }
    state_ = State::kWriting;
    const bool audit = request_line_.find("/purge") != std::string::npos;
    log(status >= 400 || audit ? LogLevel::kInfo : LogLevel::kDebug, "admin ", peer_, ": ",
        request_line_.empty() ? std::string("-") : request_line_, " -> ", status, " ",
        http::trimOws(std::string_view(body).substr(0, body.find('\n'))));
    std::string out;
    out.reserve(256 + body.size());
    out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
    out.append(http::reasonPhrase(status)).append("\r\n");
    out.append("Content-Type: ").append(content_type).append("\r\n");
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    out.append("Cache-Control: no-store\r\nConnection: close\r\n");
    for (const auto& [name, value] : extra_headers) {
      out.append(name).append(": ").append(value).append("\r\n");
    }
    out.append("\r\n");
    if (!head_request_) {
      out.append(body);
    }
    // Never wait forever for a client that does not read.
    timer_.arm(server_.settings().request_timeout);
    bufferevent_write(bev_.get(), out.data(), out.size());
  }

  void finishWriting() {
    // Tell the client we are done, then read until it closes too (or the linger time passes):
    // closing with its bytes unread would reset the connection and could destroy the answer.
    shutdown(bufferevent_getfd(bev_.get()), SHUT_WR);
    if (peer_eof_) {
      closeNow();
      return;
    }
    state_ = State::kLingering;
    timer_.arm(std::min(kLingerTimeout, server_.settings().request_timeout));
  }

  void onTimeout() {
    switch (state_) {
      case State::kReading:
        if (received_any_) {
          respond(408, "request not complete within " +
                           std::to_string(server_.settings().request_timeout.count()) + " ms\n");
        } else {
          log(LogLevel::kDebug, "admin ", peer_, ": no request within the timeout, closing");
          closeNow();
        }
        return;
      case State::kWaiting:
        respond(503, "no answer from the proxy within " +
                         std::to_string(server_.settings().response_timeout.count()) + " ms\n");
        return;
      case State::kWriting:
      case State::kLingering:
      case State::kClosed:
        closeNow();
        return;
    }
  }

  void closeNow() {
    if (state_ == State::kClosed) {
      return;
    }
    state_ = State::kClosed;
    timer_.cancel();
    bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    bufferevent_setcb(bev_.get(), nullptr, nullptr, nullptr, nullptr);
    server_.closeConnection(this);
  }

  AdminServer& server_;
  upstream::BufferEventPtr bev_;
  bool loopback_;
  std::string peer_;
  http::MessageParser parser_;
  event::Timer timer_;
  State state_ = State::kReading;
  std::string request_line_;  // "POST /purge", for the log
  bool head_request_ = false;
  bool received_any_ = false;
  bool peer_eof_ = false;
  uint64_t body_bytes_ = 0;  // read and ignored
};

AdminServer::AdminServer(event::EventLoop& loop, AdminHooks& hooks, AdminServerSettings settings)
    : loop_(loop), hooks_(hooks), settings_(std::move(settings)) {}

AdminServer::~AdminServer() {
  listener_.reset();
  // Hook answers and posted closes hold weak references: once these go, they do nothing.
  connections_.clear();
}

Status AdminServer::listen(const config::HostPort& address) {
  if (listener_) {
    return Error{"admin: already listening on " + address_text_};
  }
  auto resolved = server::resolveAddress(address, /*passive=*/true);
  if (!resolved.ok()) {
    return Error{"admin: " + resolved.error().message};
  }
  // No SO_REUSEPORT here: a second process on the same admin port must fail to start.
  listener_.reset(
      evconnlistener_new_bind(loop_.base(), &AdminServer::onAccept, this,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 64,
                              resolved->get(), static_cast<int>(resolved->length)));
  if (!listener_) {
    return Error{"admin: cannot listen on " + address.toString() + ": " + std::strerror(errno)};
  }
  evconnlistener_set_error_cb(listener_.get(), &AdminServer::onAcceptError);
  address_text_ = address.toString();
  return Ok{};
}

uint16_t AdminServer::boundPort() const {
  if (!listener_) {
    return 0;
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(evconnlistener_get_fd(listener_.get()), reinterpret_cast<sockaddr*>(&addr),
                  &len) != 0) {
    return 0;
  }
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return 0;
}

void AdminServer::closeConnection(AdminConnection* conn) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) {
    return;
  }
  // The lock fails once the server (which holds the only lasting reference) is gone, so the
  // posted task never touches a destroyed server.
  std::weak_ptr<AdminConnection> weak = it->second;
  loop_.post([this, weak] {
    if (const std::shared_ptr<AdminConnection> c = weak.lock()) {
      connections_.erase(c.get());
    }
  });
}

void AdminServer::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
  static_cast<AdminServer*>(arg)->accept(fd, addr);
}

void AdminServer::accept(evutil_socket_t fd, const sockaddr* addr) {
  if (connections_.size() >= settings_.max_connections) {
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 27\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        "too many admin connections\n";
    server::refuseAccepted(fd, kBusy);
    log(LogLevel::kWarn, "admin: refused a connection from ", server::peerAddressOf(addr), ": ",
        connections_.size(), " open already");
    return;
  }
  upstream::BufferEventPtr bev = server::adoptAccepted(loop_.base(), fd);
  if (!bev) {
    return;
  }
  const bool loopback = !peers_remote_for_test_ && isLoopbackPeer(addr);
  auto conn =
      std::make_shared<AdminConnection>(*this, std::move(bev), loopback, server::peerAddressOf(addr));
  connections_.emplace(conn.get(), conn);
  conn->start();
}

void AdminServer::onAcceptError(evconnlistener*, void*) {
  // EMFILE and friends: log and keep serving the connections we have.
  log(LogLevel::kWarn, "admin: accept failed: ", std::strerror(errno));
}

}  // namespace cachecar::admin
