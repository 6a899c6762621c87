// The command line: --check-config, --version, --help, usage errors, running on built-in
// defaults, and flags overriding the file.
#include <cctype>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "support/free_port.h"
#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

std::string describe(const CommandResult& r) {
  return "exit=" + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") +
         "\nstdout: " + r.out + "\nstderr: " + r.err;
}

TEST(CliTest, CheckConfigAcceptsAValidFile) {
  TempDir dir;
  const std::string path = dir.writeFile(
      "good.yaml", fillPlaceholders(basicConfig(), {{"port", "18080"}, {"origin_port", "18000"}}));
  CommandResult r = runCachecar({"--check-config", path});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_FALSE(r.out.empty()) << "no summary printed: " << describe(r);
}

TEST(CliTest, CheckConfigRejectsABadValueWithFileAndLine) {
  TempDir dir;
  const std::string path = dir.writeFile("bad.yaml",
                                         "listen: 127.0.0.1:18080\n"
                                         "upstream: http://127.0.0.1:18000\n"
                                         "routes:\n"
                                         "  - {match: /x/, ttl: banana}\n");
  CommandResult r = runCachecar({"--check-config", path});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_TRUE(contains(r.err, path + ":4: ")) << describe(r);
  EXPECT_TRUE(contains(r.err, "ttl")) << describe(r);
}

TEST(CliTest, CheckConfigRejectsAnUnknownKeyWithFileAndLine) {
  TempDir dir;
  const std::string path = dir.writeFile("typo.yaml",
                                         "listen: 127.0.0.1:18080\n"
                                         "upstream: http://127.0.0.1:18000\n"
                                         "chaces:\n"
                                         "  default: {backend: memory}\n");
  CommandResult r = runCachecar({"--check-config", path});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_TRUE(contains(r.err, path + ":3: ")) << describe(r);
  EXPECT_TRUE(contains(r.err, "chaces")) << describe(r);
}

TEST(CliTest, CheckConfigRejectsAMissingFile) {
  TempDir dir;
  const std::string path = dir.path() + "/does-not-exist.yaml";
  CommandResult r = runCachecar({"--check-config", path});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_TRUE(contains(r.err, path)) << describe(r);
}

TEST(CliTest, VersionPrintsNameAndVersion) {
  CommandResult r = runCachecar({"--version"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  // "cachecar MAJOR.MINOR..." (no <regex>: g++ 12 warns inside it under sanitizers)
  const std::string prefix = "cachecar ";
  ASSERT_EQ(r.out.rfind(prefix, 0), 0u) << describe(r);
  const size_t dot = r.out.find('.', prefix.size());
  ASSERT_NE(dot, std::string::npos) << describe(r);
  EXPECT_GT(dot, prefix.size()) << describe(r);
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(r.out[prefix.size()]))) << describe(r);
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(r.out[dot + 1]))) << describe(r);
}

TEST(CliTest, HelpPrintsUsage) {
  CommandResult r = runCachecar({"--help"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out + r.err, "--config")) << describe(r);
}

TEST(CliTest, UnknownOptionIsAUsageError) {
  CommandResult r = runCachecar({"--no-such-option"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_FALSE(r.err.empty()) << describe(r);
}

class CliRunTest : public ProxyFixture {};

TEST_F(CliRunTest, RunsOnBuiltInDefaultsWithListenAndUpstreamFlags) {
  origin_.handlePrefix("/", [](const OriginRequest& req) {
    HeaderList headers;
    if (req.path == "/fresh") {
      headers.emplace_back("Cache-Control", "max-age=60");
    }
    return OriginResponse::text(req.path + " #" + std::to_string(req.sequence), headers);
  });
  ASSERT_NO_FATAL_FAILURE(startProxy(
      "", {"--listen", "127.0.0.1:{port}", "--upstream", "http://127.0.0.1:{origin_port}"}));

  HttpResponse miss = get("/fresh");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");
  HttpResponse hit = get("/fresh");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.body, miss.body);
  EXPECT_EQ(origin_.requestCount("/fresh"), 1);

  // Without routes, an answer without freshness is not stored.
  ASSERT_EQ(get("/plain").status, 200);
  EXPECT_NE(get("/plain").headerOr("X-Cache"), "HIT");
  EXPECT_EQ(origin_.requestCount("/plain"), 2);
}

TEST_F(CliRunTest, FlagsOverrideTheFile) {
  origin_.handlePrefix("/", [](const OriginRequest& req) {
    return OriginResponse::text("from origin " + req.path);
  });
  const uint16_t file_port = findFreePort();
  const uint16_t dead_app_port = findFreePort();
  std::string config = basicConfig();
  config.replace(config.find("{port}"), 6, std::to_string(file_port));
  config.replace(config.find("{origin_port}"), 13, std::to_string(dead_app_port));
  ASSERT_NO_FATAL_FAILURE(startProxy(config, {"--listen", "127.0.0.1:{port}", "--upstream",
                                              "http://127.0.0.1:{origin_port}", "--workers", "2"}));
  EXPECT_EQ(listeningPortsOf(proxy_->pid()), std::set<uint16_t>{port()})
      << "the file's listen address " << file_port << " was used";
  HttpResponse r = get("/static/x");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "from origin /static/x");
}

}  // namespace
}  // namespace cachecar::testing
