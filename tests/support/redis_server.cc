#include "support/redis_server.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cachecar/event/event_loop.h"
#include "support/free_port.h"

namespace cachecar::testing {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string findRedisServer() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream in(path);
    std::string dir;
    while (std::getline(in, dir, ':')) {
      if (!dir.empty()) {
        dirs.push_back(dir);
      }
    }
  }
  dirs.emplace_back("/usr/bin");
  dirs.emplace_back("/usr/local/bin");
  dirs.emplace_back("/usr/sbin");
  for (const std::string& dir : dirs) {
    std::string candidate = dir + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

ContextPtr connectSync(uint16_t port, milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ContextPtr context(redisConnectWithTimeout("127.0.0.1", port, tv));
  if (!context || context->err != 0) {
    return nullptr;
  }
  redisSetTimeout(context.get(), tv);
  return context;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

void RedisServer::ReplyDeleter::operator()(redisReply* reply) const { freeReplyObject(reply); }

RedisServer::RedisServer() {
  // hiredis 0.14 writes with write(2), so a write to a connection the server just dropped
  // (stop()) raises SIGPIPE. The cachecar binary ignores it process-wide; so do these tests.
  std::signal(SIGPIPE, SIG_IGN);
}

RedisServer::~RedisServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

bool RedisServer::available() { return !findRedisServer().empty(); }

std::string RedisServer::unavailableReason() {
  return "redis-server not found (PATH, /usr/bin, /usr/local/bin): install redis-server";
}

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

bool RedisServer::start(milliseconds wait) {
  if (pid_ > 0) {
    return true;
  }
  // The first start picks a port; a lost race for it (someone else bound it in between) is
  // retried with another one. Later starts keep the port, as a restarted server would.
  const bool may_change_port = port_ == 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (port_ == 0) {
      port_ = findFreePort();
    }
    if (spawn() && waitReady(wait)) {
      return true;
    }
    stop();
    if (!may_change_port) {
      return false;
    }
    port_ = 0;
  }
  return false;
}

bool RedisServer::spawn() {
  const std::string binary = findRedisServer();
  if (binary.empty()) {
    last_error_ = unavailableReason();
    return false;
  }
  if (dir_.empty()) {
    std::string templ = (std::filesystem::temp_directory_path() / "cachecar-redis-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      last_error_ = "mkdtemp failed";
      return false;
    }
    dir_ = templ;
  }
  const std::string log_path = dir_ + "/redis.log";
  const std::string port = std::to_string(port_);
  std::vector<std::string> args = {binary,   "--port", port,           "--bind",    "127.0.0.1",
                                   "--save", "",       "--appendonly", "no",        "--daemonize",
                                   "no",     "--dir",  dir_,           "--logfile", ""};
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    last_error_ = "fork failed";
    return false;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  paused_ = false;
  return true;
}

bool RedisServer::waitReady(milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      last_error_ = "redis-server exited during startup; log:\n" + readFile(dir_ + "/redis.log");
      return false;
    }
    if (ContextPtr context = connectSync(port_, milliseconds(200))) {
      ReplyPtr reply(static_cast<redisReply*>(redisCommand(context.get(), "PING")));
      if (reply && reply->type == REDIS_REPLY_STATUS && std::string(reply->str) == "PONG") {
        return true;
      }
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  last_error_ = "redis-server did not answer PING on port " + std::to_string(port_) + " within " +
                std::to_string(wait.count()) + "ms; log:\n" + readFile(dir_ + "/redis.log");
  return false;
}

void RedisServer::stop() {
  if (pid_ <= 0) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  paused_ = false;
}

void RedisServer::pause() {
  if (pid_ > 0 && !paused_) {
    ::kill(pid_, SIGSTOP);
    paused_ = true;
  }
}

void RedisServer::resume() {
  if (pid_ > 0 && paused_) {
    ::kill(pid_, SIGCONT);
    paused_ = false;
  }
}

RedisServer::ReplyPtr RedisServer::command(const std::vector<std::string>& args) const {
  ContextPtr context = connectSync(port_, milliseconds(2000));
  if (!context) {
    return nullptr;
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(context.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

std::optional<std::string> RedisServer::get(const std::string& key) const {
  ReplyPtr reply = command({"GET", key});
  if (!reply || reply->type != REDIS_REPLY_STRING) {
    return std::nullopt;
  }
  return std::string(reply->str, reply->len);
}

bool RedisServer::set(const std::string& key, const std::string& value) const {
  ReplyPtr reply = command({"SET", key, value});
  return reply && reply->type == REDIS_REPLY_STATUS;
}

long long RedisServer::dbSize() const {
  ReplyPtr reply = command({"DBSIZE"});
  return reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
}

bool RedisServer::exists(const std::string& key) const {
  ReplyPtr reply = command({"EXISTS", key});
  return reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
}

bool runLoopUntil(event::EventLoop& loop, const std::function<bool()>& done, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  // Wakes EVLOOP_ONCE up even when nothing else happens, so the deadline is honoured.
  event::Timer wake(loop, [] {});
  while (!done()) {
    if (Clock::now() >= deadline) {
      return done();
    }
    wake.arm(milliseconds(5));
    event_base_loop(loop.base(), EVLOOP_ONCE);
  }
  return true;
}

void runLoopFor(event::EventLoop& loop, milliseconds duration) {
  runLoopUntil(
      loop, [] { return false; }, duration);
}

}  // namespace cachecar::testing
