#include "cachecar/server/proxy_exchange.h"

#include <event2/buffer.h>

#include <charconv>
#include <cstdio>
#include <utility>

#include "cachecar/cache/entry_codec.h"
#include "cachecar/cache/freshness.h"
#include "cachecar/cache/validation.h"
#include "cachecar/cache/vary.h"
#include "cachecar/common/logging.h"
#include "cachecar/http/hop_by_hop.h"
#include "cachecar/http/request_normalizer.h"
#include "cachecar/http/serializer.h"
#include "cachecar/http/upstream_request.h"
#include "cachecar/server/access_log.h"
#include "cachecar/server/client_connection.h"
#include "cachecar/server/worker.h"

namespace cachecar::server {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kVia = "1.1 cachecar";  // on responses; requests: upstream_request.cc
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// How long an entry with a validator stays in the store after it went stale, so it can be
// revalidated with a cheap 304 instead of fetched again.
constexpr seconds kValidatorRetention{3600};

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

// Statuses whose responses never carry a body (RFC 9110 §6.4.1).
bool statusHasNoBody(int status) {
  return status == 204 || status == 304 || (status >= 100 && status < 200);
}

// RFC 9110 §9.2.1: everything but these may change the target's state.
bool isSafeMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE";
}

seconds ageOf(const cache::EntryView& view, SystemTime now) {
  return cache::currentAge(duration_cast<seconds>(milliseconds(view.meta.corrected_initial_age_ms)),
                           fromUnixMillis(view.meta.response_time_ms), now);
}

// Seconds of freshness left (negative when stale).
int64_t ttlOf(const cache::EntryView& view, seconds age) {
  return (view.meta.freshness_lifetime_ms - duration_cast<milliseconds>(age).count()) / 1000;
}

// Responses to authorized requests (stored only when the app marks them public, s-maxage or
// must-revalidate) are kept apart per credential: one user's page can never answer another
// user, nor an anonymous request. Only a hash of the credential enters the key.
void partitionByCredential(cache::CacheKey& key, const http::RequestHead& request) {
  if (auto authorization = request.headers.getCombined("Authorization")) {
    const std::string credential = cache::variantStorageKey("", *authorization).substr(2);
    key.storage_key.append("|a").append(credential);
    key.identity.append("\na=").append(credential);
  }
}

// A Vary marker's head: "{epoch}; {field, field}". The epoch is part of every variant's key,
// so a new marker (after an invalidation) makes all older variants unreachable at once.
std::pair<std::string_view, std::string_view> splitMarker(std::string_view head) {
  const size_t sep = head.find("; ");
  if (sep == std::string_view::npos) {
    return {std::string_view(), head};
  }
  return {head.substr(0, sep), head.substr(sep + 2)};
}

}  // namespace

ProxyExchange::ProxyExchange(Worker& worker, ClientConnection& client, http::RequestHead& request)
    : worker_(worker),
      client_(&client),
      settings_(worker.sharedSettings()),
      request_(std::move(request)),
      request_time_(worker.now()),
      started_(std::chrono::steady_clock::now()) {
  head_request_ = request_.method == "HEAD";
  request_has_body_ = request_.framing != http::BodyFraming::kNone;
}

ProxyExchange::~ProxyExchange() { releaseUpstream(); }

// --- recv ---------------------------------------------------------------------------------

void ProxyExchange::start() {
  auto self = shared_from_this();
  if (!normalizeRequest()) {
    return;
  }
  if (request_.expect_continue && request_has_body_) {
    // Ask for the body at once: the app sees a plain request (Expect is not forwarded).
    sendToClient(kContinue);
  }
  route_ = settings_->routes().match(request_.path());
  request_cc_ = cache::requestDirectives(request_);
  if (route_ != nullptr && route_->cache_off) {
    fetch(FetchKind::kPass);
    return;
  }
  if ((request_.method != "GET" && !head_request_) || request_has_body_) {
    fwd_reason_ = "method";
    fetch(FetchKind::kPass);
    return;
  }
  cache_ = worker_.cache(route_ != nullptr ? route_->cache : std::string("default"));
  const std::optional<int64_t> version = cache_ ? cache_->currentVersion() : std::nullopt;
  if (!version) {
    // No such cache, or its version bumps are not known yet (its store has not answered):
    // ask the app rather than risk an entry from before a purge.
    cache_.reset();
    fwd_reason_ = "cache-unavailable";
    fetch(FetchKind::kPass);
    return;
  }
  const config::KeySettings& key_settings = route_ != nullptr ? route_->key : defaultKeySettings();
  key_ = cache::buildCacheKey(cache_->settings.key_prefix, *version, key_settings, request_);
  partitionByCredential(key_, request_);
  status_ = CacheStatus::kMiss;
  fwd_reason_ = "uri-miss";
  lookup(key_.storage_key);
}

bool ProxyExchange::normalizeRequest() {
  client_ip_ = client_->peerAddress();
  const http::NormalizeOptions options = settings_->normalizeOptions(client_ip_);
  const std::optional<http::Rejection> rejected = http::normalizeRequest(request_, options);
  if (!rejected) {
    return true;
  }
  log(LogLevel::kInfo, "client ", client_ip_, ": ", rejected->status, " ", rejected->reason);
  fwd_reason_ = "bad-request";
  respondError(rejected->status, rejected->reason, /*close=*/true);
  return false;
}

void ProxyExchange::onRequestBody(std::string_view chunk) {
  if (!upstream_) {
    http::appendUpstreamBodyPiece(pending_body_, request_, chunk);
  } else if (request_.framing != http::BodyFraming::kChunked) {
    upstream_->send(chunk);  // sized: the bytes as they came, no copy
  } else {
    std::string framed;
    http::appendUpstreamBodyPiece(framed, request_, chunk);
    upstream_->send(framed);
  }
}

void ProxyExchange::onRequestComplete() {
  request_complete_ = true;
  std::string end;
  http::appendUpstreamBodyEnd(end, request_);
  if (end.empty()) {
    return;
  }
  if (upstream_) {
    upstream_->send(end);
  } else {
    pending_body_.append(end);
  }
}

// --- lookup -------------------------------------------------------------------------------

void ProxyExchange::lookup(const std::string& key) {
  lookup_key_ = key;
  std::weak_ptr<ProxyExchange> weak = weak_from_this();
  cache_->backend->get(lookup_key_, [weak](storage::GetResult result) {
    if (auto self = weak.lock()) {
      self->onLookup(std::move(result));
    }
  });
}

void ProxyExchange::onLookup(storage::GetResult result) {
  if (client_ == nullptr || done_) {
    return;
  }
  if (result.status != storage::StorageStatus::kOk) {
    if (result.status != storage::StorageStatus::kNotFound) {
      log(LogLevel::kDebug, "cache ", cache_->settings.name, " lookup failed (",
          storage::toString(result.status), "): going to the app");
    }
    onMiss();
    return;
  }
  cache::DecodeError error = cache::DecodeError::kNone;
  auto view = cache::decodeEntry(result.blob->view(), !cache_->backend->inProcess(), &error);
  if (!view) {
    log(LogLevel::kWarn, "cache ", cache_->settings.name, ": dropping unreadable entry ",
        lookup_key_, " (", cache::toString(error), ")");
    cache_->backend->remove(lookup_key_, [](storage::StorageStatus) {});
    onMiss();
    return;
  }
  const bool is_marker = (view->meta.flags & cache::kEntryFlagVaryMarker) != 0;
  if (is_marker && !saw_vary_marker_ && view->identity == key_.identity) {
    // The page varies: look up the variant this request selects.
    saw_vary_marker_ = true;
    const auto [epoch, fields] = splitMarker(view->head);
    vary_epoch_ = std::string(epoch);
    marker_fields_ = cache::splitFields(fields);
    const std::string variance = cache::varianceOf(marker_fields_, request_.headers);
    variant_identity_ = key_.identity + "\n" + variance;
    lookup(cache::variantStorageKey(key_.storage_key, vary_epoch_ + "\n" + variance));
    return;
  }
  const std::string& expected = saw_vary_marker_ ? variant_identity_ : key_.identity;
  if (is_marker || view->identity != expected) {
    onMiss();  // a hash collision or a foreign value: a miss, never the wrong page
    return;
  }
  onEntry(StoredResponse{std::move(result.blob), *view});
}

void ProxyExchange::onEntry(StoredResponse stored) {
  const cache::EntryView& view = stored.view;
  const seconds age = ageOf(view, worker_.now());
  cache::StoredState state;
  state.age = age;
  state.freshness = milliseconds(view.meta.freshness_lifetime_ms);
  state.revalidate_always = (view.meta.flags & cache::kEntryFlagRevalidateAlways) != 0;
  state.no_stale = (view.meta.flags & cache::kEntryFlagNoStale) != 0;
  state.stale_while_revalidate = seconds(view.meta.stale_while_revalidate_s);
  switch (cache::decideReuse(state, request_cc_)) {
    case cache::Reuse::kFresh:
      deliverStored(stored, CacheStatus::kHit, "");
      return;
    case cache::Reuse::kStaleAllowed:
      deliverStored(stored, CacheStatus::kStale, "max-stale");
      return;
    case cache::Reuse::kStaleWhileRevalidate:
      stale_ = stored;
      deliverStored(stored, CacheStatus::kStale, "stale-while-revalidate");
      refreshInBackground();
      return;
    case cache::Reuse::kRevalidate:
      break;
  }
  if (request_cc_.only_if_cached) {
    respondError(504, "not in the cache (only-if-cached)");
    return;
  }
  stale_ = std::move(stored);
  fwd_reason_ = request_cc_.no_cache ? "request" : "stale";
  const auto head = cache::parseStoredHead(stale_->view.head);
  if (head && cache::hasValidator(head->headers)) {
    fetch(FetchKind::kRevalidate);
  } else {
    coalesceOrFetch();
  }
}

void ProxyExchange::onMiss() {
  if (saw_vary_marker_) {
    fwd_reason_ = "vary-miss";
  }
  if (request_cc_.only_if_cached) {
    respondError(504, "not in the cache (only-if-cached)");
    return;
  }
  coalesceOrFetch();
}

// --- coalesce -----------------------------------------------------------------------------

void ProxyExchange::coalesceOrFetch() {
  // Only full GETs coalesce; a request joins at most twice (after a failed fetcher), so a
  // waiter can never loop.
  if (head_request_ || request_cc_.no_store || joins_ >= 2) {
    fetch(FetchKind::kMiss);
    return;
  }
  ++joins_;
  std::weak_ptr<ProxyExchange> weak = weak_from_this();
  InflightTable& table = worker_.inflight();
  const JoinRole role = table.join(key_.storage_key, worker_.loop(), [weak](FetchOutcome outcome) {
    if (auto self = weak.lock()) {
      self->onCoalesced(outcome);
    }
  });
  if (role == JoinRole::kFetch) {
    lease_ = InflightLease(&table, key_.storage_key);
  } else if (role == JoinRole::kFetchAlone) {
    worker_.shared().uncacheable_fetches.add(worker_.index());
  }
  if (role != JoinRole::kWait) {
    fetch(FetchKind::kMiss);
    return;
  }
  waiting_ = true;
  collapsed_ = true;
  worker_.shared().coalesced_waiters.add(worker_.index());
  wait_timer_ = std::make_unique<event::Timer>(worker_.loop(), [weak] {
    if (auto self = weak.lock(); self && self->waiting_) {
      // The fetcher takes too long: stop waiting and ask the app directly.
      self->waiting_ = false;
      self->fetch(FetchKind::kMiss);
    }
  });
  wait_timer_->arm(settings_->config().limits.coalesce_wait);
}

void ProxyExchange::onCoalesced(FetchOutcome outcome) {
  if (!waiting_ || client_ == nullptr) {
    return;
  }
  auto self = shared_from_this();
  waiting_ = false;
  wait_timer_.reset();
  switch (outcome) {
    case FetchOutcome::kStored:
      saw_vary_marker_ = false;
      vary_epoch_.clear();
      lookup(key_.storage_key);
      return;
    case FetchOutcome::kNotStored:
    case FetchOutcome::kUncacheable:
      fetch(FetchKind::kMiss);
      return;
    case FetchOutcome::kFailed:
      coalesceOrFetch();  // one of the waiters becomes the next fetcher
      return;
  }
}

// --- deliver from the cache ---------------------------------------------------------------

void ProxyExchange::deliverStored(const StoredResponse& stored, CacheStatus status,
                                  std::string detail) {
  if (client_ == nullptr) {
    return;
  }
  status_ = status;
  const seconds age = ageOf(stored.view, worker_.now());
  DeliveryFields fields;
  fields.age_seconds = age.count();
  fields.x_cache = toString(status);
  fields.close = !request_.keep_alive || worker_.draining();
  fields.http10_keep_alive = request_.version_minor == 0;
  fields.extra = delivery_fields_;
  fields.cache_status = "cachecar; ";
  if (status == CacheStatus::kRevalidated) {
    fields.cache_status.append("fwd=stale; fwd-status=304; ttl=");
  } else {
    fields.cache_status.append("hit; ttl=");
  }
  appendDecimal(fields.cache_status, ttlOf(stored.view, age));
  if (collapsed_) {
    fields.cache_status.append("; collapsed");
  }
  if (!detail.empty()) {
    fields.cache_status.append("; detail=");
    fields.cache_status.append(detail);
  }
  evbuffer* out = client_->output();
  const size_t before = evbuffer_get_length(out);
  response_status_ = writeStoredResponse(out, stored, request_, fields);
  bytes_out_ += evbuffer_get_length(out) - before;
  finish(fields.close);
}

void ProxyExchange::refreshInBackground() {
  // One refresh per key across all workers: whoever joins first refreshes.
  InflightTable& table = worker_.inflight();
  const JoinRole role = table.join(key_.storage_key, worker_.loop(), [](FetchOutcome) {});
  if (role == JoinRole::kWait) {
    return;
  }
  if (role == JoinRole::kFetch) {
    lease_ = InflightLease(&table, key_.storage_key);
  }
  background_self_ = shared_from_this();
  const auto head = cache::parseStoredHead(stale_->view.head);
  fetch(head && cache::hasValidator(head->headers) ? FetchKind::kRevalidate
                                                   : FetchKind::kBackground);
}

bool ProxyExchange::deliverStaleOnError() {
  if (!stale_ || client_ == nullptr || response_started_) {
    return false;
  }
  const cache::EntryView& view = stale_->view;
  if ((view.meta.flags & cache::kEntryFlagNoStale) != 0) {
    return false;
  }
  const int64_t staleness = -ttlOf(view, ageOf(view, worker_.now()));
  if (staleness > static_cast<int64_t>(view.meta.stale_if_error_s)) {
    return false;
  }
  deliverStored(*stale_, CacheStatus::kStale, "stale-if-error");
  return true;
}

// --- fetch --------------------------------------------------------------------------------

void ProxyExchange::fetch(FetchKind kind) {
  fetch_kind_ = kind;
  http::UpstreamRequestOptions options;
  options.client_ip = client_ip_;
  http::HeaderMap validators;
  if (kind == FetchKind::kRevalidate || kind == FetchKind::kBackground) {
    // Our own conditional request; the client's conditions are answered from the result.
    options.cache_conditional = true;
    if (kind == FetchKind::kRevalidate) {
      if (auto head = cache::parseStoredHead(stale_->view.head)) {
        cache::addValidators(validators, head->headers);
      }
    }
    options.validators = &validators;
  }
  upstream_request_head_.clear();
  upstream_request_head_.reserve(512);
  http::appendUpstreamRequestHead(upstream_request_head_, request_, options);
  upstream_started_ = std::chrono::steady_clock::now();
  sendUpstreamRequest();
}

void ProxyExchange::sendUpstreamRequest() {
  upstream_ = worker_.upstreamPool().acquire();
  if (!upstream_) {
    onUpstreamError(upstream::UpstreamError::kConnectFailed);
    return;
  }
  upstream_->begin(this, head_request_);
  upstream_->send(upstream_request_head_);
  if (!pending_body_.empty()) {
    upstream_->send(pending_body_);
    pending_body_.clear();
  }
}

void ProxyExchange::onUpstreamInterim(const http::ResponseHead& interim) {
  // Interim responses go on to HTTP/1.1 clients as they are (never stored); 100 Continue is
  // ours to send, and 101 would switch protocols, which this proxy does not do.
  if (client_ == nullptr || background_self_ != nullptr || request_.version_minor == 0 ||
      interim.status == 100 || interim.status == 101) {
    return;
  }
  http::ResponseHead head = interim;
  http::removeHopByHop(head.headers);
  std::string out;
  http::appendResponseHeadOpen(out, head);
  out.append("\r\n");
  sendToClient(out);
  client_->flush();
}

void ProxyExchange::onUpstreamHead(http::ResponseHead& head) {
  auto self = shared_from_this();
  response_time_ = worker_.now();
  upstream_status_ = head.status;
  if (!isSafeMethod(request_.method) && head.status >= 200 && head.status < 400) {
    invalidateAfterUnsafe(head);
  }
  if (fetch_kind_ == FetchKind::kRevalidate && head.status == 304) {
    not_modified_ = true;
    not_modified_fields_ = head.headers;
    return;  // no body; the entry is refreshed once the exchange with the app completes
  }
  if (head_request_ && stale_ && head.status == 200 && headAnswerDescribesStale(head)) {
    // RFC 9111 §4.3.5: a HEAD's answer about the same page updates the stored GET response
    // as a 304 would, rather than leave it stale.
    not_modified_ = true;
    not_modified_fields_ = head.headers;
    return;
  }
  if (fetch_kind_ != FetchKind::kPass && head.status >= 500 && stale_) {
    if (background_self_ != nullptr || deliverStaleOnError()) {
      discard_body_ = true;  // the stale page was (or stays) served; keep the entry
      lease_.complete(FetchOutcome::kNotStored);
      return;
    }
  }
  if (fetch_kind_ != FetchKind::kPass) {
    planStorage(head, request_);  // a HEAD's own response is never stored: it has no body
  }
  if (client_ != nullptr && background_self_ == nullptr) {
    writeResponseHead(head);
  }
}

std::string ProxyExchange::forwardedCacheStatus() const {
  std::string value = "cachecar; fwd=";
  value.append(fwd_reason_);
  if (fetch_kind_ == FetchKind::kRevalidate) {
    value.append("; fwd-status=");
    appendDecimal(value, upstream_status_);
  }
  if (storing_) {
    value.append("; stored");
  }
  if (collapsed_) {
    value.append("; collapsed");
  }
  return value;
}

void ProxyExchange::writeResponseHead(http::ResponseHead& head) {
  const std::optional<std::string_view> length = head.headers.get("Content-Length");
  std::string head_length = length ? std::string(*length) : std::string();
  http::removeHopByHop(head.headers);
  head.headers.remove("Content-Length");
  close_after_ = !request_.keep_alive || worker_.draining();
  response_status_ = head.status;

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
  out.append("\r\nCache-Status: ");
  out.append(forwardedCacheStatus());
  out.append("\r\nVia: ");
  out.append(kVia);
  out.append("\r\n");
  if (close_after_) {
    out.append("Connection: close\r\n");
  } else if (request_.version_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  sendToClient(out);
  response_started_ = true;
}

void ProxyExchange::onUpstreamBody(std::string_view chunk) {
  if (discard_body_) {
    return;
  }
  if (storing_) {
    if (captured_body_.size() + chunk.size() > max_object_bytes_) {
      storing_ = false;
      std::string().swap(captured_body_);
      lease_.complete(FetchOutcome::kUncacheable);  // too large
    } else {
      captured_body_.append(chunk);
    }
  }
  if (client_ == nullptr || background_self_ != nullptr) {
    return;
  }
  evbuffer* out = client_->output();
  if (chunked_out_) {
    std::string size_line;
    http::appendChunkHeader(size_line, chunk.size());
    sendToClient(size_line);
    sendToClient(chunk);
    sendToClient(http::kChunkTrailer);
  } else {
    sendToClient(chunk);
  }
  if (evbuffer_get_length(out) > ClientConnection::kOutputHighWater) {
    client_->flush();
  }
  if (evbuffer_get_length(out) > ClientConnection::kOutputHighWater && upstream_) {
    // A slow client: stop reading from the app until the client catches up, so a large
    // response is never held whole in memory.
    upstream_->pauseReading();
    client_->watchDrain(true);
  }
}

void ProxyExchange::onUpstreamReadDone() {
  if (client_ != nullptr && background_self_ == nullptr) {
    client_->flush();
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
  recordOriginTime();
  if (chunked_out_ && client_ != nullptr && background_self_ == nullptr) {
    sendToClient(http::kLastChunk);
  }
  releaseUpstream();
  if (not_modified_) {
    const StoredResponse refreshed = refreshFromNotModified();
    if (client_ != nullptr && background_self_ == nullptr) {
      deliverStored(refreshed, CacheStatus::kRevalidated, "");
    }
    endBackground();
    return;
  }
  if (storing_) {
    store();
  }
  lease_.complete(FetchOutcome::kNotStored);
  if (!discard_body_) {
    finish(close_after_);
  }
  endBackground();
}

void ProxyExchange::onUpstreamError(upstream::UpstreamError error) {
  auto self = shared_from_this();
  const bool retryable = !retried_ && !request_has_body_ && upstream_ &&
                         error == upstream::UpstreamError::kClosed &&
                         !upstream_->receivedAny() && upstream_->wasReused();
  releaseUpstream();
  if (retryable && (client_ != nullptr || background_self_ != nullptr)) {
    // The app closed an idle keep-alive connection just as we reused it: one fresh try.
    retried_ = true;
    sendUpstreamRequest();
    return;
  }
  recordOriginTime();
  lease_.complete(FetchOutcome::kFailed);
  storing_ = false;
  if (background_self_ != nullptr || client_ == nullptr) {
    endBackground();
    return;
  }
  log(LogLevel::kWarn, "upstream ", upstream::toString(error), " for ", request_.method, " ",
      request_.target);
  if (deliverStaleOnError()) {
    return;
  }
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

cache::RoutePolicy ProxyExchange::routePolicy() const {
  cache::RoutePolicy policy;
  if (route_ == nullptr) {
    return policy;
  }
  policy.matched = true;
  policy.ttl = route_->ttl ? *route_->ttl : cache_->settings.timeout;
  policy.override_ttl = route_->override_ttl;
  if (route_->stale_while_revalidate) {
    policy.stale_while_revalidate = duration_cast<seconds>(*route_->stale_while_revalidate);
  }
  if (route_->stale_if_error) {
    policy.stale_if_error = duration_cast<seconds>(*route_->stale_if_error);
  }
  return policy;
}

void ProxyExchange::planStorage(const http::ResponseHead& head, const http::RequestHead& request) {
  const auto& heuristic_settings = settings_->config().heuristic;
  cache::HeuristicPolicy heuristic;
  heuristic.fraction = heuristic_settings.fraction;
  heuristic.max = duration_cast<seconds>(heuristic_settings.max);
  plan_ = cache::planStore(request, head, routePolicy(), heuristic, response_time_);
  max_object_bytes_ = cache_->settings.max_object_bytes;
  if (!plan_.store ||
      (head.framing == http::BodyFraming::kContentLength &&
       head.content_length > max_object_bytes_)) {
    lease_.complete(FetchOutcome::kUncacheable);
    if (stale_ && head.status == 200) {
      // The stored copy is outdated and cannot be replaced: the app now says this page may not
      // be stored, or it is too large, or it changed (a full answer to our conditional HEAD).
      cache_->backend->remove(lookup_key_, [](storage::StorageStatus) {});
    }
    return;
  }
  storing_ = true;
  initial_age_ = cache::correctedInitialAge(head, request_time_, response_time_);
  // The stored head: end-to-end fields only; Age is recomputed on every hit and
  // Content-Length is added once the body is complete.
  stored_head_.status = head.status;
  stored_head_.reason = head.reason;
  stored_head_.headers = head.headers;
  http::removeHopByHop(stored_head_.headers);
  stored_head_.headers.remove("Content-Length");
  stored_head_.headers.remove("Age");
  if (!stored_head_.headers.has("Date")) {
    // RFC 9110 §6.6.1: a recipient with a clock adds Date when the origin sent none.
    stored_head_.headers.add("Date", cache::formatHttpDate(response_time_));
  }
  if (head.framing == http::BodyFraming::kContentLength) {
    captured_body_.reserve(head.content_length);
  }
}

storage::Blob ProxyExchange::store() {
  storing_ = false;
  const milliseconds remaining = plan_.freshness - duration_cast<milliseconds>(initial_age_);
  seconds keep = std::max(plan_.stale_while_revalidate, plan_.stale_if_error);
  if (cache::hasValidator(stored_head_.headers)) {
    keep = std::max(keep, kValidatorRetention);
  }
  const milliseconds ttl = std::max(remaining, milliseconds(0)) + keep;
  if (ttl.count() <= 0) {
    return nullptr;
  }
  std::string head;
  http::appendResponseHeadOpen(head, stored_head_);
  head.append("Content-Length: ");
  appendDecimal(head, static_cast<int64_t>(captured_body_.size()));
  head.append("\r\n");

  cache::EntryMeta meta;
  meta.request_time_ms = toUnixMillis(request_time_);
  meta.response_time_ms = toUnixMillis(response_time_);
  meta.freshness_lifetime_ms = plan_.freshness.count();
  meta.corrected_initial_age_ms = duration_cast<milliseconds>(initial_age_).count();
  meta.flags = static_cast<uint16_t>(
      (plan_.revalidate_always ? cache::kEntryFlagRevalidateAlways : 0) |
      (plan_.no_stale ? cache::kEntryFlagNoStale : 0));
  meta.stale_while_revalidate_s = static_cast<uint32_t>(plan_.stale_while_revalidate.count());
  meta.stale_if_error_s = static_cast<uint32_t>(plan_.stale_if_error.count());

  storage::Blob entry;
  const auto vary = cache::varyFields(stored_head_.headers);
  if (vary && !vary->empty()) {
    // Variants: a marker at the primary key names the fields; each variant has its own key.
    const std::string variance = cache::varianceOf(*vary, request_.headers);
    if (vary_epoch_.empty() || marker_fields_ != *vary) {
      char epoch[17];
      std::snprintf(epoch, sizeof(epoch), "%016llx",
                    static_cast<unsigned long long>(worker_.randomU64()));
      vary_epoch_ = epoch;
    }
    cache::EntryMeta marker = meta;
    marker.flags = cache::kEntryFlagVaryMarker;
    storeEntry(key_.storage_key,
               cache::encodeEntry(marker, key_.identity,
                                  vary_epoch_ + "; " + cache::joinFields(*vary), ""),
               ttl, false);
    entry = storeEntry(
        cache::variantStorageKey(key_.storage_key, vary_epoch_ + "\n" + variance),
        cache::encodeEntry(meta, key_.identity + "\n" + variance, head, captured_body_), ttl, true);
  } else {
    entry = storeEntry(key_.storage_key,
                       cache::encodeEntry(meta, key_.identity, head, captured_body_), ttl, true);
  }
  std::string().swap(captured_body_);
  return entry;
}

storage::Blob ProxyExchange::storeEntry(const std::string& key, std::string blob_bytes,
                                        milliseconds ttl, bool completes_lease) {
  auto blob = storage::makeBlob(std::move(blob_bytes));
  storage::DoneCallback done = [](storage::StorageStatus) {};
  if (completes_lease && lease_.held()) {
    // Those who wait for this fetch hear whether the entry is there to look up.
    done = [lease = std::make_shared<InflightLease>(std::move(lease_))](
               storage::StorageStatus status) {
      lease->complete(status == storage::StorageStatus::kOk ? FetchOutcome::kStored
                                                            : FetchOutcome::kNotStored);
    };
  } else if (completes_lease) {
    // Not coalesced (fetched alone, or a revalidation): a stored response ends any memory of
    // the key as uncacheable, so that requests for it coalesce again.
    done = [table = &worker_.inflight(), key](storage::StorageStatus status) {
      if (status == storage::StorageStatus::kOk) {
        table->forgetUncacheable(key);
      }
    };
  }
  cache_->backend->set(key, blob, ttl, std::move(done));
  return blob;
}

bool ProxyExchange::headAnswerDescribesStale(const http::ResponseHead& head) const {
  const auto stored = cache::parseStoredHead(stale_->view.head);
  return stored &&
         cache::headResponseDescribesStored(stored->headers, stale_->view.body.size(), head.headers);
}

StoredResponse ProxyExchange::refreshFromNotModified() {
  auto parsed = cache::parseStoredHead(stale_->view.head);
  if (!parsed) {
    return *stale_;
  }
  // A cookie in the 304 is this client's: it goes out with this answer, never into the
  // stored head (RFC 9111 §4.3.4 updates the stored fields; a shared cache keeps no cookies).
  for (const http::Header& h : not_modified_fields_.all()) {
    if (http::equalsIgnoreCase(h.name, "Set-Cookie")) {
      http::appendHeaderLine(delivery_fields_, h.name, h.value);
    }
  }
  not_modified_fields_.remove("Set-Cookie");
  cache::mergeNotModified(parsed->headers, not_modified_fields_);
  parsed->framing = http::BodyFraming::kContentLength;
  parsed->content_length = stale_->view.body.size();
  // The refreshed entry is the stored GET response, also when a HEAD revalidated it.
  if (head_request_) {
    http::RequestHead as_get = request_;
    as_get.method = "GET";
    planStorage(*parsed, as_get);
  } else {
    planStorage(*parsed, request_);
  }
  if (storing_) {
    // store() writes the refreshed entry (and marker) exactly as a fresh response would be,
    // and the client is served those very bytes.
    captured_body_.assign(stale_->view.body);
    if (storage::Blob blob = store()) {
      if (auto view = cache::decodeEntry(blob->view(), false)) {
        return StoredResponse{blob, *view};
      }
    }
  }
  // Not stored (the 304's fields now forbid it, or it expired on arrival): this client still
  // gets the updated head. A copy of the body, on this rare path only.
  return transientResponse(*parsed);
}

StoredResponse ProxyExchange::transientResponse(const http::ResponseHead& head) const {
  std::string head_text;
  http::appendResponseHeadOpen(head_text, head);
  head_text.append("Content-Length: ");
  appendDecimal(head_text, static_cast<int64_t>(stale_->view.body.size()));
  head_text.append("\r\n");
  auto blob = storage::makeBlob(
      cache::encodeEntry(stale_->view.meta, stale_->view.identity, head_text, stale_->view.body));
  auto view = cache::decodeEntry(blob->view(), false);
  return view ? StoredResponse{blob, *view} : *stale_;
}

void ProxyExchange::invalidateAfterUnsafe(const http::ResponseHead& head) {
  // RFC 9111 §4.4: a successful unsafe request invalidates the target URI, and the URIs in
  // Location and Content-Location when they are on the same host. Each is normalized as a
  // request for it would be, so the keys are the ones such a request builds.
  const std::string_view host = request_.headers.get("Host").value_or(std::string_view());
  const http::NormalizeOptions options = settings_->normalizeOptions(client_ip_);
  std::vector<std::string> targets{request_.target};
  for (std::string_view field : {"Location", "Content-Location"}) {
    if (auto value = head.headers.get(field); value && !value->empty()) {
      targets.emplace_back(*value);
    }
  }
  for (auto& target : targets) {
    http::RequestHead get;
    get.method = "GET";
    get.target = std::move(target);
    get.headers = request_.headers;
    if (http::normalizeRequest(get, options) || get.headers.get("Host") != host) {
      continue;  // not a URI a request could name, or on another host
    }
    invalidateTarget(get);
  }
}

void ProxyExchange::invalidateTarget(const http::RequestHead& get) {
  const config::RouteSettings* route = settings_->routes().match(get.path());
  if (route != nullptr && route->cache_off) {
    return;
  }
  const std::shared_ptr<CacheInstance> cache =
      worker_.cache(route != nullptr ? route->cache : std::string("default"));
  const std::optional<int64_t> version = cache ? cache->currentVersion() : std::nullopt;
  if (!version) {
    return;
  }
  cache::CacheKey key = cache::buildCacheKey(
      cache->settings.key_prefix, *version, route != nullptr ? route->key : defaultKeySettings(),
      get);
  partitionByCredential(key, get);
  // Removing the primary key also retires every variant: they are reached through it.
  cache->backend->remove(key.storage_key, [](storage::StorageStatus) {});
}

// --- done ---------------------------------------------------------------------------------

void ProxyExchange::respondError(int status, std::string_view message, bool force_close) {
  status_ = CacheStatus::kError;
  const bool close = force_close || !request_complete_ || !request_.keep_alive;
  const std::string response = http::makeErrorResponse(status, message, close);
  response_status_ = status;
  if (client_ != nullptr) {
    sendToClient(response);
  }
  finish(close);
}

void ProxyExchange::recordOriginTime() {
  if (upstream_started_ == std::chrono::steady_clock::time_point()) {
    return;
  }
  const auto elapsed = std::chrono::steady_clock::now() - upstream_started_;
  upstream_time_ = duration_cast<std::chrono::microseconds>(elapsed);
  worker_.shared().origin_latency.observe(worker_.index(), elapsed);
}

void ProxyExchange::recordExchange() {
  settings_->requestCounters(route_)[static_cast<size_t>(status_)]->add(worker_.index());
  if (!settings_->config().access_log) {
    return;
  }
  AccessRecord record;
  record.time = request_time_;
  record.method = request_.method;
  record.path = request_.target;
  record.status = response_status_;
  record.cache_status = toString(status_);
  record.route = route_ != nullptr ? std::string_view(route_->match) : std::string_view();
  record.bytes = bytes_out_;
  record.upstream_time = upstream_time_;
  record.total_time =
      duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started_);
  worker_.shared().access_log.write(record);
}

void ProxyExchange::sendToClient(std::string_view bytes) {
  evbuffer_add(client_->output(), bytes.data(), bytes.size());
  bytes_out_ += bytes.size();
}

void ProxyExchange::finish(bool close) {
  if (done_) {
    return;
  }
  done_ = true;
  if (client_ != nullptr) {
    recordExchange();
    ClientConnection* client = client_;
    client_ = nullptr;
    client->onExchangeDone(close);
  }
}

void ProxyExchange::detachClient() {
  client_ = nullptr;
  done_ = true;
  waiting_ = false;
  if (background_self_ == nullptr) {
    releaseUpstream();
  }
}

void ProxyExchange::releaseUpstream() {
  if (upstream_) {
    worker_.upstreamPool().release(std::move(upstream_));
  }
}

void ProxyExchange::endBackground() {
  // Last: may destroy this exchange (callers hold their own reference until they return).
  background_self_.reset();
}

}  // namespace cachecar::server
