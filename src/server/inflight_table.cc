#include "cachecar/server/inflight_table.h"

namespace cachecar::server {

bool InflightTable::join(const std::string& key, event::EventLoop& loop, Notify notify) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) {
    return true;
  }
  auto [it, inserted] = inflight_.try_emplace(key);
  if (inserted) {
    return true;
  }
  it->second.push_back(Waiter{&loop, std::move(notify)});
  return false;
}

void InflightTable::complete(const std::string& key, FetchOutcome outcome) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) {
      return;
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

void InflightTable::shutdown() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = true;
  inflight_.clear();
}

size_t InflightTable::inflightCountForTest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return inflight_.size();
}

}  // namespace cachecar::server
