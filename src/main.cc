// cachecar: a caching reverse proxy for any web app.
#include <getopt.h>
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "cachecar/common/logging.h"
#include "cachecar/config/config_loader.h"
#include "cachecar/server/server.h"
#include "cachecar/storage/registry.h"

namespace {

using cachecar::LogLevel;

constexpr const char* kUsage =
    "usage: cachecar [--config FILE] [--listen HOST:PORT] [--upstream http://HOST:PORT]\n"
    "                [--workers N|auto]\n"
    "       cachecar --check-config FILE\n"
    "       cachecar --version | --help\n"
    "\n"
    "  --config FILE         YAML configuration (without it: built-in defaults, a memory cache\n"
    "                        and every response following the app's own Cache-Control);\n"
    "                        reloaded on SIGHUP and when the file changes\n"
    "  --check-config FILE   validate FILE, print a summary; exit 0 if valid, 1 if not\n"
    "  --listen HOST:PORT    override `listen` (default 127.0.0.1:8080)\n"
    "  --upstream URL        override `upstream` (default http://127.0.0.1:8000)\n"
    "  --workers N|auto      override `workers` (event-loop threads)\n"
    "  --version             print the version\n"
    "  --help                print this text\n";

struct Options {
  std::optional<std::string> config_path;
  std::optional<std::string> check_path;
  std::optional<std::string> listen;
  std::optional<std::string> upstream;
  std::optional<std::string> workers;
};

// Returns an exit code when the command line says to exit at once.
std::optional<int> parseOptions(int argc, char** argv, Options& out) {
  enum { kConfig = 1, kCheck, kListen, kUpstream, kWorkers, kVersion, kHelp };
  static const option kLong[] = {
      {"config", required_argument, nullptr, kConfig},
      {"check-config", required_argument, nullptr, kCheck},
      {"listen", required_argument, nullptr, kListen},
      {"upstream", required_argument, nullptr, kUpstream},
      {"workers", required_argument, nullptr, kWorkers},
      {"version", no_argument, nullptr, kVersion},
      {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0},
  };
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    switch (c) {
      case kConfig: out.config_path = optarg; break;
      case kCheck: out.check_path = optarg; break;
      case kListen: out.listen = optarg; break;
      case kUpstream: out.upstream = optarg; break;
      case kWorkers: out.workers = optarg; break;
      case kVersion: std::cout << "cachecar " << CACHECAR_VERSION << "\n"; return 0;
      case kHelp: std::cout << kUsage; return 0;
      default:
        std::cerr << "cachecar: unknown or incomplete option '" << argv[optind - 1] << "'\n"
                  << kUsage;
        return 2;
    }
  }
  if (optind < argc) {
    std::cerr << "cachecar: unexpected argument '" << argv[optind] << "'\n" << kUsage;
    return 2;
  }
  return std::nullopt;
}

cachecar::Result<cachecar::config::Config> buildConfig(const Options& options) {
  using cachecar::Error;
  cachecar::config::Config config = cachecar::config::defaultConfig();
  if (options.config_path) {
    auto loaded = cachecar::config::loadConfigFile(*options.config_path);
    if (!loaded.ok()) {
      return loaded.error();
    }
    config = std::move(loaded.value());
  }
  if (options.listen) {
    auto listen = cachecar::config::parseHostPort(*options.listen);
    if (!listen.ok()) {
      return Error{"--listen: " + listen.error().message};
    }
    config.listen = listen.value();
  }
  if (options.upstream) {
    auto upstream = cachecar::config::parseUpstreamUrl(*options.upstream);
    if (!upstream.ok()) {
      return Error{"--upstream: " + upstream.error().message};
    }
    config.upstream = upstream.value();
  }
  if (options.workers) {
    if (*options.workers == "auto") {
      config.workers = 0;
    } else {
      try {
        const int n = std::stoi(*options.workers);
        if (n < 1 || n > 1024) {
          return Error{"--workers: must be auto or 1..1024"};
        }
        config.workers = static_cast<unsigned>(n);
      } catch (...) {
        return Error{"--workers: must be auto or 1..1024"};
      }
    }
  }
  // --listen may now collide with the file's admin listener.
  if (auto conflict = cachecar::config::adminListenConflict(config)) {
    return Error{*conflict};
  }
  return config;
}

// Every connection holds a descriptor (two when it goes to the app), and so does every large
// memory-cache entry (its sealed file): take all the descriptors the system allows, since the
// soft limit is often a historical 1024 far below the hard one.
void raiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) {
    return;
  }
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    cachecar::log(LogLevel::kDebug, "open files limit raised from ", before, " to ",
                  limit.rlim_cur);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (auto exit_code = parseOptions(argc, argv, options)) {
    return *exit_code;
  }
  if (options.check_path) {
    auto loaded = cachecar::config::loadConfigFile(*options.check_path);
    if (!loaded.ok()) {
      std::cerr << loaded.error().message << "\n";
      return 1;
    }
    std::cout << *options.check_path << ": ok\n" << cachecar::config::summarize(loaded.value());
    return 0;
  }
  auto config = buildConfig(options);
  if (!config.ok()) {
    std::cerr << "cachecar: " << config.error().message << "\n";
    return 1;
  }
  cachecar::setLogThreshold(config->log_level);

  // Writes to closed sockets must return EPIPE, not kill the process; the signals we act on
  // (SIGTERM / SIGINT: drain and exit, SIGHUP: reload) are taken by sigwait() in the main
  // thread, so every other thread blocks them.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  raiseOpenFileLimit();
  cachecar::storage::Registry registry;
  cachecar::storage::registerBuiltinBackends(registry);
  cachecar::log(LogLevel::kInfo, "cachecar ", CACHECAR_VERSION, " starting with ",
                config->source);
  for (std::string line; const char c : cachecar::config::summarize(config.value())) {
    if (c == '\n') {
      cachecar::log(LogLevel::kInfo, line);
      line.clear();
    } else {
      line.push_back(c);
    }
  }
  cachecar::server::Server::Options server_options;
  server_options.load_config = [options] { return buildConfig(options); };
  server_options.config_path = options.config_path;
  cachecar::server::Server server(registry, std::move(server_options));
  if (auto started = server.start(std::move(config.value())); !started.ok()) {
    cachecar::log(LogLevel::kError, started.error().message);
    return 1;
  }
  server.runUntilSignalled();
  return 0;
}
