#include "cachecar/server/proxy_exchange.h"

#include <event2/buffer.h>

#include <charconv>

#include "cachecar/cache/cacheability.h"
#include "cachecar/cache/freshness.h"
#include "cachecar/common/logging.h"
#include "cachecar/http/hop_by_hop.h"
#include "cachecar/http/serializer.h"
#include "cachecar/server/client_connection.h"
#include "cachecar/server/worker.h"

namespace cachecar::server {

namespace {

constexpr std::string_view kVia = "1.1 cachecar";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

const config::KeySettings& defaultKeySettings() {
  static const config::KeySettings settings;
  return settings;
}

void appendDecimal(std::string& out, int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  (void)ec;
  out.append(buf, end);
}

// evbuffer_add_reference cleanup: drops the reference that kept the stored bytes alive while
// the kernel sent them.
void releaseBlob(const void*, size_t, void* extra) { delete static_cast<storage::Blob*>(extra); }

// Statuses whose responses never carry a body (RFC 9110 §6.4.1).
bool statusHasNoBody(int status) {
  return status == 204 || status == 304 || (status >= 100 && status < 200);
}

// A Vary response may be stored only when every field it varies on is part of the route's key;
// full variant handling comes with the RFC 9111 work. Anything else would risk serving one
// variant (say, gzip) to a client that asked for another.
bool varyCoveredByKey(const http::HeaderMap& headers, const config::KeySettings& key) {
  auto vary = headers.getCombined("Vary");
  if (!vary) {
    return true;
  }
  std::string_view rest = *vary;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view field = http::trimOws(rest.substr(0, comma));
    if (!field.empty()) {
      bool covered = false;
      for (const auto& name : key.headers) {
        covered = covered || http::equalsIgnoreCase(name, field);
      }
      if (!covered) {
        return false;
      }
    }
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace

std::string_view toString(CacheStatus status) {
  switch (status) {
    case CacheStatus::kHit:
      return "HIT";
    case CacheStatus::kMiss:
      return "MISS";
    case CacheStatus::kBypass:
      return "BYPASS";
    case CacheStatus::kError:
      return "ERROR";
  }
  return "BYPASS";
}

ProxyExchange::ProxyExchange(Worker& worker, ClientConnection& client, http::RequestHead& request)
    : worker_(worker),
      client_(&client),
      request_(std::move(request)),
      request_time_(worker.now()) {
  head_request_ = request_.method == "HEAD";
  request_has_body_ = request_.framing != http::BodyFraming::kNone;
}

ProxyExchange::~ProxyExchange() { releaseUpstream(); }

// --- recv ---------------------------------------------------------------------------------

void ProxyExchange::start() {
  auto self = shared_from_this();
  if (request_.expect_continue && request_has_body_) {
    // Ask for the body at once: the app sees a plain request (Expect is not forwarded).
    evbuffer_add(client_->output(), kContinue.data(), kContinue.size());
  }
  route_ = worker_.settings().routes().match(request_.path());
  if (route_ != nullptr && route_->cache_off) {
    fetch();
    return;
  }
  const cache::RequestVerdict verdict = cache::judgeRequest(request_);
  if (!verdict.cacheable || request_has_body_) {
    fetch();
    return;
  }
  cache_ = worker_.cache(route_ != nullptr ? route_->cache : std::string("default"));
  if (cache_ == nullptr) {
    fetch();
    return;
  }
  const config::KeySettings& key_settings = route_ != nullptr ? route_->key : defaultKeySettings();
  key_ = cache::buildCacheKey(cache_->settings->key_prefix, cache_->settings->version,
                              key_settings, request_);
  status_ = CacheStatus::kMiss;
  lookup();
}

void ProxyExchange::onRequestBody(std::string_view chunk) {
  std::string framed;
  std::string_view data = chunk;
  if (request_.framing == http::BodyFraming::kChunked) {
    http::appendChunkHeader(framed, chunk.size());
    framed.append(chunk);
    framed.append(http::kChunkTrailer);
    data = framed;
  }
  if (upstream_) {
    evbuffer_add(upstream_->output(), data.data(), data.size());
  } else {
    pending_body_.append(data);
  }
}

void ProxyExchange::onRequestComplete() {
  request_complete_ = true;
  if (request_.framing != http::BodyFraming::kChunked) {
    return;
  }
  if (upstream_) {
    evbuffer_add(upstream_->output(), http::kLastChunk.data(), http::kLastChunk.size());
  } else {
    pending_body_.append(http::kLastChunk);
  }
}

// --- lookup -------------------------------------------------------------------------------

void ProxyExchange::lookup() {
  std::weak_ptr<ProxyExchange> weak = weak_from_this();
  cache_->backend->get(key_.storage_key, [weak](storage::GetResult result) {
    if (auto self = weak.lock()) {
      self->onLookup(std::move(result));
    }
  });
}

void ProxyExchange::onLookup(storage::GetResult result) {
  if (client_ == nullptr || done_) {
    return;
  }
  if (result.status == storage::StorageStatus::kOk && deliverHit(result.blob)) {
    return;
  }
  if (result.status != storage::StorageStatus::kOk &&
      result.status != storage::StorageStatus::kNotFound) {
    log(LogLevel::kDebug, "cache ", cache_->settings->name, " lookup failed (",
        storage::toString(result.status), "): going to the app");
  }
  fetch();
}

// --- hit -> deliver -----------------------------------------------------------------------

bool ProxyExchange::deliverHit(const storage::Blob& blob) {
  cache::DecodeError error = cache::DecodeError::kNone;
  const auto entry = cache::decodeEntry(*blob, !cache_->backend->inProcess(), &error);
  if (!entry) {
    log(LogLevel::kWarn, "cache ", cache_->settings->name, ": dropping unreadable entry ",
        key_.storage_key, " (", cache::toString(error), ")");
    cache_->backend->remove(key_.storage_key, [](storage::StorageStatus) {});
    return false;
  }
  if (entry->identity != key_.identity) {
    return false;  // a hash collision or a foreign value: a miss, never the wrong page
  }
  const auto age = cache::currentAge(
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::milliseconds(entry->meta.corrected_initial_age_ms)),
      fromUnixMillis(entry->meta.response_time_ms), worker_.now());
  if (std::chrono::duration_cast<std::chrono::milliseconds>(age).count() >=
      entry->meta.freshness_lifetime_ms) {
    return false;  // stale: fetch a fresh copy
  }
  status_ = CacheStatus::kHit;
  const bool close = !request_.keep_alive;
  std::string head;
  head.reserve(entry->head.size() + 96);
  head.append(entry->head);
  head.append("Age: ");
  appendDecimal(head, age.count());
  head.append("\r\nX-Cache: HIT\r\nVia: ");
  head.append(kVia);
  head.append("\r\n");
  if (close) {
    head.append("Connection: close\r\n");
  } else if (request_.version_minor == 0) {
    head.append("Connection: keep-alive\r\n");
  }
  head.append("\r\n");
  evbuffer* out = client_->output();
  evbuffer_add(out, head.data(), head.size());
  if (!head_request_ && !entry->body.empty()) {
    // The body goes out by reference to the stored bytes: no copy per hit.
    evbuffer_add_reference(out, entry->body.data(), entry->body.size(), &releaseBlob,
                           new storage::Blob(blob));
  }
  finish(close);
  return true;
}

// --- miss / pass -> fetch ----------------------------------------------------------------

void ProxyExchange::fetch() {
  fetching_ = true;
  http::HeaderMap headers = request_.headers;
  http::removeHopByHop(headers);
  headers.remove("Expect");
  if (!headers.has("Host")) {
    headers.add("Host", worker_.settings().config().upstream.address.toString());
  }
  if (auto forwarded_for = headers.getCombined("X-Forwarded-For")) {
    headers.set("X-Forwarded-For", *forwarded_for + ", " + client_->peerAddress());
  } else {
    headers.add("X-Forwarded-For", client_->peerAddress());
  }
  headers.set("X-Forwarded-Proto", "http");
  if (!headers.has("X-Forwarded-Host")) {
    if (auto host = headers.get("Host")) {
      headers.add("X-Forwarded-Host", std::string(*host));
    }
  }
  headers.add("Via", std::string(kVia));
  if (request_.framing == http::BodyFraming::kChunked) {
    headers.add("Transfer-Encoding", "chunked");
  }
  upstream_request_head_.clear();
  upstream_request_head_.reserve(512);
  upstream_request_head_.append(request_.method);
  upstream_request_head_.push_back(' ');
  upstream_request_head_.append(request_.target);
  upstream_request_head_.append(" HTTP/1.1\r\n");
  for (const auto& h : headers.all()) {
    http::appendHeaderLine(upstream_request_head_, h.name, h.value);
  }
  upstream_request_head_.append("\r\n");
  sendUpstreamRequest();
}

void ProxyExchange::sendUpstreamRequest() {
  upstream_ = worker_.upstreamPool().acquire();
  if (!upstream_) {
    respondError(502, "cannot connect to the app");
    return;
  }
  upstream_->begin(this, head_request_);
  evbuffer* out = upstream_->output();
  evbuffer_add(out, upstream_request_head_.data(), upstream_request_head_.size());
  if (!pending_body_.empty()) {
    evbuffer_add(out, pending_body_.data(), pending_body_.size());
    pending_body_.clear();
  }
}

void ProxyExchange::onUpstreamHead(http::ResponseHead& head) {
  auto self = shared_from_this();
  response_time_ = worker_.now();
  if (client_ == nullptr) {
    return;
  }
  if (status_ == CacheStatus::kMiss && !head_request_) {
    decideStore(head);
  }
  writeResponseHead(head);
}

void ProxyExchange::decideStore(const http::ResponseHead& head) {
  std::optional<std::chrono::milliseconds> fallback;
  if (route_ != nullptr) {
    fallback = route_->ttl ? *route_->ttl : cache_->settings->timeout;
  }
  const cache::StoreVerdict verdict = cache::judgeResponse(request_, head, fallback);
  if (!verdict.store) {
    return;
  }
  const config::KeySettings& key_settings = route_ != nullptr ? route_->key : defaultKeySettings();
  if (!varyCoveredByKey(head.headers, key_settings)) {
    return;
  }
  max_object_bytes_ = cache_->settings->max_object_bytes;
  if (head.framing == http::BodyFraming::kContentLength && head.content_length > max_object_bytes_) {
    return;
  }
  storing_ = true;
  freshness_ = verdict.freshness;
  initial_age_ = cache::correctedInitialAge(head, request_time_, response_time_);
  // The stored head: end-to-end fields only; Age is recomputed on every hit and
  // Content-Length is added once the body is complete.
  http::ResponseHead stored;
  stored.status = head.status;
  stored.reason = head.reason;
  stored.headers = head.headers;
  http::removeHopByHop(stored.headers);
  stored.headers.remove("Content-Length");
  stored.headers.remove("Age");
  stored_head_.clear();
  http::appendResponseHeadOpen(stored_head_, stored);
  if (head.framing == http::BodyFraming::kContentLength) {
    captured_body_.reserve(head.content_length);
  }
}

void ProxyExchange::writeResponseHead(http::ResponseHead& head) {
  const std::optional<std::string_view> length = head.headers.get("Content-Length");
  std::string head_length = length ? std::string(*length) : std::string();
  http::removeHopByHop(head.headers);
  head.headers.remove("Content-Length");
  close_after_ = !request_.keep_alive;

  std::string out;
  out.reserve(512);
  http::appendResponseHeadOpen(out, head);
  if (head_request_) {
    if (!head_length.empty()) {
      http::appendHeaderLine(out, "Content-Length", head_length);
    }
  } else if (head.framing == http::BodyFraming::kContentLength) {
    out.append("Content-Length: ");
    appendDecimal(out, static_cast<int64_t>(head.content_length));
    out.append("\r\n");
  } else if (head.framing == http::BodyFraming::kNone) {
    if (!statusHasNoBody(head.status)) {
      out.append("Content-Length: 0\r\n");
    }
  } else if (request_.version_minor >= 1) {
    out.append("Transfer-Encoding: chunked\r\n");
    chunked_out_ = true;
  } else {
    close_after_ = true;  // an HTTP/1.0 client reads the body until the connection closes
  }
  out.append("X-Cache: ");
  out.append(toString(status_));
  out.append("\r\nVia: ");
  out.append(kVia);
  out.append("\r\n");
  if (close_after_) {
    out.append("Connection: close\r\n");
  } else if (request_.version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  evbuffer_add(client_->output(), out.data(), out.size());
  response_started_ = true;
}

void ProxyExchange::onUpstreamBody(std::string_view chunk) {
  if (client_ == nullptr) {
    return;
  }
  evbuffer* out = client_->output();
  if (chunked_out_) {
    std::string size_line;
    http::appendChunkHeader(size_line, chunk.size());
    evbuffer_add(out, size_line.data(), size_line.size());
    evbuffer_add(out, chunk.data(), chunk.size());
    evbuffer_add(out, http::kChunkTrailer.data(), http::kChunkTrailer.size());
  } else {
    evbuffer_add(out, chunk.data(), chunk.size());
  }
  if (storing_) {
    if (captured_body_.size() + chunk.size() > max_object_bytes_) {
      storing_ = false;
      std::string().swap(captured_body_);
    } else {
      captured_body_.append(chunk);
    }
  }
  if (evbuffer_get_length(out) > ClientConnection::kOutputHighWater && upstream_) {
    // A slow client: stop reading from the app until the client catches up, so a large
    // response is never held whole in memory.
    upstream_->pauseReading();
    client_->watchDrain(true);
  }
}

void ProxyExchange::onClientDrained() {
  auto self = shared_from_this();
  if (client_ != nullptr) {
    client_->watchDrain(false);
  }
  if (upstream_) {
    upstream_->resumeReading();
  }
}

void ProxyExchange::onUpstreamComplete() {
  auto self = shared_from_this();
  if (client_ == nullptr) {
    releaseUpstream();
    return;
  }
  if (chunked_out_) {
    evbuffer_add(client_->output(), http::kLastChunk.data(), http::kLastChunk.size());
  }
  releaseUpstream();
  if (storing_) {
    store();
  }
  finish(close_after_);
}

void ProxyExchange::onUpstreamError(upstream::UpstreamError error) {
  auto self = shared_from_this();
  const bool retryable = !retried_ && !request_has_body_ && upstream_ &&
                         error == upstream::UpstreamError::kClosed &&
                         !upstream_->receivedAny() && upstream_->wasReused();
  releaseUpstream();
  if (client_ == nullptr) {
    return;
  }
  if (retryable) {
    // The app closed an idle keep-alive connection just as we reused it: one fresh try.
    retried_ = true;
    sendUpstreamRequest();
    return;
  }
  log(LogLevel::kWarn, "upstream ", upstream::toString(error), " for ", request_.method, " ",
      request_.target);
  if (!response_started_) {
    const bool timeout = error == upstream::UpstreamError::kTimeout;
    respondError(timeout ? 504 : 502, timeout ? "the app did not answer in time"
                                              : "the app could not be reached or broke the "
                                                "connection");
    return;
  }
  // Part of the response is already out: the only honest signal left is closing.
  finish(true);
}

// --- store --------------------------------------------------------------------------------

void ProxyExchange::store() {
  storing_ = false;
  std::string head = std::move(stored_head_);
  head.append("Content-Length: ");
  appendDecimal(head, static_cast<int64_t>(captured_body_.size()));
  head.append("\r\n");
  const auto remaining = freshness_ - std::chrono::duration_cast<std::chrono::milliseconds>(
                                          initial_age_);
  if (remaining.count() <= 0) {
    return;
  }
  cache::EntryMeta meta;
  meta.request_time_ms = toUnixMillis(request_time_);
  meta.response_time_ms = toUnixMillis(response_time_);
  meta.freshness_lifetime_ms = freshness_.count();
  meta.corrected_initial_age_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(initial_age_).count();
  auto blob = std::make_shared<const std::string>(
      cache::encodeEntry(meta, key_.identity, head, captured_body_));
  std::string().swap(captured_body_);
  cache_->backend->set(key_.storage_key, std::move(blob), remaining,
                       [](storage::StorageStatus) {});
}

// --- done ---------------------------------------------------------------------------------

void ProxyExchange::respondError(int status, std::string_view message) {
  status_ = CacheStatus::kError;
  const bool close = !request_complete_ || !request_.keep_alive;
  const std::string response = http::makeErrorResponse(status, message, close);
  if (client_ != nullptr) {
    evbuffer_add(client_->output(), response.data(), response.size());
  }
  finish(close);
}

void ProxyExchange::finish(bool close) {
  if (done_) {
    return;
  }
  done_ = true;
  if (client_ != nullptr) {
    ClientConnection* client = client_;
    client_ = nullptr;
    client->onExchangeDone(close);
  }
}

void ProxyExchange::detachClient() {
  client_ = nullptr;
  done_ = true;
  releaseUpstream();
}

void ProxyExchange::releaseUpstream() {
  if (upstream_) {
    worker_.upstreamPool().release(std::move(upstream_));
  }
}

}  // namespace cachecar::server
