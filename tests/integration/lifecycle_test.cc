// The process lifecycle through the binary: hot reload (SIGHUP, a changed file, a ConfigMap-style
// symlink swap, an invalid file), graceful drain on SIGTERM, and the JSON access log.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/free_port.h"
#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Listen, upstream and admin come from the command line / placeholders, so a test rewrites only
// what it reloads.
std::string configText(const std::string& routes, const std::string& extra = "") {
  return "workers: 2\n"
         "caches:\n"
         "  default: {backend: memory, timeout: 5m, key_prefix: t}\n"
         "  other: {backend: memory, timeout: 5m, key_prefix: o}\n"
         "routes:\n" +
         routes + extra;
}

class LifecycleTest : public ProxyFixture {
 protected:
  void SetUp() override {
    admin_port_ = findFreePort();
    origin_.handlePrefix("/", [this](const OriginRequest& req) {
      ++origin_calls_;
      OriginResponse response = OriginResponse::text(req.path + " #" + std::to_string(req.sequence));
      if (req.path.starts_with("/slow")) {
        response.delay = 1500ms;
      }
      return response;
    });
  }

  // Starts cachecar with --config `config_path` (not a copy: the test changes the file).
  void startOn(const std::string& config_path) {
    CachecarOptions options;
    options.origin_port = origin_.port();
    options.extra_args = {"--config",   config_path, "--listen", "127.0.0.1:{port}",
                          "--upstream", "http://127.0.0.1:{origin_port}"};
    proxy_ = std::make_unique<CachecarProcess>(std::move(options));
    ASSERT_TRUE(proxy_->start());
  }

  // Repeats `probe` (bounded) until it is true.
  static bool eventually(const std::function<bool()>& probe, std::chrono::milliseconds limit = 5s) {
    const auto start = Clock::now();
    while (msSince(start) < limit.count()) {
      if (probe()) {
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return probe();
  }

  static void writeFile(const std::string& path, const std::string& text) {
    const std::string temp = path + ".tmp";
    std::ofstream(temp) << text;
    fs::rename(temp, path);  // atomic, like an editor's save or a ConfigMap update
  }

  std::string xcache(const std::string& path) const { return get(path).headerOr("X-Cache"); }

  TempDir dir_;
  uint16_t admin_port_ = 0;
  std::atomic<int> origin_calls_{0};
};

TEST_F(LifecycleTest, SighupAppliesNewRoutesAndKeepsEntriesOfUnchangedCaches) {
  const std::string path = dir_.writeFile(
      "cachecar.yaml",
      configText("  - {match: /kept/, ttl: 1h}\n  - {match: /x/, cache: off}\n"
                 "  - {match: /o/, cache: other, ttl: 1h}\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  ASSERT_EQ(xcache("/kept/a"), "MISS");
  ASSERT_EQ(xcache("/kept/a"), "HIT");
  ASSERT_EQ(xcache("/o/a"), "MISS");
  ASSERT_EQ(xcache("/o/a"), "HIT");
  ASSERT_EQ(xcache("/x/a"), "BYPASS");
  const int calls_before = origin_calls_.load();

  // /x/ becomes cached; `other` changes its definition (timeout), `default` does not.
  std::ofstream(path) << "workers: 2\n"
                         "caches:\n"
                         "  default: {backend: memory, timeout: 5m, key_prefix: t}\n"
                         "  other: {backend: memory, timeout: 6m, key_prefix: o}\n"
                         "routes:\n"
                         "  - {match: /kept/, ttl: 1h}\n  - {match: /x/, ttl: 1h}\n"
                         "  - {match: /o/, cache: other, ttl: 1h}\n";
  ASSERT_TRUE(proxy_->signal(SIGHUP));
  ASSERT_TRUE(eventually([&] { return xcache("/x/a") == "HIT"; }))
      << "the new route never took effect\n"
      << proxy_->logText();
  EXPECT_EQ(xcache("/kept/a"), "HIT") << "an unchanged cache keeps its entries";
  EXPECT_EQ(xcache("/o/a"), "MISS") << "a changed cache starts empty";
  EXPECT_TRUE(contains(proxy_->logText(), "configuration reloaded (SIGHUP)"));
  EXPECT_GE(origin_calls_.load(), calls_before + 2);
}

TEST_F(LifecycleTest, RequestInFlightDuringAReloadFinishesUndisturbed) {
  const std::string path = dir_.writeFile(
      "cachecar.yaml", configText("  - {match: /slow/, ttl: 1h}\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  auto slow = std::async(std::launch::async, [this] { return get("/slow/1"); });
  ASSERT_TRUE(eventually([&] { return origin_calls_.load() >= 1; }, 3s));
  // The route of the request in flight goes away, and so does its cache.
  std::ofstream(path) << "workers: 2\n"
                         "caches:\n"
                         "  default: {backend: memory, timeout: 1m, key_prefix: n}\n"
                         "routes:\n"
                         "  - {match: /slow/, cache: off}\n";
  ASSERT_TRUE(proxy_->signal(SIGHUP));
  ASSERT_TRUE(eventually([&] { return xcache("/slow/2") == "BYPASS"; }, 3s))
      << proxy_->logText();
  HttpResponse answer = slow.get();
  EXPECT_EQ(answer.status, 200) << answer.describe();
  EXPECT_EQ(answer.body, "/slow/1 #1");
  EXPECT_EQ(answer.headerOr("X-Cache"), "MISS") << "it finished under the settings it began with";
}

TEST_F(LifecycleTest, InvalidFileKeepsTheRunningConfigurationAndIsCounted) {
  const std::string path = dir_.writeFile(
      "cachecar.yaml", configText("  - {match: /a/, ttl: 1h}\n",
                                  "admin: {listen: \"127.0.0.1:" +
                                      std::to_string(admin_port_) + "\"}\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  ASSERT_EQ(xcache("/a/1"), "MISS");

  std::ofstream(path) << "workers: 2\nroutes:\n  - {match: /a/, ttl: forever}\n";
  ASSERT_TRUE(proxy_->signal(SIGHUP));
  ASSERT_TRUE(eventually([&] {
    HttpClient client(admin_port_);
    return contains(client.get("/metrics").body,
                    "cachecar_config_reloads_total{result=\"failed\"} 1");
  })) << proxy_->logText();
  const std::string log = proxy_->logText();
  EXPECT_TRUE(contains(log, "failed, the running configuration stays in force")) << log;
  EXPECT_TRUE(contains(log, "routes[0].ttl")) << "the error names the field\n" << log;
  EXPECT_EQ(xcache("/a/1"), "HIT") << "the old routes and entries are still in force";
  EXPECT_TRUE(proxy_->running());
}

TEST_F(LifecycleTest, ChangedFileIsReloadedWithoutASignal) {
  const std::string path =
      dir_.writeFile("cachecar.yaml", configText("  - {match: /x/, cache: off}\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  ASSERT_EQ(xcache("/x/a"), "BYPASS");
  writeFile(path, configText("  - {match: /x/, ttl: 1h}\n"));
  EXPECT_TRUE(eventually([&] { return xcache("/x/a") == "HIT"; })) << proxy_->logText();
  EXPECT_TRUE(contains(proxy_->logText(), "configuration reloaded (the file changed)"));
}

// Kubernetes mounts a ConfigMap as cachecar.yaml -> ..data/cachecar.yaml with
// ..data -> ..<timestamp>/, and updates it by pointing ..data at a new directory.
TEST_F(LifecycleTest, ConfigMapStyleSymlinkSwapIsReloaded) {
  const fs::path root = dir_.path();
  fs::create_directory(root / "..v1");
  std::ofstream(root / "..v1" / "cachecar.yaml") << configText("  - {match: /x/, cache: off}\n");
  fs::create_directory_symlink("..v1", root / "..data");
  fs::create_symlink("..data/cachecar.yaml", root / "cachecar.yaml");
  ASSERT_NO_FATAL_FAILURE(startOn((root / "cachecar.yaml").string()));
  ASSERT_EQ(xcache("/x/a"), "BYPASS");

  fs::create_directory(root / "..v2");
  std::ofstream(root / "..v2" / "cachecar.yaml") << configText("  - {match: /x/, ttl: 1h}\n");
  fs::create_directory_symlink("..v2", root / "..data_tmp");
  fs::rename(root / "..data_tmp", root / "..data");  // the atomic swap kubelet does
  fs::remove_all(root / "..v1");

  EXPECT_TRUE(eventually([&] { return xcache("/x/a") == "HIT"; })) << proxy_->logText();
}

TEST_F(LifecycleTest, SigtermDrainsASlowRequestThenExitsZero) {
  const std::string path = dir_.writeFile(
      "cachecar.yaml", configText("  - {match: /slow/, cache: off}\n",
                                  "drain_timeout: 10s\nadmin: {listen: \"127.0.0.1:" +
                                      std::to_string(admin_port_) + "\"}\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  HttpClient idle(port());  // an idle keep-alive connection: closed at once by the drain
  ASSERT_EQ(idle.get("/static/warm").status, 200);

  auto slow = std::async(std::launch::async, [this] { return get("/slow/1"); });
  ASSERT_TRUE(eventually([&] { return origin_calls_.load() >= 2; }, 3s));
  ASSERT_TRUE(proxy_->signal(SIGTERM));

  ASSERT_TRUE(eventually([&] {
    HttpClient client(admin_port_);
    return client.get("/readyz").status == 503;
  }, 1s)) << "readiness did not turn 503 while draining";
  EXPECT_TRUE(idle.isClosedByPeer(2s)) << "an idle connection stays open during the drain";
  // The workers close their listeners on their own loops, just after readiness turns 503.
  EXPECT_TRUE(eventually([&] { return !listeningPortsOf(proxy_->pid()).contains(port()); }, 1s))
      << "still listening while draining";

  HttpResponse answer = slow.get();
  EXPECT_EQ(answer.status, 200) << answer.describe();
  EXPECT_EQ(answer.body, "/slow/1 #2");
  EXPECT_EQ(answer.headerOr("Connection"), "close");
  ASSERT_TRUE(eventually([&] { return !proxy_->running(); }, 5s));
  ASSERT_TRUE(proxy_->exitStatus().has_value());
  EXPECT_TRUE(WIFEXITED(*proxy_->exitStatus()) && WEXITSTATUS(*proxy_->exitStatus()) == 0)
      << proxy_->logText();
  EXPECT_TRUE(contains(proxy_->logText(), "drained")) << proxy_->logText();
}

TEST_F(LifecycleTest, DrainTimeoutCutsWhatIsLeftAndStillExitsZero) {
  const std::string path = dir_.writeFile(
      "cachecar.yaml", configText("  - {match: /slow/, cache: off}\n", "drain_timeout: 200ms\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  auto slow = std::async(std::launch::async, [this] { return get("/slow/1"); });
  ASSERT_TRUE(eventually([&] { return origin_calls_.load() >= 1; }, 3s));
  const auto stopped_at = Clock::now();
  ASSERT_TRUE(proxy_->signal(SIGTERM));
  ASSERT_TRUE(eventually([&] { return !proxy_->running(); }, 5s));
  EXPECT_LT(msSince(stopped_at), 1400) << "did not wait for the 1.5 s response";
  EXPECT_TRUE(WIFEXITED(*proxy_->exitStatus()) && WEXITSTATUS(*proxy_->exitStatus()) == 0);
  EXPECT_NE(slow.get().status, 200);
  EXPECT_TRUE(contains(proxy_->logText(), "drain_timeout reached"));
}

TEST_F(LifecycleTest, AccessLogWritesOneJsonLinePerRequest) {
  const std::string path = dir_.writeFile(
      "cachecar.yaml", configText("  - {match: /static/, ttl: 1h}\n", "access_log: true\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  ASSERT_EQ(xcache("/static/a?q=1"), "MISS");
  ASSERT_EQ(xcache("/static/a?q=1"), "HIT");
  std::vector<std::string> lines;
  ASSERT_TRUE(eventually([&] {
    lines.clear();
    std::istringstream log(proxy_->logText());
    for (std::string line; std::getline(log, line);) {
      if (line.starts_with("{")) {
        lines.push_back(line);
      }
    }
    return lines.size() >= 2;
  })) << proxy_->logText();
  ASSERT_EQ(lines.size(), 2u);
  for (const char* field : {"\"time\":\"", "\"method\":\"GET\"", "\"path\":\"/static/a?q=1\"",
                            "\"status\":200", "\"route\":\"/static/\"", "\"bytes\":",
                            "\"total_ms\":"}) {
    EXPECT_TRUE(contains(lines[0], field)) << field << " in " << lines[0];
    EXPECT_TRUE(contains(lines[1], field)) << field << " in " << lines[1];
  }
  EXPECT_TRUE(contains(lines[0], "\"cache\":\"MISS\"")) << lines[0];
  EXPECT_FALSE(contains(lines[0], "\"upstream_ms\":null")) << "a miss asked the app";
  EXPECT_TRUE(contains(lines[1], "\"cache\":\"HIT\"")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "\"upstream_ms\":null")) << "a hit did not ask the app";
}

TEST_F(LifecycleTest, NoAccessLogUnlessAskedFor) {
  const std::string path =
      dir_.writeFile("cachecar.yaml", configText("  - {match: /static/, ttl: 1h}\n"));
  ASSERT_NO_FATAL_FAILURE(startOn(path));
  ASSERT_EQ(xcache("/static/a"), "MISS");
  ASSERT_EQ(xcache("/static/a"), "HIT");
  std::this_thread::sleep_for(200ms);  // the log thread writes within 100 ms
  EXPECT_FALSE(contains(proxy_->logText(), "\"method\":")) << proxy_->logText();
}

}  // namespace
}  // namespace cachecar::testing
