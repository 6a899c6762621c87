#include "cachecar/storage/memory_backend.h"

#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace cachecar::storage {

namespace {

// Longer TTLs are clamped so that now + ttl cannot overflow the steady clock.
constexpr std::chrono::milliseconds kMaxTtl = std::chrono::hours(24 * 365 * 10);

size_t chooseShardCount(const MemoryStoreOptions& options) {
  const uint64_t biggest = MemoryStore::entryCost(0, options.max_object_bytes);
  size_t shards = MemoryStore::kMaxShards;
  while (shards > 1) {
    const bool enough_entries = options.max_entries / shards >= MemoryStore::kMinEntriesPerShard;
    const bool enough_bytes = options.max_bytes / shards >= 2 * biggest;
    if (enough_entries && enough_bytes) {
      break;
    }
    shards /= 2;
  }
  return shards;
}

// Splits `total` into `parts` shares that add up to exactly `total`.
uint64_t share(uint64_t total, size_t parts, size_t index) {
  return total / parts + (index < total % parts ? 1 : 0);
}

}  // namespace

struct MemoryStore::Shard {
  struct Entry {
    std::string key;
    Blob value;
    Clock::time_point expires;
    uint64_t cost = 0;
  };
  using Lru = std::list<Entry>;

  // The index keys are views of Entry::key: list nodes never move, so the views stay valid
  // and a lookup by the caller's std::string needs no allocation.
  using Index = std::unordered_map<std::string_view, Lru::iterator>;

  void erase(Index::iterator it) {
    bytes -= it->second->cost;
    Lru::iterator node = it->second;
    index.erase(it);  // before the node: the index key views the node's string
    lru.erase(node);
  }

  // The evicted values go to `released`, to be freed after the lock.
  void evictOverflow(std::vector<Blob>& released) {
    // The newest entry is at the front and fits alone (set() checked), so it survives.
    while ((index.size() > max_entries || bytes > max_bytes) && lru.size() > 1) {
      released.push_back(std::move(lru.back().value));
      erase(index.find(lru.back().key));
      ++evictions;
    }
  }

  // Aligned so that two shards' mutexes never share a cache line.
  alignas(64) mutable std::mutex mutex;
  Lru lru;  // front = most recently used
  Index index;
  uint64_t bytes = 0;
  uint64_t evictions = 0;
  uint64_t max_entries = 0;
  uint64_t max_bytes = 0;
};

uint64_t defaultMaxSealedFiles() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return 1024;
  }
  return static_cast<uint64_t>(limit.rlim_cur) / 8;
}

MemoryStore::MemoryStore(const MemoryStoreOptions& options)
    : max_object_bytes_(options.max_object_bytes),
      sealed_min_bytes_(options.sealed_min_bytes),
      sealed_files_(std::make_shared<SealedFileBudget>(options.max_sealed_files)),
      shard_count_(chooseShardCount(options)),
      shard_shift_(static_cast<unsigned>(64 - std::countr_zero(shard_count_))),
      shards_(std::make_unique<Shard[]>(shard_count_)) {
  for (size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    shard.max_entries = share(options.max_entries, shard_count_, i);
    shard.max_bytes = share(options.max_bytes, shard_count_, i);
    // Enough buckets for a full shard up front (bounded, for very large max_entries), so the
    // hot path rarely rehashes.
    shard.index.reserve(static_cast<size_t>(std::min<uint64_t>(shard.max_entries, 4096)));
  }
}

MemoryStore::~MemoryStore() = default;

MemoryStore::Shard& MemoryStore::shardFor(std::string_view key) const {
  if (shard_count_ == 1) {
    return shards_[0];
  }
  // The top bits pick the shard; the index buckets use the hash modulo a prime, so the two
  // choices stay independent. (std::hash is fine here: it never leaves the process.)
  const uint64_t hash = std::hash<std::string_view>{}(key);
  return shards_[static_cast<size_t>(hash >> shard_shift_)];
}

GetResult MemoryStore::get(const std::string& key, Clock::time_point now) {
  Shard& shard = shardFor(key);
  Blob expired;  // released after the lock: the last reference may free a large value
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.index.find(std::string_view(key));
    if (it == shard.index.end()) {
      return {StorageStatus::kNotFound, nullptr};
    }
    Shard::Lru::iterator node = it->second;
    if (node->expires > now) {
      shard.lru.splice(shard.lru.begin(), shard.lru, node);
      return {StorageStatus::kOk, node->value};
    }
    expired = std::move(node->value);
    shard.erase(it);
  }
  return {StorageStatus::kNotFound, nullptr};
}

StorageStatus MemoryStore::set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
                               Clock::time_point now) {
  if (!value) {
    return StorageStatus::kError;
  }
  if (value->size() > max_object_bytes_) {
    return StorageStatus::kTooLarge;
  }
  if (ttl.count() <= 0) {
    remove(key);
    return StorageStatus::kOk;
  }
  const Clock::time_point expires = now + std::min(ttl, kMaxTtl);
  const uint64_t cost = entryCost(key.size(), value->size());
  Shard& shard = shardFor(key);
  if (cost > shard.max_bytes) {
    return StorageStatus::kTooLarge;
  }
  if (value->size() >= sealed_min_bytes_ && value->sealedFile() < 0) {
    if (auto sealed = StoredBytes::sealedCopy(value->view(), sealed_files_)) {
      value = std::move(sealed);
    }
  }

  std::vector<Blob> released;  // the replaced and evicted values, freed after the lock
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.index.find(std::string_view(key));
  if (it != shard.index.end()) {
    Shard::Lru::iterator node = it->second;
    shard.bytes = shard.bytes - node->cost + cost;
    released.push_back(std::exchange(node->value, std::move(value)));
    node->expires = expires;
    node->cost = cost;
    shard.lru.splice(shard.lru.begin(), shard.lru, node);
  } else {
    shard.lru.push_front(Shard::Entry{key, std::move(value), expires, cost});
    shard.index.emplace(std::string_view(shard.lru.front().key), shard.lru.begin());
    shard.bytes += cost;
  }
  shard.evictOverflow(released);
  return StorageStatus::kOk;
}

bool MemoryStore::remove(const std::string& key) {
  Shard& shard = shardFor(key);
  Blob removed;  // released after the lock
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.index.find(std::string_view(key));
  if (it == shard.index.end()) {
    return false;
  }
  removed = std::move(it->second->value);
  shard.erase(it);
  return true;
}

uint64_t MemoryStore::clearPrefix(std::string_view prefix) {
  uint64_t removed = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    Shard& shard = shards_[i];
    std::vector<Blob> released;  // freed after the lock
    std::lock_guard<std::mutex> lock(shard.mutex);
    for (auto node = shard.lru.begin(); node != shard.lru.end();) {
      auto next = std::next(node);
      if (std::string_view(node->key).starts_with(prefix)) {
        released.push_back(std::move(node->value));
        shard.erase(shard.index.find(std::string_view(node->key)));
        ++removed;
      }
      node = next;
    }
  }
  return removed;
}

int64_t MemoryStore::addToCounter(const std::string& key, int64_t delta) {
  std::lock_guard<std::mutex> lock(counters_mutex_);
  int64_t& value = counters_[key];
  value += delta;
  return value;
}

BackendStats MemoryStore::stats() const {
  BackendStats out;
  for (size_t i = 0; i < shard_count_; ++i) {
    const Shard& shard = shards_[i];
    std::lock_guard<std::mutex> lock(shard.mutex);
    out.entries += shard.index.size();
    out.bytes += shard.bytes;
    out.evictions += shard.evictions;
  }
  return out;
}

void MemoryBackend::get(const std::string& key, GetCallback cb) { cb(store_->get(key)); }

void MemoryBackend::set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
                        DoneCallback cb) {
  cb(store_->set(key, std::move(value), ttl));
}

void MemoryBackend::remove(const std::string& key, DoneCallback cb) {
  store_->remove(key);
  cb(StorageStatus::kOk);
}

void MemoryBackend::clearPrefix(const std::string& prefix, DoneCallback cb) {
  store_->clearPrefix(prefix);
  cb(StorageStatus::kOk);
}

void MemoryBackend::addToCounter(const std::string& key, int64_t delta, CounterCallback cb) {
  cb(StorageStatus::kOk, store_->addToCounter(key, delta));
}

Result<BackendProviderPtr> MemoryProvider::create(const config::CacheSettings& settings) {
  const std::string where = "cache '" + settings.name + "' (memory): ";
  if (settings.max_entries == 0) {
    return Error{where + "max_entries must be at least 1"};
  }
  if (settings.max_bytes == 0) {
    return Error{where + "max_bytes must be at least 1"};
  }
  if (settings.max_object_bytes == 0) {
    return Error{where + "max_object_bytes must be at least 1"};
  }
  MemoryStoreOptions options;
  options.max_entries = settings.max_entries;
  options.max_bytes = settings.max_bytes;
  options.max_object_bytes = settings.max_object_bytes;
  options.max_sealed_files = defaultMaxSealedFiles();
  return BackendProviderPtr(std::make_shared<MemoryProvider>(options));
}

BackendPtr MemoryProvider::createForLoop(event::EventLoop& /*loop*/) {
  return std::make_unique<MemoryBackend>(store_);
}

}  // namespace cachecar::storage
