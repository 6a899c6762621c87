#include "cachecar/admin/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cachecar/event/event_loop.h"
#include "support/free_port.h"
#include "support/http_client.h"

namespace cachecar::admin {
namespace {

using namespace std::chrono_literals;
using testing::HttpClient;
using testing::HttpResponse;

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// How the fake answers an async hook.
enum class Answer {
  kAtOnce,  // inside the hook call
  kLater,   // posted to the loop: after the hook call returned
  kTwice,   // posted, then answered a second time (which must be ignored)
  kNever,   // kept; the test may answer it by hand
};

// The running proxy as the admin endpoints see it. Everything is under one mutex: the test
// thread sets the script, the loop thread reads it.
class FakeHooks : public AdminHooks {
 public:
  explicit FakeHooks(event::EventLoop& loop) : loop_(loop) {}

  // Runs fn under the mutex (defined first: the accessors below deduce their type from it).
  template <typename Fn>
  auto locked(Fn fn) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fn();
  }


  bool draining() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return draining_;
  }

  void probeUpstream(std::function<void(Status)> done) override {
    Status result = Ok{};
    Answer answer;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++probes_;
      result = probe_result_;
      answer = answer_;
      if (answer == Answer::kNever) {
        kept_probe_ = done;
      }
    }
    deliver(answer, std::move(done), std::move(result));
  }

  std::string renderMetrics() override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++metrics_renders_;
    return metrics_;
  }

  void purgeUrl(const PurgeTarget& target,
                std::function<void(Result<std::string>)> done) override {
    Result<std::string> result = std::string();
    Answer answer;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      purged_.push_back(target);
      result = purge_result_;
      answer = answer_;
    }
    deliver(answer, std::move(done), std::move(result));
  }

  void bumpCacheVersion(const std::string& cache,
                        std::function<void(Result<std::string>)> done) override {
    Result<std::string> result = std::string();
    Answer answer;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      bumped_.push_back(cache);
      if (cache == "default" || cache == "shared") {
        result = bump_error_ ? Result<std::string>(Error{*bump_error_})
                             : Result<std::string>("cache '" + cache + "' now at version 2");
      } else {
        result = Error{"unknown cache '" + cache + "' (caches: default, shared)"};
      }
      answer = answer_;
    }
    deliver(answer, std::move(done), std::move(result));
  }

  // The script.
  void setDraining(bool on) { locked([&] { draining_ = on; }); }
  void setProbeResult(Status s) { locked([&] { probe_result_ = std::move(s); }); }
  void setPurgeResult(Result<std::string> r) { locked([&] { purge_result_ = std::move(r); }); }
  void setBumpError(std::string e) { locked([&] { bump_error_ = std::move(e); }); }
  void setAnswer(Answer a) { locked([&] { answer_ = a; }); }
  void setMetrics(std::string m) { locked([&] { metrics_ = std::move(m); }); }

  // What happened.
  int probes() const { return locked([&] { return probes_; }); }
  int metricsRenders() const { return locked([&] { return metrics_renders_; }); }
  std::vector<PurgeTarget> purged() const { return locked([&] { return purged_; }); }
  std::vector<std::string> bumped() const { return locked([&] { return bumped_; }); }
  std::function<void(Status)> keptProbe() const { return locked([&] { return kept_probe_; }); }

 private:
  template <typename T>
  void deliver(Answer answer, std::function<void(T)> done, T result) {
    switch (answer) {
      case Answer::kAtOnce:
        done(std::move(result));
        return;
      case Answer::kLater:
        loop_.post([done, result] { done(result); });
        return;
      case Answer::kTwice:
        loop_.post([done, result] {
          done(result);
          done(Error{"second answer"});
        });
        return;
      case Answer::kNever:
        return;
    }
  }

  event::EventLoop& loop_;
  mutable std::mutex mutex_;
  bool draining_ = false;
  Status probe_result_ = Ok{};
  Result<std::string> purge_result_ = std::string("purged 3 keys");
  std::optional<std::string> bump_error_;
  Answer answer_ = Answer::kAtOnce;
  std::string metrics_ = "# TYPE cachecar_requests_total counter\ncachecar_requests_total 7\n";
  int probes_ = 0;
  int metrics_renders_ = 0;
  std::vector<PurgeTarget> purged_;
  std::vector<std::string> bumped_;
  std::function<void(Status)> kept_probe_;
};

class AdminServerTest : public ::testing::Test {
 protected:
  static constexpr const char* kToken = "s3cret-token";

  // As in the cachecar binary: a client that resets mid-answer is an EPIPE, not a signal.
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }

  void TearDown() override { stopServer(); }

  void startServer(AdminServerSettings settings = {}, bool remote_peers = false) {
    server_ = std::make_unique<AdminServer>(loop_, hooks_, std::move(settings));
    server_->treatPeersAsRemoteForTest(remote_peers);
    const Status listening = server_->listen({"127.0.0.1", 0});
    ASSERT_TRUE(listening.ok()) << listening.error().message;
    port_ = server_->boundPort();
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { loop_.run(); });
  }

  void startWithToken() {
    AdminServerSettings settings;
    settings.token = kToken;
    startServer(std::move(settings));
  }

  // Stops the loop, then destroys the server on this thread (the loop no longer runs).
  void stopServer() {
    if (thread_.joinable()) {
      loop_.post([this] { loop_.stop(); });
      thread_.join();
    }
    server_.reset();
  }

  // Runs fn on the loop thread and returns its result (bounded wait).
  template <typename Fn>
  auto onLoop(Fn fn) -> decltype(fn()) {
    auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto result = task->get_future();
    loop_.post([task] { (*task)(); });
    if (result.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "the loop did not run the task within 5 s";
      return decltype(fn())();
    }
    return result.get();
  }

  // Waits (bounded) until the server holds no connection any more.
  bool waitForNoConnections() {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (onLoop([this] { return server_->openConnectionsForTest(); }) == 0) {
        return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  HttpResponse send(std::string_view method, std::string_view target,
                    const std::vector<std::string>& headers = {}, std::string_view body = {}) {
    HttpClient client(port_);
    EXPECT_TRUE(client.connected()) << client.connectError();
    HttpResponse r = client.request(method, target, headers, body);
    // One request per connection: the server closes after answering.
    EXPECT_TRUE(client.isClosedByPeer(3s)) << method << " " << target;
    return r;
  }

  static std::string bearer(std::string_view token) {
    return "Authorization: Bearer " + std::string(token);
  }

  // The fields every admin response carries.
  static void expectCommonHeaders(const HttpResponse& r) {
    EXPECT_EQ(r.headerOr("Connection"), "close") << r.describe();
    EXPECT_EQ(r.headerOr("Cache-Control"), "no-store") << r.describe();
    EXPECT_TRUE(r.hasHeader("Content-Length")) << r.describe();
    EXPECT_TRUE(r.hasHeader("Content-Type")) << r.describe();
  }

  event::EventLoop loop_;
  FakeHooks hooks_{loop_};
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

// ---- /healthz ------------------------------------------------------------------------------

TEST_F(AdminServerTest, HealthzAnswersOkAndCloses) {
  startServer();
  const HttpResponse r = send("GET", "/healthz");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_EQ(r.headerOr("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.headerOr("Content-Length"), "3");
  expectCommonHeaders(r);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(waitForNoConnections());
}

TEST_F(AdminServerTest, HealthzHeadHasLengthButNoBody) {
  startServer();
  HttpClient client(port_);
  const HttpResponse r = client.head("/healthz");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.headerOr("Content-Length"), "3");
  EXPECT_TRUE(client.isClosedByPeer(3s));
  EXPECT_EQ(client.pending(), "") << "bytes after a HEAD response";
}

TEST_F(AdminServerTest, HealthzNeverNeedsAToken) {
  AdminServerSettings settings;
  settings.token = kToken;
  startServer(std::move(settings), /*remote_peers=*/true);
  EXPECT_EQ(send("GET", "/healthz").status, 200);
  EXPECT_EQ(send("GET", "/readyz").status, 200);
}

// ---- /readyz -------------------------------------------------------------------------------

TEST_F(AdminServerTest, ReadyzProbesTheUpstream) {
  startServer();
  const HttpResponse r = send("GET", "/readyz");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "ready\n");
  expectCommonHeaders(r);
  EXPECT_EQ(hooks_.probes(), 1);

  HttpClient client(port_);
  const HttpResponse head = client.head("/readyz");
  EXPECT_EQ(head.status, 200) << head.describe();
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headerOr("Content-Length"), "6");
}

TEST_F(AdminServerTest, ReadyzIs503WhileDrainingWithoutProbing) {
  hooks_.setDraining(true);
  startServer();
  const HttpResponse r = send("GET", "/readyz");
  ASSERT_EQ(r.status, 503) << r.describe();
  EXPECT_EQ(r.body, "draining\n");
  expectCommonHeaders(r);
  EXPECT_EQ(hooks_.probes(), 0);
  // Liveness is not readiness: a draining proxy is still alive.
  EXPECT_EQ(send("GET", "/healthz").status, 200);
}

TEST_F(AdminServerTest, ReadyzIs503WhenTheProbeFails) {
  hooks_.setProbeResult(Error{"connect to 127.0.0.1:8000: Connection refused"});
  startServer();
  const HttpResponse r = send("GET", "/readyz");
  ASSERT_EQ(r.status, 503) << r.describe();
  EXPECT_EQ(r.body, "upstream unreachable: connect to 127.0.0.1:8000: Connection refused\n");
}

TEST_F(AdminServerTest, ReadyzWithAProbeThatAnswersLater) {
  hooks_.setAnswer(Answer::kLater);
  startServer();
  EXPECT_EQ(send("GET", "/readyz").body, "ready\n");
  hooks_.setProbeResult(Error{"timed out"});
  EXPECT_EQ(send("GET", "/readyz").body, "upstream unreachable: timed out\n");
}

TEST_F(AdminServerTest, AProbeThatNeverAnswersGets503AfterTheResponseTimeout) {
  hooks_.setAnswer(Answer::kNever);
  AdminServerSettings settings;
  settings.response_timeout = 150ms;
  startServer(std::move(settings));
  const auto started = std::chrono::steady_clock::now();
  const HttpResponse r = send("GET", "/readyz");
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.status, 503) << r.describe();
  EXPECT_TRUE(contains(r.body, "no answer")) << r.body;
  EXPECT_GE(took, 140ms);
  EXPECT_LT(took, 3s);
  // The late answer finds the connection gone and does nothing.
  auto late = hooks_.keptProbe();
  ASSERT_TRUE(late);
  onLoop([&] {
    late(Ok{});
    return 0;
  });
  EXPECT_EQ(send("GET", "/healthz").status, 200);
}

// ---- /metrics ------------------------------------------------------------------------------

TEST_F(AdminServerTest, MetricsFromLoopbackWithoutToken) {
  startServer();
  const HttpResponse r = send("GET", "/metrics");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "# TYPE cachecar_requests_total counter\ncachecar_requests_total 7\n");
  EXPECT_EQ(r.headerOr("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  expectCommonHeaders(r);
}

TEST_F(AdminServerTest, LargeMetricsArriveWhole) {
  std::string big;
  for (int i = 0; i < 20000; ++i) {
    big += "cachecar_test_metric{n=\"" + std::to_string(i) + "\"} " + std::to_string(i) + "\n";
  }
  hooks_.setMetrics(big);
  startServer();
  const HttpResponse r = send("GET", "/metrics");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body.size(), big.size());
  EXPECT_EQ(testing::fnv1a(r.body), testing::fnv1a(big));
}

// ---- token ---------------------------------------------------------------------------------

TEST_F(AdminServerTest, TokenRequiredForMetricsAndPurge) {
  startWithToken();

  const HttpResponse missing = send("GET", "/metrics");
  EXPECT_EQ(missing.status, 401) << missing.describe();
  EXPECT_EQ(missing.headerOr("WWW-Authenticate"), "Bearer");
  EXPECT_TRUE(contains(missing.body, "missing bearer token")) << missing.body;
  expectCommonHeaders(missing);

  const HttpResponse wrong = send("GET", "/metrics", {bearer("s3cret-tokem")});
  EXPECT_EQ(wrong.status, 401) << wrong.describe();
  EXPECT_EQ(wrong.headerOr("WWW-Authenticate"), "Bearer");
  EXPECT_TRUE(contains(wrong.body, "invalid bearer token")) << wrong.body;

  EXPECT_EQ(send("GET", "/metrics", {bearer("s3cret-token-and-more")}).status, 401);
  EXPECT_EQ(send("GET", "/metrics", {bearer("s3cret")}).status, 401);
  EXPECT_EQ(send("GET", "/metrics", {"Authorization: Basic czNjcmV0LXRva2Vu"}).status, 401);
  EXPECT_EQ(send("GET", "/metrics", {"Authorization: Bearer"}).status, 401);
  EXPECT_EQ(send("GET", "/metrics", {"Authorization: Bearers3cret-token"}).status, 401);
  EXPECT_EQ(hooks_.metricsRenders(), 0);

  const HttpResponse right = send("GET", "/metrics", {bearer(kToken)});
  EXPECT_EQ(right.status, 200) << right.describe();
  EXPECT_TRUE(contains(right.body, "cachecar_requests_total 7")) << right.body;
  // The scheme is case-insensitive (RFC 9110 §11.1).
  EXPECT_EQ(send("GET", "/metrics", {"Authorization: bearer  s3cret-token"}).status, 200);

  EXPECT_EQ(send("POST", "/purge?cache=default").status, 401);
  EXPECT_EQ(send("POST", "/purge?cache=default", {bearer("nope")}).status, 401);
  EXPECT_TRUE(hooks_.bumped().empty()) << "a hook ran for an unauthorized purge";
  EXPECT_EQ(send("POST", "/purge?cache=default", {bearer(kToken)}).status, 200);
  EXPECT_EQ(hooks_.bumped(), std::vector<std::string>{"default"});
}

TEST_F(AdminServerTest, WithoutTokenRemotePeersAreToldToConfigureOne) {
  startServer({}, /*remote_peers=*/true);
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/metrics"}, {"POST", "/purge?cache=default"}}) {
    const HttpResponse r = send(method, target, {bearer("anything")});
    EXPECT_EQ(r.status, 401) << r.describe();
    EXPECT_EQ(r.headerOr("WWW-Authenticate"), "Bearer");
    EXPECT_TRUE(contains(r.body, "token_env")) << r.body;
    EXPECT_TRUE(contains(r.body, "loopback")) << r.body;
  }
  EXPECT_EQ(hooks_.metricsRenders(), 0);
  EXPECT_TRUE(hooks_.bumped().empty());
  EXPECT_EQ(send("GET", "/healthz").status, 200);
}

TEST_F(AdminServerTest, WithTokenRemotePeersAreServed) {
  AdminServerSettings settings;
  settings.token = kToken;
  startServer(std::move(settings), /*remote_peers=*/true);
  EXPECT_EQ(send("GET", "/metrics", {bearer(kToken)}).status, 200);
  EXPECT_EQ(send("GET", "/metrics").status, 401);
}

TEST(IsLoopbackPeerTest, RecognisesLoopbackAddressesOnly) {
  const auto v4 = [](const char* text) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, text, &a.sin_addr), 1) << text;
    return isLoopbackPeer(reinterpret_cast<const sockaddr*>(&a));
  };
  const auto v6 = [](const char* text) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, text, &a.sin6_addr), 1) << text;
    return isLoopbackPeer(reinterpret_cast<const sockaddr*>(&a));
  };
  EXPECT_TRUE(v4("127.0.0.1"));
  EXPECT_TRUE(v4("127.255.3.4"));
  EXPECT_FALSE(v4("128.0.0.1"));
  EXPECT_FALSE(v4("10.0.0.1"));
  EXPECT_FALSE(v4("0.0.0.0"));
  EXPECT_FALSE(v4("192.168.1.127"));
  EXPECT_TRUE(v6("::1"));
  EXPECT_TRUE(v6("::ffff:127.0.0.1"));
  EXPECT_FALSE(v6("::ffff:10.1.2.3"));
  EXPECT_FALSE(v6("::2"));
  EXPECT_FALSE(v6("::"));
  EXPECT_FALSE(v6("fe80::1"));
  EXPECT_FALSE(v6("2001:db8::1"));
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(isLoopbackPeer(&unix_like));
  EXPECT_FALSE(isLoopbackPeer(nullptr));
}

// ---- /purge --------------------------------------------------------------------------------

TEST_F(AdminServerTest, PurgeUrlIsDecodedAndSplit) {
  startServer();
  const HttpResponse r =
      send("POST", "/purge?url=http%3A%2F%2FShop.Example%2Fproducts%2F1%3Fa%3D1");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "purged 3 keys\n");
  expectCommonHeaders(r);
  const std::vector<PurgeTarget> purged = hooks_.purged();
  ASSERT_EQ(purged.size(), 1U);
  EXPECT_EQ(purged[0].scheme, "http");
  EXPECT_EQ(purged[0].host, "shop.example");
  EXPECT_EQ(purged[0].path, "/products/1");
  EXPECT_EQ(purged[0].query, "a=1");
}

TEST_F(AdminServerTest, PurgeOfABarePathIs400SayingWhy) {
  startServer();
  const HttpResponse r = send("POST", "/purge?url=%2Fproducts%2F1");
  ASSERT_EQ(r.status, 400) << r.describe();
  EXPECT_TRUE(contains(r.body, "absolute")) << r.body;
  EXPECT_TRUE(contains(r.body, "http://shop.example/products/1")) << r.body;
  EXPECT_TRUE(contains(r.body, "keyed by host")) << r.body;
  EXPECT_EQ(r.body.back(), '\n');
  expectCommonHeaders(r);
  EXPECT_TRUE(hooks_.purged().empty());

  const HttpResponse ftp = send("POST", "/purge?url=ftp%3A%2F%2Fshop.example%2Fx");
  EXPECT_EQ(ftp.status, 400) << ftp.describe();
  EXPECT_TRUE(contains(ftp.body, "ftp")) << ftp.body;
  EXPECT_EQ(send("POST", "/purge?url=").status, 400);
  EXPECT_TRUE(hooks_.purged().empty());
}

TEST_F(AdminServerTest, PurgeFailureIs503WithTheReason) {
  hooks_.setPurgeResult(Error{"redis at 127.0.0.1:6379 unavailable"});
  startServer();
  const HttpResponse r = send("POST", "/purge?url=http%3A%2F%2Fshop.example%2F");
  ASSERT_EQ(r.status, 503) << r.describe();
  EXPECT_TRUE(contains(r.body, "redis at 127.0.0.1:6379 unavailable")) << r.body;
}

TEST_F(AdminServerTest, PurgeCacheBumpsItsVersion) {
  startServer();
  const HttpResponse r = send("POST", "/purge?cache=shared");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "cache 'shared' now at version 2\n");

  const HttpResponse unknown = send("POST", "/purge?cache=nope");
  EXPECT_EQ(unknown.status, 404) << unknown.describe();
  EXPECT_EQ(unknown.body, "unknown cache 'nope' (caches: default, shared)\n");
  EXPECT_EQ(hooks_.bumped(), (std::vector<std::string>{"shared", "nope"}));
}

TEST_F(AdminServerTest, PurgeCacheFailureIs503) {
  hooks_.setBumpError("redis unavailable");
  startServer();
  const HttpResponse r = send("POST", "/purge?cache=default");
  ASSERT_EQ(r.status, 503) << r.describe();
  EXPECT_TRUE(contains(r.body, "redis unavailable")) << r.body;
}

TEST_F(AdminServerTest, PurgeParameterMistakesAre400WithUsage) {
  startServer();
  for (const char* target : {"/purge", "/purge?", "/purge?url=http%3A%2F%2Fa%2F&cache=default",
                             "/purge?cache=default&force=1", "/purge?cache=a&cache=b",
                             "/purge?url=http%3A%2F%2Fa%2F%zz", "/purge?cache=",
                             "/purge?url=http://shop.example/p?a=1&b=2"}) {
    const HttpResponse r = send("POST", target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.describe();
    EXPECT_TRUE(contains(r.body, "usage: POST /purge?url=")) << target << ": " << r.body;
  }
  EXPECT_TRUE(hooks_.purged().empty());
  EXPECT_TRUE(hooks_.bumped().empty());
}

TEST_F(AdminServerTest, PurgeBodyIsIgnoredUpTo64KiB) {
  startServer();
  const HttpResponse small =
      send("POST", "/purge?cache=default", {"Content-Type: text/plain"}, std::string(1000, 'x'));
  EXPECT_EQ(small.status, 200) << small.describe();
  const HttpResponse limit = send("POST", "/purge?cache=default", {}, std::string(64 << 10, 'y'));
  EXPECT_EQ(limit.status, 200) << limit.describe();

  // Parameters in a form body instead of the query: ignored, and the 400 says so.
  const HttpResponse form = send("POST", "/purge",
                                 {"Content-Type: application/x-www-form-urlencoded"},
                                 "url=http%3A%2F%2Fshop.example%2F");
  EXPECT_EQ(form.status, 400) << form.describe();
  EXPECT_TRUE(contains(form.body, "body is ignored")) << form.body;
  EXPECT_TRUE(hooks_.purged().empty());

  const HttpResponse declared =
      send("POST", "/purge?cache=default", {}, std::string((64 << 10) + 1, 'z'));
  EXPECT_EQ(declared.status, 413) << declared.describe();
  expectCommonHeaders(declared);

  // A chunked body is counted as it streams.
  HttpClient client(port_);
  std::string request =
      "POST /purge?cache=default HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) {
    request += "1000\r\n" + std::string(0x1000, 'c') + "\r\n";
  }
  request += "0\r\n\r\n";
  client.sendRaw(request);
  const HttpResponse chunked = client.readResponse();
  EXPECT_EQ(chunked.status, 413) << chunked.describe();
  EXPECT_TRUE(client.isClosedByPeer(3s));
  EXPECT_EQ(hooks_.bumped().size(), 2U);
}

TEST_F(AdminServerTest, ExpectContinueGetsA100First) {
  startServer();
  HttpClient client(port_);
  ASSERT_TRUE(client.sendRaw("POST /purge?cache=default HTTP/1.1\r\nHost: a\r\n"
                             "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  const HttpResponse interim = client.readResponse();
  ASSERT_EQ(interim.status, 100) << interim.describe();
  ASSERT_TRUE(client.sendRaw("hello"));
  const HttpResponse r = client.readResponse();
  EXPECT_EQ(r.status, 200) << r.describe();
}

TEST_F(AdminServerTest, AsyncAnswersArriveLaterAndASecondAnswerIsIgnored) {
  hooks_.setAnswer(Answer::kLater);
  startServer();
  EXPECT_EQ(send("POST", "/purge?url=http%3A%2F%2Fshop.example%2Fa").body, "purged 3 keys\n");
  EXPECT_EQ(send("POST", "/purge?cache=nope").status, 404);

  hooks_.setAnswer(Answer::kTwice);
  const HttpResponse r = send("POST", "/purge?cache=default");
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.body, "cache 'default' now at version 2\n");
  EXPECT_EQ(send("GET", "/readyz").status, 200);
  EXPECT_TRUE(waitForNoConnections());
}

TEST_F(AdminServerTest, AbsoluteFormTargetsWork) {
  startServer();
  const std::string authority = "http://127.0.0.1:" + std::to_string(port_);
  EXPECT_EQ(send("GET", authority + "/healthz").status, 200);
  EXPECT_EQ(send("POST", authority + "/purge?cache=default").status, 200);
}

// ---- routing and bad input -------------------------------------------------------------------

TEST_F(AdminServerTest, UnknownPathIs404) {
  startServer();
  for (const char* target : {"/", "/healthz/", "/HEALTHZ", "/purge/x", "/metricsx", "*"}) {
    const HttpResponse r = send("GET", target);
    EXPECT_EQ(r.status, 404) << target << ": " << r.describe();
    EXPECT_TRUE(contains(r.body, "/healthz")) << r.body;  // lists what exists
  }
}

TEST_F(AdminServerTest, WrongMethodIs405WithAllow) {
  startServer();
  const HttpResponse get_purge = send("GET", "/purge?cache=default");
  EXPECT_EQ(get_purge.status, 405) << get_purge.describe();
  EXPECT_EQ(get_purge.headerOr("Allow"), "POST");
  expectCommonHeaders(get_purge);
  EXPECT_TRUE(hooks_.bumped().empty());

  const HttpResponse post_health = send("POST", "/healthz");
  EXPECT_EQ(post_health.status, 405) << post_health.describe();
  EXPECT_EQ(post_health.headerOr("Allow"), "GET, HEAD");
  EXPECT_EQ(send("DELETE", "/metrics").headerOr("Allow"), "GET, HEAD");
  EXPECT_EQ(send("PUT", "/readyz").status, 405);
}

TEST_F(AdminServerTest, GarbageIs400AndTheServerKeepsServing) {
  startServer();
  for (const std::string& garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // a TLS hello
        std::string("GET /healthz HTTP/9.9\r\n\r\n"), std::string("hello world\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("POST /purge?cache=default HTTP/1.1\r\nContent-Length: 1\r\n"
                    "Content-Length: 2\r\n\r\nab")}) {
    HttpClient client(port_);
    ASSERT_TRUE(client.connected());
    client.sendRaw(garbage);
    const HttpResponse r = client.readResponse();
    EXPECT_EQ(r.status, 400) << r.describe();
    EXPECT_TRUE(contains(r.body, "malformed request")) << r.body;
    EXPECT_TRUE(client.isClosedByPeer(3s));
  }
  EXPECT_TRUE(hooks_.bumped().empty());
  EXPECT_EQ(send("GET", "/healthz").status, 200);
  EXPECT_TRUE(waitForNoConnections());
}

TEST_F(AdminServerTest, OversizedHeaderIs431) {
  AdminServerSettings settings;
  settings.max_header_bytes = 1024;
  startServer(std::move(settings));
  const HttpResponse r = send("GET", "/healthz", {"X-Big: " + std::string(2000, 'a')});
  EXPECT_EQ(r.status, 431) << r.describe();
  expectCommonHeaders(r);
  EXPECT_EQ(send("GET", "/healthz", {"X-Small: " + std::string(500, 'a')}).status, 200);
}

TEST_F(AdminServerTest, SilentClientIsClosedAfterTheRequestTimeout) {
  AdminServerSettings settings;
  settings.request_timeout = 200ms;
  startServer(std::move(settings));
  HttpClient client(port_);
  ASSERT_TRUE(client.connected());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.isClosedByPeer(4s));
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(client.pending(), "") << "nothing is sent to a client that sent nothing";
  EXPECT_TRUE(waitForNoConnections());
}

TEST_F(AdminServerTest, HalfSentRequestGets408AfterTheRequestTimeout) {
  AdminServerSettings settings;
  settings.request_timeout = 200ms;
  startServer(std::move(settings));
  HttpClient client(port_);
  ASSERT_TRUE(client.sendRaw("GET /healthz HTTP/1.1\r\nHost: a\r\n"));
  const HttpResponse r = client.readResponse();
  EXPECT_EQ(r.status, 408) << r.describe();
  EXPECT_TRUE(client.isClosedByPeer(3s));
  // A slow trickle does not extend the deadline either.
  HttpClient trickle(port_);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(trickle.sendRaw("GET /healthz HTTP/1.1\r\n"));
  for (int i = 0; i < 10 && std::chrono::steady_clock::now() - started < 1s; ++i) {
    std::this_thread::sleep_for(50ms);
    if (!trickle.sendRaw("X-A: b\r\n")) {
      break;
    }
  }
  EXPECT_TRUE(trickle.isClosedByPeer(3s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST_F(AdminServerTest, ClientThatLeavesBeforeALateAnswerDoesNoHarm) {
  hooks_.setAnswer(Answer::kNever);
  startServer();
  {
    HttpClient client(port_);
    ASSERT_TRUE(client.sendRaw(HttpClient::buildRequest("GET", "/readyz")));
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!hooks_.keptProbe() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    client.close(/*reset=*/true);
  }
  auto late = hooks_.keptProbe();
  ASSERT_TRUE(late);
  EXPECT_TRUE(waitForNoConnections());
  onLoop([&] {
    late(Error{"too late"});
    return 0;
  });
  hooks_.setAnswer(Answer::kAtOnce);
  EXPECT_EQ(send("GET", "/readyz").status, 200);
}

TEST_F(AdminServerTest, DestroyingTheServerWithOpenConnectionsAndPendingHooks) {
  hooks_.setAnswer(Answer::kNever);
  startServer();
  HttpClient idle(port_);
  HttpClient waiting(port_);
  ASSERT_TRUE(waiting.sendRaw(HttpClient::buildRequest("GET", "/readyz")));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!hooks_.keptProbe() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  auto late = hooks_.keptProbe();
  ASSERT_TRUE(late);
  ASSERT_EQ(onLoop([this] { return server_->openConnectionsForTest(); }), 2U);
  stopServer();
  EXPECT_TRUE(idle.isClosedByPeer(3s));
  EXPECT_TRUE(waiting.isClosedByPeer(3s));
  late(Ok{});  // after the server is gone: dropped
  loop_.drainPosted();
}

TEST_F(AdminServerTest, TooManyConnectionsGet503) {
  AdminServerSettings settings;
  settings.max_connections = 2;
  startServer(std::move(settings));
  HttpClient first(port_);
  HttpClient second(port_);
  ASSERT_TRUE(first.connected() && second.connected());
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (onLoop([this] { return server_->openConnectionsForTest(); }) < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  HttpClient third(port_);
  const HttpResponse r = third.get("/healthz");
  EXPECT_EQ(r.status, 503) << r.describe();
  EXPECT_TRUE(contains(r.body, "too many")) << r.body;
  first.close();
  second.close();
  ASSERT_TRUE(waitForNoConnections());
  EXPECT_EQ(send("GET", "/healthz").status, 200);
}

// ---- listening -----------------------------------------------------------------------------

TEST_F(AdminServerTest, ListenErrorsNameTheAddress) {
  // No loop runs in this test: listen() is called before the loop would.
  AdminServer first(loop_, hooks_, {});
  const Status listening = first.listen({"127.0.0.1", 0});
  ASSERT_TRUE(listening.ok()) << listening.error().message;
  const uint16_t port = first.boundPort();
  ASSERT_NE(port, 0);

  AdminServer second(loop_, hooks_, {});
  const Status taken = second.listen({"127.0.0.1", port});
  ASSERT_FALSE(taken.ok());
  EXPECT_TRUE(contains(taken.error().message, "127.0.0.1:" + std::to_string(port)))
      << taken.error().message;
  EXPECT_TRUE(contains(taken.error().message, "admin")) << taken.error().message;
  EXPECT_EQ(second.boundPort(), 0);

  AdminServer bad(loop_, hooks_, {});
  const Status unresolvable = bad.listen({"no-such-host.invalid", 9901});
  ASSERT_FALSE(unresolvable.ok());
  EXPECT_TRUE(contains(unresolvable.error().message, "no-such-host.invalid:9901"))
      << unresolvable.error().message;

  const Status again = first.listen({"127.0.0.1", 0});
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(contains(again.error().message, "already listening")) << again.error().message;
}

TEST_F(AdminServerTest, ListensOnAGivenPort) {
  const uint16_t port = testing::findFreePort();
  server_ = std::make_unique<AdminServer>(loop_, hooks_, AdminServerSettings{});
  const Status listening = server_->listen({"127.0.0.1", port});
  ASSERT_TRUE(listening.ok()) << listening.error().message;
  EXPECT_EQ(server_->boundPort(), port);
  port_ = port;
  thread_ = std::thread([this] { loop_.run(); });
  EXPECT_EQ(send("GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace cachecar::admin
