#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cachecar/cache/cache_key.h"
#include "cachecar/cache/entry_codec.h"
#include "cachecar/common/clock.h"
#include "cachecar/http/message.h"
#include "cachecar/storage/backend.h"
#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::server {

class Worker;
class ClientConnection;
struct CacheInstance;

// How the cache took part in an exchange: the X-Cache value and the log/metric label.
enum class CacheStatus { kHit, kMiss, kBypass, kError };
std::string_view toString(CacheStatus status);

// One request and its response: the request path as named steps.
//
//   start -> (bypass) -> fetch -> deliver
//         -> lookup -> onLookup -> hit: deliverHit
//                               -> miss: fetch -> onUpstreamHead -> onUpstreamBody* ->
//                                         onUpstreamComplete -> store
//
// Lives in a shared_ptr so storage callbacks can hold a weak_ptr: a callback arriving after the
// client went away finds nothing and does nothing.
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
  void onUpstreamHead(http::ResponseHead& head) override;
  void onUpstreamBody(std::string_view chunk) override;
  void onUpstreamComplete() override;
  void onUpstreamError(upstream::UpstreamError error) override;

 private:
  void lookup();
  void onLookup(storage::GetResult result);
  bool deliverHit(const storage::Blob& blob);
  void fetch();
  void sendUpstreamRequest();
  void writeResponseHead(http::ResponseHead& head);
  void decideStore(const http::ResponseHead& head);
  void store();
  void finish(bool close);
  void respondError(int status, std::string_view message);
  void releaseUpstream();

  Worker& worker_;
  ClientConnection* client_;
  http::RequestHead request_;
  const config::RouteSettings* route_ = nullptr;
  CacheInstance* cache_ = nullptr;
  cache::CacheKey key_;
  CacheStatus status_ = CacheStatus::kBypass;
  SystemTime request_time_;

  upstream::UpstreamConnectionPtr upstream_;
  std::string upstream_request_head_;
  std::string pending_body_;  // request body received before the upstream connection existed
  bool request_complete_ = false;
  bool request_has_body_ = false;
  bool retried_ = false;
  bool fetching_ = false;

  bool response_started_ = false;
  bool chunked_out_ = false;
  bool close_after_ = false;
  bool head_request_ = false;
  bool done_ = false;

  bool storing_ = false;
  std::chrono::milliseconds freshness_{0};
  uint64_t max_object_bytes_ = 0;
  std::string stored_head_;
  std::string captured_body_;
  SystemTime response_time_;
  std::chrono::seconds initial_age_{0};
};

}  // namespace cachecar::server
