#include "cachecar/server/server.h"

#include <csignal>

#include "cachecar/common/logging.h"
#include "cachecar/config/config_loader.h"

namespace cachecar::server {

Server::~Server() { stop(); }

Status Server::start(config::Config config) {
  auto settings = ProxySettings::build(std::move(config), registry_);
  if (!settings.ok()) {
    return settings.error();
  }
  settings_ = settings.value();
  const unsigned n = settings_->config().effectiveWorkers();
  for (unsigned i = 0; i < n; ++i) {
    auto worker = std::make_unique<Worker>(i, settings_, counters_);
    if (auto listening = worker->listen(); !listening.ok()) {
      return listening.error();
    }
    workers_.push_back(std::move(worker));
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
  int received = 0;
  sigwait(&signals, &received);
  log(LogLevel::kInfo, "received ", received == SIGTERM ? "SIGTERM" : "SIGINT", ", stopping");
  stop();
}

void Server::stop() {
  for (auto& worker : workers_) {
    worker->stop();
  }
  for (auto& worker : workers_) {
    worker->join();
  }
  // No more cross-worker notifications: the loops they would be posted to are going away.
  counters_.inflight.shutdown();
  workers_.clear();
}

}  // namespace cachecar::server
