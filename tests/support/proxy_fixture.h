#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/cachecar_process.h"
#include "support/http_client.h"
#include "support/test_origin.h"

namespace cachecar::testing {

// Base fixture of the integration tests: an origin on loopback and, once startProxy() is called,
// a cachecar process in front of it. The proxy is stopped before the origin (member order).
class ProxyFixture : public ::testing::Test {
 protected:
  using Clock = std::chrono::steady_clock;

  // ASSERT_NO_FATAL_FAILURE(startProxy(...)).
  void startProxy(const std::string& config = basicConfig(),
                  std::vector<std::string> extra_args = {}) {
    // (The origin may have been stopped on purpose: tests of an app that is down.)
    ASSERT_TRUE(origin_.startError().empty()) << origin_.startError();
    CachecarOptions options;
    options.config_yaml = config;
    options.origin_port = origin_.port();
    options.extra_args = std::move(extra_args);
    proxy_ = std::make_unique<CachecarProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
  }

  uint16_t port() const { return proxy_->port(); }
  // One request on a fresh connection.
  HttpResponse get(std::string_view path, const std::vector<std::string>& headers = {}) const {
    return httpGet(port(), path, headers);
  }

  static long msSince(Clock::time_point start) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  }

  // An IMF-fixdate (RFC 9110 §5.6.7) `offset` from now, for Expires headers.
  static std::string httpDate(std::chrono::seconds offset) {
    std::time_t t = std::time(nullptr) + static_cast<std::time_t>(offset.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
  }

  TestOrigin origin_;
  std::unique_ptr<CachecarProcess> proxy_;
};

inline bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// basicConfig() with more routes in front of its own.
inline std::string configWithRoutes(const std::string& routes) {
  std::string config = basicConfig();
  const std::string anchor = "routes:\n";
  config.insert(config.find(anchor) + anchor.size(), routes);
  return config;
}

// Deterministic bytes of every value (a 64-bit LCG), for large-body tests.
inline std::string patternBody(size_t size, uint64_t seed = 42) {
  std::string out(size, '\0');
  uint64_t x = seed;
  for (size_t i = 0; i < size; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = static_cast<char>(x >> 56);
  }
  return out;
}

}  // namespace cachecar::testing
