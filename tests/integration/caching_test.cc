// What cachecar stores and what it never shares: cache keys (query strings, route key filters),
// private answers, freshness sources, cache: off routes.
#include <string>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

class CachingTest : public ProxyFixture {
 protected:
  void SetUp() override {
    // Every answer is distinct (target + request number), so a stale or shared answer shows.
    origin_.handlePrefix("/", [](const OriginRequest& req) {
      return OriginResponse::text(req.target + " #" + std::to_string(req.sequence));
    });
  }
};

TEST_F(CachingTest, QueryStringsDistinguishEntries) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse x1 = get("/static/a?x=1");
  HttpResponse x2 = get("/static/a?x=2");
  ASSERT_EQ(x1.status, 200) << x1.describe();
  ASSERT_EQ(x2.status, 200) << x2.describe();
  EXPECT_EQ(x1.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(x2.headerOr("X-Cache"), "MISS") << "?x=2 was served from the ?x=1 entry";
  EXPECT_NE(x1.body, x2.body);
  EXPECT_EQ(origin_.requestCount("/static/a"), 2);

  HttpResponse x1_again = get("/static/a?x=1");
  EXPECT_EQ(x1_again.headerOr("X-Cache"), "HIT") << x1_again.describe();
  EXPECT_EQ(x1_again.body, x1.body);
  EXPECT_EQ(origin_.requestCount("/static/a"), 2);
}

TEST_F(CachingTest, QueryParameterOrderDoesNotMatter) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse ab = get("/static/b?a=1&b=2");
  ASSERT_EQ(ab.status, 200) << ab.describe();
  EXPECT_EQ(ab.headerOr("X-Cache"), "MISS");
  HttpResponse ba = get("/static/b?b=2&a=1");
  ASSERT_EQ(ba.status, 200) << ba.describe();
  EXPECT_EQ(ba.headerOr("X-Cache"), "HIT") << ba.describe();
  EXPECT_EQ(ba.body, ab.body);
  EXPECT_EQ(origin_.requestCount("/static/b"), 1);
}

TEST_F(CachingTest, RouteQueryFilterKeepsOnlyTheNamedParameters) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/api/list?page=1&utm=x");
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.headerOr("X-Cache"), "MISS");
  HttpResponse same_page = get("/api/list?page=1&utm=y");
  EXPECT_EQ(same_page.headerOr("X-Cache"), "HIT") << same_page.describe();
  EXPECT_EQ(same_page.body, first.body);
  EXPECT_EQ(origin_.requestCount("/api/list"), 1);

  HttpResponse other_page = get("/api/list?page=2&utm=x");
  EXPECT_EQ(other_page.headerOr("X-Cache"), "MISS") << other_page.describe();
  EXPECT_EQ(origin_.requestCount("/api/list"), 2);
}

class PrivacyTest : public ProxyFixture {};

TEST_F(PrivacyTest, NoStoreAnswerIsNeverServedAgain) {
  origin_.handle("/static/nostore", [](const OriginRequest& req) {
    return OriginResponse::text(
        "for " + req.headerOr("X-User") + " #" + std::to_string(req.sequence),
        {{"Cache-Control", "no-store"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse alice = get("/static/nostore", {"X-User: alice"});
  HttpResponse bob = get("/static/nostore", {"X-User: bob"});
  ASSERT_EQ(alice.status, 200) << alice.describe();
  ASSERT_EQ(bob.status, 200) << bob.describe();
  EXPECT_TRUE(contains(alice.body, "for alice"));
  EXPECT_TRUE(contains(bob.body, "for bob")) << "bob got: " << bob.body;
  EXPECT_NE(bob.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(origin_.requestCount("/static/nostore"), 2);
}

TEST_F(PrivacyTest, PrivateAnswerIsNeverServedToAnotherClient) {
  origin_.handle("/static/private", [](const OriginRequest& req) {
    return OriginResponse::text(
        "private page of " + req.headerOr("X-User") + " #" + std::to_string(req.sequence),
        {{"Cache-Control", "private, max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse alice = get("/static/private", {"X-User: alice"});
  HttpResponse bob = get("/static/private", {"X-User: bob"});
  ASSERT_EQ(alice.status, 200) << alice.describe();
  ASSERT_EQ(bob.status, 200) << bob.describe();
  EXPECT_FALSE(contains(bob.body, "alice")) << "bob got alice's private page: " << bob.body;
  EXPECT_TRUE(contains(bob.body, "of bob"));
  EXPECT_NE(bob.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(origin_.requestCount("/static/private"), 2);
}

TEST_F(PrivacyTest, AnswerWithSetCookieIsNotStored) {
  origin_.handle("/static/login", [](const OriginRequest& req) {
    const std::string user = req.headerOr("X-User");
    return OriginResponse::text(
        "welcome " + user + " #" + std::to_string(req.sequence),
        {{"Set-Cookie", "session=" + user + "-" + std::to_string(req.sequence)},
         {"Cache-Control", "max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse alice = get("/static/login", {"X-User: alice"});
  ASSERT_EQ(alice.status, 200) << alice.describe();
  EXPECT_TRUE(contains(alice.headerOr("Set-Cookie"), "session=alice"));

  HttpResponse bob = get("/static/login", {"X-User: bob"});
  ASSERT_EQ(bob.status, 200) << bob.describe();
  EXPECT_FALSE(contains(bob.headerOr("Set-Cookie"), "alice"))
      << "bob received alice's cookie: " << bob.headerOr("Set-Cookie");
  EXPECT_FALSE(contains(bob.body, "alice")) << bob.body;
  EXPECT_NE(bob.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(origin_.requestCount("/static/login"), 2);
}

TEST_F(PrivacyTest, AuthorizedResponsesAreNeverServedToOthers) {
  origin_.handle("/static/dashboard", [](const OriginRequest& req) {
    return OriginResponse::text("dashboard for " + req.headerOr("Authorization", "anonymous") +
                                    " #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());

  // Without public / s-maxage / must-revalidate, a response to an authorized request is
  // not stored at all (RFC 9111 §3.5).
  HttpResponse alice = get("/static/dashboard", {"Authorization: Bearer alice-token"});
  ASSERT_EQ(alice.status, 200) << alice.describe();
  EXPECT_NE(alice.headerOr("X-Cache"), "HIT");
  EXPECT_TRUE(contains(alice.body, "alice-token"));

  HttpResponse anonymous = get("/static/dashboard");
  ASSERT_EQ(anonymous.status, 200) << anonymous.describe();
  EXPECT_FALSE(contains(anonymous.body, "alice")) << "anonymous got: " << anonymous.body;
  EXPECT_EQ(anonymous.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(origin_.requestCount("/static/dashboard"), 2);

  // The authorized client is not served the anonymous entry either.
  HttpResponse alice_again = get("/static/dashboard", {"Authorization: Bearer alice-token"});
  ASSERT_EQ(alice_again.status, 200) << alice_again.describe();
  EXPECT_NE(alice_again.headerOr("X-Cache"), "HIT");
  EXPECT_TRUE(contains(alice_again.body, "alice-token")) << alice_again.body;
  EXPECT_EQ(origin_.requestCount("/static/dashboard"), 3);

  // The anonymous entry itself works.
  HttpResponse anonymous_again = get("/static/dashboard");
  EXPECT_EQ(anonymous_again.headerOr("X-Cache"), "HIT") << anonymous_again.describe();
  EXPECT_EQ(anonymous_again.body, anonymous.body);
  EXPECT_EQ(origin_.requestCount("/static/dashboard"), 3);
}

TEST_F(PrivacyTest, PublicAuthorizedResponsesAreKeptPerCredential) {
  origin_.handle("/static/report", [](const OriginRequest& req) {
    return OriginResponse::text("report for " + req.headerOr("Authorization", "anonymous") +
                                    " #" + std::to_string(req.sequence),
                                {{"Cache-Control", "public, max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());

  HttpResponse alice = get("/static/report", {"Authorization: Bearer alice-token"});
  HttpResponse alice_again = get("/static/report", {"Authorization: Bearer alice-token"});
  EXPECT_EQ(alice_again.headerOr("X-Cache"), "HIT") << alice_again.describe();
  EXPECT_EQ(alice_again.body, alice.body);

  HttpResponse bob = get("/static/report", {"Authorization: Bearer bob-token"});
  EXPECT_NE(bob.headerOr("X-Cache"), "HIT");
  EXPECT_FALSE(contains(bob.body, "alice")) << bob.body;
  HttpResponse anonymous = get("/static/report");
  EXPECT_NE(anonymous.headerOr("X-Cache"), "HIT");
  EXPECT_FALSE(contains(anonymous.body, "alice")) << anonymous.body;
  EXPECT_EQ(origin_.requestCount("/static/report"), 3);
}

class StoragePolicyTest : public CachingTest {};

TEST_F(StoragePolicyTest, ErrorStatusesNeedTheAppsOwnFreshness) {
  // A 404 with explicit freshness may be stored (RFC 9111 §3); a route's ttl never pins a
  // 404 or a 500, and a 500 is not heuristically cacheable.
  origin_.handle("/static/missing", [](const OriginRequest& req) {
    OriginResponse r = OriginResponse::text("not here #" + std::to_string(req.sequence),
                                            {{"Cache-Control", "max-age=600"}});
    r.status = 404;
    return r;
  });
  origin_.handle("/static/gone", [](const OriginRequest& req) {
    OriginResponse r = OriginResponse::text("gone #" + std::to_string(req.sequence));
    r.status = 404;
    return r;
  });
  origin_.handle("/static/broken", [](const OriginRequest& req) {
    OriginResponse r = OriginResponse::text("broken #" + std::to_string(req.sequence));
    r.status = 500;
    return r;
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/missing");
  HttpResponse second = get("/static/missing");
  EXPECT_EQ(first.status, 404) << first.describe();
  EXPECT_EQ(second.status, 404) << second.describe();
  EXPECT_EQ(second.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(origin_.requestCount("/static/missing"), 1);

  for (const char* path : {"/static/gone", "/static/broken"}) {
    get(path);
    HttpResponse again = get(path);
    EXPECT_NE(again.headerOr("X-Cache"), "HIT") << path;
    EXPECT_EQ(origin_.requestCount(path), 2) << path;
  }
}

TEST_F(StoragePolicyTest, CacheOffRouteIsNeverStored) {
  origin_.handle("/account/profile", [](const OriginRequest& req) {
    return OriginResponse::text("profile #" + std::to_string(req.sequence),
                                {{"Cache-Control", "public, max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/account/profile");
  HttpResponse second = get("/account/profile");
  ASSERT_EQ(first.status, 200) << first.describe();
  ASSERT_EQ(second.status, 200) << second.describe();
  EXPECT_EQ(first.headerOr("X-Cache"), "BYPASS");
  EXPECT_EQ(second.headerOr("X-Cache"), "BYPASS");
  EXPECT_NE(first.body, second.body);
  EXPECT_EQ(origin_.requestCount("/account/profile"), 2);
}

TEST_F(StoragePolicyTest, WithoutARouteOnlyExplicitFreshnessIsStored) {
  origin_.handle("/other/max-age", [](const OriginRequest& req) {
    return OriginResponse::text("m #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}});
  });
  origin_.handle("/other/s-maxage", [](const OriginRequest& req) {
    return OriginResponse::text("s #" + std::to_string(req.sequence),
                                {{"Cache-Control", "s-maxage=600"}});
  });
  origin_.handle("/other/expires", [](const OriginRequest& req) {
    return OriginResponse::text("e #" + std::to_string(req.sequence),
                                {{"Date", httpDate(0s)}, {"Expires", httpDate(3600s)}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());

  // No route, no freshness information: not stored.
  HttpResponse plain1 = get("/other/plain");
  HttpResponse plain2 = get("/other/plain");
  ASSERT_EQ(plain1.status, 200) << plain1.describe();
  ASSERT_EQ(plain2.status, 200) << plain2.describe();
  EXPECT_NE(plain2.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(origin_.requestCount("/other/plain"), 2);

  for (const char* path : {"/other/max-age", "/other/s-maxage", "/other/expires"}) {
    HttpResponse miss = get(path);
    HttpResponse hit = get(path);
    ASSERT_EQ(miss.status, 200) << path << ": " << miss.describe();
    EXPECT_EQ(miss.headerOr("X-Cache"), "MISS") << path;
    EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << path << ": " << hit.describe();
    EXPECT_EQ(hit.body, miss.body) << path;
    EXPECT_EQ(origin_.requestCount(path), 1) << path;
  }
}

TEST_F(StoragePolicyTest, TheAppsFreshnessBeatsTheRouteTtl) {
  origin_.handle("/static/max-age-0", [](const OriginRequest& req) {
    return OriginResponse::text("z #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=0"}});
  });
  origin_.handle("/static/expired", [](const OriginRequest& req) {
    return OriginResponse::text("x #" + std::to_string(req.sequence),
                                {{"Date", httpDate(0s)}, {"Expires", httpDate(-3600s)}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (const char* path : {"/static/max-age-0", "/static/expired"}) {
    HttpResponse first = get(path);
    HttpResponse second = get(path);
    ASSERT_EQ(first.status, 200) << path << ": " << first.describe();
    ASSERT_EQ(second.status, 200) << path << ": " << second.describe();
    EXPECT_NE(second.headerOr("X-Cache"), "HIT") << path << " was served stale";
    EXPECT_NE(second.body, first.body) << path;
    EXPECT_EQ(origin_.requestCount(path), 2) << path;
  }
}

}  // namespace
}  // namespace cachecar::testing
