#include "cachecar/server/inflight_table.h"

namespace cachecar::server {

JoinRole InflightTable::join(const std::string& key, event::EventLoop& loop, Notify notify) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) {
    return JoinRole::kFetch;
  }
  if (!uncacheable_.empty() && isUncacheable(key, now_())) {
    return JoinRole::kFetchAlone;
  }
  auto [it, inserted] = inflight_.try_emplace(key);
  if (inserted) {
    return JoinRole::kFetch;
  }
  it->second.push_back(Waiter{&loop, std::move(notify)});
  return JoinRole::kWait;
}

void InflightTable::complete(const std::string& key, FetchOutcome outcome) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) {
      return;
    }
    if (outcome == FetchOutcome::kUncacheable) {
      rememberUncacheable(key, now_());
    } else if (outcome == FetchOutcome::kStored) {
      uncacheable_.erase(key);
    }
    auto it = inflight_.find(key);
    if (it == inflight_.end()) {
      return;
    }
    waiters = std::move(it->second);
    inflight_.erase(it);
  }
  // Outside the lock: post() takes the target loop's own lock.
  for (auto& waiter : waiters) {
    waiter.loop->post([notify = std::move(waiter.notify), outcome] { notify(outcome); });
  }
}

void InflightTable::forgetUncacheable(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  uncacheable_.erase(key);
}

bool InflightTable::isUncacheable(const std::string& key, Clock::time_point now) {
  while (!uncacheable_order_.empty() && uncacheable_order_.front().first <= now) {
    auto& [until, expired_key] = uncacheable_order_.front();
    auto it = uncacheable_.find(expired_key);
    if (it != uncacheable_.end() && it->second == until) {
      uncacheable_.erase(it);
    }
    uncacheable_order_.pop_front();
  }
  return uncacheable_.contains(key);
}

void InflightTable::rememberUncacheable(const std::string& key, Clock::time_point now) {
  if (isUncacheable(key, now) || uncacheable_order_.size() >= max_uncacheable_keys_) {
    return;  // already remembered (a fetch alone does not renew it), or full
  }
  const Clock::time_point until = now + uncacheable_memory_;
  uncacheable_[key] = until;
  uncacheable_order_.emplace_back(until, key);
}

void InflightTable::shutdown() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  inflight_.clear();
  uncacheable_.clear();
  uncacheable_order_.clear();
}

size_t InflightTable::inflightCountForTest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return inflight_.size();
}

}  // namespace cachecar::server
