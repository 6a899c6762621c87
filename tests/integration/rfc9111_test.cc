// Further RFC 9111 behaviour of the running proxy: invalidation by unsafe methods (§4.4),
// heuristic freshness (§4.2.2), route ttl overrides, responses to authorized requests (§3.5)
// and the Cache-Status / Age fields (RFC 9211, RFC 9111 §5.1).
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

// --- invalidation by unsafe methods -----------------------------------------------------

class InvalidationTest : public ProxyFixture {
 protected:
  void SetUp() override {
    // GETs are cacheable and distinct; other methods answer with the status and Location the
    // test asks for through request headers.
    origin_.handlePrefix("/static/", [](const OriginRequest& req) {
      if (req.method == "GET" || req.method == "HEAD") {
        return OriginResponse::text(req.target + " #" + std::to_string(req.sequence),
                                    {{"Cache-Control", "max-age=600"}});
      }
      OriginResponse r = OriginResponse::text("did " + req.method);
      r.status = std::stoi(req.headerOr("X-Want-Status", "200"));
      if (auto location = req.header("X-Want-Location")) {
        r.headers.emplace_back("Location", *location);
      }
      if (auto location = req.header("X-Want-Content-Location")) {
        r.headers.emplace_back("Content-Location", *location);
      }
      return r;
    });
  }

  // GET twice: stored, then a hit.
  void warm(const std::string& path) {
    HttpResponse miss = get(path);
    ASSERT_EQ(miss.status, 200) << miss.describe();
    HttpResponse hit = get(path);
    ASSERT_EQ(hit.headerOr("X-Cache"), "HIT") << path << ": " << hit.describe();
  }

  HttpResponse send(const std::string& method, const std::string& path,
                    const std::vector<std::string>& headers = {}) {
    HttpClient client(port());
    return client.request(method, path, headers, method == "DELETE" ? "" : "payload");
  }
};

TEST_F(InvalidationTest, SuccessfulUnsafeMethodsInvalidateTheTarget) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    SCOPED_TRACE(method);
    const std::string path = std::string("/static/item-") + method;
    ASSERT_NO_FATAL_FAILURE(warm(path));
    const int gets_before = origin_.requestCount(path);
    HttpResponse changed = send(method, path);
    ASSERT_EQ(changed.status, 200) << changed.describe();
    HttpResponse after = get(path);
    ASSERT_EQ(after.status, 200) << after.describe();
    EXPECT_EQ(after.headerOr("X-Cache"), "MISS") << "still served the entry from before " << method;
    EXPECT_EQ(origin_.requestCount(path), gets_before + 2);  // the unsafe request + the GET
  }
}

TEST_F(InvalidationTest, QueryIsPartOfTheInvalidatedTarget) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_NO_FATAL_FAILURE(warm("/static/q?id=1"));
  ASSERT_NO_FATAL_FAILURE(warm("/static/q?id=2"));
  ASSERT_EQ(send("POST", "/static/q?id=1").status, 200);
  EXPECT_EQ(get("/static/q?id=1").headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/static/q?id=2").headerOr("X-Cache"), "HIT");
}

TEST_F(InvalidationTest, FailedUnsafeRequestInvalidatesNothing) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_NO_FATAL_FAILURE(warm("/static/keep"));
  for (const char* status : {"500", "404", "403"}) {
    HttpResponse failed = send("POST", "/static/keep", {std::string("X-Want-Status: ") + status});
    ASSERT_EQ(failed.status, std::stoi(status)) << failed.describe();
    HttpResponse after = get("/static/keep");
    EXPECT_EQ(after.headerOr("X-Cache"), "HIT") << "a " << status << " POST invalidated the page";
  }
  EXPECT_EQ(origin_.requestCount("/static/keep"), 4);
}

TEST_F(InvalidationTest, LocationAndContentLocationOnTheSameHostAreInvalidated) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_NO_FATAL_FAILURE(warm("/static/list"));
  ASSERT_NO_FATAL_FAILURE(warm("/static/absolute"));
  ASSERT_NO_FATAL_FAILURE(warm("/static/content-location"));
  ASSERT_NO_FATAL_FAILURE(warm("/static/elsewhere"));
  ASSERT_NO_FATAL_FAILURE(warm("/static/untouched"));

  HttpResponse created = send("POST", "/static/create",
                              {"X-Want-Status: 201", "X-Want-Location: /static/list"});
  ASSERT_EQ(created.status, 201) << created.describe();
  EXPECT_EQ(get("/static/list").headerOr("X-Cache"), "MISS") << "relative Location not invalidated";

  // HttpClient sends "Host: localhost".
  ASSERT_EQ(send("POST", "/static/create",
                 {"X-Want-Status: 303", "X-Want-Location: http://localhost/static/absolute"})
                .status,
            303);
  EXPECT_EQ(get("/static/absolute").headerOr("X-Cache"), "MISS")
      << "absolute Location on the same host not invalidated";

  ASSERT_EQ(send("PUT", "/static/create",
                 {"X-Want-Content-Location: /static/content-location"})
                .status,
            200);
  EXPECT_EQ(get("/static/content-location").headerOr("X-Cache"), "MISS");

  // Another host's URI is not ours to invalidate.
  ASSERT_EQ(send("POST", "/static/create",
                 {"X-Want-Status: 201", "X-Want-Location: http://other.example/static/elsewhere"})
                .status,
            201);
  EXPECT_EQ(get("/static/elsewhere").headerOr("X-Cache"), "HIT");
  EXPECT_EQ(get("/static/untouched").headerOr("X-Cache"), "HIT");
}

TEST_F(InvalidationTest, InvalidationRetiresEveryVariant) {
  origin_.handle("/static/varied", [](const OriginRequest& req) {
    if (req.method != "GET") {
      return OriginResponse::text("updated");
    }
    return OriginResponse::text(
        req.headerOr("Accept-Language") + " #" + std::to_string(req.sequence),
        {{"Cache-Control", "max-age=600"}, {"Vary", "Accept-Language"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (const char* lang : {"Accept-Language: de", "Accept-Language: en"}) {
    ASSERT_EQ(get("/static/varied", {lang}).status, 200);
    ASSERT_EQ(get("/static/varied", {lang}).headerOr("X-Cache"), "HIT") << lang;
  }
  ASSERT_EQ(send("POST", "/static/varied").status, 200);
  EXPECT_EQ(get("/static/varied", {"Accept-Language: de"}).headerOr("X-Cache"), "MISS");
  EXPECT_EQ(get("/static/varied", {"Accept-Language: en"}).headerOr("X-Cache"), "MISS");
}

// --- heuristic freshness and route overrides ---------------------------------------------

class FreshnessSourcesTest : public ProxyFixture {};

TEST_F(FreshnessSourcesTest, LastModifiedGivesHeuristicFreshnessWithoutARoute) {
  const std::string ten_days_ago = httpDate(-240h);
  origin_.handle("/plain/dated", [ten_days_ago](const OriginRequest& req) {
    return OriginResponse::text("dated #" + std::to_string(req.sequence),
                                {{"Last-Modified", ten_days_ago}});
  });
  origin_.handle("/plain/undated", [](const OriginRequest& req) {
    return OriginResponse::text("undated #" + std::to_string(req.sequence));
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/plain/dated");
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.headerOr("X-Cache"), "MISS");
  EXPECT_TRUE(contains(first.headerOr("Cache-Status"), "stored")) << first.headerOr("Cache-Status");
  HttpResponse second = get("/plain/dated");
  EXPECT_EQ(second.headerOr("X-Cache"), "HIT") << second.describe();
  EXPECT_EQ(second.body, first.body);
  // 10% of ten days is one day, which is also the default cap.
  const std::string status = second.headerOr("Cache-Status");
  const size_t ttl_at = status.find("ttl=");
  ASSERT_NE(ttl_at, std::string::npos) << status;
  const long ttl = std::stol(status.substr(ttl_at + 4));
  EXPECT_LE(ttl, 86400) << status;
  EXPECT_GE(ttl, 86400 - 5) << status;
  EXPECT_EQ(origin_.requestCount("/plain/dated"), 1);

  // The control: no Last-Modified and no route, no freshness at all.
  get("/plain/undated");
  HttpResponse undated = get("/plain/undated");
  EXPECT_NE(undated.headerOr("X-Cache"), "HIT") << undated.describe();
  EXPECT_EQ(origin_.requestCount("/plain/undated"), 2);
}

TEST_F(FreshnessSourcesTest, RouteTtlOverrideWinsOverMaxAge) {
  origin_.handlePrefix("/", [](const OriginRequest& req) {
    return OriginResponse::text(req.path + " #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=1"}});
  });
  ASSERT_NO_FATAL_FAILURE(
      startProxy(configWithRoutes("  - {match: /pinned/, ttl: 1h, override: true}\n")));
  HttpResponse pinned = get("/pinned/page");
  HttpResponse plain = get("/static/page");  // ttl 1h without override: max-age=1 counts
  ASSERT_EQ(pinned.status, 200) << pinned.describe();
  ASSERT_EQ(plain.status, 200) << plain.describe();
  std::this_thread::sleep_for(2200ms);
  HttpResponse pinned_again = get("/pinned/page");
  EXPECT_EQ(pinned_again.headerOr("X-Cache"), "HIT") << pinned_again.describe();
  EXPECT_EQ(pinned_again.body, pinned.body);
  EXPECT_EQ(origin_.requestCount("/pinned/page"), 1);
  HttpResponse plain_again = get("/static/page");
  EXPECT_NE(plain_again.headerOr("X-Cache"), "HIT") << plain_again.describe();
  EXPECT_EQ(origin_.requestCount("/static/page"), 2);
}

// --- authorized requests --------------------------------------------------------------------

class AuthorizedTest : public ProxyFixture {
 protected:
  void page(const std::string& path, const std::string& cache_control) {
    origin_.handle(path, [cache_control](const OriginRequest& req) {
      return OriginResponse::text(
          "for " + req.headerOr("Authorization", "anonymous") + " #" + std::to_string(req.sequence),
          {{"Cache-Control", cache_control}});
    });
  }
};

TEST_F(AuthorizedTest, SMaxageAndMustRevalidateAnswersAreKeptPerCredential) {
  page("/static/smax", "s-maxage=600");
  page("/static/mr", "must-revalidate, max-age=600");
  page("/static/plain", "max-age=600");
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (const std::string path : {"/static/smax", "/static/mr"}) {
    SCOPED_TRACE(path);
    HttpResponse alice = get(path, {"Authorization: Bearer alice"});
    ASSERT_EQ(alice.status, 200) << alice.describe();
    HttpResponse alice_again = get(path, {"Authorization: Bearer alice"});
    EXPECT_EQ(alice_again.headerOr("X-Cache"), "HIT") << alice_again.describe();
    EXPECT_EQ(alice_again.body, alice.body);
    HttpResponse bob = get(path, {"Authorization: Bearer bob"});
    EXPECT_NE(bob.headerOr("X-Cache"), "HIT");
    EXPECT_FALSE(contains(bob.body, "alice")) << bob.body;
    HttpResponse anonymous = get(path);
    EXPECT_NE(anonymous.headerOr("X-Cache"), "HIT");
    EXPECT_FALSE(contains(anonymous.body, "alice")) << anonymous.body;
    EXPECT_EQ(origin_.requestCount(path), 3);
  }
  // Without any of them: not stored for the credential.
  get("/static/plain", {"Authorization: Bearer alice"});
  HttpResponse again = get("/static/plain", {"Authorization: Bearer alice"});
  EXPECT_NE(again.headerOr("X-Cache"), "HIT") << again.describe();
  EXPECT_EQ(origin_.requestCount("/static/plain"), 2);
}

// --- Cache-Status and Age ---------------------------------------------------------------

class CacheStatusTest : public ProxyFixture {};

TEST_F(CacheStatusTest, MissHitAndBypassAreReported) {
  origin_.handlePrefix("/", [](const OriginRequest& req) {
    return OriginResponse::text("x #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}, {"Age", "100"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse miss = get("/static/status");
  ASSERT_EQ(miss.status, 200) << miss.describe();
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(miss.headerOr("Cache-Status"), "cachecar; fwd=uri-miss; stored");

  HttpResponse hit = get("/static/status");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT");
  const std::string status = hit.headerOr("Cache-Status");
  EXPECT_EQ(status.rfind("cachecar; hit; ttl=", 0), 0u) << status;
  // The app said the answer was already 100 s old: it stays in the age and the ttl.
  const long age = std::stol(hit.headerOr("Age", "-1"));
  EXPECT_GE(age, 100) << hit.describe();
  EXPECT_LE(age, 103) << hit.describe();
  const size_t ttl_at = status.find("ttl=");
  ASSERT_NE(ttl_at, std::string::npos) << status;
  const long ttl = std::stol(status.substr(ttl_at + 4));
  EXPECT_GE(ttl, 497) << status;
  EXPECT_LE(ttl, 500) << status;
  EXPECT_EQ(countHeader(hit.headers, "Age"), 1u);

  HttpResponse bypass = get("/account/x");
  EXPECT_EQ(bypass.headerOr("X-Cache"), "BYPASS") << bypass.describe();
  HttpClient client(port());
  HttpResponse post = client.request("POST", "/static/status", {}, "body");
  EXPECT_EQ(post.headerOr("X-Cache"), "BYPASS") << post.describe();
  EXPECT_TRUE(contains(post.headerOr("Cache-Status"), "fwd=method"))
      << post.headerOr("Cache-Status");
}

}  // namespace
}  // namespace cachecar::testing
