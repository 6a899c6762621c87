#include "cachecar/server/control_plane.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "cachecar/cache/cache_key.h"
#include "cachecar/common/logging.h"
#include "cachecar/server/access_log.h"

namespace cachecar::server {

namespace {

constexpr const char* kReloadsTotal = "cachecar_config_reloads_total";
constexpr const char* kPurgesTotal = "cachecar_purges_total";

metrics::Counter& reloadCounter(metrics::Registry& metrics, const char* result) {
  return metrics.counter(kReloadsTotal, {result});
}

std::string describeTarget(const admin::PurgeTarget& target) {
  std::string out = target.host + target.path;
  if (!target.query.empty()) {
    out.append("?").append(target.query);
  }
  return out;
}

std::string joinNames(const std::map<std::string, CacheRuntime>& caches) {
  std::string out;
  for (const auto& [name, runtime] : caches) {
    out.append(out.empty() ? "" : ", ").append(name);
  }
  return out;
}

// Publishes a cache's bump count as read from its store, or logs why it cannot be used.
bool publishBumps(const CacheInstance& cache, int64_t bumps) {
  if (cache.version->publish(cache.settings.version, bumps)) {
    return true;
  }
  log(LogLevel::kError, "cache ", cache.settings.name, ": the version count in its store (",
      cache::versionBumpsKey(cache.settings.key_prefix), " = ", bumps,
      ") is out of range; the cache is bypassed until the key is deleted or repaired");
  return false;
}

}  // namespace

ControlPlane::ControlPlane(event::EventLoop& loop, const storage::Registry& registry,
                           SharedState& shared, size_t metrics_slot, Options options)
    : loop_(loop),
      registry_(registry),
      shared_(shared),
      metrics_slot_(metrics_slot),
      options_(std::move(options)),
      reloads_ok_(reloadCounter(shared.metrics, "ok")),
      reloads_failed_(reloadCounter(shared.metrics, "failed")),
      prober_(loop),
      version_timer_(loop, [this] { pollVersions(); }) {}

ControlPlane::~ControlPlane() = default;

void ControlPlane::start(std::shared_ptr<const ProxySettings> settings,
                         std::function<void(Status)> started) {
  CacheInstances caches = makeCacheInstances(*settings, caches_, loop_, shared_.metrics, metrics_slot_);
  std::weak_ptr<bool> alive = alive_;
  readVersions(caches, [this, alive, settings, caches, started = std::move(started)]() mutable {
    if (alive.expired()) {
      return;
    }
    settings_ = std::move(settings);
    caches_ = std::move(caches);
    version_timer_.arm(kVersionPollInterval);
    if (options_.watch_path) {
      watcher_ = std::make_unique<ConfigWatcher>(loop_, *options_.watch_path, kConfigPollInterval,
                                                 [this] { reload("the file changed"); });
      watcher_->start();
    }
    const auto& admin = settings_->config().admin;
    if (admin) {
      admin::AdminServerSettings admin_settings;
      if (!admin->token_env.empty()) {
        const char* token = std::getenv(admin->token_env.c_str());
        if (token != nullptr && *token != '\0') {
          admin_settings.token = token;
        } else {
          log(LogLevel::kWarn, "admin: ", admin->token_env,
              " is not set: /metrics and /purge answer loopback clients only");
        }
      }
      admin_ = std::make_unique<admin::AdminServer>(loop_, *this, std::move(admin_settings));
      if (auto listening = admin_->listen(admin->listen); !listening.ok()) {
        started(Error{"admin: " + listening.error().message});
        return;
      }
      log(LogLevel::kInfo, "admin endpoints on ", admin->listen.toString());
    }
    started(Ok{});
  });
}

void ControlPlane::readVersions(const CacheInstances& caches, std::function<void()> done) {
  // Shared countdown: the memory backend answers inside the call, Redis later.
  auto remaining = std::make_shared<size_t>(caches.size() + 1);
  auto finish_one = [remaining, done = std::move(done)] {
    if (--*remaining == 0) {
      done();
    }
  };
  std::weak_ptr<bool> alive = alive_;
  for (const auto& [name, cache] : caches) {
    cache->backend->addToCounter(
        cache::versionBumpsKey(cache->settings.key_prefix), 0,
        [alive, cache = std::weak_ptr<CacheInstance>(cache), finish_one](
            storage::StorageStatus status, int64_t bumps) {
          if (alive.expired()) {
            return;
          }
          auto known = cache.lock();
          if (known && status == storage::StorageStatus::kOk) {
            publishBumps(*known, bumps);
          }
          finish_one();
        });
  }
  finish_one();
}

void ControlPlane::pollVersions() {
  std::weak_ptr<bool> alive = alive_;
  readVersions(caches_, [this, alive] {
    if (!alive.expired()) {
      version_timer_.arm(kVersionPollInterval);
    }
  });
}

void ControlPlane::reload(std::string_view why) {
  if (!settings_) {
    return;  // not started yet
  }
  auto loaded = options_.load_config();
  if (!loaded.ok()) {
    reloadFailed(why, loaded.error().message);
    return;
  }
  config::Config next = std::move(loaded.value());
  const config::Config& running = settings_->config();
  const std::vector<std::string> fixed = config::restartRequiredChanges(running, next);
  if (!fixed.empty()) {
    std::string names;
    for (const auto& name : fixed) {
      names.append(names.empty() ? "" : ", ").append(name);
    }
    log(LogLevel::kWarn, "reload: ", names, " changed; a restart applies that, until then the ",
        "running value", fixed.size() > 1 ? "s stay" : " stays");
    next.listen = running.listen;
    next.workers = running.workers;
    next.upstream = running.upstream;
    next.admin = running.admin;
  }
  auto built = ProxySettings::build(std::move(next), registry_, shared_.metrics, settings_.get());
  if (!built.ok()) {
    reloadFailed(why, built.error().message);
    return;
  }
  std::shared_ptr<const ProxySettings> settings = std::move(built.value());
  CacheInstances caches = makeCacheInstances(*settings, caches_, loop_, shared_.metrics, metrics_slot_);
  const uint64_t generation = ++reload_generation_;
  std::weak_ptr<bool> alive = alive_;
  readVersions(caches, [this, alive, generation, settings, caches, reason = std::string(why)] {
    // A newer reload that started meanwhile wins.
    if (!alive.expired() && generation == reload_generation_) {
      apply(settings, caches, reason);
    }
  });
}

void ControlPlane::apply(std::shared_ptr<const ProxySettings> settings, CacheInstances caches,
                         std::string_view why) {
  setLogThreshold(settings->config().log_level);
  settings_ = std::move(settings);
  caches_ = std::move(caches);
  options_.publish(settings_);
  reloads_ok_.add(metrics_slot_);
  log(LogLevel::kInfo, "configuration reloaded (", why, ") from ", settings_->config().source,
      ": ", settings_->config().routes.size(), " routes, caches ", joinNames(settings_->caches()));
}

void ControlPlane::reloadFailed(std::string_view why, const std::string& message) {
  reloads_failed_.add(metrics_slot_);
  log(LogLevel::kError, "configuration reload (", why, ") failed, the running configuration ",
      "stays in force: ", message);
}

std::shared_ptr<CacheInstance> ControlPlane::cacheNamed(
    const std::string& name) const {
  auto it = caches_.find(name);
  return it == caches_.end() ? nullptr : it->second;
}

// --- admin hooks --------------------------------------------------------------------------

void ControlPlane::probeUpstream(std::function<void(Status)> done) {
  prober_.probe(settings_->upstreamAddress(), settings_->upstreamAddressLength(), kProbeTimeout,
                [done = std::move(done), app = settings_->config().upstream.url](Status status) {
                  if (status.ok()) {
                    done(Ok{});
                  } else {
                    done(Error{app + ": " + status.error().message});
                  }
                });
}

void ControlPlane::purgeUrl(const admin::PurgeTarget& target,
                            std::function<void(Result<std::string>)> done) {
  const std::string what = describeTarget(target);
  // Normalized as a request for the URL would be, so the key is the one that request built.
  http::RequestHead request;
  request.method = "GET";
  request.target = target.query.empty() ? target.path : target.path + "?" + target.query;
  request.headers.add("Host", target.host);
  if (const auto rejected = http::normalizeRequest(request, settings_->normalizeOptions(""))) {
    done(Error{"cannot purge " + what + ": no request could name it (" + rejected->reason + ")"});
    return;
  }
  const config::RouteSettings* route = settings_->routes().match(request.path());
  if (route != nullptr && route->cache_off) {
    done(std::string("nothing to purge: ") + what + " is on route " + route->match +
         " (cache: off)");
    return;
  }
  const std::string cache_name = route != nullptr ? route->cache : std::string("default");
  std::shared_ptr<CacheInstance> cache = cacheNamed(cache_name);
  const std::optional<int64_t> bumps = cache ? cache->version->bumps() : std::nullopt;
  if (!bumps) {
    done(Error{"cache '" + cache_name + "' is not available: its store has not answered yet"});
    return;
  }
  // The URL's primary key as a request for it would build it, without the route's key headers
  // and cookies: every stored variant of the URL (Vary variants, key headers and cookies,
  // per-credential entries) extends that key after a '|', so one prefix finds them all.
  config::KeySettings key_settings;
  if (route != nullptr) {
    key_settings.query = route->key.query;
  }
  const cache::CacheKey key = cache::buildCacheKey(
      cache->settings.key_prefix, cache->settings.version + *bumps, key_settings, request);
  auto counter = &shared_.metrics.counter(kPurgesTotal, {"url"});
  std::weak_ptr<bool> alive = alive_;
  const std::string primary = key.storage_key;
  cache->backend->remove(primary, [this, alive, cache, primary, what, cache_name, counter,
                                   done = std::move(done)](storage::StorageStatus removed) mutable {
    if (alive.expired()) {
      return;
    }
    cache->backend->clearPrefix(
        primary + "|", [alive, what, cache_name, counter, removed, slot = metrics_slot_,
                        done = std::move(done)](storage::StorageStatus cleared) {
          if (alive.expired()) {
            return;
          }
          if (removed != storage::StorageStatus::kOk || cleared != storage::StorageStatus::kOk) {
            const auto failed = removed != storage::StorageStatus::kOk ? removed : cleared;
            done(Error{"cache '" + cache_name + "' did not complete the purge of " + what + " (" +
                       std::string(storage::toString(failed)) + ")"});
            return;
          }
          counter->add(slot);
          done("purged " + what + " from cache '" + cache_name + "'");
        });
  });
}

void ControlPlane::bumpCacheVersion(const std::string& name,
                                    std::function<void(Result<std::string>)> done) {
  std::shared_ptr<CacheInstance> cache = cacheNamed(name);
  if (!cache) {
    done(Error{"unknown cache '" + name + "'; caches: " + joinNames(settings_->caches())});
    return;
  }
  const std::optional<int64_t> old_bumps = cache->version->bumps();
  auto counter = &shared_.metrics.counter(kPurgesTotal, {"cache"});
  std::weak_ptr<bool> alive = alive_;
  cache->backend->addToCounter(
      cache::versionBumpsKey(cache->settings.key_prefix), 1,
      [alive, cache, name, old_bumps, counter, slot = metrics_slot_, done = std::move(done)](
          storage::StorageStatus status, int64_t bumps) {
        if (alive.expired()) {
          return;
        }
        if (status != storage::StorageStatus::kOk) {
          done(Error{"cache '" + name + "': its store did not answer (" +
                     std::string(storage::toString(status)) + "); the version is unchanged"});
          return;
        }
        if (!publishBumps(*cache, bumps)) {
          done(Error{"cache '" + name + "': its store holds a version count out of range (" +
                     std::to_string(bumps) + "); the cache is bypassed until it is repaired"});
          return;
        }
        counter->add(slot);
        const int64_t version = cache->settings.version + bumps;
        if (old_bumps) {
          // The old entries are unreachable already; removing them just frees the space.
          cache->backend->clearPrefix(
              cache::keyNamespace(cache->settings.key_prefix,
                                  cache->settings.version + *old_bumps),
              [](storage::StorageStatus) {});
        }
        done("cache '" + name + "' is now at version " + std::to_string(version) +
             ": every entry stored before is unreachable");
      });
}

std::string ControlPlane::renderMetrics() {
  metrics::TextWriter out;
  shared_.metrics.render(out);
  out.family("cachecar_open_connections", "gauge", "Client connections open now.");
  out.sample("cachecar_open_connections", {}, {},
             shared_.open_connections.load(std::memory_order_relaxed));
  out.family("cachecar_draining", "gauge", "1 while shutting down gracefully.");
  out.sample("cachecar_draining", {}, {}, static_cast<uint64_t>(draining() ? 1 : 0));
  out.family("cachecar_cache_version", "gauge",
             "The version a cache's keys are built with (configured version plus bumps).");
  for (const auto& [name, cache] : caches_) {
    if (auto bumps = cache->version->bumps()) {
      out.sample("cachecar_cache_version", {"cache"}, {name},
                 static_cast<double>(cache->settings.version + *bumps));
    }
  }
  struct MemoryFamily {
    const char* name;
    const char* type;
    const char* help;
    uint64_t storage::BackendStats::*field;
  };
  static constexpr MemoryFamily kMemoryFamilies[] = {
      {"cachecar_memory_entries", "gauge", "Entries held by a memory cache.",
       &storage::BackendStats::entries},
      {"cachecar_memory_bytes", "gauge",
       "Bytes a memory cache holds, as counted against max_bytes (keys, values, overhead).",
       &storage::BackendStats::bytes},
      {"cachecar_memory_evictions_total", "counter",
       "Entries a memory cache dropped to stay within its bounds.",
       &storage::BackendStats::evictions},
  };
  for (const MemoryFamily& family : kMemoryFamilies) {
    out.family(family.name, family.type, family.help);
    for (const auto& [name, cache] : caches_) {
      if (cache->backend->inProcess()) {
        out.sample(family.name, {"cache"}, {name}, cache->backend->stats().*family.field);
      }
    }
  }
  out.family("cachecar_access_log_dropped_total", "counter",
             "Access log lines dropped because stdout did not keep up.");
  out.sample("cachecar_access_log_dropped_total", {}, {}, shared_.access_log.dropped());
  return out.take();
}

}  // namespace cachecar::server
