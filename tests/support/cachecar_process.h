#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cachecar::testing {

// Path of the cachecar binary under test: $CACHECAR_TEST_BINARY when set, else CACHECAR_BINARY
// from the build.
std::string cachecarBinary();

// A temporary directory removed (with its files) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `contents` to path()/name and returns the full path.
  std::string writeFile(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

// Replaces every "{name}" in `text` by its value (only the given names: YAML flow maps such as
// "{backend: memory}" are left alone).
std::string fillPlaceholders(std::string text, const std::map<std::string, std::string>& values);

// The result of running the binary to completion (for --check-config, --version, ...).
struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs cachecar with `args`, waits up to `timeout`, then kills it.
CommandResult runCachecar(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct CachecarOptions {
  // The program to run; empty = the cachecar binary under test (the harness self-tests use a
  // stand-in script).
  std::string binary;
  // YAML with placeholders: {port} (filled with a free port, the listen port), {origin_port},
  // {redis_port} and any name in `placeholders`. Empty: no --config is passed at all.
  std::string config_yaml;
  uint16_t origin_port = 0;
  uint16_t redis_port = 0;
  std::map<std::string, std::string> placeholders;
  // More command-line arguments; may use the same placeholders (e.g. "--listen",
  // "127.0.0.1:{port}").
  std::vector<std::string> extra_args;
  // Environment variables set for the process (on top of the test's own environment).
  std::map<std::string, std::string> env;
  // Where the process is expected to accept connections; 0 = a free port found at start().
  uint16_t listen_port = 0;
  std::chrono::milliseconds startup_timeout{10000};
};

// Runs the cachecar binary as a child process for one test. start() writes the config to a
// temporary file, spawns `cachecar --config FILE [extra args]` with stdout and stderr in a log
// file, and waits (bounded) until the listen port accepts a connection. The destructor sends
// SIGTERM, waits up to 5 s, then SIGKILL.
class CachecarProcess {
 public:
  explicit CachecarProcess(CachecarOptions options);
  ~CachecarProcess();
  CachecarProcess(const CachecarProcess&) = delete;
  CachecarProcess& operator=(const CachecarProcess&) = delete;

  // ASSERT_TRUE(proxy.start()): on failure the message holds the reason and the process log.
  ::testing::AssertionResult start();

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& configPath() const { return config_path_; }
  const std::string& configText() const { return config_text_; }
  std::string logText() const;
  // True while the child has not exited (reaps it when it has).
  bool running();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the raw wait status (see exitStatus()).
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // Sends a signal to the child.
  bool signal(int sig);
  // The raw waitpid() status once the child has exited.
  std::optional<int> exitStatus() const { return exit_status_; }

 private:
  // Reaps the child if it has exited; true when it has.
  bool reap(bool block);

  CachecarOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string config_path_;
  std::string config_text_;
  std::string log_path_;
  std::optional<int> exit_status_;
};

// True once 127.0.0.1:port accepts a TCP connection.
bool portAcceptsConnections(uint16_t port);

// The TCP ports process `pid` listens on: its socket descriptors matched against the kernel's
// listening sockets (/proc/net/tcp, tcp6). Unlike a connection attempt, this is not fooled by
// another process (a concurrent test) that happens to listen on a port it was expected not to.
std::set<uint16_t> listeningPortsOf(pid_t pid);

// The configuration most integration tests use: listen {port}, upstream {origin_port}, one
// worker, a memory cache "default" and the /static/ (ttl 1h), /api/ (ttl 30s, key query [page])
// and /account/ (cache off) routes, with short limits.
std::string basicConfig(const std::string& cache_options = "");

}  // namespace cachecar::testing
