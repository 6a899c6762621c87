#include "cachecar/storage/memory_backend.h"

#include <gtest/gtest.h>

#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/event/event_loop.h"
#include "support/redis_server.h"

namespace cachecar::storage {

// Readable gtest output for statuses (found by argument-dependent lookup).
void PrintTo(StorageStatus status, std::ostream* out) { *out << toString(status); }

namespace {

using std::chrono::milliseconds;
using Clock = MemoryStore::Clock;

constexpr milliseconds kLongTtl = std::chrono::minutes(10);

MemoryStoreOptions smallOptions(uint64_t max_entries, uint64_t max_bytes = 1ull << 20,
                                uint64_t max_object_bytes = 64ull << 10) {
  MemoryStoreOptions options;
  options.max_entries = max_entries;
  options.max_bytes = max_bytes;
  options.max_object_bytes = max_object_bytes;
  return options;
}

bool has(MemoryStore& store, const std::string& key) {
  return store.get(key).status == StorageStatus::kOk;
}

TEST(MemoryStoreTest, SmallStoresUseOneShardSoLruIsExact) {
  EXPECT_EQ(MemoryStore(smallOptions(3)).shardCount(), 1u);
  EXPECT_EQ(MemoryStore(smallOptions(127)).shardCount(), 1u);
  EXPECT_EQ(MemoryStore(smallOptions(128)).shardCount(), 2u);
  // Defaults (10000 entries, 256 MiB, 8 MiB objects): each shard must hold two 8 MiB objects.
  EXPECT_EQ(MemoryStore(MemoryStoreOptions{}).shardCount(), 8u);
  EXPECT_EQ(MemoryStore(smallOptions(100000, 1ull << 30, 1ull << 20)).shardCount(),
            MemoryStore::kMaxShards);
}

TEST(MemoryStoreTest, EvictsLeastRecentlyUsedFirst) {
  MemoryStore store(smallOptions(3));
  ASSERT_EQ(store.set("a", makeBlob("1"), kLongTtl), StorageStatus::kOk);
  ASSERT_EQ(store.set("b", makeBlob("2"), kLongTtl), StorageStatus::kOk);
  ASSERT_EQ(store.set("c", makeBlob("3"), kLongTtl), StorageStatus::kOk);
  ASSERT_TRUE(has(store, "a"));  // a is now the most recently used; b the least
  ASSERT_EQ(store.set("d", makeBlob("4"), kLongTtl), StorageStatus::kOk);
  EXPECT_FALSE(has(store, "b"));
  EXPECT_TRUE(has(store, "a"));
  EXPECT_TRUE(has(store, "c"));
  EXPECT_TRUE(has(store, "d"));
  EXPECT_EQ(store.stats().evictions, 1u);
  EXPECT_EQ(store.stats().entries, 3u);
}

TEST(MemoryStoreTest, OverwriteCountsAsUse) {
  MemoryStore store(smallOptions(3));
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_EQ(store.set(key, makeBlob(key), kLongTtl), StorageStatus::kOk);
  }
  ASSERT_EQ(store.set("a", makeBlob("new"), kLongTtl), StorageStatus::kOk);
  ASSERT_EQ(store.set("d", makeBlob("d"), kLongTtl), StorageStatus::kOk);
  EXPECT_FALSE(has(store, "b"));
  ASSERT_TRUE(has(store, "a"));
  EXPECT_EQ(store.get("a").blob->view(), "new");
  EXPECT_EQ(store.stats().entries, 3u);
}

TEST(MemoryStoreTest, MaxEntriesBoundsTheStore) {
  MemoryStore store(smallOptions(50));
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(store.set("key" + std::to_string(i), makeBlob("v"), kLongTtl), StorageStatus::kOk);
  }
  BackendStats stats = store.stats();
  EXPECT_EQ(stats.entries, 50u);
  EXPECT_EQ(stats.evictions, 150u);
  EXPECT_FALSE(has(store, "key149"));
  EXPECT_TRUE(has(store, "key150"));
  EXPECT_TRUE(has(store, "key199"));
}

TEST(MemoryStoreTest, MaxBytesCountsKeyValueAndOverhead) {
  const std::string value(100, 'v');
  const uint64_t cost = MemoryStore::entryCost(4, value.size());  // keys "k:01".."k:04"
  EXPECT_EQ(cost, 4 + 100 + MemoryStore::kEntryOverhead);

  {
    MemoryStore store(smallOptions(100, 3 * cost));
    for (const char* key : {"k:01", "k:02", "k:03"}) {
      ASSERT_EQ(store.set(key, makeBlob(value), kLongTtl), StorageStatus::kOk);
    }
    EXPECT_EQ(store.stats().bytes, 3 * cost);
    EXPECT_EQ(store.stats().entries, 3u);
    ASSERT_EQ(store.set("k:04", makeBlob(value), kLongTtl), StorageStatus::kOk);
    EXPECT_FALSE(has(store, "k:01"));
    EXPECT_EQ(store.stats().bytes, 3 * cost);
    EXPECT_EQ(store.stats().evictions, 1u);
  }
  {
    // One byte less and the third entry no longer fits: keys and overhead count.
    MemoryStore store(smallOptions(100, 3 * cost - 1));
    for (const char* key : {"k:01", "k:02", "k:03"}) {
      ASSERT_EQ(store.set(key, makeBlob(value), kLongTtl), StorageStatus::kOk);
    }
    EXPECT_EQ(store.stats().entries, 2u);
    EXPECT_EQ(store.stats().bytes, 2 * cost);
    EXPECT_FALSE(has(store, "k:01"));
  }
  {
    // A long key costs as much as a long value.
    MemoryStore store(smallOptions(100, 2 * cost + 50));
    ASSERT_EQ(store.set("k:01", makeBlob(value), kLongTtl), StorageStatus::kOk);
    ASSERT_EQ(store.set(std::string(104, 'L'), makeBlob(""), kLongTtl), StorageStatus::kOk);
    EXPECT_EQ(store.stats().entries, 2u);
    ASSERT_EQ(store.set(std::string(60, 'M'), makeBlob(""), kLongTtl), StorageStatus::kOk);
    EXPECT_EQ(store.stats().entries, 2u);
    EXPECT_FALSE(has(store, "k:01"));
  }
}

TEST(MemoryStoreTest, BigEntryEvictsSeveralSmallOnes) {
  const uint64_t small = MemoryStore::entryCost(2, 10);
  MemoryStore store(smallOptions(100, 10 * small, 1ull << 20));
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(store.set("s" + std::to_string(i), makeBlob(std::string(10, 'x')), kLongTtl),
              StorageStatus::kOk);
  }
  EXPECT_EQ(store.stats().entries, 10u);
  // Costs about four small entries.
  const std::string big(4 * small - MemoryStore::kEntryOverhead - 3, 'B');
  ASSERT_EQ(store.set("big", makeBlob(big), kLongTtl), StorageStatus::kOk);
  EXPECT_TRUE(has(store, "big"));
  EXPECT_EQ(store.stats().entries, 7u);  // s0..s3 evicted
  EXPECT_FALSE(has(store, "s3"));
  EXPECT_TRUE(has(store, "s4"));
  EXPECT_LE(store.stats().bytes, 10 * small);
}

TEST(MemoryStoreTest, RefusesWhatCannotFitAndKeepsTheOlderValue) {
  MemoryStore store(smallOptions(100, 1000, 5000));
  ASSERT_EQ(store.set("k", makeBlob("old"), kLongTtl), StorageStatus::kOk);
  // Under max_object_bytes, but more than the whole store holds.
  EXPECT_EQ(store.set("k", makeBlob(std::string(2000, 'x')), kLongTtl), StorageStatus::kTooLarge);
  // Over max_object_bytes.
  EXPECT_EQ(store.set("k", makeBlob(std::string(5001, 'x')), kLongTtl), StorageStatus::kTooLarge);
  ASSERT_TRUE(has(store, "k"));
  EXPECT_EQ(store.get("k").blob->view(), "old");
  EXPECT_EQ(store.stats().entries, 1u);
}

TEST(MemoryStoreTest, ExpiredEntriesAreMissesAndRemovedOnGet) {
  MemoryStore store(smallOptions(10));
  const Clock::time_point t0 = Clock::now();
  ASSERT_EQ(store.set("k", makeBlob("v"), milliseconds(100), t0), StorageStatus::kOk);
  EXPECT_EQ(store.get("k", t0 + milliseconds(99)).status, StorageStatus::kOk);
  EXPECT_EQ(store.stats().entries, 1u);
  EXPECT_EQ(store.get("k", t0 + milliseconds(100)).status, StorageStatus::kNotFound);
  EXPECT_EQ(store.stats().entries, 0u);
  EXPECT_EQ(store.stats().bytes, 0u);
  // An overwrite gets a new deadline.
  ASSERT_EQ(store.set("k", makeBlob("v2"), milliseconds(100), t0 + milliseconds(200)),
            StorageStatus::kOk);
  EXPECT_EQ(store.get("k", t0 + milliseconds(250)).status, StorageStatus::kOk);
}

TEST(MemoryStoreTest, HitSharesTheStoredBytes) {
  MemoryStore store(smallOptions(10));
  Blob stored = makeBlob(std::string(4096, 'z'));
  ASSERT_EQ(store.set("k", stored, kLongTtl), StorageStatus::kOk);
  GetResult first = store.get("k");
  GetResult second = store.get("k");
  ASSERT_EQ(first.status, StorageStatus::kOk);
  EXPECT_EQ(first.blob.get(), stored.get());  // the same object: no copy
  EXPECT_EQ(second.blob.get(), stored.get());
  // A reader keeps its bytes even when the entry goes away.
  EXPECT_TRUE(store.remove("k"));
  EXPECT_EQ(first.blob->size(), 4096u);
}

MemoryStoreOptions sealingOptions(uint64_t max_sealed_files) {
  MemoryStoreOptions options = smallOptions(100);
  options.sealed_min_bytes = 1024;
  options.max_sealed_files = max_sealed_files;
  return options;
}

bool isOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

TEST(MemoryStoreTest, LargeValuesMoveIntoSealedFiles) {
  MemoryStore store(sealingOptions(4));
  const std::string large(1024, 'L');
  ASSERT_EQ(store.set("large", makeBlob(large), kLongTtl), StorageStatus::kOk);
  ASSERT_EQ(store.set("small", makeBlob(std::string(1023, 's')), kLongTtl), StorageStatus::kOk);
  GetResult hit = store.get("large");
  ASSERT_EQ(hit.status, StorageStatus::kOk);
  EXPECT_GE(hit.blob->sealedFile(), 0);
  EXPECT_EQ(hit.blob->view(), large);
  EXPECT_EQ(store.get("large").blob.get(), hit.blob.get());  // hits share the sealed copy
  EXPECT_EQ(store.get("small").blob->sealedFile(), -1);
  // Sealing changes where the bytes live, not what they cost.
  EXPECT_EQ(store.stats().bytes,
            MemoryStore::entryCost(5, 1024) + MemoryStore::entryCost(5, 1023));
}

TEST(MemoryStoreTest, PastTheFileBudgetValuesStayInOrdinaryMemory) {
  MemoryStore store(sealingOptions(2));
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_EQ(store.set(key, makeBlob(std::string(2000, key[0])), kLongTtl), StorageStatus::kOk);
  }
  EXPECT_GE(store.get("a").blob->sealedFile(), 0);
  EXPECT_GE(store.get("b").blob->sealedFile(), 0);
  GetResult c = store.get("c");
  EXPECT_EQ(c.blob->sealedFile(), -1);
  EXPECT_EQ(c.blob->view(), std::string(2000, 'c'));

  // Dropping a sealed entry gives its file back to the budget.
  EXPECT_TRUE(store.remove("a"));
  ASSERT_EQ(store.set("d", makeBlob(std::string(2000, 'd')), kLongTtl), StorageStatus::kOk);
  EXPECT_GE(store.get("d").blob->sealedFile(), 0);
}

TEST(MemoryStoreTest, ASealedFileClosesWithItsLastReader) {
  MemoryStore store(sealingOptions(4));
  ASSERT_EQ(store.set("k", makeBlob(std::string(4096, 'k')), kLongTtl), StorageStatus::kOk);
  GetResult reader = store.get("k");
  const int fd = reader.blob->sealedFile();
  ASSERT_GE(fd, 0);
  // Replaced: the store lets go, the reader (a response being sent) still has its bytes.
  ASSERT_EQ(store.set("k", makeBlob(std::string(4096, 'n')), kLongTtl), StorageStatus::kOk);
  EXPECT_TRUE(isOpen(fd));
  EXPECT_EQ(reader.blob->view(), std::string(4096, 'k'));
  EXPECT_EQ(store.get("k").blob->view(), std::string(4096, 'n'));
  reader.blob.reset();
  EXPECT_FALSE(isOpen(fd));

  // Evicted by the bounds, with no reader: closed at once.
  MemoryStoreOptions tiny = sealingOptions(4);
  tiny.max_entries = 1;
  MemoryStore one(tiny);
  ASSERT_EQ(one.set("x", makeBlob(std::string(4096, 'x')), kLongTtl), StorageStatus::kOk);
  const int evicted_fd = one.get("x").blob->sealedFile();
  ASSERT_GE(evicted_fd, 0);
  ASSERT_EQ(one.set("y", makeBlob("y"), kLongTtl), StorageStatus::kOk);
  EXPECT_FALSE(has(one, "x"));
  EXPECT_FALSE(isOpen(evicted_fd));
}

TEST(MemoryStoreTest, StatsFollowRemoveAndClearPrefix) {
  MemoryStore store(smallOptions(100));
  for (const char* key : {"a:1:x", "a:1:y", "a:2:x", "ab:1:x"}) {
    ASSERT_EQ(store.set(key, makeBlob("value"), kLongTtl), StorageStatus::kOk);
  }
  const uint64_t each = MemoryStore::entryCost(5, 5);
  EXPECT_EQ(store.stats().entries, 4u);
  EXPECT_EQ(store.stats().bytes, 3 * each + MemoryStore::entryCost(6, 5));
  EXPECT_EQ(store.clearPrefix("a:1:"), 2u);
  EXPECT_EQ(store.stats().entries, 2u);
  EXPECT_TRUE(store.remove("a:2:x"));
  EXPECT_FALSE(store.remove("a:2:x"));
  EXPECT_EQ(store.stats().entries, 1u);
  EXPECT_EQ(store.stats().bytes, MemoryStore::entryCost(6, 5));
  EXPECT_EQ(store.stats().evictions, 0u);
}

TEST(MemoryStoreTest, BoundsHoldInTotalAcrossShards) {
  MemoryStoreOptions options = smallOptions(2048, 64ull << 20, 1024);
  MemoryStore store(options);
  ASSERT_EQ(store.shardCount(), MemoryStore::kMaxShards);
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ(store.set("key:" + std::to_string(i), makeBlob("v"), kLongTtl), StorageStatus::kOk);
  }
  // Every shard saw far more keys than its share, so each is exactly full.
  EXPECT_EQ(store.stats().entries, 2048u);
  EXPECT_EQ(store.stats().evictions, 20000u - 2048u);

  const std::string value(1000, 'b');
  const uint64_t cost = MemoryStore::entryCost(9, value.size());
  MemoryStore by_bytes(smallOptions(1u << 20, 1000 * cost, 1024));
  ASSERT_GT(by_bytes.shardCount(), 1u);
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ(by_bytes.set("key:" + std::to_string(10000 + i), makeBlob(value), kLongTtl),
              StorageStatus::kOk);
  }
  EXPECT_LE(by_bytes.stats().bytes, 1000 * cost);
  EXPECT_GE(by_bytes.stats().entries, 1000u - by_bytes.shardCount());
}

TEST(MemoryBackendTest, CompletesBeforeTheCallReturns) {
  MemoryBackend backend(std::make_shared<MemoryStore>(smallOptions(10)));
  EXPECT_EQ(backend.backendName(), "memory");
  EXPECT_TRUE(backend.inProcess());
  int calls = 0;
  backend.set("k", makeBlob("v"), kLongTtl, [&](StorageStatus status) {
    ++calls;
    EXPECT_EQ(status, StorageStatus::kOk);
  });
  EXPECT_EQ(calls, 1);
  backend.get("k", [&](GetResult result) {
    ++calls;
    EXPECT_EQ(result.status, StorageStatus::kOk);
  });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(backend.stats().entries, 1u);
}

TEST(MemoryBackendTest, HandlesOnTwoThreadsShareEntries) {
  config::CacheSettings settings;
  settings.name = "shared";
  settings.backend = "memory";
  Result<BackendProviderPtr> provider = MemoryProvider::create(settings);
  ASSERT_TRUE(provider.ok()) << provider.error().message;

  // Each thread has its own loop and its own handle, as worker threads do.
  Blob stored = makeBlob("page bytes");
  StorageStatus set_status = StorageStatus::kError;
  std::thread writer([&] {
    event::EventLoop loop;
    BackendPtr backend = (*provider)->createForLoop(loop);
    backend->set("shop:1:/", stored, kLongTtl, [&](StorageStatus status) { set_status = status; });
  });
  writer.join();
  ASSERT_EQ(set_status, StorageStatus::kOk);

  GetResult seen{StorageStatus::kError, nullptr};
  std::thread reader([&] {
    event::EventLoop loop;
    BackendPtr backend = (*provider)->createForLoop(loop);
    backend->get("shop:1:/", [&](GetResult result) { seen = std::move(result); });
  });
  reader.join();
  ASSERT_EQ(seen.status, StorageStatus::kOk);
  EXPECT_EQ(seen.blob.get(), stored.get());
}

// Values are derived from keys, so any hit can be checked whatever the interleaving.
std::string valueFor(const std::string& key, int variant) {
  return key + "|" +
         std::string(static_cast<size_t>(16 + variant % 48), static_cast<char>('a' + variant % 26));
}

bool valueMatches(const std::string& key, std::string_view value) {
  return value.size() > key.size() + 1 && value.compare(0, key.size() + 1, key + "|") == 0;
}

void hammer(const std::shared_ptr<MemoryStore>& store, int seed, std::atomic<int>& bad,
            std::atomic<int>& hits) {
  event::EventLoop loop;
  MemoryBackend backend(store);
  constexpr int kIterations = 20000;
  for (int i = 0; i < kIterations; ++i) {
    const std::string key = "k:" + std::to_string((i * 7 + seed) % 96);
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
        backend.set(key, makeBlob(valueFor(key, i + seed)), kLongTtl, [&](StorageStatus status) {
          if (status != StorageStatus::kOk) {
            ++bad;
          }
        });
        break;
      case 3:
        backend.remove(key, [](StorageStatus) {});
        break;
      case 4:
        if (i % 1000 == 4) {
          backend.clearPrefix("k:1", [](StorageStatus) {});
        }
        break;
      default:
        backend.get(key, [&](GetResult result) {
          if (result.status == StorageStatus::kOk) {
            ++hits;
            if (!result.blob || !valueMatches(key, result.blob->view())) {
              ++bad;
            }
          } else if (result.status != StorageStatus::kNotFound) {
            ++bad;
          }
        });
        break;
    }
  }
}

void runConcurrently(const MemoryStoreOptions& options) {
  auto store = std::make_shared<MemoryStore>(options);
  std::atomic<int> bad{0};
  std::atomic<int> hits{0};
  std::thread first([&] { hammer(store, 0, bad, hits); });
  std::thread second([&] { hammer(store, 13, bad, hits); });
  first.join();
  second.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(hits.load(), 0);
  BackendStats stats = store->stats();
  EXPECT_LE(stats.entries, options.max_entries);
  EXPECT_LE(stats.bytes, options.max_bytes);
}

TEST(MemoryBackendTest, ConcurrentSetGetFromTwoThreadsWithEviction) {
  // One shard, tight bounds: both threads contend on one lock and evict constantly.
  runConcurrently(smallOptions(32, 32 * MemoryStore::entryCost(8, 70), 1024));
}

TEST(MemoryBackendTest, ConcurrentSetGetFromTwoThreadsAcrossShards) {
  MemoryStoreOptions options = smallOptions(4096, 64ull << 20, 1024);
  ASSERT_EQ(MemoryStore(options).shardCount(), MemoryStore::kMaxShards);
  runConcurrently(options);
}

TEST(MemoryProviderTest, RejectsZeroBounds) {
  config::CacheSettings settings;
  settings.name = "local";
  settings.max_bytes = 0;
  Result<BackendProviderPtr> provider = MemoryProvider::create(settings);
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.error().message, "cache 'local' (memory): max_bytes must be at least 1");
  settings.max_bytes = 1;
  settings.max_object_bytes = 0;
  EXPECT_FALSE(MemoryProvider::create(settings).ok());
}

TEST(MemoryProviderTest, SealsLargeValuesWithinTheDescriptorLimit) {
  EXPECT_GT(defaultMaxSealedFiles(), 0u);
  config::CacheSettings settings;
  settings.name = "local";
  Result<BackendProviderPtr> provider = MemoryProvider::create(settings);
  ASSERT_TRUE(provider.ok());
  event::EventLoop loop;
  BackendPtr backend = provider.value()->createForLoop(loop);
  const std::string page(256 << 10, 'p');
  backend->set("page", makeBlob(page), kLongTtl, [](StorageStatus) {});
  Blob seen;
  backend->get("page", [&](GetResult result) { seen = result.blob; });
  ASSERT_NE(seen, nullptr);
  EXPECT_GE(seen->sealedFile(), 0);
  EXPECT_EQ(seen->view(), page);
}

TEST(MemoryProviderTest, HandlesShareOneStore) {
  MemoryProvider provider(smallOptions(10));
  event::EventLoop loop;
  BackendPtr first = provider.createForLoop(loop);
  BackendPtr second = provider.createForLoop(loop);
  first->set("k", makeBlob("v"), kLongTtl, [](StorageStatus) {});
  EXPECT_EQ(second->stats().entries, 1u);
  EXPECT_EQ(provider.store()->stats().entries, 1u);
}

}  // namespace
}  // namespace cachecar::storage
