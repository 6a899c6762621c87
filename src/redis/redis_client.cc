#include "cachecar/redis/redis_client.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "cachecar/common/logging.h"

// Lifetime rules this file relies on (hiredis 0.14, async.c):
//  - Every command hiredis accepted gets its callback exactly once: with the reply, or with a
//    NULL reply when the context is freed (by us, or by hiredis itself after a connect or I/O
//    error). The reply is freed when the callback returns.
//  - redisAsyncFree() called inside a reply callback only sets a flag; hiredis frees the
//    context after the callback returns. The connect and disconnect callbacks run outside that
//    guard, so the context must never be freed from them (hiredis frees it right after).
//  - When hiredis frees a context it first runs the pending callbacks with NULL, then the
//    disconnect callback (only if the context had connected), then frees it.
// So: before we free a context, or when hiredis tells us it is about to, we "detach" it
// (context->data and every Pending's client become null). From then on its callbacks only free
// their Pending, and the callbacks of our callers are completed by us, from local copies, as
// the very last thing we do, so a caller may destroy this client from inside its callback.

namespace cachecar::redis {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

template <typename Int>
bool parseNumber(std::string_view text, Int& out) {
  if (text.empty()) {
    return false;
  }
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

std::string RedisAddress::toString() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return "redis://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

Result<RedisAddress> parseRedisLocation(std::string_view location) {
  constexpr std::string_view kScheme = "redis://";
  auto fail = [&](const std::string& what) {
    return Error{"bad redis location '" + std::string(location) + "': " + what +
                 " (expected redis://host[:port][/db])"};
  };
  if (!location.starts_with(kScheme)) {
    return fail("must start with redis://");
  }
  std::string_view rest = location.substr(kScheme.size());
  if (rest.find('@') != std::string_view::npos) {
    return fail("credentials are not supported");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("query parameters are not supported");
  }

  RedisAddress address;
  std::string_view host;
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return fail("unterminated '[' in host");
    }
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
  } else {
    const size_t end = rest.find_first_of(":/");
    host = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (host.empty()) {
    return fail("missing host");
  }
  address.host = std::string(host);

  if (rest.starts_with(':')) {
    rest.remove_prefix(1);
    const size_t end = rest.find('/');
    const std::string_view port_text = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    unsigned port = 0;
    if (!parseNumber(port_text, port) || port == 0 || port > 65535) {
      return fail("bad port '" + std::string(port_text) + "'");
    }
    address.port = static_cast<uint16_t>(port);
  }
  if (rest.starts_with('/')) {
    rest.remove_prefix(1);
    if (!rest.empty()) {
      int db = 0;
      if (!parseNumber(rest, db) || db < 0) {
        return fail("bad database number '" + std::string(rest) + "'");
      }
      address.db = db;
    }
    rest = {};
  }
  if (!rest.empty()) {
    return fail("unexpected '" + std::string(rest) + "'");
  }
  return address;
}

std::string_view toString(CommandStatus status) {
  switch (status) {
    case CommandStatus::kOk:
      return "ok";
    case CommandStatus::kUnavailable:
      return "unavailable";
    case CommandStatus::kTimeout:
      return "timeout";
  }
  return "unknown";
}

ReplyView::Type ReplyView::type() const {
  if (reply_ == nullptr) {
    return Type::kNone;
  }
  switch (reply_->type) {
    case REDIS_REPLY_STRING:
      return Type::kString;
    case REDIS_REPLY_STATUS:
      return Type::kStatus;
    case REDIS_REPLY_ERROR:
      return Type::kError;
    case REDIS_REPLY_INTEGER:
      return Type::kInteger;
    case REDIS_REPLY_NIL:
      return Type::kNil;
    case REDIS_REPLY_ARRAY:
      return Type::kArray;
    default:
      return Type::kNone;
  }
}

std::string_view ReplyView::str() const {
  switch (type()) {
    case Type::kString:
    case Type::kStatus:
    case Type::kError:
      return reply_->str == nullptr ? std::string_view()
                                    : std::string_view(reply_->str, reply_->len);
    default:
      return {};
  }
}

long long ReplyView::integer() const { return type() == Type::kInteger ? reply_->integer : 0; }

size_t ReplyView::size() const { return type() == Type::kArray ? reply_->elements : 0; }

ReplyView ReplyView::at(size_t index) const {
  return index < size() ? ReplyView(reply_->element[index]) : ReplyView();
}

// One command hiredis owes a reply for. Owned by hiredis (it is the privdata) and freed by
// onReplyThunk, which hiredis calls exactly once per accepted command.
struct RedisClient::Pending {
  RedisClient* client = nullptr;  // null once detached: the reply is then only freed
  ReplyCallback callback;         // empty once completed (timed out)
  Clock::time_point sent;
  Clock::time_point deadline;
  PendingList* list = nullptr;  // &waiting_ or &abandoned_
  PendingList::iterator pos;
};

RedisClient::RedisClient(event::EventLoop& loop, RedisClientOptions options)
    : loop_(loop),
      options_(std::move(options)),
      stall_timeout_(options_.stall_timeout.count() > 0
                         ? options_.stall_timeout
                         : std::max(milliseconds(1000), 10 * options_.command_timeout)),
      backoff_(std::max(options_.reconnect_min, milliseconds(1))),
      connect_timer_(loop, [this] { onConnectTimeout(); }),
      command_timer_(loop, [this] { onCommandTimer(); }),
      reconnect_timer_(loop, [this] { startConnect(); }) {
  options_.reconnect_min = backoff_;
  options_.reconnect_max = std::max(options_.reconnect_max, options_.reconnect_min);
  startConnect();
}

RedisClient::~RedisClient() {
  state_ = State::kClosed;
  redisAsyncContext* context = context_;
  std::vector<ReplyCallback> callbacks = detachContext();
  if (context != nullptr) {
    // Inside one of its reply callbacks hiredis defers the free until the callback returns.
    redisAsyncFree(context);
  }
  completeAll(callbacks, CommandStatus::kUnavailable);
}

void RedisClient::startConnect() {
  state_ = State::kConnecting;
  context_failing_ = false;
  redisAsyncContext* context =
      redisAsyncConnect(options_.address.host.c_str(), options_.address.port);
  if (context == nullptr) {
    noteConnectFailure("cannot allocate a context");
    return;
  }
  if (context->err != 0) {
    const std::string why = context->errstr != nullptr ? context->errstr : "connect failed";
    redisAsyncFree(context);
    noteConnectFailure(why);
    return;
  }
  context->data = this;
  if (redisLibeventAttach(context, loop_.base()) != REDIS_OK) {
    context->data = nullptr;
    redisAsyncFree(context);
    noteConnectFailure("cannot attach to the event loop");
    return;
  }
  redisAsyncSetConnectCallback(context, &RedisClient::onConnectThunk);
  redisAsyncSetDisconnectCallback(context, &RedisClient::onDisconnectThunk);
  context_ = context;
  connect_timer_.arm(options_.connect_timeout);

  if (options_.address.db != 0) {
    // Queued first, so every later command on this connection runs in the right database.
    const std::string db = std::to_string(options_.address.db);
    command({"SELECT", db}, [this](CommandStatus status, ReplyView reply) {
      // Only a reply means the context is still ours; timeouts and teardown need nothing here.
      if (status != CommandStatus::kOk || !reply.isError()) {
        return;
      }
      log(LogLevel::kWarn, "redis ", options_.address.toString(), ": SELECT failed: ", reply.str());
      ++stats_.connect_failures;
      std::vector<ReplyCallback> callbacks = dropConnection();
      completeAll(callbacks, CommandStatus::kUnavailable);
    });
  }
}

void RedisClient::noteConnectFailure(std::string_view why) {
  ++stats_.connect_failures;
  ++failures_in_row_;
  log(failures_in_row_ == 1 ? LogLevel::kWarn : LogLevel::kDebug, "redis ",
      options_.address.toString(), ": connect failed: ", why, "; retrying in ", backoff_.count(),
      "ms");
  scheduleReconnect();
}

void RedisClient::scheduleReconnect() {
  state_ = State::kBackoff;
  reconnect_timer_.arm(backoff_);
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
}

void RedisClient::onConnectThunk(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisClient*>(context->data);
  if (self != nullptr) {
    self->onConnect(status);
  }
}

void RedisClient::onDisconnectThunk(const redisAsyncContext* context, int /*status*/) {
  auto* self = static_cast<RedisClient*>(context->data);
  if (self != nullptr) {
    self->onDisconnect();
  }
}

void RedisClient::onReplyThunk(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  RedisClient* self = pending->client;
  if (self != nullptr) {
    self->onReply(pending.get(), static_cast<const redisReply*>(reply));
  }
}

void RedisClient::onConnect(int status) {
  connect_timer_.cancel();
  if (status != REDIS_OK) {
    // hiredis frees the context as soon as this returns: detach, never free it here.
    const std::string why = context_ != nullptr ? context_->c.errstr : "connect failed";
    std::vector<ReplyCallback> callbacks = detachContext();
    noteConnectFailure(why);
    completeAll(callbacks, CommandStatus::kUnavailable);
    return;
  }
  state_ = State::kConnected;
  ++stats_.connects;
  log(LogLevel::kInfo, "redis ", options_.address.toString(), ": connected");
}

void RedisClient::onDisconnect() {
  // hiredis frees the context when this returns; every command it held has had its NULL
  // reply already, so normally nothing is left to complete.
  const std::string why =
      context_ != nullptr && context_->errstr != nullptr ? context_->errstr : "closed";
  std::vector<ReplyCallback> callbacks = detachContext();
  ++stats_.disconnects;
  log(LogLevel::kWarn, "redis ", options_.address.toString(), ": connection lost: ", why,
      "; reconnecting in ", backoff_.count(), "ms");
  scheduleReconnect();
  completeAll(callbacks, CommandStatus::kUnavailable);
}

void RedisClient::onReply(Pending* pending, const redisReply* reply) {
  pending->list->erase(pending->pos);
  pending->client = nullptr;
  if (reply == nullptr) {
    // hiredis is tearing the context down (the rest of the NULL replies and the disconnect
    // callback follow): nothing more may be sent on it.
    context_failing_ = true;
  } else {
    backoff_ = options_.reconnect_min;  // the server answers: the connection is healthy
    failures_in_row_ = 0;
  }
  if (!pending->callback) {
    if (reply != nullptr) {
      ++stats_.late_replies;
    }
    return;
  }
  ReplyCallback callback = std::move(pending->callback);
  pending->callback = nullptr;
  // Last: the callback may destroy this client.
  callback(reply != nullptr ? CommandStatus::kOk : CommandStatus::kUnavailable, ReplyView(reply));
}

void RedisClient::command(std::span<const std::string_view> args, ReplyCallback cb) {
  const bool can_send = (state_ == State::kConnecting || state_ == State::kConnected) &&
                        context_ != nullptr && !context_failing_;
  if (!can_send || args.empty() || outstanding() >= options_.max_pending) {
    ++stats_.rejected;
    cb(CommandStatus::kUnavailable, ReplyView());
    return;
  }

  constexpr size_t kInlineArgs = 8;
  std::array<const char*, kInlineArgs> inline_argv{};
  std::array<size_t, kInlineArgs> inline_lengths{};
  std::vector<const char*> heap_argv;
  std::vector<size_t> heap_lengths;
  const char** argv = inline_argv.data();
  size_t* lengths = inline_lengths.data();
  if (args.size() > kInlineArgs) {
    heap_argv.resize(args.size());
    heap_lengths.resize(args.size());
    argv = heap_argv.data();
    lengths = heap_lengths.data();
  }
  for (size_t i = 0; i < args.size(); ++i) {
    // An empty view may have a null data(); hiredis copies `length` bytes from it.
    argv[i] = args[i].data() != nullptr ? args[i].data() : "";
    lengths[i] = args[i].size();
  }

  const Clock::time_point now = Clock::now();
  auto pending = std::make_unique<Pending>();
  pending->client = this;
  pending->callback = std::move(cb);
  pending->sent = now;
  pending->deadline = now + options_.command_timeout;
  if (redisAsyncCommandArgv(context_, &RedisClient::onReplyThunk, pending.get(),
                            static_cast<int>(args.size()), argv, lengths) != REDIS_OK) {
    ++stats_.rejected;
    ReplyCallback failed = std::move(pending->callback);
    failed(CommandStatus::kUnavailable, ReplyView());
    return;
  }
  Pending* queued = pending.release();  // hiredis owns it now
  queued->list = &waiting_;
  queued->pos = waiting_.insert(waiting_.end(), queued);
  if (!command_timer_.armed() || queued->deadline < command_timer_due_) {
    // The timer may be armed for a later moment (the stall check of an abandoned command):
    // this command's own deadline must still be kept.
    armCommandTimer(now);
  }
}

void RedisClient::armCommandTimer(Clock::time_point now) {
  const Pending* oldest = nullptr;
  if (!abandoned_.empty()) {
    oldest = abandoned_.front();
  } else if (!waiting_.empty()) {
    oldest = waiting_.front();
  }
  if (oldest == nullptr) {
    command_timer_.cancel();
    return;
  }
  Clock::time_point next = oldest->sent + stall_timeout_;
  if (!waiting_.empty()) {
    next = std::min(next, waiting_.front()->deadline);
  }
  const auto delay = std::max(std::chrono::ceil<milliseconds>(next - now), milliseconds(0));
  command_timer_due_ = now + delay;
  command_timer_.arm(delay);
}

void RedisClient::onCommandTimer() {
  const Clock::time_point now = Clock::now();
  std::vector<ReplyCallback> expired;
  while (!waiting_.empty() && waiting_.front()->deadline <= now) {
    Pending* pending = waiting_.front();
    expired.push_back(std::move(pending->callback));
    pending->callback = nullptr;
    // Still owed a reply: keep it, in order, until the reply (ignored) or the context's end.
    abandoned_.splice(abandoned_.end(), waiting_, waiting_.begin());
    pending->list = &abandoned_;
    ++stats_.timeouts;
  }

  std::vector<ReplyCallback> dropped;
  const Pending* oldest = !abandoned_.empty() ? abandoned_.front()
                          : !waiting_.empty() ? waiting_.front()
                                              : nullptr;
  if (oldest != nullptr && oldest->sent + stall_timeout_ <= now) {
    log(LogLevel::kWarn, "redis ", options_.address.toString(), ": no reply for ",
        stall_timeout_.count(), "ms; reconnecting");
    ++stats_.disconnects;
    dropped = dropConnection();
  } else {
    armCommandTimer(now);
  }
  // Last: these callbacks may destroy this client.
  completeAll(expired, CommandStatus::kTimeout);
  completeAll(dropped, CommandStatus::kUnavailable);
}

void RedisClient::onConnectTimeout() {
  if (state_ != State::kConnecting || context_ == nullptr) {
    return;
  }
  noteConnectFailure("no connection within " + std::to_string(options_.connect_timeout.count()) +
                     "ms");
  // noteConnectFailure already scheduled the retry; free the context without a second one.
  redisAsyncContext* context = context_;
  std::vector<ReplyCallback> callbacks = detachContext();
  redisAsyncFree(context);
  completeAll(callbacks, CommandStatus::kUnavailable);
}

std::vector<ReplyCallback> RedisClient::detachContext() {
  if (context_ != nullptr) {
    context_->data = nullptr;
    context_ = nullptr;
  }
  std::vector<ReplyCallback> callbacks;
  callbacks.reserve(waiting_.size());
  for (Pending* pending : waiting_) {
    pending->client = nullptr;
    pending->list = nullptr;
    callbacks.push_back(std::move(pending->callback));
    pending->callback = nullptr;
  }
  for (Pending* pending : abandoned_) {
    pending->client = nullptr;
    pending->list = nullptr;
  }
  waiting_.clear();
  abandoned_.clear();
  command_timer_.cancel();
  connect_timer_.cancel();
  context_failing_ = false;
  return callbacks;
}

std::vector<ReplyCallback> RedisClient::dropConnection() {
  redisAsyncContext* context = context_;
  std::vector<ReplyCallback> callbacks = detachContext();
  if (context != nullptr) {
    redisAsyncFree(context);
  }
  if (state_ != State::kClosed) {
    scheduleReconnect();
  }
  return callbacks;
}

void RedisClient::completeAll(std::vector<ReplyCallback>& callbacks, CommandStatus status) {
  // Static: a callback may destroy the client, but each of these still runs exactly once.
  for (ReplyCallback& callback : callbacks) {
    if (callback) {
      callback(status, ReplyView());
    }
  }
}

}  // namespace cachecar::redis
