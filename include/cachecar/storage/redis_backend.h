#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"
#include "cachecar/redis/redis_client.h"
#include "cachecar/storage/backend.h"
#include "cachecar/storage/registry.h"

namespace cachecar::storage {

// The "redis" backend: one Redis connection per event loop (RedisClient), shared data across
// every worker and every sidecar that points at the same server.
//
//   get         GET key                       nil -> kNotFound
//   set         SET key value PX ttl_ms       ttl <= 0: DEL key instead (the value would be
//                                             expired at once; a later get misses, as with
//                                             the memory backend), kOk
//   remove      DEL key                       kOk whether or not the key existed
//   clearPrefix SCAN cursor MATCH <prefix>* COUNT 500, then UNLINK of each batch; glob
//               characters in the prefix are escaped, so only keys starting with it go.
//               Never FLUSHDB.
//   addToCounter INCRBY key delta; a read (delta 0) is GET key (nil -> 0). The counter has
//               no TTL: only an eviction policy that drops keys without TTL can lose it.
//
// Values over max_object_bytes are refused with kTooLarge before anything is sent. Redis error
// replies are kError; lost connections kUnavailable; no reply within command_timeout kTimeout.
// Every failure is fast: the proxy treats it as a miss.
class RedisBackend final : public Backend {
 public:
  static constexpr int kScanCount = 500;

  RedisBackend(event::EventLoop& loop, redis::RedisClientOptions options,
               uint64_t max_object_bytes);

  std::string_view backendName() const override { return "redis"; }
  void get(const std::string& key, GetCallback cb) override;
  void set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
           DoneCallback cb) override;
  void remove(const std::string& key, DoneCallback cb) override;
  void clearPrefix(const std::string& prefix, DoneCallback cb) override;
  void addToCounter(const std::string& key, int64_t delta, CounterCallback cb) override;
  // Redis holds the data: nothing is known locally.
  BackendStats stats() const override { return {}; }

  const redis::RedisClient& client() const { return client_; }

  // "a*b" -> "a\*b*": a SCAN MATCH pattern for keys starting with `prefix`.
  static std::string prefixPattern(std::string_view prefix);

 private:
  struct ClearPrefixOp;
  void scanStep(const std::shared_ptr<ClearPrefixOp>& op, std::string cursor);
  void onScanReply(const std::shared_ptr<ClearPrefixOp>& op, redis::ReplyView reply);
  void scanNextOrFinish(const std::shared_ptr<ClearPrefixOp>& op, std::string cursor);

  redis::RedisClient client_;
  uint64_t max_object_bytes_;
};

// Validates location and timeouts at load; each loop gets its own connection.
class RedisProvider final : public BackendProvider {
 public:
  static Result<BackendProviderPtr> create(const config::CacheSettings& settings);

  RedisProvider(redis::RedisClientOptions options, uint64_t max_object_bytes)
      : options_(std::move(options)), max_object_bytes_(max_object_bytes) {}

  std::string_view backendName() const override { return "redis"; }
  BackendPtr createForLoop(event::EventLoop& loop) override;
  const redis::RedisClientOptions& options() const { return options_; }

 private:
  redis::RedisClientOptions options_;
  uint64_t max_object_bytes_;
};

}  // namespace cachecar::storage
