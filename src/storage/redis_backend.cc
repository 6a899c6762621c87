#include "cachecar/storage/redis_backend.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>
#include <vector>

namespace cachecar::storage {

namespace {

using redis::CommandStatus;
using redis::ReplyView;

// Longer TTLs are clamped (Redis refuses expire times that overflow its clock arithmetic).
constexpr std::chrono::milliseconds kMaxTtl = std::chrono::hours(24 * 365 * 10);
// Redis strings hold at most 512 MiB.
constexpr uint64_t kRedisMaxValueBytes = 512ull << 20;

StorageStatus fromCommandStatus(CommandStatus status) {
  switch (status) {
    case CommandStatus::kOk:
      return StorageStatus::kOk;
    case CommandStatus::kTimeout:
      return StorageStatus::kTimeout;
    case CommandStatus::kUnavailable:
      return StorageStatus::kUnavailable;
  }
  return StorageStatus::kError;
}

// For commands whose reply only matters as "not an error" (SET, DEL).
redis::ReplyCallback doneCallback(DoneCallback cb) {
  return [cb = std::move(cb)](CommandStatus status, ReplyView reply) {
    if (status != CommandStatus::kOk) {
      cb(fromCommandStatus(status));
    } else {
      cb(reply.isError() ? StorageStatus::kError : StorageStatus::kOk);
    }
  };
}

}  // namespace

struct RedisBackend::ClearPrefixOp {
  std::string pattern;
  DoneCallback done;
};

RedisBackend::RedisBackend(event::EventLoop& loop, redis::RedisClientOptions options,
                           uint64_t max_object_bytes)
    : client_(loop, std::move(options)), max_object_bytes_(max_object_bytes) {}

void RedisBackend::get(const std::string& key, GetCallback cb) {
  client_.command({"GET", key}, [cb = std::move(cb)](CommandStatus status, ReplyView reply) {
    if (status != CommandStatus::kOk) {
      cb(GetResult{fromCommandStatus(status), nullptr});
      return;
    }
    switch (reply.type()) {
      case ReplyView::Type::kString:
        // The one copy on this path: hiredis frees its reply when this callback returns.
        cb(GetResult{StorageStatus::kOk, makeBlob(std::string(reply.str()))});
        return;
      case ReplyView::Type::kNil:
        cb(GetResult{StorageStatus::kNotFound, nullptr});
        return;
      default:
        cb(GetResult{StorageStatus::kError, nullptr});
        return;
    }
  });
}

void RedisBackend::set(const std::string& key, Blob value, std::chrono::milliseconds ttl,
                       DoneCallback cb) {
  if (!value) {
    cb(StorageStatus::kError);
    return;
  }
  if (value->size() > max_object_bytes_) {
    cb(StorageStatus::kTooLarge);
    return;
  }
  if (ttl.count() <= 0) {
    // Redis rejects PX 0; an entry that expires at once is the same as no entry.
    client_.command({"DEL", key}, doneCallback(std::move(cb)));
    return;
  }
  const std::string px = std::to_string(std::min(ttl, kMaxTtl).count());
  client_.command({"SET", key, value->view(), "PX", px}, doneCallback(std::move(cb)));
}

void RedisBackend::remove(const std::string& key, DoneCallback cb) {
  client_.command({"DEL", key}, doneCallback(std::move(cb)));
}

void RedisBackend::addToCounter(const std::string& key, int64_t delta, CounterCallback cb) {
  auto on_reply = [cb = std::move(cb)](CommandStatus status, ReplyView reply) {
    if (status != CommandStatus::kOk) {
      cb(fromCommandStatus(status), 0);
      return;
    }
    int64_t value = 0;
    switch (reply.type()) {
      case ReplyView::Type::kInteger:
        cb(StorageStatus::kOk, reply.integer());
        return;
      case ReplyView::Type::kNil:
        cb(StorageStatus::kOk, 0);
        return;
      case ReplyView::Type::kString: {
        const std::string_view text = reply.str();
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec == std::errc() && end == text.data() + text.size()) {
          cb(StorageStatus::kOk, value);
          return;
        }
        break;
      }
      default:
        break;
    }
    cb(StorageStatus::kError, 0);  // not an integer: someone else's key
  };
  if (delta == 0) {
    client_.command({"GET", key}, std::move(on_reply));
    return;
  }
  const std::string by = std::to_string(delta);
  client_.command({"INCRBY", key, by}, std::move(on_reply));
}

std::string RedisBackend::prefixPattern(std::string_view prefix) {
  std::string pattern;
  pattern.reserve(prefix.size() + 8);
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      pattern.push_back('\\');
    }
    pattern.push_back(c);
  }
  pattern.push_back('*');
  return pattern;
}

void RedisBackend::clearPrefix(const std::string& prefix, DoneCallback cb) {
  auto op = std::make_shared<ClearPrefixOp>(ClearPrefixOp{prefixPattern(prefix), std::move(cb)});
  scanStep(op, "0");
}

// One SCAN, then an UNLINK of what it found, then the next SCAN, until the cursor is back at
// 0. Sequential on purpose: an admin operation should not crowd out the request path. Each
// step has the command timeout; any failure ends the operation with that status (keys already
// unlinked stay unlinked, and the caller may retry).
//
// The continuations capture `this` but only use it after a kOk: the client delivers a reply
// only while it (and so this backend) is alive; on teardown they just report kUnavailable.
void RedisBackend::scanStep(const std::shared_ptr<ClearPrefixOp>& op, std::string cursor) {
  const std::string count = std::to_string(kScanCount);
  client_.command({"SCAN", cursor, "MATCH", op->pattern, "COUNT", count},
                  [this, op](CommandStatus status, ReplyView reply) {
                    if (status != CommandStatus::kOk) {
                      op->done(fromCommandStatus(status));
                      return;
                    }
                    onScanReply(op, reply);
                  });
}

void RedisBackend::onScanReply(const std::shared_ptr<ClearPrefixOp>& op, ReplyView reply) {
  if (reply.type() != ReplyView::Type::kArray || reply.size() != 2 ||
      reply.at(1).type() != ReplyView::Type::kArray) {
    op->done(StorageStatus::kError);
    return;
  }
  std::string next(reply.at(0).str());
  const ReplyView keys = reply.at(1);
  if (keys.size() == 0) {
    scanNextOrFinish(op, std::move(next));
    return;
  }
  // The key views borrow the SCAN reply, which stays valid while its callback runs; the
  // command copies them before it returns.
  std::vector<std::string_view> args;
  args.reserve(keys.size() + 1);
  args.emplace_back("UNLINK");
  for (size_t i = 0; i < keys.size(); ++i) {
    args.push_back(keys.at(i).str());
  }
  client_.command(args,
                  [this, op, next = std::move(next)](CommandStatus status, ReplyView unlink_reply) {
                    if (status != CommandStatus::kOk) {
                      op->done(fromCommandStatus(status));
                    } else if (unlink_reply.isError()) {
                      op->done(StorageStatus::kError);
                    } else {
                      scanNextOrFinish(op, next);
                    }
                  });
}

void RedisBackend::scanNextOrFinish(const std::shared_ptr<ClearPrefixOp>& op, std::string cursor) {
  if (cursor == "0") {
    op->done(StorageStatus::kOk);
  } else {
    scanStep(op, std::move(cursor));
  }
}

Result<BackendProviderPtr> RedisProvider::create(const config::CacheSettings& settings) {
  const std::string where = "cache '" + settings.name + "' (redis): ";
  if (settings.location.empty()) {
    return Error{where + "location is required (redis://host[:port][/db])"};
  }
  Result<redis::RedisAddress> address = redis::parseRedisLocation(settings.location);
  if (!address) {
    return Error{where + address.error().message};
  }
  if (settings.connect_timeout.count() <= 0) {
    return Error{where + "connect_timeout must be positive"};
  }
  if (settings.command_timeout.count() <= 0) {
    return Error{where + "command_timeout must be positive"};
  }
  if (settings.max_object_bytes == 0 || settings.max_object_bytes > kRedisMaxValueBytes) {
    return Error{where + "max_object_bytes must be between 1 and 512MiB"};
  }
  redis::RedisClientOptions options;
  options.address = std::move(address).value();
  options.connect_timeout = settings.connect_timeout;
  options.command_timeout = settings.command_timeout;
  return BackendProviderPtr(
      std::make_shared<RedisProvider>(std::move(options), settings.max_object_bytes));
}

BackendPtr RedisProvider::createForLoop(event::EventLoop& loop) {
  return std::make_unique<RedisBackend>(loop, options_, max_object_bytes_);
}

}  // namespace cachecar::storage
