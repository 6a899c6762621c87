// Bad input and bad peers: malformed and oversized requests, slow and vanishing clients, an app
// that is down, slow or cuts its answers short. Each gets a clear answer and the proxy stays up.
#include <string>

#include <gtest/gtest.h>

#include "support/free_port.h"
#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

class RobustnessTest : public ProxyFixture {
 protected:
  void SetUp() override {
    origin_.handlePrefix(
        "/", [](const OriginRequest& req) { return OriginResponse::text("page " + req.path); });
  }

  // The proxy still answers a plain request correctly.
  void expectServing(const std::string& path = "/static/alive") {
    HttpResponse r = get(path);
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body, "page " + path);
    EXPECT_TRUE(proxy_->running()) << "cachecar exited: " << proxy_->logText();
  }
};

class MalformedRequestTest : public RobustnessTest,
                             public ::testing::WithParamInterface<std::string> {};

TEST_P(MalformedRequestTest, Gets400AndTheConnectionIsClosed) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient client(port(), 3s);
  ASSERT_TRUE(client.sendRaw(GetParam()));
  HttpResponse r = client.readResponse();
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_FALSE(r.body.empty()) << "the error has no text body";
  EXPECT_TRUE(client.isClosedByPeer(3s)) << "the connection stayed open after a 400";
  EXPECT_EQ(origin_.totalRequests(), 0);
  expectServing();
}

INSTANTIATE_TEST_SUITE_P(
    Requests, MalformedRequestTest,
    ::testing::Values(
        std::string("THIS IS NOT HTTP AT ALL\r\n\r\n"),
        std::string("GET /static/x HTTP/1.1\r\nHost: a\r\nNo colon in this line\r\n\r\n"),
        std::string("GET /static/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        std::string("GET /static/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n")));

TEST_F(RobustnessTest, OversizedHeaderGets431) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient client(port(), 3s);
  // Sending may fail part way once cachecar has answered and closed; the answer still counts.
  client.sendRaw("GET /static/x HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(200 << 10, 'a') +
                 "\r\n\r\n");
  HttpResponse r = client.readResponse();
  EXPECT_EQ(r.status, 431) << r.describe();
  EXPECT_FALSE(r.body.empty());
  EXPECT_EQ(origin_.totalRequests(), 0);
  expectServing();
}

TEST_F(RobustnessTest, HeaderBelowTheLimitIsServed) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse r = get("/static/x", {"X-Big: " + std::string(32 << 10, 'a')});
  EXPECT_EQ(r.status, 200) << r.describe();
}

TEST_F(RobustnessTest, ClientVanishingMidResponseDoesNotDisturbOthers) {
  const std::string big = patternBody(2u << 20, 7);
  OriginResponse slow_big;
  slow_big.body = big;
  slow_big.piece_size = 64 << 10;
  slow_big.pace = 30ms;  // about one second in all
  origin_.setResponse("/static/big-slow", slow_big);
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpClient leaver(port());
  ASSERT_TRUE(leaver.sendRaw(HttpClient::buildRequest("GET", "/static/big-slow")));
  EXPECT_FALSE(leaver.isClosedByPeer(200ms));  // reads the first bytes
  EXPECT_FALSE(leaver.pending().empty()) << "no bytes of the slow answer arrived in 200 ms";

  // Others are served while the slow answer is in flight...
  HttpClient other(port());
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = other.get("/static/other");
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_EQ(r.body, "page /static/other");
  }
  // ...and after its client vanished (with a reset, the harshest way).
  leaver.close(/*reset=*/true);
  for (int i = 0; i < 5; ++i) {
    auto start = Clock::now();
    HttpResponse r = get("/account/during-" + std::to_string(i));
    EXPECT_EQ(r.status, 200) << r.describe();
    EXPECT_LT(msSince(start), 1000);
  }

  // The abandoned answer is never stored truncated: a later request gets all of it.
  HttpClient later(port());
  HttpResponse full = later.get("/static/big-slow");
  ASSERT_EQ(full.status, 200) << full.error;
  EXPECT_EQ(full.body.size(), big.size()) << "X-Cache: " << full.headerOr("X-Cache");
  EXPECT_EQ(fnv1a(full.body), fnv1a(big)) << "X-Cache: " << full.headerOr("X-Cache");
  expectServing();
}

TEST_F(RobustnessTest, AppNotListeningGives502) {
  origin_.stop();
  ASSERT_FALSE(portAcceptsConnections(origin_.port()));
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (int i = 0; i < 2; ++i) {
    auto start = Clock::now();
    HttpResponse r = get("/static/x");
    EXPECT_EQ(r.status, 502) << r.describe();
    EXPECT_FALSE(r.body.empty());
    EXPECT_LT(msSince(start), 2000);
  }
  EXPECT_TRUE(proxy_->running());
}

TEST_F(RobustnessTest, AppGoingDownMidRunGives502) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient client(port());
  ASSERT_EQ(client.get("/account/a").status, 200);
  origin_.stop();  // also closes the idle pooled connection
  HttpResponse r = get("/account/b");
  EXPECT_EQ(r.status, 502) << r.describe();
  HttpResponse same_connection = client.get("/account/c");
  EXPECT_EQ(same_connection.status, 502) << same_connection.describe();
  EXPECT_TRUE(proxy_->running());
}

TEST_F(RobustnessTest, SlowAppGives504) {
  OriginResponse slow = OriginResponse::text("too late");
  slow.delay = 4s;  // upstream_response_timeout is 2s
  origin_.setResponse("/account/slow", slow);
  ASSERT_NO_FATAL_FAILURE(startProxy());

  auto start = Clock::now();
  HttpResponse r = get("/account/slow");
  const long elapsed = msSince(start);
  EXPECT_EQ(r.status, 504) << r.describe();
  EXPECT_FALSE(r.body.empty());
  EXPECT_GE(elapsed, 1500);
  EXPECT_LT(elapsed, 3800);
  expectServing("/account/fast");
}

TEST_F(RobustnessTest, AppClosingWithoutAnAnswerGives502) {
  OriginResponse drop;
  drop.close_without_response = true;
  origin_.setResponse("/account/drop", drop);
  ASSERT_NO_FATAL_FAILURE(startProxy());
  auto start = Clock::now();
  HttpResponse r = get("/account/drop");
  EXPECT_EQ(r.status, 502) << r.describe();
  EXPECT_LT(msSince(start), 3000);
  expectServing();
}

TEST_F(RobustnessTest, TruncatedAppAnswerIsNeverStored) {
  OriginResponse cut = OriginResponse::text(std::string(1000, 't'));
  cut.truncate_body_at = 500;
  origin_.setResponse("/static/cut", cut);
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpResponse first = get("/static/cut");
  // Either an error status or a connection cut short: never a complete-looking 200.
  // (A 200 cut short reads as status 0 here: the client reports the early close.)
  EXPECT_NE(first.status, 200) << "a truncated answer was delivered as complete: "
                               << first.describe();
  HttpResponse second = get("/static/cut");
  EXPECT_NE(second.headerOr("X-Cache"), "HIT") << second.describe();
  EXPECT_EQ(origin_.requestCount("/static/cut"), 2);
  expectServing();
}

TEST_F(RobustnessTest, ClientThatNeverFinishesItsHeadersIsDisconnected) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient slow(port(), 6s);
  auto start = Clock::now();
  ASSERT_TRUE(slow.sendRaw("GET /static/x HTTP/1.1\r\nHost: a\r\n"));
  // Others are served meanwhile.
  expectServing();
  EXPECT_TRUE(slow.isClosedByPeer(5s)) << "still open after 5 s (header_read_timeout is 2s)";
  const long elapsed = msSince(start);
  EXPECT_GE(elapsed, 1500);
  EXPECT_LT(elapsed, 4500);
  EXPECT_EQ(origin_.totalRequests(), 1);  // only expectServing's request
}

TEST_F(RobustnessTest, TricklingClientIsDisconnectedToo) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient slow(port(), 6s);
  auto start = Clock::now();
  const std::string request = "GET /static/x HTTP/1.1\r\nHost: a\r\nX-Slow: ";
  ASSERT_TRUE(slow.sendRaw(request));
  bool closed = false;
  // One byte every 250 ms: the headers never end, but bytes keep coming.
  while (!closed && msSince(start) < 5000) {
    if (!slow.sendRaw("a")) {
      closed = true;
      break;
    }
    closed = slow.isClosedByPeer(250ms);
  }
  EXPECT_TRUE(closed) << "a trickling client kept its connection for 5 s";
  EXPECT_LT(msSince(start), 4500);
  EXPECT_EQ(origin_.totalRequests(), 0);
}

}  // namespace
}  // namespace cachecar::testing
