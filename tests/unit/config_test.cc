#include "cachecar/config/config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cachecar::config {
namespace {

using Names = std::vector<std::string>;

TEST(HostPortTest, EqualWhenHostAndPortAreEqual) {
  EXPECT_EQ((HostPort{"127.0.0.1", 80}), (HostPort{"127.0.0.1", 80}));
  EXPECT_NE((HostPort{"127.0.0.1", 80}), (HostPort{"127.0.0.1", 81}));
  EXPECT_NE((HostPort{"127.0.0.1", 80}), (HostPort{"localhost", 80}));  // text, not resolved
}

TEST(AdminSettingsTest, DefaultsAndEquality) {
  const AdminSettings admin;
  EXPECT_EQ(admin.listen.toString(), "127.0.0.1:9901");
  EXPECT_EQ(admin.token_env, "");
  AdminSettings other;
  EXPECT_EQ(admin, other);
  other.token_env = "T";
  EXPECT_NE(admin, other);
  EXPECT_FALSE(defaultConfig().admin.has_value());
  EXPECT_EQ(defaultConfig().drain_timeout, std::chrono::seconds(10));
  EXPECT_FALSE(defaultConfig().access_log);
}

Config withListeners(HostPort proxy, std::optional<HostPort> admin) {
  Config config = defaultConfig();
  config.listen = std::move(proxy);
  if (admin) {
    config.admin = AdminSettings{*admin, ""};
  }
  return config;
}

TEST(AdminListenConflictTest, NoneWithoutAnAdminListenerOrOnAnotherPort) {
  EXPECT_EQ(adminListenConflict(withListeners({"127.0.0.1", 9901}, std::nullopt)), std::nullopt);
  EXPECT_EQ(adminListenConflict(defaultConfig()), std::nullopt);
  EXPECT_EQ(adminListenConflict(withListeners({"127.0.0.1", 8080}, HostPort{"127.0.0.1", 8081})),
            std::nullopt);
  EXPECT_EQ(adminListenConflict(withListeners({"0.0.0.0", 8080}, HostPort{"0.0.0.0", 9901})),
            std::nullopt);
  // Two specific addresses may share a port.
  EXPECT_EQ(adminListenConflict(withListeners({"127.0.0.1", 8080}, HostPort{"10.0.0.1", 8080})),
            std::nullopt);
}

TEST(AdminListenConflictTest, SameAddressOrAWildcardOnTheSamePort) {
  EXPECT_EQ(adminListenConflict(withListeners({"127.0.0.1", 8080}, HostPort{"127.0.0.1", 8080})),
            "same address as listen (127.0.0.1:8080); the admin listener needs its own port");
  EXPECT_EQ(adminListenConflict(withListeners({"::1", 8080}, HostPort{"::1", 8080})),
            "same address as listen ([::1]:8080); the admin listener needs its own port");
  const std::string wildcard =
      "), and a wildcard address overlaps every other; the admin listener needs its own port";
  EXPECT_EQ(adminListenConflict(withListeners({"0.0.0.0", 8080}, HostPort{"127.0.0.1", 8080})),
            "same port as listen (0.0.0.0:8080" + wildcard);
  EXPECT_EQ(adminListenConflict(withListeners({"127.0.0.1", 8080}, HostPort{"::", 8080})),
            "same port as listen (127.0.0.1:8080" + wildcard);
  EXPECT_EQ(adminListenConflict(withListeners({"::", 8080}, HostPort{"0.0.0.0", 8080})),
            "same port as listen ([::]:8080" + wildcard);
}

TEST(RestartRequiredChangesTest, NoneBetweenEqualConfigs) {
  const Config config = defaultConfig();
  EXPECT_EQ(restartRequiredChanges(config, config), Names{});
  Config with_admin = defaultConfig();
  with_admin.admin = AdminSettings{{"127.0.0.1", 9902}, "TOKEN"};
  EXPECT_EQ(restartRequiredChanges(with_admin, with_admin), Names{});
}

TEST(RestartRequiredChangesTest, SettingsAReloadAppliesAreNotListed) {
  const Config running = defaultConfig();
  Config next = defaultConfig();
  next.source = "other.yaml";
  next.log_level = LogLevel::kDebug;
  next.limits.idle_timeout = std::chrono::seconds(1);
  next.heuristic.fraction = 0.5;
  next.caches.at("default").version = 7;
  next.caches.emplace("other", CacheSettings{});
  next.routes.push_back(RouteSettings{});
  next.drain_timeout = std::chrono::seconds(0);
  next.access_log = true;
  next.upstream.url = "http://127.0.0.1:8000/";  // the same address, spelled differently
  EXPECT_EQ(restartRequiredChanges(running, next), Names{});
}

TEST(RestartRequiredChangesTest, EachRestartSettingIsNamed) {
  const Config running = defaultConfig();

  Config listen = running;
  listen.listen.port = 8081;
  EXPECT_EQ(restartRequiredChanges(running, listen), Names{"listen"});
  listen = running;
  listen.listen.host = "0.0.0.0";
  EXPECT_EQ(restartRequiredChanges(running, listen), Names{"listen"});

  Config workers = running;
  workers.workers = running.effectiveWorkers() + 1;
  EXPECT_EQ(restartRequiredChanges(running, workers), Names{"workers"});

  Config upstream = running;
  upstream.upstream = UpstreamSettings{{"127.0.0.1", 9000}, "http://127.0.0.1:9000"};
  EXPECT_EQ(restartRequiredChanges(running, upstream), Names{"upstream"});
  upstream.upstream = UpstreamSettings{{"app", 8000}, "http://app:8000"};
  EXPECT_EQ(restartRequiredChanges(running, upstream), Names{"upstream"});

  Config admin = running;
  admin.admin = AdminSettings{};
  EXPECT_EQ(restartRequiredChanges(running, admin), Names{"admin"});  // added
  EXPECT_EQ(restartRequiredChanges(admin, running), Names{"admin"});  // removed
  Config moved = admin;
  moved.admin->listen.port = 9902;
  EXPECT_EQ(restartRequiredChanges(admin, moved), Names{"admin"});
  Config token = admin;
  token.admin->token_env = "CACHECAR_ADMIN_TOKEN";
  EXPECT_EQ(restartRequiredChanges(admin, token), Names{"admin"});
}

TEST(RestartRequiredChangesTest, AllChangesInAFixedOrder) {
  const Config running = defaultConfig();
  Config next = running;
  next.admin = AdminSettings{};
  next.upstream.address.port = 1;
  next.workers = running.effectiveWorkers() + 3;
  next.listen.port = 1;
  EXPECT_EQ(restartRequiredChanges(running, next),
            (Names{"listen", "workers", "upstream", "admin"}));
}

TEST(RestartRequiredChangesTest, WorkersCompareByTheEffectiveCount) {
  // `auto` is one thread per core: writing that number out is the same process.
  Config automatic = defaultConfig();
  automatic.workers = 0;
  Config explicit_count = automatic;
  const unsigned cores = std::thread::hardware_concurrency();
  explicit_count.workers = cores == 0 ? 1 : cores;
  EXPECT_EQ(restartRequiredChanges(automatic, explicit_count), Names{});
  EXPECT_EQ(restartRequiredChanges(explicit_count, automatic), Names{});
  explicit_count.workers += 1;
  EXPECT_EQ(restartRequiredChanges(automatic, explicit_count), Names{"workers"});
}

}  // namespace
}  // namespace cachecar::config
