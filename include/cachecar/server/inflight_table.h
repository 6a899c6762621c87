#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cachecar/event/event_loop.h"

namespace cachecar::server {

// How a coalesced fetch ended, as its waiters learn it (Pingora's lock statuses, simplified).
enum class FetchOutcome {
  kStored,     // the entry is in the store: look it up again
  kNotStored,  // the response may not be stored (or was too large): go to the app yourself
  kFailed,     // the fetch failed or its owner went away: compete to fetch again
};

// Request coalescing across all workers: the first miss for a key fetches from the app, the
// others wait for it. Process-wide (one table for every worker thread), so 20 concurrent cold
// requests spread over several workers still cost one request to the app.
//
// A waiter is told through its own event loop (post), so its callback runs on its own thread.
class InflightTable {
 public:
  using Notify = std::function<void(FetchOutcome)>;

  // Returns true when the caller becomes the fetcher for `key`; otherwise `notify` will be
  // posted to `loop` once the fetcher completes.
  bool join(const std::string& key, event::EventLoop& loop, Notify notify);
  // The fetcher is done: every waiter hears `outcome`, and the key is free again.
  void complete(const std::string& key, FetchOutcome outcome);

  // At shutdown, before worker loops are destroyed: forget every waiter and post nothing
  // more (a waiter's loop may already be gone).
  void shutdown();

  size_t inflightCountForTest() const;

 private:
  struct Waiter {
    event::EventLoop* loop;
    Notify notify;
  };
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::vector<Waiter>> inflight_;
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
