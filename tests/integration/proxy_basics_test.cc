// The cachecar binary in front of a real origin: miss then hit, forwarded headers, HEAD,
// chunked and large bodies, pipelining, keep-alive towards the app, request bodies.
#include <algorithm>
#include <cctype>
#include <string>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

bool isAllDigits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

class ProxyBasicsTest : public ProxyFixture {};

TEST_F(ProxyBasicsTest, MissThenHitWithOneOriginCall) {
  origin_.setResponse("/static/app.css",
                      OriginResponse::text("body { color: red }", {{"Content-Type", "text/css"}}));
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient client(port());
  HttpResponse miss = client.get("/static/app.css");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS") << miss.describe();
  EXPECT_EQ(miss.body, "body { color: red }");
  EXPECT_TRUE(contains(miss.headerOr("Via"), "1.1 cachecar")) << miss.describe();

  HttpResponse hit = client.get("/static/app.css");
  ASSERT_EQ(hit.status, 200) << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  ASSERT_TRUE(hit.hasHeader("Age")) << hit.describe();
  EXPECT_TRUE(isAllDigits(hit.headerOr("Age"))) << hit.describe();
  EXPECT_EQ(hit.body, miss.body);
  EXPECT_EQ(hit.headerOr("Content-Type"), "text/css");
  EXPECT_EQ(hit.headerOr("Content-Length"), std::to_string(miss.body.size()));
  EXPECT_TRUE(contains(hit.headerOr("Via"), "1.1 cachecar")) << hit.describe();

  // Another connection is served from the same entry.
  HttpResponse again = get("/static/app.css");
  EXPECT_EQ(again.headerOr("X-Cache"), "HIT") << again.describe();
  EXPECT_EQ(again.body, miss.body);
  EXPECT_EQ(origin_.requestCount("/static/app.css"), 1);
}

TEST_F(ProxyBasicsTest, ForwardsIdentifyingHeadersAndDropsHopByHopOnes) {
  origin_.setResponse("/account/echo", OriginResponse::text("echo"));
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient client(port());
  HttpResponse r =
      client.get("/account/echo", {"Host: shop.example", "Connection: keep-alive, X-Hop-Secret",
                                   "X-Hop-Secret: s3cret", "Keep-Alive: timeout=5", "TE: trailers",
                                   "Upgrade: h2c", "Proxy-Authorization: Basic dXNlcjpwYXNz",
                                   "Proxy-Connection: keep-alive", "X-End-To-End: kept"});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.headerOr("X-Cache"), "BYPASS") << r.describe();

  auto seen = origin_.lastRequest("/account/echo");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->headerOr("X-Forwarded-For"), "127.0.0.1");
  EXPECT_EQ(seen->headerOr("X-Forwarded-Proto"), "http");
  EXPECT_EQ(seen->headerOr("X-Forwarded-Host"), "shop.example");
  EXPECT_TRUE(contains(seen->headerOr("Via"), "1.1 cachecar")) << seen->headerOr("Via");
  EXPECT_EQ(seen->headerOr("X-End-To-End"), "kept");
  for (const char* hop :
       {"X-Hop-Secret", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "Proxy-Connection"}) {
    EXPECT_FALSE(seen->hasHeader(hop)) << hop << " reached the origin: " << seen->headerOr(hop);
  }
  // cachecar may send its own Connection header upstream, but not the client's list.
  EXPECT_FALSE(contains(lower(seen->headerOr("Connection")), "x-hop-secret"));
}

TEST_F(ProxyBasicsTest, DropsHopByHopHeadersOfTheResponseOnMissAndHit) {
  origin_.setResponse("/static/hop", OriginResponse::text("hop", {{"Connection", "X-Resp-Hop"},
                                                                  {"X-Resp-Hop", "1"},
                                                                  {"X-End", "yes"}}));
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient client(port());
  for (const char* expected : {"MISS", "HIT"}) {
    HttpResponse r = client.get("/static/hop");
    ASSERT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.headerOr("X-Cache"), expected) << r.describe();
    EXPECT_EQ(r.headerOr("X-End"), "yes") << r.describe();
    EXPECT_FALSE(r.hasHeader("X-Resp-Hop")) << r.describe();
  }
}

TEST_F(ProxyBasicsTest, HeadIsAnsweredFromACachedGet) {
  const std::string body(1234, 'p');
  origin_.setResponse("/static/page", OriginResponse::text(body));
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient client(port());
  HttpResponse miss = client.get("/static/page");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");

  HttpResponse head = client.head("/static/page");
  ASSERT_EQ(head.status, 200) << head.describe();
  EXPECT_EQ(head.headerOr("X-Cache"), "HIT") << head.describe();
  EXPECT_EQ(head.headerOr("Content-Length"), "1234") << head.describe();
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(origin_.requestCount("/static/page"), 1);

  // No body bytes followed the HEAD answer: the next response on the connection parses cleanly.
  HttpResponse after = client.get("/static/page");
  ASSERT_EQ(after.status, 200) << after.describe();
  EXPECT_EQ(after.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(after.body, body);
  EXPECT_EQ(origin_.requestCount("/static/page"), 1);
}

TEST_F(ProxyBasicsTest, ChunkedUpstreamResponseIsCachedWhole) {
  OriginResponse chunked;
  chunked.headers = {{"Content-Type", "text/plain"}};
  chunked.chunks = {"hello ", "chunked ", "world"};
  chunked.pace = 20ms;
  origin_.setResponse("/static/chunked", chunked);
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient client(port());
  HttpResponse miss = client.get("/static/chunked");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(miss.body, "hello chunked world");

  HttpResponse hit = client.get("/static/chunked");
  ASSERT_EQ(hit.status, 200) << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.body, "hello chunked world");
  EXPECT_EQ(hit.headerOr("Content-Length"), "19") << hit.describe();
  EXPECT_FALSE(hit.chunked) << hit.describe();
  EXPECT_EQ(origin_.requestCount("/static/chunked"), 1);
}

TEST_F(ProxyBasicsTest, FiveMegabyteBodyIsIntactOnMissAndHit) {
  const std::string body = patternBody(5u << 20);
  const uint64_t checksum = fnv1a(body);
  OriginResponse big;
  big.body = body;
  big.headers = {{"Content-Type", "application/octet-stream"}};
  big.piece_size = 64 << 10;
  origin_.setResponse("/static/big.bin", big);
  ASSERT_NO_FATAL_FAILURE(startProxy(basicConfig("max_object_bytes: 16MiB")));

  HttpClient client(port());
  HttpResponse miss = client.get("/static/big.bin");
  ASSERT_EQ(miss.status, 200) << miss.error;
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(miss.body.size(), body.size());
  EXPECT_EQ(fnv1a(miss.body), checksum);

  HttpResponse hit = client.get("/static/big.bin");
  ASSERT_EQ(hit.status, 200) << hit.error;
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(hit.body.size(), body.size());
  EXPECT_EQ(fnv1a(hit.body), checksum);
  EXPECT_EQ(origin_.requestCount("/static/big.bin"), 1);
}

TEST_F(ProxyBasicsTest, PipelinedRequestsAreAnsweredInOrder) {
  origin_.setResponse("/static/p1", OriginResponse::text("one"));
  OriginResponse slow = OriginResponse::text("two");
  slow.delay = 300ms;  // a slow miss in the middle must not let the third answer overtake it
  origin_.setResponse("/static/p2", slow);
  origin_.setResponse("/static/p3", OriginResponse::text("three"));
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/p1").status, 200);  // p1 becomes a hit

  HttpClient client(port());
  ASSERT_TRUE(client.sendRaw(HttpClient::buildRequest("GET", "/static/p1") +
                             HttpClient::buildRequest("GET", "/static/p2") +
                             HttpClient::buildRequest("GET", "/static/p3")));
  HttpResponse r1 = client.readResponse();
  HttpResponse r2 = client.readResponse();
  HttpResponse r3 = client.readResponse();
  ASSERT_EQ(r1.status, 200) << r1.describe();
  ASSERT_EQ(r2.status, 200) << r2.describe();
  ASSERT_EQ(r3.status, 200) << r3.describe();
  EXPECT_EQ(r1.body, "one");
  EXPECT_EQ(r1.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(r2.body, "two");
  EXPECT_EQ(r2.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(r3.body, "three");
  EXPECT_EQ(r3.headerOr("X-Cache"), "MISS");

  // The connection is still in step afterwards.
  HttpResponse r4 = client.get("/static/p2");
  ASSERT_EQ(r4.status, 200) << r4.describe();
  EXPECT_EQ(r4.body, "two");
  EXPECT_EQ(r4.headerOr("X-Cache"), "HIT");
}

TEST_F(ProxyBasicsTest, KeepAliveReusesUpstreamConnections) {
  origin_.handlePrefix("/static/k", [](const OriginRequest& req) {
    return OriginResponse::text("page " + req.path);
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient client(port());
  for (int i = 0; i < 20; ++i) {
    const std::string path = "/static/k" + std::to_string(i);
    HttpResponse r = client.get(path);
    ASSERT_EQ(r.status, 200) << "request " << i << ": " << r.describe();
    EXPECT_EQ(r.body, "page " + path);
    EXPECT_EQ(r.headerOr("X-Cache"), "MISS");
  }
  EXPECT_EQ(origin_.totalRequests(), 20);
  EXPECT_LE(origin_.connectionCount(), 2)
      << "20 sequential misses opened " << origin_.connectionCount() << " app connections";
}

TEST_F(ProxyBasicsTest, PostBodiesReachTheOriginAndBypassTheCache) {
  origin_.handlePrefix("/", [](const OriginRequest& req) {
    return OriginResponse::text(req.method + " " + req.path + " #" + std::to_string(req.sequence));
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient client(port());

  HttpResponse plain =
      client.request("POST", "/static/form", {"Content-Type: text/plain"}, "a=1&b=2");
  ASSERT_EQ(plain.status, 200) << plain.describe();
  EXPECT_EQ(plain.headerOr("X-Cache"), "BYPASS");
  auto seen = origin_.lastRequest("/static/form");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->method, "POST");
  EXPECT_EQ(seen->body, "a=1&b=2");

  ASSERT_TRUE(
      client.sendRaw("POST /account/chunked HTTP/1.1\r\nHost: localhost\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n1\r\n \r\n6\r\nchunks\r\n0\r\n\r\n"));
  HttpResponse chunked = client.readResponse();
  ASSERT_EQ(chunked.status, 200) << chunked.describe();
  EXPECT_EQ(chunked.headerOr("X-Cache"), "BYPASS");
  seen = origin_.lastRequest("/account/chunked");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->body, "hello chunks");

  // A POST to a URL with a cached GET entry still goes to the app.
  ASSERT_EQ(client.get("/static/cached").headerOr("X-Cache"), "MISS");
  HttpResponse post = client.request("POST", "/static/cached", {}, "x");
  ASSERT_EQ(post.status, 200) << post.describe();
  EXPECT_EQ(post.headerOr("X-Cache"), "BYPASS");
  EXPECT_EQ(post.body.rfind("POST ", 0), 0u) << post.body;
  EXPECT_EQ(origin_.requestCount("/static/cached"), 2);
}

TEST_F(ProxyBasicsTest, ExpectContinueGetsAnInterimOrFinalResponse) {
  origin_.handlePrefix("/account/", [](const OriginRequest& req) {
    return OriginResponse::text("stored " + std::to_string(req.body.size()));
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient client(port(), 3s);
  ASSERT_TRUE(
      client.sendRaw("PUT /account/upload HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
  // A client waits for the interim answer before sending the body; cachecar must answer
  // without waiting for the body.
  HttpResponse first = client.readResponse();
  ASSERT_NE(first.status, 0) << "no answer to Expect: 100-continue: " << first.describe();
  if (first.status == 100) {
    ASSERT_TRUE(client.sendRaw("hello world"));
    HttpResponse final_response = client.readResponse();
    ASSERT_EQ(final_response.status, 200) << final_response.describe();
    EXPECT_EQ(final_response.body, "stored 11");
    auto seen = origin_.lastRequest("/account/upload");
    ASSERT_TRUE(seen.has_value());
    EXPECT_EQ(seen->body, "hello world");
  } else {
    // A final answer instead of 100 is allowed; it must be a real final status.
    EXPECT_GE(first.status, 200) << first.describe();
  }
  // The proxy keeps serving.
  HttpResponse next = get("/account/after");
  EXPECT_EQ(next.status, 200) << next.describe();
}

TEST_F(ProxyBasicsTest, RequestBodyOverTheLimitIs413) {
  origin_.handlePrefix("/", [](const OriginRequest&) { return OriginResponse::text("ok"); });
  ASSERT_NO_FATAL_FAILURE(startProxy());

  {
    // Declared length over max_request_body_bytes (1 MiB): refused from the headers alone.
    HttpClient client(port());
    ASSERT_TRUE(
        client.sendRaw("POST /account/big HTTP/1.1\r\nHost: localhost\r\n"
                       "Content-Length: 2097152\r\n\r\n"));
    client.sendRaw(std::string(64 << 10, 'b'));  // may fail once cachecar has answered
    HttpResponse r = client.readResponse();
    ASSERT_EQ(r.status, 413) << r.describe();
    EXPECT_FALSE(r.body.empty());
    EXPECT_EQ(origin_.requestCount("/account/big"), 0);
  }
  {
    // A chunked body that grows past the limit.
    HttpClient client(port());
    ASSERT_TRUE(
        client.sendRaw("POST /account/chunky HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'c') + "\r\n";
    for (int i = 0; i < 24; ++i) {  // 1.5 MiB
      if (!client.sendRaw(chunk)) {
        break;
      }
    }
    client.sendRaw("0\r\n\r\n");
    HttpResponse r = client.readResponse();
    ASSERT_EQ(r.status, 413) << r.describe();
  }
  // Small bodies still pass.
  HttpClient client(port());
  HttpResponse ok = client.request("POST", "/account/small", {}, std::string(1000, 's'));
  ASSERT_EQ(ok.status, 200) << ok.describe();
  auto seen = origin_.lastRequest("/account/small");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->body.size(), 1000u);
}

}  // namespace
}  // namespace cachecar::testing
