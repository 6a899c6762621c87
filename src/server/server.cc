#include "cachecar/server/server.h"

#include <unistd.h>

#include <csignal>
#include <ctime>
#include <future>

#include "cachecar/common/logging.h"
#include "cachecar/storage/measured_backend.h"

namespace cachecar::server {

namespace {

// How long start() waits for the control loop to read every cache's version: past the Redis
// connect and command timeouts, so this only bounds a stuck start.
constexpr std::chrono::seconds kStartTimeout{30};
constexpr std::chrono::milliseconds kDrainPoll{20};

int waitForSignal(const sigset_t& signals, std::optional<std::chrono::milliseconds> timeout) {
  if (!timeout) {
    int received = 0;
    return sigwait(&signals, &received) == 0 ? received : -1;
  }
  timespec wait{};
  wait.tv_sec = static_cast<time_t>(timeout->count() / 1000);
  wait.tv_nsec = static_cast<long>((timeout->count() % 1000) * 1000000);
  return sigtimedwait(&signals, nullptr, &wait);
}

const char* signalName(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

}  // namespace

void declareServerMetrics(metrics::Registry& registry) {
  declareRequestMetrics(registry);
  storage::declareStorageMetrics(registry);
  registry.declareHistogram("cachecar_origin_request_duration_seconds",
                            "Time from sending a request to the app to its last response byte.",
                            {});
  registry.declareCounter("cachecar_coalesced_waiters_total",
                          "Requests that waited for a concurrent identical miss instead of "
                          "asking the app.",
                          {});
  registry.declareCounter("cachecar_uncacheable_fetches_total",
                          "Misses sent to the app without waiting for an identical one, because "
                          "their page's last response could not be stored (hit-for-miss).",
                          {});
  registry.declareCounter("cachecar_config_reloads_total",
                          "Configuration reloads, by result (a failed one keeps the running "
                          "configuration).",
                          {"result"});
  registry.declareCounter("cachecar_purges_total", "Purges done, by kind (url or cache).",
                          {"kind"});
}

Server::Server(const storage::Registry& registry, Options options)
    : registry_(registry), options_(std::move(options)), access_log_(STDOUT_FILENO) {}

Server::~Server() { stop(); }

Status Server::start(config::Config config) {
  const unsigned n = config.effectiveWorkers();
  // One metrics slot per worker and one for the control plane.
  metrics_ = std::make_unique<metrics::Registry>(n + 1);
  declareServerMetrics(*metrics_);
  shared_ = std::make_unique<SharedState>(*metrics_, access_log_);
  auto settings = ProxySettings::build(std::move(config), registry_, *metrics_);
  if (!settings.ok()) {
    return settings.error();
  }
  settings_ = settings.value();

  ControlPlane::Options control_options;
  control_options.load_config = options_.load_config;
  control_options.watch_path = options_.config_path;
  control_options.publish = [this](std::shared_ptr<const ProxySettings> next) {
    for (auto& worker : workers_) {
      Worker* w = worker.get();
      w->loop().post([w, next] { w->adopt(next); });
    }
  };
  control_ = std::make_unique<ControlPlane>(control_loop_, registry_, *shared_, n,
                                            std::move(control_options));
  control_thread_ = std::thread([this] { control_loop_.run(); });
  // Workers are built before the control plane is started: publish() may run right after.
  for (unsigned i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, settings_, *shared_));
  }
  auto started = std::make_shared<std::promise<Status>>();
  std::future<Status> started_future = started->get_future();
  control_loop_.post([this, started] {
    control_->start(settings_, [started](Status status) { started->set_value(status); });
  });
  if (started_future.wait_for(kStartTimeout) != std::future_status::ready) {
    return Error{"the control plane did not start in time"};
  }
  if (Status status = started_future.get(); !status.ok()) {
    return status;
  }
  for (auto& worker : workers_) {
    if (auto listening = worker->listen(); !listening.ok()) {
      return listening.error();
    }
  }
  for (auto& worker : workers_) {
    worker->startThread();
  }
  log(LogLevel::kInfo, "listening on ", settings_->config().listen.toString(), " upstream ",
      settings_->config().upstream.url, " workers=", n);
  return Ok{};
}

void Server::runUntilSignalled() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  for (;;) {
    const int sig = waitForSignal(signals, std::nullopt);
    if (sig == SIGHUP) {
      log(LogLevel::kInfo, "received SIGHUP, reloading the configuration");
      control_loop_.post([this] { control_->reload("SIGHUP"); });
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      log(LogLevel::kInfo, "received ", signalName(sig), ", draining");
      break;
    }
  }
  drain();
  stop();
}

void Server::drain() {
  control_->beginDrain();
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    w->loop().post([w] { w->beginDrain(); });
  }
  sigset_t stop_now;
  sigemptyset(&stop_now);
  sigaddset(&stop_now, SIGTERM);
  sigaddset(&stop_now, SIGINT);
  const auto deadline = std::chrono::steady_clock::now() + settings_->config().drain_timeout;
  for (;;) {
    const uint64_t open = shared_->open_connections.load(std::memory_order_relaxed);
    if (open == 0) {
      log(LogLevel::kInfo, "drained: every connection finished");
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      log(LogLevel::kWarn, "drain_timeout reached: closing ", open, " connection(s)");
      return;
    }
    // Waiting for a signal is the pause between checks: a second SIGTERM / SIGINT stops now.
    const int sig = waitForSignal(stop_now, kDrainPoll);
    if (sig == SIGTERM || sig == SIGINT) {
      log(LogLevel::kWarn, "received ", signalName(sig), " again: stopping without waiting");
      return;
    }
  }
}

void Server::stop() {
  // The control loop first: it is what hands new settings to the workers. (Also posted: a
  // loop that has not entered its first iteration yet would miss a plain stop().)
  control_loop_.post([this] { control_loop_.stop(); });
  control_loop_.stop();
  if (control_thread_.joinable()) {
    control_thread_.join();
  }
  for (auto& worker : workers_) {
    worker->stop();
  }
  for (auto& worker : workers_) {
    worker->join();
  }
  // No more cross-worker notifications: the loops they would be posted to are going away.
  if (shared_) {
    shared_->inflight.shutdown();
  }
  workers_.clear();
  control_.reset();
  control_loop_.drainPosted();
}

}  // namespace cachecar::server
