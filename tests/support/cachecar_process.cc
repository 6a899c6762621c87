#include "support/cachecar_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "support/free_port.h"

namespace cachecar::testing {

namespace {

using Clock = std::chrono::steady_clock;

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string describeStatus(int status) {
  if (WIFEXITED(status)) {
    return "exit code " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return std::string("signal ") + strsignal(WTERMSIG(status));
  }
  return "status " + std::to_string(status);
}

// fork + exec with stdout/stderr sent to the given files and stdin from /dev/null. Only
// async-signal-safe calls happen between fork and exec (the test process has threads).
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const std::string& out_path, const std::string& err_path, std::string* error) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& e : env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err_fd = err_path == out_path
                   ? out_fd
                   : ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (null_fd < 0 || out_fd < 0 || err_fd < 0) {
    *error = std::string("open: ") + std::strerror(errno);
    for (int fd : {null_fd, out_fd, err_fd}) {
      if (fd >= 0) {
        ::close(fd);
      }
    }
    return -1;
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Never outlive the test process, even if it crashes or is killed by a timeout.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(126);
    }
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    // Sockets of the test (origin listener, clients) must not leak into the proxy: a leaked
    // listener would keep a "closed" origin port accepting.
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int saved = errno;
  ::close(null_fd);
  ::close(out_fd);
  if (err_fd != out_fd) {
    ::close(err_fd);
  }
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(saved);
  }
  return pid;
}

// This process's environment with `overrides` set ("NAME=value" entries).
std::vector<std::string> environmentWith(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (!overrides.contains(std::string(entry.substr(0, entry.find('='))))) {
      out.emplace_back(entry);
    }
  }
  for (const auto& [name, value] : overrides) {
    out.push_back(name + "=" + value);
  }
  return out;
}

}  // namespace

std::string cachecarBinary() {
  // CACHECAR_TEST_BINARY runs the same tests against another build (sanitizers, an installed
  // binary, a deliberately broken copy to check that the tests can fail).
  const char* override_path = std::getenv("CACHECAR_TEST_BINARY");
  return override_path != nullptr && *override_path != '\0' ? override_path : CACHECAR_BINARY;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/cachecar-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) != nullptr) {
    path_ = buf.data();
  }
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

std::string TempDir::writeFile(const std::string& name, const std::string& contents) const {
  std::string full = path_ + "/" + name;
  std::ofstream out(full, std::ios::binary | std::ios::trunc);
  out << contents;
  return full;
}

std::string fillPlaceholders(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [name, value] : values) {
    const std::string token = "{" + name + "}";
    size_t pos = 0;
    while ((pos = text.find(token, pos)) != std::string::npos) {
      text.replace(pos, token.size(), value);
      pos += value.size();
    }
  }
  return text;
}

bool portAcceptsConnections(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::set<uint16_t> listeningPortsOf(pid_t pid) {
  // inode of each listening socket -> its local port. Lines: "sl local rem st ... uid timeout
  // inode", with local "ADDR:PORT" in hex and st 0A for LISTEN.
  std::map<std::string, uint16_t> listening;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      const size_t colon = local.rfind(':');
      if (state == "0A" && colon != std::string::npos) {
        listening[inode] = static_cast<uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16));
      }
    }
  }
  std::set<uint16_t> ports;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/fd", ec)) {
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.starts_with("socket:[") && target.ends_with("]")) {
      const auto it = listening.find(target.substr(8, target.size() - 9));
      if (it != listening.end()) {
        ports.insert(it->second);
      }
    }
  }
  return ports;
}

CommandResult runCachecar(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  CommandResult result;
  TempDir dir;
  const std::string out_path = dir.path() + "/stdout";
  const std::string err_path = dir.path() + "/stderr";
  std::vector<std::string> argv{cachecarBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string error;
  if (::access(argv[0].c_str(), X_OK) != 0) {
    result.err = "cachecar binary not found at " + argv[0];
    return result;
  }
  pid_t pid = spawn(argv, environmentWith({}), out_path, err_path, &error);
  if (pid < 0) {
    result.err = error;
    return result;
  }
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      break;
    }
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!result.timed_out && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  result.out = readWholeFile(out_path);
  result.err = readWholeFile(err_path);
  return result;
}

CachecarProcess::CachecarProcess(CachecarOptions options) : options_(std::move(options)) {}

CachecarProcess::~CachecarProcess() {
  stop();
  if (::testing::Test::HasFailure() && !log_path_.empty()) {
    std::string log = logText();
    if (log.size() > 20000) {
      log = "...\n" + log.substr(log.size() - 20000);
    }
    std::cerr << "---- cachecar log (pid " << pid_ << ", port " << port_ << ") ----\n"
              << log << "\n---- end of cachecar log ----\n";
  }
}

::testing::AssertionResult CachecarProcess::start() {
  if (pid_ > 0) {
    return ::testing::AssertionFailure() << "already started";
  }
  if (dir_.path().empty()) {
    return ::testing::AssertionFailure() << "could not create a temporary directory";
  }
  const std::string binary = options_.binary.empty() ? cachecarBinary() : options_.binary;
  if (::access(binary.c_str(), X_OK) != 0) {
    return ::testing::AssertionFailure()
           << "cachecar binary not found at " << binary << " (not built yet?)";
  }
  port_ = options_.listen_port != 0 ? options_.listen_port : findFreePort();
  std::map<std::string, std::string> values = options_.placeholders;
  values["port"] = std::to_string(port_);
  values["origin_port"] = std::to_string(options_.origin_port);
  values["redis_port"] = std::to_string(options_.redis_port);

  std::vector<std::string> args{binary};
  if (!options_.config_yaml.empty()) {
    config_text_ = fillPlaceholders(options_.config_yaml, values);
    config_path_ = dir_.writeFile("cachecar.yaml", config_text_);
    args.push_back("--config");
    args.push_back(config_path_);
  }
  for (const std::string& a : options_.extra_args) {
    args.push_back(fillPlaceholders(a, values));
  }
  log_path_ = dir_.path() + "/cachecar.log";
  std::string error;
  pid_ = spawn(args, environmentWith(options_.env), log_path_, log_path_, &error);
  if (pid_ < 0) {
    return ::testing::AssertionFailure() << "could not start cachecar: " << error;
  }

  const auto deadline = Clock::now() + options_.startup_timeout;
  while (Clock::now() < deadline) {
    if (reap(false)) {
      return ::testing::AssertionFailure() << "cachecar exited during startup ("
                                           << describeStatus(*exit_status_) << ")\nconfig:\n"
                                           << config_text_ << "\nlog:\n"
                                           << logText();
    }
    if (portAcceptsConnections(port_)) {
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ::testing::AssertionFailure()
         << "cachecar did not accept connections on 127.0.0.1:" << port_ << " within "
         << options_.startup_timeout.count() << " ms\nconfig:\n"
         << config_text_ << "\nlog:\n"
         << logText();
}

std::string CachecarProcess::logText() const {
  return log_path_.empty() ? std::string() : readWholeFile(log_path_);
}

bool CachecarProcess::reap(bool block) {
  if (pid_ <= 0 || exit_status_) {
    return exit_status_.has_value();
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r == pid_) {
    exit_status_ = status;
    return true;
  }
  return false;
}

bool CachecarProcess::running() { return pid_ > 0 && !reap(false); }

bool CachecarProcess::signal(int sig) { return running() && ::kill(pid_, sig) == 0; }

int CachecarProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) {
    return -1;
  }
  if (!reap(false)) {
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline && !reap(false)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!exit_status_) {
      ::kill(pid_, SIGKILL);
      reap(true);
    }
  }
  return exit_status_.value_or(-1);
}

std::string basicConfig(const std::string& cache_options) {
  std::string options = cache_options.empty() ? "" : ", options: {" + cache_options + "}";
  return "listen: 127.0.0.1:{port}\n"
         "upstream: http://127.0.0.1:{origin_port}\n"
         "workers: 1\n"
         "caches:\n"
         "  default: {backend: memory, timeout: 5m, key_prefix: t, version: 1" +
         options +
         "}\n"
         "routes:\n"
         "  - {match: /static/, ttl: 1h}\n"
         "  - {match: /api/, ttl: 30s, key: {query: [page]}}\n"
         "  - {match: /account/, cache: off}\n"
         "limits: {header_read_timeout: 2s, max_header_bytes: 64KiB, "
         "max_request_body_bytes: 1MiB, upstream_response_timeout: 2s}\n";
}

}  // namespace cachecar::testing
