#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cachecar/event/event_loop.h"

namespace cachecar::server {

// How a coalesced fetch ended, as its waiters learn it (Pingora's lock statuses, simplified).
enum class FetchOutcome {
  kStored,       // the entry is in the store: look it up again
  kNotStored,    // nothing was stored this time (the store failed): go to the app yourself
  kUncacheable,  // the app's response may not be stored (no-store, private, Set-Cookie, an
                 // uncacheable status, too large): go to the app yourself, and remember it
  kFailed,       // the fetch failed or its owner went away: compete to fetch again
};

// What a request that missed does about a fetch for its key.
enum class JoinRole {
  kFetch,       // fetch, and complete the key for those who wait
  kWait,        // another request is fetching: wait for its outcome
  kFetchAlone,  // the key's last response could not be stored: fetch, nobody waits
};

// Request coalescing across all workers: the first miss for a key fetches from the app, the
// others wait for it. Process-wide (one table for every worker thread), so 20 concurrent cold
// requests spread over several workers still cost one request to the app.
//
// A waiter is told through its own event loop (post), so its callback runs on its own thread.
//
// Keys whose response could not be stored are remembered for a while (Varnish's hit-for-miss):
// concurrent requests for a private or no-store page must not queue behind each other, since
// each of them needs its own answer from the app anyway. Such a key is still looked up and its
// responses are still stored when they may be; a stored response ends the memory at once.
class InflightTable {
 public:
  using Notify = std::function<void(FetchOutcome)>;
  using Clock = std::chrono::steady_clock;

  // Varnish's default hit-for-miss time; the count bounds the memory (about 10000 keys of
  // a few hundred bytes); past it, more uncacheable keys simply coalesce as before.
  static constexpr std::chrono::milliseconds kDefaultUncacheableMemory{120'000};
  static constexpr size_t kDefaultMaxUncacheableKeys = 10'000;

  using Now = std::function<Clock::time_point()>;

  explicit InflightTable(std::chrono::milliseconds uncacheable_memory = kDefaultUncacheableMemory,
                         size_t max_uncacheable_keys = kDefaultMaxUncacheableKeys,
                         Now now = Clock::now)
      : uncacheable_memory_(uncacheable_memory),
        max_uncacheable_keys_(max_uncacheable_keys),
        now_(std::move(now)) {}

  // kWait: `notify` will be posted to `loop` once the fetcher completes.
  JoinRole join(const std::string& key, event::EventLoop& loop, Notify notify);
  // The fetcher is done: every waiter hears `outcome`, and the key is free again.
  // kUncacheable starts remembering the key, kStored stops it.
  void complete(const std::string& key, FetchOutcome outcome);
  // A response for `key` fetched alone was stored: requests for it coalesce again.
  void forgetUncacheable(const std::string& key);

  // At shutdown, before worker loops are destroyed: forget every waiter and post nothing
  // more (a waiter's loop may already be gone).
  void shutdown();

  size_t inflightCountForTest() const;

 private:
  struct Waiter {
    event::EventLoop* loop;
    Notify notify;
  };
  // All with mutex_ held.
  bool isUncacheable(const std::string& key, Clock::time_point now);
  void rememberUncacheable(const std::string& key, Clock::time_point now);

  const std::chrono::milliseconds uncacheable_memory_;
  const size_t max_uncacheable_keys_;
  const Now now_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<Waiter>> inflight_;
  // Key -> until when it is remembered, and the same entries oldest first (every entry lives
  // equally long, so expiry is a pop from the front). A forgotten or renewed key leaves its
  // old entry in the queue; the map's time tells it apart when it reaches the front.
  std::unordered_map<std::string, Clock::time_point> uncacheable_;
  std::deque<std::pair<Clock::time_point, std::string>> uncacheable_order_;
  bool closed_ = false;
};

// The fetcher's side of a coalesced fetch: completes the key once, with kFailed when it is
// destroyed without an outcome (the client went away, the exchange died), so waiters are
// never stranded.
class InflightLease {
 public:
  InflightLease() = default;
  InflightLease(InflightTable* table, std::string key) : table_(table), key_(std::move(key)) {}
  ~InflightLease() { complete(FetchOutcome::kFailed); }
  InflightLease(InflightLease&& other) noexcept { *this = std::move(other); }
  InflightLease& operator=(InflightLease&& other) noexcept {
    if (this != &other) {
      complete(FetchOutcome::kFailed);
      table_ = other.table_;
      key_ = std::move(other.key_);
      other.table_ = nullptr;
    }
    return *this;
  }
  InflightLease(const InflightLease&) = delete;
  InflightLease& operator=(const InflightLease&) = delete;

  bool held() const { return table_ != nullptr; }
  void complete(FetchOutcome outcome) {
    if (table_ != nullptr) {
      InflightTable* table = table_;
      table_ = nullptr;
      table->complete(key_, outcome);
    }
  }

 private:
  InflightTable* table_ = nullptr;
  std::string key_;
};

}  // namespace cachecar::server
