#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/storage/backend.h"
#include "cachecar/storage/registry.h"

namespace cachecar::storage {

struct MemoryStoreOptions {
  uint64_t max_entries = 10000;
  uint64_t max_bytes = 256ull << 20;
  uint64_t max_object_bytes = 8ull << 20;
  // Values of at least this many bytes are kept in sealed files (see StoredBytes), at most
  // max_sealed_files at once; the rest stay in ordinary memory. 0 files: never.
  uint64_t sealed_min_bytes = 64ull << 10;
  uint64_t max_sealed_files = 0;
};

// How many sealed files one memory store may hold by default: an eighth of the descriptors the
// process may open (several caches, the connections and the Redis links need the rest).
uint64_t defaultMaxSealedFiles();

// The in-process store behind the "memory" backend (Django's LocMemCache): one per configured
// cache, shared by every worker thread, so an entry stored by one worker is a hit on all.
//
// Thread-safe. Keys are spread over up to kMaxShards shards, each with its own mutex, LRU list
// and hash index, so workers rarely contend. The bounds hold *in total*: max_entries and
// max_bytes are divided across the shards (remainders to the first ones), so the sum of the
// per-shard bounds equals the configured bound and no cross-shard accounting is needed on the
// hot path. The price is that eviction is LRU per shard, not globally. Small stores get fewer
// shards (down to one, an exact LRU) so that every shard keeps a useful share: at least
// kMinEntriesPerShard entries and room for two of the largest allowed objects.
//
// Large values move into sealed files when stored (StoredBytes::sealedCopy), so that hits send
// them by reference; a value the system will not seal is kept as it came.
//
// The byte bound counts what an entry really costs: key bytes + value bytes + kEntryOverhead
// (list node, index node, shared_ptr control block). Expired entries (TTL deadline on the
// steady clock) are misses and are removed when a get finds them; otherwise they age out of
// the LRU like any other entry.
class MemoryStore {
 public:
  using Clock = std::chrono::steady_clock;

  static constexpr uint64_t kEntryOverhead = 160;
  static constexpr size_t kMaxShards = 16;
  static constexpr uint64_t kMinEntriesPerShard = 64;

  explicit MemoryStore(const MemoryStoreOptions& options);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // One hash lookup under one shard lock; the hit shares the stored Blob (no byte copy).
  GetResult get(const std::string& key) { return get(key, Clock::now()); }
  GetResult get(const std::string& key, Clock::time_point now);

  // kOk, or kTooLarge (over max_object_bytes, or more than a shard can hold: nothing stored,
  // an older value under the key is kept), or kError for a null value. A ttl of zero or less
  // stores nothing and removes any older value: the entry would already be expired.
  StorageStatus set(const std::string& key, Blob value, std::chrono::milliseconds ttl) {
    return set(key, std::move(value), ttl, Clock::now());
  }
  StorageStatus set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
                    Clock::time_point now);

  // True when the key was present.
  bool remove(const std::string& key);
  // Removes every key starting with `prefix`; returns how many.
  uint64_t clearPrefix(std::string_view prefix);

  BackendStats stats() const;

  // Counters (see Backend::addToCounter): kept outside the LRU, so the bounds never drop one.
  int64_t addToCounter(const std::string& key, int64_t delta);

  // What an entry counts against max_bytes.
  static uint64_t entryCost(size_t key_bytes, size_t value_bytes) {
    return key_bytes + value_bytes + kEntryOverhead;
  }
  size_t shardCount() const { return shard_count_; }

 private:
  struct Shard;

  Shard& shardFor(std::string_view key) const;

  std::mutex counters_mutex_;
  std::map<std::string, int64_t, std::less<>> counters_;
  uint64_t max_object_bytes_;
  uint64_t sealed_min_bytes_;
  std::shared_ptr<SealedFileBudget> sealed_files_;
  size_t shard_count_;
  unsigned shard_shift_;  // shard = hash >> shard_shift_ (top bits; the index uses the low ones)
  std::unique_ptr<Shard[]> shards_;
};

// The per-loop Backend handle onto a shared MemoryStore. Every operation completes before the
// call returns (contract point 3), which keeps a hit to one lookup and one callback.
class MemoryBackend final : public Backend {
 public:
  explicit MemoryBackend(std::shared_ptr<MemoryStore> store) : store_(std::move(store)) {}

  std::string_view backendName() const override { return "memory"; }
  void get(const std::string& key, GetCallback cb) override;
  void set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
           DoneCallback cb) override;
  // kOk whether or not the key existed.
  void remove(const std::string& key, DoneCallback cb) override;
  void clearPrefix(const std::string& prefix, DoneCallback cb) override;
  void addToCounter(const std::string& key, int64_t delta, CounterCallback cb) override;
  BackendStats stats() const override { return store_->stats(); }
  bool inProcess() const override { return true; }

 private:
  std::shared_ptr<MemoryStore> store_;
};

// One MemoryStore per configured cache; every loop gets a handle onto it.
class MemoryProvider final : public BackendProvider {
 public:
  // Validates the memory options (all bounds must be at least 1).
  static Result<BackendProviderPtr> create(const config::CacheSettings& settings);

  explicit MemoryProvider(const MemoryStoreOptions& options)
      : store_(std::make_shared<MemoryStore>(options)) {}

  std::string_view backendName() const override { return "memory"; }
  BackendPtr createForLoop(event::EventLoop& loop) override;
  const std::shared_ptr<MemoryStore>& store() const { return store_; }

 private:
  std::shared_ptr<MemoryStore> store_;
};

}  // namespace cachecar::storage
