#include "cachecar/config/config_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/config/config.h"

namespace cachecar::config {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

// The configuration format as documented, with every key set to a non-default value.
constexpr std::string_view kFullExample = R"(listen: 127.0.0.1:8080          # host:port
upstream: http://127.0.0.1:8000 # the app
workers: 3
log_level: warn
limits:
  header_read_timeout: 10s
  idle_timeout: 60s
  upstream_connect_timeout: 3s
  upstream_response_timeout: 30s
  max_header_bytes: 64KiB
  max_request_body_bytes: 16MiB
  max_connections: 10000
  upstream_max_idle_connections: 64
  coalesce_wait: 2500ms
heuristic:
  fraction: 0.25
  max: 12h
caches:
  default:
    backend: memory
    timeout: 5m
    key_prefix: shop
    version: 1
    options: {max_entries: 10000, max_bytes: 256MiB, max_object_bytes: 8MiB}
  shared:
    backend: redis
    location: redis://redis.local:6380/2
    timeout: 10m
    key_prefix: "shop:v2"
    version: 0
    options: {max_object_bytes: 1MiB, connect_timeout: 250ms, command_timeout: 50ms}
routes:
  - {match: /static/, cache: default, ttl: 1d, override: true,
     stale_while_revalidate: 1m, stale_if_error: 1h}
  - {match: /account/, cache: off}
  - {match: /api/, ttl: 30s,
     key: {query: [page, sort], headers: [Accept-Language], cookies: [currency]}}
  - match: /shared/
    cache: shared
    key:
      query: []
admin:
  listen: 127.0.0.1:9902
  token_env: CACHECAR_ADMIN_TOKEN
drain_timeout: 30s
access_log: true
)";

Config parseOk(std::string_view yaml) {
  Result<Config> parsed = parseConfig(yaml, "x.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  if (!parsed.ok()) {
    return Config{};
  }
  return std::move(parsed).value();
}

std::string parseError(std::string_view yaml) {
  const Result<Config> parsed = parseConfig(yaml, "x.yaml");
  if (parsed.ok()) {
    return "<parsed without error>";
  }
  return parsed.error().message;
}

TEST(ConfigLoaderTest, FullExampleParsesIntoTypedSettings) {
  const Config config = parseOk(kFullExample);
  EXPECT_EQ(config.source, "x.yaml");
  EXPECT_EQ(config.listen.host, "127.0.0.1");
  EXPECT_EQ(config.listen.port, 8080);
  EXPECT_EQ(config.upstream.address.host, "127.0.0.1");
  EXPECT_EQ(config.upstream.address.port, 8000);
  EXPECT_EQ(config.upstream.url, "http://127.0.0.1:8000");
  EXPECT_EQ(config.workers, 3u);
  EXPECT_EQ(config.effectiveWorkers(), 3u);
  EXPECT_EQ(config.log_level, LogLevel::kWarn);

  EXPECT_EQ(config.limits.header_read_timeout, milliseconds(10'000));
  EXPECT_EQ(config.limits.idle_timeout, milliseconds(60'000));
  EXPECT_EQ(config.limits.upstream_connect_timeout, milliseconds(3'000));
  EXPECT_EQ(config.limits.upstream_response_timeout, milliseconds(30'000));
  EXPECT_EQ(config.limits.max_header_bytes, 64u * 1024);
  EXPECT_EQ(config.limits.max_request_body_bytes, 16u << 20);
  EXPECT_EQ(config.limits.max_connections, 10000u);
  EXPECT_EQ(config.limits.upstream_max_idle_connections, 64u);
  EXPECT_EQ(config.limits.coalesce_wait, milliseconds(2'500));
  EXPECT_EQ(config.heuristic.fraction, 0.25);
  EXPECT_EQ(config.heuristic.max, milliseconds(12 * 3'600'000));

  ASSERT_EQ(config.caches.size(), 2u);
  const CacheSettings& memory = config.caches.at("default");
  EXPECT_EQ(memory.name, "default");
  EXPECT_EQ(memory.backend, "memory");
  EXPECT_EQ(memory.location, "");
  EXPECT_EQ(memory.timeout, milliseconds(300'000));
  EXPECT_EQ(memory.key_prefix, "shop");
  EXPECT_EQ(memory.version, 1);
  EXPECT_EQ(memory.max_entries, 10000u);
  EXPECT_EQ(memory.max_bytes, 256u << 20);
  EXPECT_EQ(memory.max_object_bytes, 8u << 20);

  const CacheSettings& redis = config.caches.at("shared");
  EXPECT_EQ(redis.name, "shared");
  EXPECT_EQ(redis.backend, "redis");
  EXPECT_EQ(redis.location, "redis://redis.local:6380/2");
  EXPECT_EQ(redis.timeout, milliseconds(600'000));
  EXPECT_EQ(redis.key_prefix, "shop:v2");
  EXPECT_EQ(redis.version, 0);
  EXPECT_EQ(redis.max_object_bytes, 1u << 20);
  EXPECT_EQ(redis.connect_timeout, milliseconds(250));
  EXPECT_EQ(redis.command_timeout, milliseconds(50));

  ASSERT_EQ(config.routes.size(), 4u);
  const RouteSettings& statics = config.routes[0];
  EXPECT_EQ(statics.match, "/static/");
  EXPECT_FALSE(statics.cache_off);
  EXPECT_EQ(statics.cache, "default");
  EXPECT_EQ(statics.ttl, milliseconds(86'400'000));
  EXPECT_TRUE(statics.override_ttl);
  EXPECT_EQ(statics.stale_while_revalidate, milliseconds(60'000));
  EXPECT_EQ(statics.stale_if_error, milliseconds(3'600'000));
  EXPECT_FALSE(statics.key.query.has_value());
  EXPECT_TRUE(statics.key.headers.empty());
  EXPECT_TRUE(statics.key.cookies.empty());
  EXPECT_EQ(statics.line, 33);

  const RouteSettings& account = config.routes[1];
  EXPECT_EQ(account.match, "/account/");
  EXPECT_TRUE(account.cache_off);  // `off`, which YAML 1.1 would read as false
  EXPECT_FALSE(account.ttl.has_value());
  EXPECT_FALSE(account.override_ttl);
  EXPECT_FALSE(account.stale_while_revalidate.has_value());
  EXPECT_FALSE(account.stale_if_error.has_value());
  EXPECT_EQ(account.line, 35);

  const RouteSettings& api = config.routes[2];
  EXPECT_EQ(api.match, "/api/");
  EXPECT_FALSE(api.cache_off);
  EXPECT_EQ(api.cache, "default");
  EXPECT_EQ(api.ttl, milliseconds(30'000));
  ASSERT_TRUE(api.key.query.has_value());
  EXPECT_EQ(*api.key.query, (std::vector<std::string>{"page", "sort"}));
  EXPECT_EQ(api.key.headers, std::vector<std::string>{"Accept-Language"});
  EXPECT_EQ(api.key.cookies, std::vector<std::string>{"currency"});
  EXPECT_FALSE(api.override_ttl);  // ttl alone: the app's own freshness still wins
  EXPECT_FALSE(api.stale_while_revalidate.has_value());
  EXPECT_FALSE(api.stale_if_error.has_value());
  EXPECT_EQ(api.line, 36);

  const RouteSettings& shared = config.routes[3];
  EXPECT_EQ(shared.match, "/shared/");
  EXPECT_EQ(shared.cache, "shared");
  EXPECT_FALSE(shared.ttl.has_value());
  ASSERT_TRUE(shared.key.query.has_value());  // `query: []`: no parameter enters the key
  EXPECT_TRUE(shared.key.query->empty());
  EXPECT_EQ(shared.line, 38);
  ASSERT_TRUE(config.admin.has_value());
  EXPECT_EQ(config.admin->listen, (HostPort{"127.0.0.1", 9902}));
  EXPECT_EQ(config.admin->token_env, "CACHECAR_ADMIN_TOKEN");
  EXPECT_EQ(config.drain_timeout, milliseconds(30'000));
  EXPECT_TRUE(config.access_log);
}

TEST(ConfigLoaderTest, DefaultConfigHasOneMemoryCacheAndNoRoutes) {
  const Config config = defaultConfig();
  EXPECT_EQ(config.source, "<defaults>");
  EXPECT_EQ(config.listen.toString(), "127.0.0.1:8080");
  EXPECT_EQ(config.upstream.url, "http://127.0.0.1:8000");
  EXPECT_EQ(config.upstream.address.toString(), "127.0.0.1:8000");
  EXPECT_EQ(config.workers, 0u);
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  ASSERT_EQ(config.caches.size(), 1u);
  const CacheSettings& cache = config.caches.at("default");
  EXPECT_EQ(cache.name, "default");
  EXPECT_EQ(cache.backend, "memory");
  EXPECT_EQ(cache.timeout, milliseconds(300'000));
  EXPECT_TRUE(config.routes.empty());
  EXPECT_EQ(config.limits.coalesce_wait, milliseconds(10'000));
  EXPECT_EQ(config.heuristic.fraction, 0.1);
  EXPECT_EQ(config.heuristic.max, milliseconds(86'400'000));
  EXPECT_FALSE(config.admin.has_value());
  EXPECT_EQ(config.drain_timeout, milliseconds(10'000));
  EXPECT_FALSE(config.access_log);
}

TEST(ConfigLoaderTest, EmptyFileAndOmittedSectionsGiveDefaults) {
  for (const std::string_view yaml :
       {"", "# only a comment\n", "caches:\nroutes:\nlimits:\nheuristic:\n", "heuristic: {}\n"}) {
    SCOPED_TRACE(std::string(yaml));
    const Config config = parseOk(yaml);
    Config expected = defaultConfig();
    expected.source = "x.yaml";
    EXPECT_EQ(config.listen.toString(), expected.listen.toString());
    EXPECT_EQ(config.upstream.url, expected.upstream.url);
    EXPECT_EQ(config.workers, 0u);
    EXPECT_EQ(config.caches, expected.caches);
    EXPECT_TRUE(config.routes.empty());
    EXPECT_EQ(config.limits.max_header_bytes, 64u << 10);
    EXPECT_EQ(config.limits.header_read_timeout, milliseconds(10'000));
    EXPECT_EQ(config.limits.coalesce_wait, milliseconds(10'000));
    EXPECT_EQ(config.heuristic.fraction, 0.1);
    EXPECT_EQ(config.heuristic.max, milliseconds(86'400'000));
    EXPECT_FALSE(config.admin.has_value());  // absent: no admin listener at all
    EXPECT_EQ(config.drain_timeout, milliseconds(10'000));
    EXPECT_FALSE(config.access_log);
  }
}

TEST(ConfigLoaderTest, AdminPresentWithoutSettingsListensOnItsDefaultAddress) {
  // The key's presence is the switch: empty, {} or only a token all give 127.0.0.1:9901.
  for (const std::string_view yaml : {"admin:\n", "admin: {}\n", "admin: {token_env: T}\n"}) {
    SCOPED_TRACE(std::string(yaml));
    const Config config = parseOk(yaml);
    ASSERT_TRUE(config.admin.has_value());
    EXPECT_EQ(config.admin->listen.toString(), "127.0.0.1:9901");
    EXPECT_EQ(config.admin->listen, (AdminSettings{}.listen));
  }
  EXPECT_EQ(parseOk("admin:\n").admin->token_env, "");
  EXPECT_EQ(parseOk("admin: {token_env: T}\n").admin->token_env, "T");
}

TEST(ConfigLoaderTest, AdminListenAndTokenEnvSpellings) {
  const Config v6 = parseOk("admin:\n  listen: \"[::1]:9000\"\n");
  ASSERT_TRUE(v6.admin.has_value());
  EXPECT_EQ(v6.admin->listen, (HostPort{"::1", 9000}));
  EXPECT_EQ(v6.admin->token_env, "");

  // Same host, another port; and another host on the proxy's own port: both bind apart.
  const Config same_host = parseOk("listen: 127.0.0.1:8080\nadmin: {listen: 127.0.0.1:8081}\n");
  EXPECT_EQ(same_host.admin->listen.toString(), "127.0.0.1:8081");
  const Config same_port = parseOk("listen: 127.0.0.1:8080\nadmin: {listen: 10.0.0.1:8080}\n");
  EXPECT_EQ(same_port.admin->listen.toString(), "10.0.0.1:8080");
  // A wildcard proxy address with the admin listener on its own port.
  const Config wildcard = parseOk("listen: 0.0.0.0:8080\nadmin: {listen: 0.0.0.0:9901}\n");
  EXPECT_EQ(wildcard.admin->listen.toString(), "0.0.0.0:9901");

  for (const std::string_view name : {"CACHECAR_ADMIN_TOKEN", "_", "_x1", "a", "Token9", "A_B_C"}) {
    SCOPED_TRACE(std::string(name));
    const Config config = parseOk("admin:\n  token_env: " + std::string(name) + "\n");
    ASSERT_TRUE(config.admin.has_value());
    EXPECT_EQ(config.admin->token_env, name);
  }
  for (const std::string_view name : {"1TOKEN", "MY-TOKEN", "MY.TOKEN", "A B", "TOKEN=", "$TOKEN",
                                      "\"\"", "\u00e9t\u00e9"}) {
    SCOPED_TRACE(std::string(name));
    const std::string shown = name == "\"\"" ? "" : std::string(name);
    EXPECT_EQ(parseError("admin:\n  token_env: \"" + shown + "\"\n"),
              "x.yaml:2: admin.token_env: invalid environment variable name '" + shown +
                  "' (letters, digits and '_', not starting with a digit)");
  }
}

TEST(ConfigLoaderTest, DrainTimeoutAndAccessLog) {
  struct Drain {
    std::string_view text;
    milliseconds value;
  };
  for (const Drain& d : {Drain{"0", milliseconds(0)}, Drain{"0s", milliseconds(0)},
                         Drain{"250ms", milliseconds(250)}, Drain{"30", milliseconds(30'000)},
                         Drain{"2m", milliseconds(120'000)}}) {
    SCOPED_TRACE(std::string(d.text));
    EXPECT_EQ(parseOk("drain_timeout: " + std::string(d.text) + "\n").drain_timeout, d.value);
  }
  for (const std::string_view text : {"true", "True", "TRUE"}) {
    EXPECT_TRUE(parseOk("access_log: " + std::string(text) + "\n").access_log) << text;
  }
  for (const std::string_view text : {"false", "False", "FALSE"}) {
    EXPECT_FALSE(parseOk("access_log: " + std::string(text) + "\n").access_log) << text;
  }
  // Settings elsewhere in the file leave them at their defaults.
  const Config other = parseOk("workers: 2\nadmin:\n");
  EXPECT_EQ(other.drain_timeout, milliseconds(10'000));
  EXPECT_FALSE(other.access_log);
}

TEST(ConfigLoaderTest, RouteCachingSemanticsDefaultsAndSpellings) {
  const Config config = parseOk(
      "routes:\n"
      "  - {match: /a/, ttl: 5m}\n"
      "  - {match: /b/, ttl: 0s, override: True, stale_if_error: 0s}\n"
      "  - {match: /c/, override: false, stale_while_revalidate: 250ms}\n"
      "  - {match: /d/, ttl: 1h, override: FALSE}\n"
      "  - {match: /e/, ttl: 2d, override: \"true\"}\n"
      "  - match: /f/\n"
      "    override: true\n"
      "    ttl: 1m\n");
  ASSERT_EQ(config.routes.size(), 6u);
  const RouteSettings& a = config.routes[0];
  EXPECT_FALSE(a.override_ttl);
  EXPECT_FALSE(a.stale_while_revalidate.has_value());
  EXPECT_FALSE(a.stale_if_error.has_value());
  const RouteSettings& b = config.routes[1];
  EXPECT_TRUE(b.override_ttl);  // ttl 0 with override: always stale, revalidated on every use
  EXPECT_EQ(b.ttl, milliseconds(0));
  EXPECT_FALSE(b.stale_while_revalidate.has_value());
  EXPECT_EQ(b.stale_if_error, milliseconds(0));  // set to 0 is not the same as unset
  const RouteSettings& c = config.routes[2];
  EXPECT_FALSE(c.override_ttl);  // `override: false` needs no ttl
  EXPECT_FALSE(c.ttl.has_value());
  EXPECT_EQ(c.stale_while_revalidate, milliseconds(250));
  EXPECT_FALSE(c.stale_if_error.has_value());
  EXPECT_FALSE(config.routes[3].override_ttl);
  EXPECT_TRUE(config.routes[4].override_ttl);
  EXPECT_EQ(config.routes[4].ttl, milliseconds(2 * 86'400'000));
  EXPECT_TRUE(config.routes[5].override_ttl);  // the ttl may come after override
  EXPECT_EQ(config.routes[5].ttl, milliseconds(60'000));
}

TEST(ConfigLoaderTest, HeuristicFractionIsADecimalFromZeroToOne) {
  struct Good {
    std::string_view text;
    double value;
  };
  const Good good[] = {
      {"0", 0.0},   {"1", 1.0},    {"0.1", 0.1},     {"0.05", 0.05},   {"1.0", 1.0},
      {"0.0", 0.0}, {"00.5", 0.5}, {"\"0.3\"", 0.3}, {"0.999", 0.999},
  };
  for (const Good& g : good) {
    SCOPED_TRACE(std::string(g.text));
    const Config config = parseOk("heuristic:\n  fraction: " + std::string(g.text) + "\n");
    EXPECT_EQ(config.heuristic.fraction, g.value);
    EXPECT_EQ(config.heuristic.max, milliseconds(86'400'000));  // untouched
  }
  struct Bad {
    std::string_view yaml;
    std::string_view shown;  // as the message quotes it
  };
  const Bad garbage[] = {
      {"abc", "abc"},   {".5", ".5"},       {"1.", "1."},         {"1e-1", "1e-1"},
      {"0x1", "0x1"},   {"+0.5", "+0.5"},   {"0,5", "0,5"},       {"10%", "10%"},
      {"nan", "nan"},   {"inf", "inf"},     {"0.1.2", "0.1.2"},   {"0. 1", "0. 1"},
      {"1_0", "1_0"},   {"\"\"", ""},       {"\" 0.1\"", " 0.1"}, {"\"-\"", "-"},
      {"-abc", "-abc"}, {"1e400", "1e400"},
  };
  for (const Bad& b : garbage) {
    SCOPED_TRACE(std::string(b.yaml));
    EXPECT_EQ(parseError("heuristic:\n  fraction: " + std::string(b.yaml) + "\n"),
              "x.yaml:2: heuristic.fraction: expected a number from 0 to 1 such as 0.1, got '" +
                  std::string(b.shown) + "'");
  }
  for (const std::string_view text : {"-0.1", "-1", "-0", "1.5", "1.0000001", "2", "100"}) {
    SCOPED_TRACE(std::string(text));
    EXPECT_EQ(parseError("heuristic:\n  fraction: " + std::string(text) + "\n"),
              "x.yaml:2: heuristic.fraction: must be between 0 and 1, got " + std::string(text));
  }
  const Config zero = parseOk("heuristic: {fraction: 0.5, max: 0s}\n");
  EXPECT_EQ(zero.heuristic.fraction, 0.5);
  EXPECT_EQ(zero.heuristic.max, milliseconds(0));
}

TEST(ConfigLoaderTest, OmittedCacheKeysKeepTheirDefaults) {
  const Config config = parseOk(
      "caches:\n"
      "  default: {key_prefix: app}\n"
      "  r: {backend: redis, location: \"redis://[::1]\"}\n"
      "routes:\n"
      "  - match: /\n");
  const CacheSettings& memory = config.caches.at("default");
  EXPECT_EQ(memory.backend, "memory");
  EXPECT_EQ(memory.key_prefix, "app");
  EXPECT_EQ(memory.version, 1);
  EXPECT_EQ(memory.max_entries, 10000u);
  EXPECT_EQ(memory.max_bytes, 256u << 20);
  EXPECT_EQ(memory.max_object_bytes, 8u << 20);
  const CacheSettings& redis = config.caches.at("r");
  EXPECT_EQ(redis.connect_timeout, milliseconds(200));
  EXPECT_EQ(redis.command_timeout, milliseconds(100));
  ASSERT_EQ(config.routes.size(), 1u);
  EXPECT_EQ(config.routes[0].cache, "default");
  EXPECT_EQ(config.routes[0].line, 5);
}

TEST(ConfigLoaderTest, WorkersAutoAndIpv6Listen) {
  const Config config = parseOk("listen: \"[::1]:9090\"\nworkers: auto\nlog_level: debug\n");
  EXPECT_EQ(config.listen.host, "::1");
  EXPECT_EQ(config.listen.port, 9090);
  EXPECT_EQ(config.listen.toString(), "[::1]:9090");
  EXPECT_EQ(config.workers, 0u);
  EXPECT_GE(config.effectiveWorkers(), 1u);
  const unsigned cores = std::thread::hardware_concurrency();
  EXPECT_EQ(config.effectiveWorkers(), cores == 0 ? 1u : cores);
  EXPECT_EQ(config.log_level, LogLevel::kDebug);
}

// The optional top-level keys the example shows commented out are valid as written: with the
// "# " taken off, each line loads (and sets what it says).
TEST(ConfigLoaderTest, ShippedExampleCommentedOutKeysAreValid) {
  std::ifstream file(std::string(CACHECAR_SOURCE_DIR) + "/conf/cachecar.yaml");
  ASSERT_TRUE(file.good());
  std::string enabled;
  std::string line;
  int found = 0;
  while (std::getline(file, line)) {
    for (const std::string_view key : {"# admin:", "# drain_timeout:", "# access_log:"}) {
      if (line.rfind(key, 0) == 0) {
        enabled += line.substr(2) + "\n";
        ++found;
      }
    }
  }
  EXPECT_EQ(found, 3) << enabled;
  const Config config = parseOk(enabled);
  ASSERT_TRUE(config.admin.has_value()) << enabled;
  EXPECT_EQ(config.admin->listen.toString(), "127.0.0.1:9901");
  EXPECT_EQ(config.admin->token_env, "CACHECAR_ADMIN_TOKEN");
  EXPECT_EQ(config.drain_timeout, milliseconds(10'000));
  EXPECT_FALSE(config.access_log);
}

TEST(ConfigLoaderTest, ShippedExampleConfigLoads) {
  const std::string path = std::string(CACHECAR_SOURCE_DIR) + "/conf/cachecar.yaml";
  const Result<Config> loaded = loadConfigFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Config& config = *loaded;
  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.listen.toString(), "127.0.0.1:8080");
  EXPECT_EQ(config.upstream.url, "http://127.0.0.1:8000");
  EXPECT_EQ(config.workers, 0u);
  ASSERT_EQ(config.caches.count("default"), 1u);
  EXPECT_EQ(config.caches.at("default").backend, "memory");
  EXPECT_EQ(config.limits.coalesce_wait, milliseconds(10'000));
  EXPECT_EQ(config.heuristic.fraction, 0.1);
  EXPECT_EQ(config.heuristic.max, milliseconds(86'400'000));
  // Shown commented out: the shipped file runs without an admin listener or access log.
  EXPECT_FALSE(config.admin.has_value());
  EXPECT_EQ(config.drain_timeout, milliseconds(10'000));
  EXPECT_FALSE(config.access_log);
  bool static_route = false;
  bool api_route = false;
  bool account_off = false;
  for (const RouteSettings& route : config.routes) {
    if (route.match == "/static/") {
      static_route = route.ttl == milliseconds(86'400'000) && route.override_ttl &&
                     route.stale_if_error == milliseconds(3'600'000);
    } else if (route.match == "/api/") {
      api_route = route.key.query.has_value() && !route.key.query->empty() && !route.override_ttl &&
                  route.stale_while_revalidate == milliseconds(10'000);
    } else if (route.match == "/account/") {
      account_off = route.cache_off;
    }
  }
  EXPECT_TRUE(static_route);
  EXPECT_TRUE(api_route);
  EXPECT_TRUE(account_off);
}

struct ErrorCase {
  std::string_view name;
  std::string_view yaml;
  std::string_view message;
};

// Every class of mistake yields exactly "FILE:LINE: key.path: what is wrong".
TEST(ConfigLoaderTest, ErrorsNameFileLineAndPath) {
  const ErrorCase cases[] = {
      {"unknown top-level key", "workers: 2\nlisen: 127.0.0.1:8080\n",
       "x.yaml:2: unknown key 'lisen'"},
      {"unknown nested key", "caches:\n  default:\n    backnd: memory\n",
       "x.yaml:3: caches.default: unknown key 'backnd'"},
      {"unknown limit", "limits:\n  idle_timeout: 5s\n  idle: 5s\n",
       "x.yaml:3: limits: unknown key 'idle'"},
      {"unknown route key", "routes:\n  - match: /a/\n    tll: 5s\n",
       "x.yaml:3: routes[0]: unknown key 'tll'"},
      {"unknown key in key", "routes:\n  - {match: /a/, key: {header: [X-A]}}\n",
       "x.yaml:2: routes[0].key: unknown key 'header'"},
      {"duplicate key", "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
       "x.yaml:2: listen: duplicate key (first at line 1)"},
      {"unknown backend", "caches:\n  default:\n    backend: mem\n",
       "x.yaml:3: caches.default.backend: unknown backend 'mem'; valid: memory, redis"},
      {"bad route ttl", "routes:\n  - {match: /a/, ttl: 1s}\n  - {match: /b/, ttl: soon}\n",
       "x.yaml:3: routes[1].ttl: invalid duration 'soon' (use ms, s, m, h or d)"},
      {"negative timeout", "caches:\n  default:\n    timeout: -5s\n",
       "x.yaml:3: caches.default.timeout: invalid duration '-5s' (use ms, s, m, h or d)"},
      {"zero limit timeout", "limits:\n  idle_timeout: 0s\n",
       "x.yaml:2: limits.idle_timeout: must be greater than 0"},
      {"bad size", "limits:\n  max_header_bytes: lots\n",
       "x.yaml:2: limits.max_header_bytes: invalid size 'lots' (use bytes or KiB, MiB, GiB)"},
      {"size overflow", "limits:\n  max_request_body_bytes: 99999999999GiB\n",
       "x.yaml:2: limits.max_request_body_bytes: invalid size '99999999999GiB' (use bytes or "
       "KiB, MiB, GiB)"},
      {"bad count", "limits:\n  max_connections: many\n",
       "x.yaml:2: limits.max_connections: expected a whole number, got 'many'"},
      {"zero count", "limits:\n  max_connections: 0\n",
       "x.yaml:2: limits.max_connections: must be between 1 and 4294967295, got 0"},
      {"workers word", "workers: two\n",
       "x.yaml:1: workers: expected 'auto' or a positive integer, got 'two'"},
      {"workers zero", "listen: 127.0.0.1:80\nworkers: 0\n",
       "x.yaml:2: workers: expected 'auto' or a positive integer, got '0'"},
      {"workers huge", "workers: 100000\n", "x.yaml:1: workers: at most 1024, got 100000"},
      {"map for scalar", "listen: {host: a, port: 1}\n",
       "x.yaml:1: listen: expected a single value, got a mapping"},
      {"block map for scalar", "upstream:\n  url: http://a\n",
       "x.yaml:1: upstream: expected a single value, got a mapping"},
      {"list for map", "limits: [1, 2]\n", "x.yaml:1: limits: expected a mapping, got a list"},
      {"scalar for map", "caches:\n  default: memory\n",
       "x.yaml:2: caches.default: expected a mapping, got 'memory'"},
      {"empty value", "listen:\nworkers: 2\n", "x.yaml:1: listen: missing value"},
      {"unbracketed ipv6 list", "listen: [::1]\n",
       "x.yaml:1: listen: expected host:port, got a list (quote IPv6 addresses: \"[::1]:8080\")"},
      {"missing port", "listen: localhost\n",
       "x.yaml:1: listen: missing port in 'localhost' (expected host:port, e.g. 127.0.0.1:8080 "
       "or [::1]:8080)"},
      {"bad port", "listen: 127.0.0.1:70000\n",
       "x.yaml:1: listen: invalid port '70000' in '127.0.0.1:70000' (use 1-65535) (expected "
       "host:port, e.g. 127.0.0.1:8080 or [::1]:8080)"},
      {"https upstream", "upstream: https://app:8443\n",
       "x.yaml:1: upstream: https upstreams are not supported: 'https://app:8443' (cachecar "
       "talks plain http:// to the app beside it)"},
      {"upstream path", "upstream: http://app:8000/base\n",
       "x.yaml:1: upstream: the upstream URL must not have a path, query or fragment: "
       "'http://app:8000/base' (requests keep their own path)"},
      {"bad log level", "log_level: verbose\n",
       "x.yaml:1: log_level: unknown log level 'verbose'; valid: debug, info, warn, error"},
      {"option of other backend",
       "caches:\n  default: {backend: memory}\n  shared:\n    backend: redis\n"
       "    location: redis://127.0.0.1:6379/0\n    options:\n      max_entries: 5\n",
       "x.yaml:7: caches.shared.options: option 'max_entries' does not apply to backend 'redis'; "
       "valid for redis: max_object_bytes, connect_timeout, command_timeout"},
      {"unknown option", "caches:\n  default:\n    options: {max_entires: 5}\n",
       "x.yaml:3: caches.default.options: unknown key 'max_entires'; valid for memory: "
       "max_entries, max_bytes, max_object_bytes"},
      {"redis option on memory", "caches:\n  default:\n    options:\n      command_timeout: 1s\n",
       "x.yaml:4: caches.default.options: option 'command_timeout' does not apply to backend "
       "'memory'; valid for memory: max_entries, max_bytes, max_object_bytes"},
      {"no default cache", "caches:\n  shared: {backend: memory}\n",
       "x.yaml:1: caches: missing the 'default' cache (used by routes without cache: and by "
       "requests that match no route)"},
      {"empty caches", "caches: {}\n",
       "x.yaml:1: caches: missing the 'default' cache (used by routes without cache: and by "
       "requests that match no route)"},
      {"cache named off", "caches:\n  default: {}\n  off: {}\n",
       "x.yaml:3: caches.off: 'off' cannot name a cache (routes use cache: off to disable "
       "caching)"},
      {"bad cache name", "caches:\n  default: {}\n  my cache: {}\n",
       "x.yaml:3: caches.my cache: invalid cache name 'my cache' (use letters, digits, '_' and "
       "'-')"},
      {"redis without location", "caches:\n  default:\n    backend: redis\n",
       "x.yaml:2: caches.default.location: required for backend 'redis' "
       "(redis://host[:port][/db])"},
      {"redis empty location", "caches:\n  default:\n    backend: redis\n    location: \"\"\n",
       "x.yaml:4: caches.default.location: required for backend 'redis' "
       "(redis://host[:port][/db])"},
      {"redis object too large",
       "caches:\n  default:\n    backend: redis\n    location: redis://r\n    options:\n"
       "      max_object_bytes: 513MiB\n",
       "x.yaml:6: caches.default.options.max_object_bytes: at most 512MiB for backend 'redis' "
       "(the largest value Redis stores)"},
      {"memory with location",
       "caches:\n  default:\n    backend: memory\n    location: redis://r:6379/0\n",
       "x.yaml:4: caches.default.location: not used by backend 'memory' (leave it out or empty)"},
      {"negative version", "caches:\n  default:\n    version: -1\n",
       "x.yaml:3: caches.default.version: expected a whole number, got '-1'"},
      {"prefix with space", "caches:\n  default:\n    key_prefix: \"my shop\"\n",
       "x.yaml:3: caches.default.key_prefix: invalid key prefix 'my shop' (printable ASCII "
       "without spaces)"},
      {"routes not a list", "routes: {match: /a/}\n",
       "x.yaml:1: routes: expected a list of routes, got a mapping"},
      {"route not a map", "routes:\n  - /static/\n",
       "x.yaml:2: routes[0]: expected a mapping with match and cache, ttl or key; got "
       "'/static/'"},
      {"route without match", "routes:\n  - {match: /a/}\n  - {ttl: 5s}\n",
       "x.yaml:3: routes[1]: missing 'match' (a path prefix such as /static/)"},
      {"match without slash", "routes:\n  - match: static/\n",
       "x.yaml:2: routes[0].match: must be a path prefix starting with '/', got 'static/'"},
      {"duplicate match", "routes:\n  - match: /a/\n  - match: /b/\n  - match: /a/\n    ttl: 1s\n",
       "x.yaml:4: routes[2].match: duplicate match '/a/' (first at line 2)"},
      {"unknown route cache", "routes:\n  - {match: /a/, cache: nope}\n",
       "x.yaml:2: routes[0].cache: unknown cache 'nope'; valid: default, off"},
      {"ttl with cache off", "routes:\n  - match: /a/\n    cache: off\n    ttl: 5m\n",
       "x.yaml:4: routes[0].ttl: not allowed with cache: off"},
      {"override without ttl", "routes:\n  - match: /a/\n    override: true\n",
       "x.yaml:3: routes[0]: override needs ttl"},
      {"override with only a cache timeout",
       "caches:\n  default: {timeout: 1h}\nroutes:\n  - {match: /a/}\n  - match: /b/\n"
       "    cache: default\n    override: true\n",
       "x.yaml:7: routes[1]: override needs ttl"},
      {"override not a boolean", "routes:\n  - {match: /a/, ttl: 1s, override: yes}\n",
       "x.yaml:2: routes[0].override: expected true or false, got 'yes'"},
      {"override off", "routes:\n  - {match: /a/, ttl: 1s, override: off}\n",
       "x.yaml:2: routes[0].override: expected true or false, got 'off'"},
      {"override empty", "routes:\n  - match: /a/\n    ttl: 1s\n    override:\n",
       "x.yaml:4: routes[0].override: missing value"},
      {"override list", "routes:\n  - {match: /a/, ttl: 1s, override: [true]}\n",
       "x.yaml:2: routes[0].override: expected a single value, got a list"},
      {"override with cache off", "routes:\n  - match: /a/\n    cache: off\n    override: false\n",
       "x.yaml:4: routes[0].override: not allowed with cache: off"},
      {"swr with cache off", "routes:\n  - {match: /a/, cache: off, stale_while_revalidate: 5s}\n",
       "x.yaml:2: routes[0].stale_while_revalidate: not allowed with cache: off"},
      {"sie with cache off", "routes:\n  - match: /a/\n    cache: off\n    stale_if_error: 1h\n",
       "x.yaml:4: routes[0].stale_if_error: not allowed with cache: off"},
      {"bad swr", "routes:\n  - {match: /a/, stale_while_revalidate: 1 min}\n",
       "x.yaml:2: routes[0].stale_while_revalidate: invalid duration '1 min' (use ms, s, m, h or "
       "d)"},
      {"negative sie", "routes:\n  - {match: /a/, stale_if_error: -1s}\n",
       "x.yaml:2: routes[0].stale_if_error: invalid duration '-1s' (use ms, s, m, h or d)"},
      {"misspelled swr", "routes:\n  - match: /a/\n    stale_while_revalidated: 1s\n",
       "x.yaml:3: routes[0]: unknown key 'stale_while_revalidated'"},
      {"zero coalesce wait", "limits:\n  coalesce_wait: 0ms\n",
       "x.yaml:2: limits.coalesce_wait: must be greater than 0"},
      {"bad coalesce wait", "limits:\n  coalesce_wait: forever\n",
       "x.yaml:2: limits.coalesce_wait: invalid duration 'forever' (use ms, s, m, h or d)"},
      {"unknown heuristic key", "heuristic:\n  fraction: 0.1\n  maximum: 1d\n",
       "x.yaml:3: heuristic: unknown key 'maximum'"},
      {"heuristic not a map", "heuristic: 0.1\n",
       "x.yaml:1: heuristic: expected a mapping, got '0.1'"},
      {"heuristic fraction garbage", "heuristic:\n  fraction: tenth\n",
       "x.yaml:2: heuristic.fraction: expected a number from 0 to 1 such as 0.1, got 'tenth'"},
      {"heuristic fraction negative", "heuristic: {fraction: -0.1}\n",
       "x.yaml:1: heuristic.fraction: must be between 0 and 1, got -0.1"},
      {"heuristic fraction above 1", "heuristic:\n  max: 1h\n  fraction: 1.5\n",
       "x.yaml:3: heuristic.fraction: must be between 0 and 1, got 1.5"},
      {"unknown admin key", "admin:\n  listen: 127.0.0.1:9902\n  token: T\n",
       "x.yaml:3: admin: unknown key 'token'"},
      {"misspelled admin key", "admin: {listn: 127.0.0.1:9902}\n",
       "x.yaml:1: admin: unknown key 'listn'"},
      {"duplicate admin key", "admin:\n  token_env: A\n  token_env: B\n",
       "x.yaml:3: admin.token_env: duplicate key (first at line 2)"},
      {"admin false", "listen: 127.0.0.1:1\nadmin: false\n",
       "x.yaml:2: admin: expected a mapping (listen, token_env), got 'false'; leave admin out "
       "for no admin listener"},
      {"admin address alone", "admin: 127.0.0.1:9902\n",
       "x.yaml:1: admin: expected a mapping (listen, token_env), got '127.0.0.1:9902'; leave "
       "admin out for no admin listener"},
      {"admin list", "admin: [listen]\n", "x.yaml:1: admin: expected a mapping, got a list"},
      {"admin listen missing port", "admin:\n  listen: localhost\n",
       "x.yaml:2: admin.listen: missing port in 'localhost' (expected host:port, e.g. "
       "127.0.0.1:8080 or [::1]:8080)"},
      {"admin listen empty", "admin:\n  listen:\n", "x.yaml:2: admin.listen: missing value"},
      {"admin listen mapping", "admin:\n  listen: {port: 1}\n",
       "x.yaml:2: admin.listen: expected a single value, got a mapping"},
      {"admin listen is listen", "listen: 127.0.0.1:9000\nadmin:\n  listen: 127.0.0.1:9000\n",
       "x.yaml:3: admin.listen: same address as listen (127.0.0.1:9000); the admin listener "
       "needs its own port"},
      {"admin listen is listen, admin first",
       "admin: {listen: \"[::1]:9000\"}\nlisten: \"[::1]:9000\"\n",
       "x.yaml:1: admin.listen: same address as listen ([::1]:9000); the admin listener needs "
       "its own port"},
      {"admin default is listen", "listen: 127.0.0.1:9901\nadmin:\n",
       "x.yaml:2: admin.listen: same address as listen (127.0.0.1:9901); the admin listener "
       "needs its own port"},
      {"admin default is listen with token", "listen: 127.0.0.1:9901\nadmin:\n  token_env: T\n",
       "x.yaml:2: admin.listen: same address as listen (127.0.0.1:9901); the admin listener "
       "needs its own port"},
      {"admin port under wildcard listen",
       "listen: 0.0.0.0:8080\nadmin: {listen: 127.0.0.1:8080}\n",
       "x.yaml:2: admin.listen: same port as listen (0.0.0.0:8080), and a wildcard address "
       "overlaps every other; the admin listener needs its own port"},
      {"admin wildcard on listen port", "listen: \"[::1]:8080\"\nadmin: {listen: \"[::]:8080\"}\n",
       "x.yaml:2: admin.listen: same port as listen ([::1]:8080), and a wildcard address "
       "overlaps every other; the admin listener needs its own port"},
      {"token_env empty", "admin:\n  token_env:\n", "x.yaml:2: admin.token_env: missing value"},
      {"token_env list", "admin: {token_env: [A]}\n",
       "x.yaml:1: admin.token_env: expected a single value, got a list"},
      {"token_env with dash", "admin:\n  listen: 127.0.0.1:9902\n  token_env: ADMIN-TOKEN\n",
       "x.yaml:3: admin.token_env: invalid environment variable name 'ADMIN-TOKEN' (letters, "
       "digits and '_', not starting with a digit)"},
      {"bad drain timeout", "drain_timeout: soon\n",
       "x.yaml:1: drain_timeout: invalid duration 'soon' (use ms, s, m, h or d)"},
      {"negative drain timeout", "workers: 1\ndrain_timeout: -1s\n",
       "x.yaml:2: drain_timeout: invalid duration '-1s' (use ms, s, m, h or d)"},
      {"drain timeout mapping", "drain_timeout: {s: 1}\n",
       "x.yaml:1: drain_timeout: expected a single value, got a mapping"},
      {"drain timeout empty", "drain_timeout:\n", "x.yaml:1: drain_timeout: missing value"},
      {"access log yes", "access_log: yes\n",
       "x.yaml:1: access_log: expected true or false, got 'yes'"},
      {"access log on", "access_log: on\n",
       "x.yaml:1: access_log: expected true or false, got 'on'"},
      {"access log path", "access_log: /var/log/x\n",
       "x.yaml:1: access_log: expected true or false, got '/var/log/x'"},
      {"access log list", "access_log: [true]\n",
       "x.yaml:1: access_log: expected a single value, got a list"},
      {"access log empty", "access_log:\n", "x.yaml:1: access_log: missing value"},
      {"misspelled access log", "accesslog: true\n", "x.yaml:1: unknown key 'accesslog'"},
      {"heuristic fraction empty", "heuristic:\n  fraction:\n",
       "x.yaml:2: heuristic.fraction: missing value"},
      {"heuristic fraction list", "heuristic:\n  fraction: [0.1]\n",
       "x.yaml:2: heuristic.fraction: expected a single value, got a list"},
      {"heuristic bad max", "heuristic:\n  max: 1 day\n",
       "x.yaml:2: heuristic.max: invalid duration '1 day' (use ms, s, m, h or d)"},
      {"duplicate heuristic key", "heuristic:\n  max: 1d\n  max: 2d\n",
       "x.yaml:3: heuristic.max: duplicate key (first at line 2)"},
      {"key headers not a list", "routes:\n  - {match: /a/, key: {headers: Accept}}\n",
       "x.yaml:2: routes[0].key.headers: expected a list of header, got 'Accept'"},
      {"bad header name", "routes:\n  - match: /a/\n    key:\n      headers: [Accept, \"a b\"]\n",
       "x.yaml:4: routes[0].key.headers[1]: invalid header name 'a b'"},
      {"duplicate header", "routes:\n  - match: /a/\n    key:\n      headers: [Accept, accept]\n",
       "x.yaml:4: routes[0].key.headers[1]: duplicate 'accept'"},
      {"root is a list", "- listen\n",
       "x.yaml:1: expected a mapping of settings (listen, upstream, ...), got a list"},
      {"yaml syntax", "listen: 127.0.0.1:8080\nupstream: a: b\n",
       "x.yaml:2: invalid YAML: illegal map value"},
      {"unquoted ipv6", "listen: [::1]:8080\n", "x.yaml:1: invalid YAML: end of map not found"},
      {"yaml tab", "listen: 127.0.0.1:1\n\tworkers: 2\n",
       "x.yaml:2: invalid YAML: illegal tab when looking for indentation"},
      {"two documents", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
       "x.yaml:2: more than one YAML document ('---'); put all settings in one"},
      {"trailing empty document", "listen: 127.0.0.1:1\n---\n",
       "x.yaml:2: more than one YAML document ('---'); put all settings in one"},
      // yaml-cpp stops at a stray ',' and would silently drop the rest of the file.
      {"stray comma first", ",\nlisten: 127.0.0.1:1\n", "x.yaml:1: invalid YAML: unexpected ','"},
      {"stray comma after comment", "# settings\n  ,# x\nworkers: 2\n",
       "x.yaml:2: invalid YAML: unexpected ','"},
      {"stray comma after list", "- a\n,\n", "x.yaml:2: invalid YAML: unexpected ','"},
      {"stray comma in map", "listen: 127.0.0.1:1\n,\n",
       "x.yaml:2: invalid YAML: end of map not found"},
      {"complex key", "? [a, b]\n: 1\n", "x.yaml:1: keys must be plain names, got a list"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(std::string(c.name));
    EXPECT_EQ(parseError(c.yaml), c.message);
  }
}

// The redis client's parser words these; what matters here is where they point.
TEST(ConfigLoaderTest, BadRedisLocationsPointAtTheLocation) {
  struct Case {
    std::string_view location;
    std::string_view prefix;
  };
  const Case cases[] = {
      {"redis:6379", "x.yaml:4: caches.default.location: "},
      {"http://r:6379/0", "x.yaml:4: caches.default.location: "},
      {"redis://", "x.yaml:4: caches.default.location: "},
      {"redis://r:0", "x.yaml:4: caches.default.location: "},
      {"redis://r:6379/x", "x.yaml:4: caches.default.location: "},
      {"redis://:pw@r", "x.yaml:4: caches.default.location: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.location));
    const std::string message =
        parseError("caches:\n  default:\n    backend: redis\n    location: \"" +
                   std::string(c.location) + "\"\n");
    EXPECT_EQ(message.substr(0, c.prefix.size()), c.prefix) << message;
    EXPECT_NE(message.find(std::string(c.location)), std::string::npos) << message;
  }
  const Config config =
      parseOk("caches:\n  default:\n    backend: redis\n    location: \"redis://[::1]:6380/4\"\n");
  EXPECT_EQ(config.caches.at("default").location, "redis://[::1]:6380/4");
}

TEST(ConfigLoaderTest, CacheOffIsReadAsTextEvenWhenQuoted) {
  const Config config = parseOk(
      "routes:\n  - {match: /a/, cache: \"off\"}\n  - {match: /b/, cache: off}\n"
      "  - {match: /c/, cache: default}\n");
  ASSERT_EQ(config.routes.size(), 3u);
  EXPECT_TRUE(config.routes[0].cache_off);
  EXPECT_TRUE(config.routes[1].cache_off);
  EXPECT_FALSE(config.routes[2].cache_off);
  // Other YAML 1.1 spellings of false are not "off": they name a cache that does not exist.
  EXPECT_EQ(parseError("routes:\n  - {match: /a/, cache: false}\n"),
            "x.yaml:2: routes[0].cache: unknown cache 'false'; valid: default, off");
}

TEST(ParseHostPortTest, AcceptsHostPortAndBracketedIpv6) {
  struct Good {
    std::string_view text;
    std::string_view host;
    uint16_t port;
    std::string_view shown;
  };
  const Good good[] = {
      {"127.0.0.1:8080", "127.0.0.1", 8080, "127.0.0.1:8080"},
      {"0.0.0.0:1", "0.0.0.0", 1, "0.0.0.0:1"},
      {"localhost:65535", "localhost", 65535, "localhost:65535"},
      {"my-app.svc.cluster_local:80", "my-app.svc.cluster_local", 80,
       "my-app.svc.cluster_local:80"},
      {"[::1]:8080", "::1", 8080, "[::1]:8080"},
      {"[::]:443", "::", 443, "[::]:443"},
      {"[2001:db8::1]:9000", "2001:db8::1", 9000, "[2001:db8::1]:9000"},
  };
  for (const Good& g : good) {
    SCOPED_TRACE(std::string(g.text));
    const Result<HostPort> parsed = parseHostPort(g.text);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->host, g.host);
    EXPECT_EQ(parsed->port, g.port);
    EXPECT_EQ(parsed->toString(), g.shown);
  }
}

TEST(ParseHostPortTest, RejectsMalformedAddresses) {
  for (const std::string_view text :
       {"", ":8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "host:-1",
        "host:80x", "host: 80", "::1:8080", "[::1]", "[::1]8080", "[::1:8080", "[zz::1]:80",
        "[]:80", "bad host:80", "host/x:80", "http://host:80"}) {
    SCOPED_TRACE(std::string(text));
    const Result<HostPort> parsed = parseHostPort(text);
    ASSERT_FALSE(parsed.ok()) << parsed->toString();
    EXPECT_NE(parsed.error().message.find("expected host:port"), std::string::npos)
        << parsed.error().message;
  }
  EXPECT_EQ(parseHostPort("::1:8080").error().message,
            "an IPv6 address needs brackets: '::1:8080' (e.g. [::1]:8080) (expected host:port, "
            "e.g. 127.0.0.1:8080 or [::1]:8080)");
}

TEST(ParseUpstreamUrlTest, AcceptsPlainHttpWithOptionalPortAndSlash) {
  struct Good {
    std::string_view text;
    std::string_view host;
    uint16_t port;
  };
  const Good good[] = {
      {"http://127.0.0.1:8000", "127.0.0.1", 8000},
      {"http://127.0.0.1:8000/", "127.0.0.1", 8000},
      {"http://app", "app", 80},
      {"http://app/", "app", 80},
      {"HTTP://App:81", "App", 81},
      {"http://[::1]:8000", "::1", 8000},
      {"http://[::1]", "::1", 80},
  };
  for (const Good& g : good) {
    SCOPED_TRACE(std::string(g.text));
    const Result<UpstreamSettings> parsed = parseUpstreamUrl(g.text);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->address.host, g.host);
    EXPECT_EQ(parsed->address.port, g.port);
    EXPECT_EQ(parsed->url, g.text);
  }
}

TEST(ParseUpstreamUrlTest, RejectsEverythingElse) {
  for (const std::string_view text :
       {"", "127.0.0.1:8000", "//app:80", "ftp://app", "unix:///run/app.sock", "http://",
        "http://:80", "http://app:0", "http://app:99999", "http://app/api", "http://app?x=1",
        "http://app#top", "http://user:pw@app", "http://::1:80", "http://a b"}) {
    SCOPED_TRACE(std::string(text));
    const Result<UpstreamSettings> parsed = parseUpstreamUrl(text);
    EXPECT_FALSE(parsed.ok()) << parsed->address.toString();
  }
  EXPECT_EQ(parseUpstreamUrl("https://app").error().message,
            "https upstreams are not supported: 'https://app' (cachecar talks plain http:// to "
            "the app beside it)");
  EXPECT_EQ(parseUpstreamUrl("ftp://app").error().message,
            "unsupported scheme 'ftp' in 'ftp://app' (expected http://host[:port])");
  EXPECT_EQ(parseUpstreamUrl("app:8000").error().message,
            "invalid upstream URL 'app:8000' (expected http://host[:port])");
  EXPECT_EQ(parseUpstreamUrl("http://app:0").error().message,
            "invalid upstream URL 'http://app:0': invalid port '0' in 'app:0' (use 1-65535)");
}

// Each test gets its own directory, removed afterwards.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cachecar_config_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ASSERT_TRUE(fs::create_directories(dir_));
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string write(const std::string& name, std::string_view text) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out << text;
    out.close();
    EXPECT_TRUE(out.good()) << path;
    return path.string();
  }

  fs::path dir_;
};

TEST_F(ConfigFileTest, LoadsAFileAndNamesItInErrors) {
  const std::string good = write("good.yaml", kFullExample);
  const Result<Config> loaded = loadConfigFile(good);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->source, good);
  EXPECT_EQ(loaded->routes.size(), 4u);

  const std::string bad = write("bad.yaml",
                                "listen: 127.0.0.1:8080\ncaches:\n  default:\n"
                                "    backend: mem\n");
  const Result<Config> failed = loadConfigFile(bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message,
            bad + ":4: caches.default.backend: unknown backend 'mem'; valid: memory, redis");
}

TEST_F(ConfigFileTest, HugeFileIsRefused) {
  const std::string huge = write("huge.yaml", std::string(5u << 20, '#'));
  const Result<Config> loaded = loadConfigFile(huge);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message, huge + ": larger than 4MiB; is this the configuration file?");
}

TEST_F(ConfigFileTest, MissingFileOrDirectoryIsAnError) {
  const std::string missing = (dir_ / "nope.yaml").string();
  const Result<Config> loaded = loadConfigFile(missing);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().message, missing + ": cannot read file: No such file or directory");

  const Result<Config> directory = loadConfigFile(dir_.string());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, dir_.string() + ": cannot read file: Is a directory");
}

TEST(SummarizeTest, NamesEverySettingThatMatters) {
  const Config config = parseOk(kFullExample);
  const std::string summary = summarize(config);
  for (const std::string_view line : {
           "config: x.yaml\n",
           "listen: 127.0.0.1:8080\n",
           "upstream: http://127.0.0.1:8000 (127.0.0.1:8000)\n",
           "workers: 3\n",
           "log_level: warn\n",
           "cache default: backend=memory timeout=5m key_prefix=shop version=1 "
           "max_entries=10000 max_bytes=256MiB max_object_bytes=8MiB\n",
           "cache shared: backend=redis location=redis://redis.local:6380/2 timeout=10m "
           "key_prefix=shop:v2 version=0 max_object_bytes=1MiB connect_timeout=250ms "
           "command_timeout=50ms\n",
           "limits: header_read_timeout=10s idle_timeout=1m upstream_connect_timeout=3s "
           "upstream_response_timeout=30s max_header_bytes=64KiB max_header_fields=100 max_request_body_bytes=16MiB "
           "max_connections=10000 upstream_max_idle_connections=64 coalesce_wait=2500ms\n",
           "heuristic: fraction=0.25 max=12h\n",
           "admin: listen=127.0.0.1:9902 token_env=CACHECAR_ADMIN_TOKEN\n",
           "drain_timeout: 30s\n",
           "access_log: true\n",
           "route /static/: cache=default ttl=1d override=true stale_while_revalidate=1m "
           "stale_if_error=1h key.query=all key.headers=- key.cookies=-\n",
           "route /account/: cache=off\n",
           "route /api/: cache=default ttl=30s key.query=[page, sort] "
           "key.headers=[Accept-Language] key.cookies=[currency]\n",
           "route /shared/: cache=shared ttl=(cache timeout 10m) key.query=none key.headers=- "
           "key.cookies=-\n",
       }) {
    EXPECT_NE(summary.find(line), std::string::npos) << "missing: " << line << "in:\n" << summary;
  }
  const std::string defaults = summarize(defaultConfig());
  EXPECT_NE(defaults.find("workers: auto ("), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("routes: none"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find(" coalesce_wait=10s\n"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("heuristic: fraction=0.1 max=1d\n"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("\nadmin: off\n"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("\ndrain_timeout: 10s\n"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("\naccess_log: false\n"), std::string::npos) << defaults;
  const std::string no_token = summarize(parseOk("admin:\n"));
  EXPECT_NE(no_token.find("\nadmin: listen=127.0.0.1:9901 token_env=-\n"), std::string::npos)
      << no_token;
  // Only what a route sets is shown: a route without them prints no override or stale fields.
  const std::string plain = summarize(parseOk("routes:\n  - {match: /a/, ttl: 0s}\n"));
  EXPECT_NE(plain.find("route /a/: cache=default ttl=0s key.query=all key.headers=- "
                       "key.cookies=-\n"),
            std::string::npos)
      << plain;
  const std::string sie_only =
      summarize(parseOk("routes:\n  - {match: /a/, override: false, stale_if_error: 90s}\n"));
  EXPECT_NE(sie_only.find("route /a/: cache=default ttl=(cache timeout 5m) stale_if_error=90s "
                          "key.query=all"),
            std::string::npos)
      << sie_only;
}

}  // namespace
}  // namespace cachecar::config

namespace cachecar::config {
namespace {

TEST(ConfigLoaderTest, TrustedProxiesAreCidrBlocks) {
  const Config config = parseOk("trusted_proxies: [10.0.0.0/8, \"fd00::/8\", 192.168.1.7]\n");
  ASSERT_EQ(config.trusted_proxies.size(), 3u);
  EXPECT_TRUE(config.trusted_proxies[0].contains("10.2.3.4"));
  EXPECT_TRUE(config.trusted_proxies[1].contains("fd00::1"));
  EXPECT_TRUE(config.trusted_proxies[2].contains("192.168.1.7"));
  EXPECT_TRUE(parseOk("listen: 127.0.0.1:8080\n").trusted_proxies.empty());
  EXPECT_EQ(parseError("trusted_proxies:\n  - 10.0.0.0/8\n  - 10.1.2.3/8\n"),
            "x.yaml:3: trusted_proxies[1]: '10.1.2.3/8' has address bits set past its /8 prefix");
  EXPECT_EQ(parseError("trusted_proxies: 10.0.0.0/8\n"),
            "x.yaml:1: trusted_proxies: expected a list of IP addresses or CIDR blocks (like "
            "[10.0.0.0/8]), got '10.0.0.0/8'");
}

TEST(ConfigLoaderTest, EncodedSlashesAndHeaderFieldLimit) {
  EXPECT_EQ(parseOk("listen: 127.0.0.1:8080\n").encoded_slashes, http::EncodedSlashes::kReject);
  EXPECT_EQ(parseOk("encoded_slashes: decode\n").encoded_slashes, http::EncodedSlashes::kDecode);
  EXPECT_EQ(parseError("encoded_slashes: keep\n"),
            "x.yaml:1: encoded_slashes: expected reject or decode, got 'keep'");
  EXPECT_EQ(parseOk("limits: {max_header_fields: 50}\n").limits.max_header_fields, 50u);
  EXPECT_EQ(parseOk("listen: 127.0.0.1:8080\n").limits.max_header_fields, 100u);
  EXPECT_NE(parseError("limits: {max_header_fields: 0}\n").find("max_header_fields"),
            std::string::npos);
}

TEST(ConfigLoaderTest, RoutePrefixesAreNormalizedLikeRequestPaths) {
  const Config config =
      parseOk("routes:\n  - {match: /a/./b/, ttl: 1m}\n  - {match: /%7euser/, ttl: 1m}\n");
  ASSERT_EQ(config.routes.size(), 2u);
  EXPECT_EQ(config.routes[0].match, "/a/b/");
  EXPECT_EQ(config.routes[1].match, "/~user/");
  EXPECT_NE(parseError("routes:\n  - {match: /a%2Fb/, ttl: 1m}\n").find("x.yaml:2"),
            std::string::npos);
  EXPECT_EQ(parseError("routes:\n  - {match: /a/b/, ttl: 1m}\n  - {match: /a/./b/, ttl: 1m}\n"),
            "x.yaml:3: routes[1].match: duplicate match '/a/b/' (first at line 2)");
  EXPECT_EQ(parseOk("encoded_slashes: decode\nroutes:\n  - {match: /a%2Fb/, ttl: 1m}\n")
                .routes[0]
                .match,
            "/a/b/");
}

}  // namespace
}  // namespace cachecar::config
