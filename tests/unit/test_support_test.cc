// Self-tests of the integration-test harness: the origin server and the blocking client are
// checked against each other, so that a failing integration test points at cachecar and not at
// its test tools.
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "support/cachecar_process.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/test_origin.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

long msSince(Clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

TEST(TestOriginTest, ServesAFixedResponseAndCountsRequests) {
  TestOrigin origin;
  ASSERT_TRUE(origin.running()) << origin.startError();
  origin.setResponse("/hello", OriginResponse::text("hello world", {{"X-Test", "1"}}));

  HttpClient client(origin.port());
  ASSERT_TRUE(client.connected()) << client.connectError();
  HttpResponse r = client.get("/hello?a=1", {"X-Forwarded-For: 10.0.0.1"});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "hello world");
  EXPECT_EQ(r.headerOr("x-test"), "1");  // case-insensitive lookup
  EXPECT_EQ(r.headerOr("Content-Length"), "11");
  EXPECT_FALSE(r.chunked);
  EXPECT_TRUE(r.keep_alive);

  EXPECT_EQ(origin.requestCount("/hello"), 1);
  EXPECT_EQ(origin.targetCount("/hello?a=1"), 1);
  EXPECT_EQ(origin.targetCount("/hello"), 0);
  auto last = origin.lastRequest("/hello");
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->method, "GET");
  EXPECT_EQ(last->query, "a=1");
  EXPECT_EQ(last->headerOr("x-forwarded-for"), "10.0.0.1");
  EXPECT_EQ(last->headerOr("Host"), "localhost");
}

TEST(TestOriginTest, UnknownPathIs404AndExactBeatsPrefix) {
  TestOrigin origin;
  origin.handlePrefix(
      "/p/", [](const OriginRequest& req) { return OriginResponse::text("prefix:" + req.path); });
  origin.handlePrefix("/p/deeper/",
                      [](const OriginRequest&) { return OriginResponse::text("deeper"); });
  origin.setResponse("/p/exact", OriginResponse::text("exact"));

  HttpClient client(origin.port());
  EXPECT_EQ(client.get("/p/x").body, "prefix:/p/x");
  EXPECT_EQ(client.get("/p/deeper/y").body, "deeper");
  EXPECT_EQ(client.get("/p/exact").body, "exact");
  EXPECT_EQ(client.get("/nothing").status, 404);
  EXPECT_EQ(origin.totalRequests(), 4);
}

TEST(TestOriginTest, KeepAliveReusesOneConnection) {
  TestOrigin origin;
  origin.setResponse("/k", OriginResponse::text("k"));
  HttpClient client(origin.port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(client.get("/k").status, 200);
  }
  EXPECT_EQ(origin.connectionCount(), 1);
  auto requests = origin.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests.front().connection_id, requests.back().connection_id);

  HttpClient other(origin.port());
  ASSERT_EQ(other.get("/k").status, 200);
  EXPECT_EQ(origin.connectionCount(), 2);
}

TEST(TestOriginTest, PipelinedResponsesOfEveryFramingComeBackInOrder) {
  TestOrigin origin;
  origin.setResponse("/length", OriginResponse::text("by-length"));
  OriginResponse chunked;
  chunked.chunks = {"by-", "chunks", "!"};
  origin.setResponse("/chunked", chunked);
  origin.setResponse("/head", OriginResponse::text(std::string(1234, 'h')));
  OriginResponse empty;
  empty.status = 204;
  origin.setResponse("/empty", empty);

  HttpClient client(origin.port());
  std::string batch =
      HttpClient::buildRequest("GET", "/length") + HttpClient::buildRequest("GET", "/chunked") +
      HttpClient::buildRequest("HEAD", "/head") + HttpClient::buildRequest("GET", "/empty") +
      HttpClient::buildRequest("GET", "/length");
  ASSERT_TRUE(client.sendRaw(batch));

  HttpResponse a = client.readResponse();
  ASSERT_EQ(a.status, 200) << a.describe();
  EXPECT_EQ(a.body, "by-length");
  HttpResponse b = client.readResponse();
  ASSERT_EQ(b.status, 200) << b.describe();
  EXPECT_TRUE(b.chunked);
  EXPECT_EQ(b.body, "by-chunks!");
  HttpResponse c = client.readResponse(/*head_request=*/true);
  ASSERT_EQ(c.status, 200) << c.describe();
  EXPECT_EQ(c.body, "");
  EXPECT_EQ(c.headerOr("Content-Length"), "1234");
  HttpResponse d = client.readResponse();
  EXPECT_EQ(d.status, 204) << d.describe();
  HttpResponse e = client.readResponse();
  ASSERT_EQ(e.status, 200) << e.describe();
  EXPECT_EQ(e.body, "by-length");
  EXPECT_TRUE(client.pending().empty());
}

TEST(TestOriginTest, BodyDelimitedByCloseIsReadToTheEnd) {
  TestOrigin origin;
  OriginResponse r = OriginResponse::text("until the end");
  r.until_close = true;
  origin.setResponse("/close", r);
  HttpClient client(origin.port());
  HttpResponse resp = client.get("/close");
  ASSERT_EQ(resp.status, 200) << resp.describe();
  EXPECT_TRUE(resp.until_close);
  EXPECT_FALSE(resp.hasHeader("Content-Length"));
  EXPECT_EQ(resp.body, "until the end");
  EXPECT_TRUE(client.isClosedByPeer(1s));
}

TEST(TestOriginTest, RecordsRequestBodiesOfBothFramings) {
  TestOrigin origin;
  origin.setResponse("/post", OriginResponse::text("got it"));
  HttpClient client(origin.port());

  HttpResponse r1 = client.request("POST", "/post", {}, "name=value");
  ASSERT_EQ(r1.status, 200) << r1.describe();
  EXPECT_EQ(origin.lastRequest("/post")->body, "name=value");
  EXPECT_EQ(origin.lastRequest("/post")->method, "POST");

  ASSERT_TRUE(
      client.sendRaw("POST /post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"));
  HttpResponse r2 = client.readResponse();
  ASSERT_EQ(r2.status, 200) << r2.describe();
  EXPECT_EQ(origin.lastRequest("/post")->body, "abcdefg");
}

TEST(TestOriginTest, AnswersExpectContinueWithAnInterimResponse) {
  TestOrigin origin;
  origin.setResponse("/upload", OriginResponse::text("stored"));
  HttpClient client(origin.port());
  ASSERT_TRUE(client.sendRaw(
      "PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  HttpResponse interim = client.readResponse();
  ASSERT_EQ(interim.status, 100) << interim.describe();
  ASSERT_TRUE(client.sendRaw("12345"));
  HttpResponse final_response = client.readResponse();
  ASSERT_EQ(final_response.status, 200) << final_response.describe();
  EXPECT_EQ(origin.lastRequest("/upload")->body, "12345");
}

TEST(TestOriginTest, DelayedResponseAndClientTimeout) {
  TestOrigin origin;
  OriginResponse slow = OriginResponse::text("slow");
  slow.delay = 300ms;
  origin.setResponse("/slow", slow);

  auto start = Clock::now();
  HttpResponse r = httpGet(origin.port(), "/slow");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_GE(msSince(start), 280);

  HttpClient impatient(origin.port(), 100ms);
  start = Clock::now();
  HttpResponse timed_out = impatient.get("/slow");
  EXPECT_EQ(timed_out.status, 0);
  EXPECT_NE(timed_out.error.find("timed out"), std::string::npos) << timed_out.error;
  EXPECT_LT(msSince(start), 250);
}

TEST(TestOriginTest, PacedChunksArriveOverTime) {
  TestOrigin origin;
  OriginResponse paced;
  paced.chunks = {"a", "b", "c", "d"};
  paced.pace = 50ms;
  origin.setResponse("/paced", paced);
  OriginResponse pieces = OriginResponse::text(std::string(1000, 'x'));
  pieces.piece_size = 250;
  pieces.pace = 50ms;
  origin.setResponse("/pieces", pieces);

  auto start = Clock::now();
  HttpResponse r = httpGet(origin.port(), "/paced");
  EXPECT_EQ(r.body, "abcd") << r.describe();
  EXPECT_GE(msSince(start), 140);
  start = Clock::now();
  HttpResponse p = httpGet(origin.port(), "/pieces");
  EXPECT_EQ(p.body, std::string(1000, 'x')) << p.describe();
  EXPECT_GE(msSince(start), 140);
}

TEST(TestOriginTest, AbruptClosesAreReportedByTheClient) {
  TestOrigin origin;
  OriginResponse nothing;
  nothing.close_without_response = true;
  origin.setResponse("/nothing", nothing);
  OriginResponse truncated = OriginResponse::text(std::string(1000, 't'));
  truncated.truncate_body_at = 500;
  origin.setResponse("/truncated", truncated);

  HttpClient a(origin.port());
  HttpResponse r1 = a.get("/nothing");
  EXPECT_EQ(r1.status, 0);
  EXPECT_NE(r1.error.find("closed before a response"), std::string::npos) << r1.error;
  EXPECT_TRUE(a.isClosedByPeer(1s));

  HttpClient b(origin.port());
  HttpResponse r2 = b.get("/truncated");
  EXPECT_EQ(r2.status, 0);
  EXPECT_NE(r2.error.find("middle of the response"), std::string::npos) << r2.error;
  EXPECT_EQ(r2.body.size(), 500u);
}

TEST(TestOriginTest, MalformedRequestGets400) {
  TestOrigin origin;
  HttpClient client(origin.port());
  ASSERT_TRUE(client.sendRaw("THIS IS NOT HTTP\r\n\r\n"));
  HttpResponse r = client.readResponse();
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_TRUE(client.isClosedByPeer(1s));
}

TEST(TestOriginTest, IsClosedByPeerIsFalseOnAnOpenConnection) {
  TestOrigin origin;
  HttpClient client(origin.port());
  auto start = Clock::now();
  EXPECT_FALSE(client.isClosedByPeer(100ms));
  EXPECT_GE(msSince(start), 90);
}

TEST(TestOriginTest, StopClosesThePortAndWaitsAreBounded) {
  TestOrigin origin;
  origin.setResponse("/x", OriginResponse::text("x"));
  ASSERT_EQ(httpGet(origin.port(), "/x").status, 200);
  EXPECT_TRUE(origin.waitForRequests("/x", 1, 1s));
  auto start = Clock::now();
  EXPECT_FALSE(origin.waitForRequests("/x", 2, 100ms));
  EXPECT_LT(msSince(start), 1000);

  // A connection left open does not block stop().
  HttpClient idle(origin.port());
  ASSERT_TRUE(idle.connected());
  origin.stop();
  EXPECT_TRUE(idle.isClosedByPeer(1s));
  EXPECT_FALSE(portAcceptsConnections(origin.port()));
  HttpClient refused(origin.port());
  EXPECT_FALSE(refused.connected());
  EXPECT_EQ(refused.get("/x").status, 0);
}

TEST(TestOriginTest, CountsConnectionsAndTheirClose) {
  TestOrigin origin;
  origin.setResponse("/x", OriginResponse::text("x"));
  {
    HttpClient a(origin.port());
    HttpClient b(origin.port());
    ASSERT_EQ(a.get("/x").status, 200);
    ASSERT_EQ(b.get("/x").status, 200);
    EXPECT_EQ(origin.openConnections(), 2);
  }
  EXPECT_TRUE(origin.waitForNoOpenConnections(2s));
  EXPECT_EQ(origin.connectionCount(), 2);
}

TEST(HarnessTest, FillPlaceholdersLeavesYamlFlowMapsAlone) {
  std::string yaml =
      "listen: 127.0.0.1:{port}\nupstream: http://127.0.0.1:{origin_port}\n"
      "caches: {default: {backend: memory}}\n";
  std::string filled = fillPlaceholders(yaml, {{"port", "1234"}, {"origin_port", "5678"}});
  EXPECT_EQ(filled,
            "listen: 127.0.0.1:1234\nupstream: http://127.0.0.1:5678\n"
            "caches: {default: {backend: memory}}\n");
}

TEST(HarnessTest, Fnv1aMatchesKnownVectors) {
  EXPECT_EQ(fnv1a(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_NE(fnv1a("ab"), fnv1a("ba"));
}

TEST(HarnessTest, BuildRequestAddsHostAndLength) {
  EXPECT_EQ(HttpClient::buildRequest("GET", "/a", {"Accept: x"}),
            "GET /a HTTP/1.1\r\nHost: localhost\r\nAccept: x\r\n\r\n");
  EXPECT_EQ(HttpClient::buildRequest("POST", "/b", {"Host: h"}, "xyz"),
            "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz");
}

// A stand-in for the cachecar binary, to check how the process runner reports failures.
std::string writeScript(const TempDir& dir, const std::string& body) {
  std::string path = dir.writeFile("fake-cachecar.sh", "#!/bin/sh\n" + body + "\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

TEST(HarnessTest, ProcessThatExitsDuringStartupFailsWithItsLog) {
  TempDir dir;
  CachecarOptions options;
  options.binary = writeScript(dir, "echo \"config is $2\"; echo broken-config >&2; exit 3");
  options.config_yaml = "listen: 127.0.0.1:{port}\n";
  CachecarProcess process(options);
  auto start = Clock::now();
  ::testing::AssertionResult result = process.start();
  EXPECT_FALSE(result);
  std::string message = result.message();
  EXPECT_NE(message.find("exit code 3"), std::string::npos) << message;
  EXPECT_NE(message.find("broken-config"), std::string::npos) << message;
  EXPECT_NE(process.logText().find("config is " + process.configPath()), std::string::npos)
      << process.logText();
  EXPECT_LT(msSince(start), 5000);
}

TEST(HarnessTest, ProcessThatNeverListensTimesOutAndIsKilled) {
  TempDir dir;
  CachecarOptions options;
  options.binary = writeScript(dir, "exec sleep 30");
  options.startup_timeout = 300ms;
  CachecarProcess process(options);
  auto start = Clock::now();
  ::testing::AssertionResult result = process.start();
  EXPECT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("did not accept"), std::string::npos);
  EXPECT_TRUE(process.running());
  int status = process.stop(2s);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(process.running());
  EXPECT_LT(msSince(start), 3000);
}

}  // namespace
}  // namespace cachecar::testing
