#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cachecar/cache/cache_control.h"
#include "cachecar/cache/cache_key.h"
#include "cachecar/cache/shared_cache_policy.h"
#include "cachecar/common/clock.h"
#include "cachecar/event/event_loop.h"
#include "cachecar/http/message.h"
#include "cachecar/server/cache_status.h"
#include "cachecar/server/inflight_table.h"
#include "cachecar/server/proxy_settings.h"
#include "cachecar/server/stored_response_writer.h"
#include "cachecar/storage/backend.h"
#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::server {

class Worker;
class ClientConnection;
struct CacheInstance;


// One request and its response: the request path as named steps.
//
//   start -> pass ------------------------------------------------> fetch -> deliver
//         -> lookup -> [vary marker -> lookup variant] -> onEntry
//              fresh / max-stale            -> deliver stored (HIT / STALE)
//              stale-while-revalidate       -> deliver stored, refresh in the background
//              stale or no-cache            -> revalidate (conditional fetch): 304 -> refresh
//                                              the entry, deliver it; 200 -> store, deliver;
//                                              error -> stale-if-error or 502/504
//         -> miss -> coalesce (one fetch per key across workers) -> fetch -> store -> deliver
//
// Lives in a shared_ptr so asynchronous callbacks hold a weak_ptr: one arriving after the
// exchange is gone finds nothing and does nothing.
class ProxyExchange : public upstream::ResponseHandler,
                      public std::enable_shared_from_this<ProxyExchange> {
 public:
  ProxyExchange(Worker& worker, ClientConnection& client, http::RequestHead& request);
  ~ProxyExchange() override;
  ProxyExchange(const ProxyExchange&) = delete;
  ProxyExchange& operator=(const ProxyExchange&) = delete;

  void start();
  void onRequestBody(std::string_view chunk);
  void onRequestComplete();
  // The client's output buffer drained below the low-water mark.
  void onClientDrained();
  // The client connection is going away: stop touching it.
  void detachClient();

  // upstream::ResponseHandler
  void onUpstreamInterim(const http::ResponseHead& interim) override;
  void onUpstreamHead(http::ResponseHead& head) override;
  void onUpstreamBody(std::string_view chunk) override;
  void onUpstreamComplete() override;
  void onUpstreamError(upstream::UpstreamError error) override;
  void onUpstreamReadDone() override;

 private:
  enum class FetchKind { kPass, kMiss, kRevalidate, kBackground };

  // recv
  // Normalizes the request (or answers 4xx/5xx and closes): from here on every step reads the
  // normalized request only.
  bool normalizeRequest();
  // lookup
  void lookup(const std::string& key);
  void onLookup(storage::GetResult result);
  void onEntry(StoredResponse stored);
  void onMiss();
  void coalesceOrFetch();
  void onCoalesced(FetchOutcome outcome);
  // deliver from the cache
  void deliverStored(const StoredResponse& stored, CacheStatus status, std::string detail);
  void refreshInBackground();
  bool deliverStaleOnError();
  // fetch
  void fetch(FetchKind kind);
  void sendUpstreamRequest();
  void writeResponseHead(http::ResponseHead& head);
  std::string forwardedCacheStatus() const;
  // store
  // Plans storing `head` as the response to `request` (the client's, or its GET form when a
  // HEAD refreshes a stored GET response).
  void planStorage(const http::ResponseHead& head, const http::RequestHead& request);
  // Whether the app's 200 to a HEAD is about the stale entry's page (same validator, length).
  bool headAnswerDescribesStale(const http::ResponseHead& head) const;
  // Returns the stored response entry (not the Vary marker); nullptr when nothing was stored.
  storage::Blob store();
  storage::Blob storeEntry(const std::string& key, std::string blob_bytes,
                           std::chrono::milliseconds ttl, bool completes_lease);
  // The stale entry refreshed by the app's 304: stored again when it may be, and in any case
  // what this client is answered with (the 304's new fields included).
  StoredResponse refreshFromNotModified();
  StoredResponse transientResponse(const http::ResponseHead& head) const;
  void invalidateAfterUnsafe(const http::ResponseHead& head);
  void invalidateTarget(const http::RequestHead& get);
  cache::RoutePolicy routePolicy() const;
  // done
  void finish(bool close);
  void respondError(int status, std::string_view message, bool force_close = false);
  void sendToClient(std::string_view bytes);
  void recordOriginTime();
  void recordExchange();
  void releaseUpstream();
  void endBackground();

  Worker& worker_;
  ClientConnection* client_;
  // The settings this request started with: a reload meanwhile does not change them.
  std::shared_ptr<const ProxySettings> settings_;
  http::RequestHead request_;
  std::string client_ip_;  // the peer's address (a background refresh outlives the connection)
  cache::RequestCacheControl request_cc_;
  const config::RouteSettings* route_ = nullptr;
  std::shared_ptr<CacheInstance> cache_;
  cache::CacheKey key_;
  std::string lookup_key_;
  std::string variant_identity_;     // identity of the variant looked up (Vary)
  std::string vary_epoch_;           // the marker's epoch: variants are keyed under it
  std::vector<std::string> marker_fields_;
  int upstream_status_ = 0;
  bool saw_vary_marker_ = false;
  CacheStatus status_ = CacheStatus::kBypass;
  std::string_view fwd_reason_ = "bypass";
  SystemTime request_time_;
  // For the access log and metrics.
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point upstream_started_;
  std::optional<std::chrono::microseconds> upstream_time_;
  int response_status_ = 0;
  uint64_t bytes_out_ = 0;

  // Coalescing.
  InflightLease lease_;
  int joins_ = 0;
  bool waiting_ = false;
  bool collapsed_ = false;
  std::unique_ptr<event::Timer> wait_timer_;

  // The stored response found stale: revalidated, or served when the app fails.
  std::optional<StoredResponse> stale_;
  FetchKind fetch_kind_ = FetchKind::kPass;
  bool not_modified_ = false;
  http::HeaderMap not_modified_fields_;
  std::string delivery_fields_;  // header lines for this client only (a 304's Set-Cookie)
  bool discard_body_ = false;
  std::shared_ptr<ProxyExchange> background_self_;  // keeps a background refresh alive

  upstream::UpstreamConnectionPtr upstream_;
  std::string upstream_request_head_;
  std::string pending_body_;  // request body received before the upstream connection existed
  bool request_complete_ = false;
  bool request_has_body_ = false;
  bool retried_ = false;

  bool response_started_ = false;
  bool chunked_out_ = false;
  bool close_after_ = false;
  bool head_request_ = false;
  bool done_ = false;

  bool storing_ = false;
  cache::StorePlan plan_;
  uint64_t max_object_bytes_ = 0;
  http::ResponseHead stored_head_;
  std::string captured_body_;
  SystemTime response_time_;
  std::chrono::seconds initial_age_{0};
};

}  // namespace cachecar::server
