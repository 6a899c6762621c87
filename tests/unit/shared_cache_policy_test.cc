// The shared-cache rules of RFC 9111 as cachecar applies them: whether a response is stored and
// for how long (planStore), and whether a stored response may answer a request (decideReuse).
// Every time is fixed; nothing here reads a clock.
#include "cachecar/cache/shared_cache_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "cachecar/cache/freshness.h"

namespace cachecar::cache {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

SystemTime utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return SystemTime(std::chrono::sys_days{std::chrono::year{y} / mo / d}) + hours(h) +
         std::chrono::minutes(mi) + seconds(s);
}

// The instant every response below was received.
const SystemTime kNow = utc(2024, 5, 1, 12, 0, 0);

std::string date(SystemTime t) { return formatHttpDate(t); }

using Fields = std::vector<std::pair<std::string, std::string>>;

http::HeaderMap headersOf(const Fields& fields) {
  http::HeaderMap map;
  for (const auto& [name, value] : fields) {
    map.add(name, value);
  }
  return map;
}

http::RequestHead getRequest(const Fields& fields = {}) {
  http::RequestHead request;
  request.method = "GET";
  request.target = "/page";
  request.headers = headersOf(fields);
  return request;
}

// A response with a Date of kNow and the given fields.
http::ResponseHead response(int status, const Fields& fields = {}) {
  http::ResponseHead head;
  head.status = status;
  head.headers.add("Date", date(kNow));
  for (const auto& [name, value] : fields) {
    head.headers.add(name, value);
  }
  return head;
}

RoutePolicy noRoute() { return RoutePolicy{}; }

RoutePolicy route(milliseconds ttl, bool override_ttl = false) {
  RoutePolicy policy;
  policy.matched = true;
  policy.ttl = ttl;
  policy.override_ttl = override_ttl;
  return policy;
}

StorePlan plan(const http::ResponseHead& head, const RoutePolicy& policy = noRoute(),
               const http::RequestHead& request = getRequest(),
               const HeuristicPolicy& heuristic = HeuristicPolicy{}) {
  return planStore(request, head, policy, heuristic, kNow);
}

std::string describe(const StorePlan& p) {
  return std::string(p.store ? "store" : "refuse") + " (" + std::string(p.reason) +
         ") freshness=" + std::to_string(p.freshness.count()) + "ms";
}

// --- isHeuristicallyCacheable ---------------------------------------------------------------

TEST(HeuristicallyCacheableTest, MatchesRfc9110List) {
  for (int status : {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}) {
    EXPECT_TRUE(isHeuristicallyCacheable(status)) << status;
  }
  for (int status : {100, 201, 202, 302, 303, 304, 307, 400, 401, 403, 409, 429, 500, 502, 503,
                     504}) {
    EXPECT_FALSE(isHeuristicallyCacheable(status)) << status;
  }
}

// --- planStore: statuses and heuristic freshness --------------------------------------------

TEST(PlanStoreTest, HeuristicFreshnessOnlyForHeuristicallyCacheableStatuses) {
  // Last-Modified ten days before Date, nothing else: 10% of ten days is one day.
  const Fields lm = {{"Last-Modified", date(kNow - hours(240))}};
  for (int status : {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501}) {
    SCOPED_TRACE(status);
    const StorePlan p = plan(response(status, lm));
    EXPECT_TRUE(p.store) << describe(p);
    EXPECT_EQ(p.freshness, hours(24)) << describe(p);
  }
  for (int status : {201, 302, 303, 307, 400, 403, 500, 502, 503}) {
    SCOPED_TRACE(status);
    const StorePlan p = plan(response(status, lm));
    EXPECT_FALSE(p.store) << describe(p);
  }
}

TEST(PlanStoreTest, PartialAndNotModifiedAndInterimAreNeverStored) {
  for (int status : {100, 103, 206, 304}) {
    SCOPED_TRACE(status);
    const StorePlan p = plan(response(status, {{"Cache-Control", "max-age=600"}}), route(hours(1)));
    EXPECT_FALSE(p.store) << describe(p);
    EXPECT_EQ(p.reason, "status");
  }
}

TEST(PlanStoreTest, OnlyGetIsStored) {
  for (const char* method : {"HEAD", "POST", "PUT", "DELETE", "OPTIONS"}) {
    SCOPED_TRACE(method);
    http::RequestHead request = getRequest();
    request.method = method;
    const StorePlan p = plan(response(200, {{"Cache-Control", "max-age=600"}}), noRoute(), request);
    EXPECT_FALSE(p.store) << describe(p);
    EXPECT_EQ(p.reason, "method");
  }
}

TEST(PlanStoreTest, HeuristicIsTenPercentOfTheAgeSinceLastModifiedCapped) {
  struct Case {
    seconds since_modified;
    HeuristicPolicy heuristic;
    seconds expected;
  };
  const std::vector<Case> cases = {
      {hours(1), HeuristicPolicy{}, seconds(360)},
      {hours(24), HeuristicPolicy{}, seconds(8640)},
      {hours(240), HeuristicPolicy{}, hours(24)},        // exactly at the cap
      {hours(24 * 365), HeuristicPolicy{}, hours(24)},   // capped
      {seconds(1000), HeuristicPolicy{0.2, hours(1)}, seconds(200)},
      {hours(100), HeuristicPolicy{0.2, hours(1)}, hours(1)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.since_modified.count());
    const StorePlan p = plan(response(200, {{"Last-Modified", date(kNow - c.since_modified)}}),
                             noRoute(), getRequest(), c.heuristic);
    ASSERT_TRUE(p.store) << describe(p);
    EXPECT_EQ(p.freshness, c.expected) << describe(p);
  }
}

TEST(PlanStoreTest, HeuristicUsesResponseTimeWhenThereIsNoDate) {
  http::ResponseHead head;
  head.status = 200;
  head.headers.add("Last-Modified", date(kNow - hours(10)));
  const StorePlan p = plan(head);
  ASSERT_TRUE(p.store) << describe(p);
  EXPECT_EQ(p.freshness, hours(1));
}

TEST(PlanStoreTest, NoHeuristicWithoutAUsableLastModified) {
  const std::vector<Fields> cases = {
      {},
      {{"Last-Modified", "not a date"}},
      {{"Last-Modified", date(kNow + hours(1))}},  // modified "after" it was sent
      {{"Last-Modified", date(kNow)}},             // no time since modification
  };
  for (const Fields& fields : cases) {
    const StorePlan p = plan(response(200, fields));
    EXPECT_FALSE(p.store) << describe(p) << " with " << fields.size() << " fields";
  }
}

// --- planStore: explicit freshness and routes ----------------------------------------------

TEST(PlanStoreTest, ExplicitFreshnessPrecedenceSMaxageMaxAgeExpires) {
  struct Case {
    Fields fields;
    seconds expected;
  };
  const std::vector<Case> cases = {
      {{{"Cache-Control", "s-maxage=10, max-age=20"}, {"Expires", date(kNow + seconds(30))}},
       seconds(10)},
      {{{"Cache-Control", "max-age=20, s-maxage=10"}}, seconds(10)},
      {{{"Cache-Control", "max-age=20"}, {"Expires", date(kNow + seconds(30))}}, seconds(20)},
      {{{"Expires", date(kNow + seconds(30))}}, seconds(30)},
      {{{"Cache-Control", "max-age=20"}, {"Last-Modified", date(kNow - hours(240))}}, seconds(20)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fields.front().second);
    const StorePlan p = plan(response(200, c.fields));
    ASSERT_TRUE(p.store) << describe(p);
    EXPECT_EQ(p.freshness, c.expected) << describe(p);
  }
}

TEST(PlanStoreTest, CdnCacheControlWinsOverCacheControl) {
  const StorePlan p = plan(
      response(200, {{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=100"}}));
  ASSERT_TRUE(p.store) << describe(p);
  EXPECT_EQ(p.freshness, seconds(100));

  const StorePlan q = plan(
      response(200, {{"Cache-Control", "max-age=100"}, {"CDN-Cache-Control", "no-store"}}));
  EXPECT_FALSE(q.store) << describe(q);
}

TEST(PlanStoreTest, RouteTtlFillsInOnlyWhenTheAppGivesNoFreshness) {
  const StorePlan fill = plan(response(200), route(seconds(60)));
  ASSERT_TRUE(fill.store) << describe(fill);
  EXPECT_EQ(fill.freshness, seconds(60));

  const StorePlan app = plan(response(200, {{"Cache-Control", "max-age=5"}}), route(seconds(60)));
  ASSERT_TRUE(app.store) << describe(app);
  EXPECT_EQ(app.freshness, seconds(5));

  const StorePlan expires =
      plan(response(200, {{"Expires", date(kNow + seconds(7))}}), route(seconds(60)));
  EXPECT_EQ(expires.freshness, seconds(7)) << describe(expires);

  // The route's ttl beats the heuristic.
  const StorePlan heuristic =
      plan(response(200, {{"Last-Modified", date(kNow - hours(240))}}), route(seconds(60)));
  EXPECT_EQ(heuristic.freshness, seconds(60)) << describe(heuristic);

  // A ttl with the route unmatched means nothing.
  RoutePolicy unmatched = route(seconds(60));
  unmatched.matched = false;
  EXPECT_FALSE(plan(response(200), unmatched).store);
}

TEST(PlanStoreTest, RouteTtlOverrideWinsOverTheApp) {
  const RoutePolicy policy = route(seconds(60), true);
  for (const char* cc : {"max-age=1", "s-maxage=1", "max-age=0", "max-age=99999"}) {
    SCOPED_TRACE(cc);
    const StorePlan p = plan(response(200, {{"Cache-Control", cc}}), policy);
    ASSERT_TRUE(p.store) << describe(p);
    EXPECT_EQ(p.freshness, seconds(60));
  }
  const StorePlan expires =
      plan(response(200, {{"Expires", date(kNow + hours(5))}}), policy);
  EXPECT_EQ(expires.freshness, seconds(60)) << describe(expires);
}

TEST(PlanStoreTest, RouteTtlAppliesOnlyToSuccessAndPermanentRedirects) {
  for (int status : {200, 203, 204, 300, 301, 308}) {
    SCOPED_TRACE(status);
    const StorePlan fill = plan(response(status), route(seconds(60)));
    EXPECT_TRUE(fill.store) << describe(fill);
    EXPECT_EQ(fill.freshness, seconds(60));
    const StorePlan over =
        plan(response(status, {{"Cache-Control", "max-age=5"}}), route(seconds(60), true));
    EXPECT_EQ(over.freshness, seconds(60)) << describe(over);
  }
  for (int status : {302, 303, 307, 404, 410, 500, 503}) {
    SCOPED_TRACE(status);
    const StorePlan fill = plan(response(status), route(seconds(60)));
    EXPECT_FALSE(fill.store) << describe(fill);
    // An override does not pin an error page either: the app's own freshness stays.
    const StorePlan over =
        plan(response(status, {{"Cache-Control", "max-age=5"}}), route(seconds(60), true));
    ASSERT_TRUE(over.store) << describe(over);
    EXPECT_EQ(over.freshness, seconds(5)) << describe(over);
  }
}

// --- planStore: refusals --------------------------------------------------------------------

TEST(PlanStoreTest, RefusesWhatASharedCacheMustNotStore) {
  struct Case {
    Fields request;
    Fields response;
    std::string_view reason;
  };
  const std::vector<Case> cases = {
      {{}, {{"Cache-Control", "no-store, max-age=600"}}, "no-store"},
      {{}, {{"Cache-Control", "max-age=600"}, {"Cache-Control", "no-store"}}, "no-store"},
      {{}, {{"Cache-Control", "private, max-age=600"}}, "private"},
      {{}, {{"Cache-Control", "private=\"X-User\", max-age=600"}}, "private"},
      {{}, {{"Cache-Control", "public, private, max-age=600"}}, "private"},
      {{}, {{"Cache-Control", "max-age=600"}, {"Set-Cookie", "a=b"}}, "set-cookie"},
      {{}, {{"Cache-Control", "public, max-age=600"}, {"Set-Cookie", "a=b"}}, "set-cookie"},
      {{}, {{"Cache-Control", "max-age=600"}, {"Vary", "*"}}, "vary-star"},
      {{}, {{"Cache-Control", "max-age=600"}, {"Vary", "Accept, *"}}, "vary-star"},
      {{}, {{"Cache-Control", "max-age=600"}, {"Vary", "Accept"}, {"Vary", "*"}}, "vary-star"},
      {{{"Authorization", "Bearer x"}}, {{"Cache-Control", "max-age=600"}}, "authorization"},
      {{{"Authorization", "Bearer x"}}, {{"Expires", date(kNow + hours(1))}}, "authorization"},
      {{{"Cache-Control", "no-store"}}, {{"Cache-Control", "max-age=600"}}, "request-no-store"},
      {{}, {}, "no-freshness"},
      {{}, {{"Cache-Control", "no-cache"}}, "no-freshness"},  // no validator to revalidate with
      {{}, {{"Cache-Control", "max-age=0"}}, "stale"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.reason) + " / " +
                 (c.response.empty() ? std::string() : c.response.front().second));
    const StorePlan p = plan(response(200, c.response), noRoute(), getRequest(c.request));
    EXPECT_FALSE(p.store) << describe(p);
    EXPECT_EQ(p.reason, c.reason);
  }
}

TEST(PlanStoreTest, VaryOnNamedFieldsIsStored) {
  const StorePlan p =
      plan(response(200, {{"Cache-Control", "max-age=600"}, {"Vary", "Accept-Language"}}));
  EXPECT_TRUE(p.store) << describe(p);
}

TEST(PlanStoreTest, AuthorizationNeedsPublicSMaxageOrMustRevalidate) {
  const http::RequestHead authorized = getRequest({{"Authorization", "Basic dTpw"}});
  struct Case {
    std::string cc;
    seconds freshness;
  };
  const std::vector<Case> cases = {
      {"public, max-age=600", seconds(600)},
      {"s-maxage=300", seconds(300)},
      {"must-revalidate, max-age=120", seconds(120)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.cc);
    const StorePlan p = plan(response(200, {{"Cache-Control", c.cc}}), noRoute(), authorized);
    ASSERT_TRUE(p.store) << describe(p);
    EXPECT_EQ(p.freshness, c.freshness);
  }
}

TEST(PlanStoreTest, MustUnderstandOverridesNoStoreForUnderstoodStatuses) {
  const StorePlan understood =
      plan(response(200, {{"Cache-Control", "must-understand, no-store, max-age=60"}}));
  ASSERT_TRUE(understood.store) << describe(understood);
  EXPECT_EQ(understood.freshness, seconds(60));

  const StorePlan not_found =
      plan(response(404, {{"Cache-Control", "must-understand, no-store, max-age=60"}}));
  EXPECT_TRUE(not_found.store) << describe(not_found);

  for (int status : {299, 402, 418, 425}) {
    SCOPED_TRACE(status);
    const StorePlan p =
        plan(response(status, {{"Cache-Control", "must-understand, no-store, max-age=60"}}));
    EXPECT_FALSE(p.store) << describe(p);
    EXPECT_EQ(p.reason, "must-understand");
  }
}

// --- planStore: revalidation and stale windows ---------------------------------------------

TEST(PlanStoreTest, NoCacheWithAValidatorIsStoredForRevalidation) {
  for (const Fields& fields :
       {Fields{{"Cache-Control", "no-cache"}, {"ETag", "\"v1\""}},
        Fields{{"Cache-Control", "no-cache"}, {"Last-Modified", date(kNow - hours(1))}}}) {
    SCOPED_TRACE(fields.back().first);
    const StorePlan p = plan(response(200, fields));
    ASSERT_TRUE(p.store) << describe(p);
    EXPECT_TRUE(p.revalidate_always);
  }
  const StorePlan with_age = plan(response(200, {{"Cache-Control", "no-cache, max-age=60"}}));
  ASSERT_TRUE(with_age.store) << describe(with_age);
  EXPECT_TRUE(with_age.revalidate_always);
  EXPECT_EQ(with_age.freshness, seconds(60));

  const StorePlan qualified =
      plan(response(200, {{"Cache-Control", "no-cache=\"Set-Cookie2\", max-age=60"}}));
  ASSERT_TRUE(qualified.store) << describe(qualified);
  EXPECT_TRUE(qualified.revalidate_always);

  const StorePlan plain = plan(response(200, {{"Cache-Control", "max-age=60"}}));
  EXPECT_FALSE(plain.revalidate_always);
}

TEST(PlanStoreTest, ZeroFreshnessIsKeptOnlyWhenItCanBeUsedLater) {
  const StorePlan etag = plan(response(200, {{"Cache-Control", "max-age=0"}, {"ETag", "\"a\""}}));
  EXPECT_TRUE(etag.store) << describe(etag);
  const StorePlan sie = plan(response(200, {{"Cache-Control", "max-age=0, stale-if-error=60"}}));
  EXPECT_TRUE(sie.store) << describe(sie);
  RoutePolicy policy = route(seconds(60));
  policy.stale_if_error = seconds(30);
  const StorePlan route_sie = plan(response(200, {{"Cache-Control", "max-age=0"}}), policy);
  EXPECT_TRUE(route_sie.store) << describe(route_sie);
}

TEST(PlanStoreTest, NoStaleForMustRevalidateProxyRevalidateAndSMaxage) {
  struct Case {
    std::string cc;
    bool no_stale;
  };
  const std::vector<Case> cases = {
      {"max-age=60", false},
      {"max-age=60, must-revalidate", true},
      {"max-age=60, proxy-revalidate", true},
      {"s-maxage=60", true},
      {"public, max-age=60, stale-while-revalidate=30", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.cc);
    const StorePlan p = plan(response(200, {{"Cache-Control", c.cc}}));
    ASSERT_TRUE(p.store) << describe(p);
    EXPECT_EQ(p.no_stale, c.no_stale);
  }
}

TEST(PlanStoreTest, StaleWindowsFromTheResponseOrTheRoute) {
  RoutePolicy policy = route(hours(1));
  policy.stale_while_revalidate = seconds(10);
  policy.stale_if_error = seconds(20);

  const StorePlan app = plan(
      response(200,
               {{"Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=90"}}),
      policy);
  ASSERT_TRUE(app.store) << describe(app);
  EXPECT_EQ(app.stale_while_revalidate, seconds(30));
  EXPECT_EQ(app.stale_if_error, seconds(90));

  const StorePlan defaults = plan(response(200, {{"Cache-Control", "max-age=60"}}), policy);
  ASSERT_TRUE(defaults.store) << describe(defaults);
  EXPECT_EQ(defaults.stale_while_revalidate, seconds(10));
  EXPECT_EQ(defaults.stale_if_error, seconds(20));

  const StorePlan mixed =
      plan(response(200, {{"Cache-Control", "max-age=60, stale-if-error=5"}}), policy);
  EXPECT_EQ(mixed.stale_while_revalidate, seconds(10));
  EXPECT_EQ(mixed.stale_if_error, seconds(5));

  // An explicit 0 from the app is still the app's word.
  const StorePlan zero = plan(
      response(200, {{"Cache-Control", "max-age=60, stale-while-revalidate=0, stale-if-error=0"}}),
      policy);
  EXPECT_EQ(zero.stale_while_revalidate, seconds(0));
  EXPECT_EQ(zero.stale_if_error, seconds(0));

  RoutePolicy unmatched = policy;
  unmatched.matched = false;
  const StorePlan none = plan(response(200, {{"Cache-Control", "max-age=60"}}), unmatched);
  EXPECT_EQ(none.stale_while_revalidate, seconds(0));
  EXPECT_EQ(none.stale_if_error, seconds(0));
}

// --- decideReuse ----------------------------------------------------------------------------

StoredState stored(seconds age, milliseconds freshness) {
  StoredState s;
  s.age = age;
  s.freshness = freshness;
  return s;
}

RequestCacheControl requestCc(const Fields& fields) {
  return requestDirectives(getRequest(fields));
}

TEST(DecideReuseTest, Table) {
  struct Case {
    std::string name;
    StoredState state;
    Fields request;
    Reuse expected;
  };
  StoredState always = stored(seconds(0), seconds(60));
  always.revalidate_always = true;
  StoredState no_stale = stored(seconds(70), seconds(60));
  no_stale.no_stale = true;
  StoredState swr = stored(seconds(70), seconds(60));  // 10 s stale
  swr.stale_while_revalidate = seconds(30);
  StoredState swr_late = stored(seconds(91), seconds(60));  // 31 s stale
  swr_late.stale_while_revalidate = seconds(30);
  StoredState swr_no_stale = swr;
  swr_no_stale.no_stale = true;

  const std::vector<Case> cases = {
      {"fresh", stored(seconds(10), seconds(60)), {}, Reuse::kFresh},
      {"fresh by milliseconds", stored(seconds(1), milliseconds(1500)), {}, Reuse::kFresh},
      {"age equals lifetime", stored(seconds(60), seconds(60)), {}, Reuse::kRevalidate},
      {"stale", stored(seconds(61), seconds(60)), {}, Reuse::kRevalidate},
      {"zero lifetime", stored(seconds(0), seconds(0)), {}, Reuse::kRevalidate},
      {"stored no-cache", always, {}, Reuse::kRevalidate},
      {"request no-cache", stored(seconds(0), seconds(60)), {{"Cache-Control", "no-cache"}},
       Reuse::kRevalidate},
      {"pragma no-cache", stored(seconds(0), seconds(60)), {{"Pragma", "no-cache"}},
       Reuse::kRevalidate},
      {"pragma ignored with cache-control", stored(seconds(0), seconds(60)),
       {{"Pragma", "no-cache"}, {"Cache-Control", "max-age=600"}}, Reuse::kFresh},
      {"max-age below age", stored(seconds(10), seconds(60)), {{"Cache-Control", "max-age=5"}},
       Reuse::kRevalidate},
      {"max-age equal to age", stored(seconds(10), seconds(60)),
       {{"Cache-Control", "max-age=10"}}, Reuse::kFresh},
      {"max-age=0 at age 0", stored(seconds(0), seconds(60)), {{"Cache-Control", "max-age=0"}},
       Reuse::kFresh},
      {"max-age does not extend freshness", stored(seconds(70), seconds(60)),
       {{"Cache-Control", "max-age=3600"}}, Reuse::kRevalidate},
      {"min-fresh satisfied", stored(seconds(10), seconds(60)),
       {{"Cache-Control", "min-fresh=30"}}, Reuse::kFresh},
      {"min-fresh exactly", stored(seconds(30), seconds(60)), {{"Cache-Control", "min-fresh=30"}},
       Reuse::kFresh},
      {"min-fresh not satisfied", stored(seconds(40), seconds(60)),
       {{"Cache-Control", "min-fresh=30"}}, Reuse::kRevalidate},
      {"max-stale within", stored(seconds(70), seconds(60)), {{"Cache-Control", "max-stale=20"}},
       Reuse::kStaleAllowed},
      {"max-stale exactly", stored(seconds(70), seconds(60)), {{"Cache-Control", "max-stale=10"}},
       Reuse::kStaleAllowed},
      {"max-stale exceeded", stored(seconds(70), seconds(60)), {{"Cache-Control", "max-stale=5"}},
       Reuse::kRevalidate},
      {"max-stale without value", stored(seconds(100000), seconds(60)),
       {{"Cache-Control", "max-stale"}}, Reuse::kStaleAllowed},
      {"max-stale on a fresh entry", stored(seconds(10), seconds(60)),
       {{"Cache-Control", "max-stale"}}, Reuse::kFresh},
      {"must-revalidate beats max-stale", no_stale, {{"Cache-Control", "max-stale"}},
       Reuse::kRevalidate},
      {"must-revalidate beats max-stale=N", no_stale, {{"Cache-Control", "max-stale=60"}},
       Reuse::kRevalidate},
      {"stale-while-revalidate window", swr, {}, Reuse::kStaleWhileRevalidate},
      {"past stale-while-revalidate", swr_late, {}, Reuse::kRevalidate},
      {"stale-while-revalidate with no-stale", swr_no_stale, {}, Reuse::kRevalidate},
      {"stale-while-revalidate with request no-cache", swr, {{"Cache-Control", "no-cache"}},
       Reuse::kRevalidate},
      {"max-stale takes precedence over swr", swr, {{"Cache-Control", "max-stale"}},
       Reuse::kStaleAllowed},
      {"no-cache beats max-stale", stored(seconds(70), seconds(60)),
       {{"Cache-Control", "no-cache, max-stale"}}, Reuse::kRevalidate},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(toString(decideReuse(c.state, requestCc(c.request))), toString(c.expected))
        << c.name;
  }
}

TEST(RequestDirectivesTest, PragmaNoCacheOnlyWithoutCacheControl) {
  EXPECT_TRUE(requestCc({{"Pragma", "no-cache"}}).no_cache);
  EXPECT_TRUE(requestCc({{"Pragma", "x, no-cache"}}).no_cache);
  EXPECT_FALSE(requestCc({{"Pragma", "foo"}}).no_cache);
  EXPECT_FALSE(requestCc({}).no_cache);
  EXPECT_FALSE(requestCc({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}}).no_cache);
  EXPECT_TRUE(requestCc({{"Cache-Control", "no-cache"}}).no_cache);
  const RequestCacheControl all =
      requestCc({{"Cache-Control", "no-store, only-if-cached, max-age=5, min-fresh=2"}});
  EXPECT_TRUE(all.no_store);
  EXPECT_TRUE(all.only_if_cached);
  EXPECT_EQ(all.max_age, 5);
  EXPECT_EQ(all.min_fresh, 2);
}

TEST(ReuseTest, ToStringNamesEveryValue) {
  EXPECT_EQ(toString(Reuse::kFresh), "fresh");
  EXPECT_EQ(toString(Reuse::kStaleAllowed), "stale-allowed");
  EXPECT_EQ(toString(Reuse::kStaleWhileRevalidate), "stale-while-revalidate");
  EXPECT_EQ(toString(Reuse::kRevalidate), "revalidate");
}

}  // namespace
}  // namespace cachecar::cache
