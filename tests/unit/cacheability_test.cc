#include "cachecar/cache/cacheability.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cachecar::cache {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Fields = std::vector<std::pair<std::string, std::string>>;

http::RequestHead request(std::string method, Fields fields = {}) {
  http::RequestHead r;
  r.method = std::move(method);
  r.target = "/page?x=1";
  r.headers.add("Host", "example.com");
  for (auto& [name, value] : fields) {
    r.headers.add(std::move(name), std::move(value));
  }
  return r;
}

http::ResponseHead response(int status, Fields fields = {}) {
  http::ResponseHead r;
  r.status = status;
  r.reason = std::string(http::reasonPhrase(status));
  r.headers.add("Content-Type", "text/html");
  for (auto& [name, value] : fields) {
    r.headers.add(std::move(name), std::move(value));
  }
  return r;
}

TEST(JudgeRequestTest, Table) {
  struct Case {
    std::string name;
    http::RequestHead request;
    bool cacheable;
    std::string_view reason;
  };
  const std::vector<Case> cases = {
      {"GET", request("GET"), true, ""},
      {"HEAD", request("HEAD"), true, ""},
      {"POST", request("POST"), false, "method"},
      {"PUT", request("PUT"), false, "method"},
      {"DELETE", request("DELETE"), false, "method"},
      {"methods are case-sensitive", request("get"), false, "method"},
      {"Authorization", request("GET", {{"Authorization", "Bearer x"}}), false, "authorization"},
      {"empty Authorization still counts", request("GET", {{"authorization", ""}}), false,
       "authorization"},
      {"no-store", request("GET", {{"Cache-Control", "no-store"}}), false, "no-store"},
      {"no-store among others",
       request("HEAD", {{"Cache-Control", "max-age=0"}, {"cache-control", "NO-STORE"}}), false,
       "no-store"},
      {"no-cache may still use the cache (revalidation)",
       request("GET", {{"Cache-Control", "no-cache"}}), true, ""},
      {"Cookie alone does not bypass", request("GET", {{"Cookie", "a=1"}}), true, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const RequestVerdict v = judgeRequest(c.request);
    EXPECT_EQ(v.cacheable, c.cacheable);
    EXPECT_EQ(v.reason, c.reason);
  }
}

TEST(JudgeResponseTest, Table) {
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  const std::string date_plus_hour = "Sun, 06 Nov 1994 09:49:37 GMT";
  const std::optional<milliseconds> no_route;
  const std::optional<milliseconds> route_ttl = milliseconds(30000);
  struct Case {
    std::string name;
    http::RequestHead request;
    http::ResponseHead response;
    std::optional<milliseconds> fallback_ttl;
    bool store;
    milliseconds freshness;
    std::string_view reason;
  };
  const std::vector<Case> cases = {
      // Freshness sources.
      {"max-age", request("GET"), response(200, {{"Cache-Control", "max-age=60"}}), no_route, true,
       seconds(60), ""},
      {"s-maxage beats max-age", request("GET"),
       response(200, {{"Cache-Control", "max-age=60, s-maxage=10"}}), no_route, true, seconds(10),
       ""},
      {"Expires minus Date", request("GET"),
       response(200, {{"Date", date}, {"Expires", date_plus_hour}}), no_route, true, seconds(3600),
       ""},
      {"explicit freshness beats the route ttl", request("GET"),
       response(200, {{"Cache-Control", "max-age=5"}}), milliseconds(3600000), true, seconds(5),
       ""},
      {"route ttl fills in", request("GET"), response(200), route_ttl, true, milliseconds(30000),
       ""},
      {"public without freshness uses the route ttl", request("GET"),
       response(200, {{"Cache-Control", "public"}}), route_ttl, true, milliseconds(30000), ""},
      {"no freshness and no route", request("GET"), response(200), no_route, false, milliseconds(0),
       "no-freshness"},
      {"zero route ttl", request("GET"), response(200), milliseconds(0), false, milliseconds(0),
       "zero-ttl"},
      {"max-age=0 is stale", request("GET"), response(200, {{"Cache-Control", "max-age=0"}}),
       route_ttl, false, milliseconds(0), "stale"},
      {"invalid max-age is stale", request("GET"),
       response(200, {{"Cache-Control", "max-age=soon"}}), route_ttl, false, milliseconds(0),
       "stale"},
      {"invalid Expires is stale", request("GET"),
       response(200, {{"Date", date}, {"Expires", "0"}}), route_ttl, false, milliseconds(0),
       "stale"},
      {"past Expires is stale", request("GET"),
       response(200, {{"Date", date_plus_hour}, {"Expires", date}}), route_ttl, false,
       milliseconds(0), "stale"},
      {"Vary on a header is fine", request("GET"),
       response(200, {{"Cache-Control", "max-age=60"}, {"Vary", "Accept-Encoding"}}), no_route,
       true, seconds(60), ""},

      // Never stored, whatever the route says.
      {"status 404", request("GET"), response(404, {{"Cache-Control", "max-age=60"}}), route_ttl,
       false, milliseconds(0), "status"},
      {"status 206", request("GET"), response(206, {{"Cache-Control", "max-age=60"}}), route_ttl,
       false, milliseconds(0), "status"},
      {"status 301", request("GET"), response(301), route_ttl, false, milliseconds(0), "status"},
      {"POST", request("POST"), response(200, {{"Cache-Control", "max-age=60"}}), route_ttl, false,
       milliseconds(0), "method"},
      {"HEAD response has no body to store", request("HEAD"),
       response(200, {{"Cache-Control", "max-age=60"}}), route_ttl, false, milliseconds(0), "head"},
      {"Authorization", request("GET", {{"Authorization", "Basic eDp5"}}),
       response(200, {{"Cache-Control", "public, s-maxage=60"}}), route_ttl, false, milliseconds(0),
       "authorization"},
      {"request no-store", request("GET", {{"Cache-Control", "no-store"}}),
       response(200, {{"Cache-Control", "max-age=60"}}), route_ttl, false, milliseconds(0),
       "request-no-store"},
      {"no-store", request("GET"), response(200, {{"Cache-Control", "no-store, max-age=60"}}),
       route_ttl, false, milliseconds(0), "no-store"},
      {"no-store in a second field", request("GET"),
       response(200, {{"Cache-Control", "max-age=60"}, {"Cache-Control", "No-Store"}}), route_ttl,
       false, milliseconds(0), "no-store"},
      {"private", request("GET"), response(200, {{"Cache-Control", "private, max-age=60"}}),
       route_ttl, false, milliseconds(0), "private"},
      {"private with fields", request("GET"),
       response(200, {{"Cache-Control", "private=\"X-User\", s-maxage=60"}}), route_ttl, false,
       milliseconds(0), "private"},
      {"Set-Cookie", request("GET"),
       response(200, {{"Cache-Control", "public, max-age=60"}, {"Set-Cookie", "sid=1"}}), route_ttl,
       false, milliseconds(0), "set-cookie"},
      {"Vary: *", request("GET"), response(200, {{"Cache-Control", "max-age=60"}, {"Vary", "*"}}),
       route_ttl, false, milliseconds(0), "vary-star"},
      {"Vary list with *", request("GET"),
       response(200, {{"Vary", "Accept"}, {"vary", "Accept-Encoding , * "}}), route_ttl, false,
       milliseconds(0), "vary-star"},
      {"no-cache", request("GET"), response(200, {{"Cache-Control", "no-cache, max-age=60"}}),
       route_ttl, false, milliseconds(0), "no-cache"},
      {"no-cache naming a present field", request("GET"),
       response(200, {{"Cache-Control", "no-cache=\"X-Token\", max-age=60"}, {"X-Token", "t"}}),
       route_ttl, false, milliseconds(0), "no-cache"},
      {"no-cache naming an absent field", request("GET"),
       response(200, {{"Cache-Control", "no-cache=\"X-Token\", max-age=60"}}), route_ttl, true,
       seconds(60), ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const StoreVerdict v = judgeResponse(c.request, c.response, c.fallback_ttl);
    EXPECT_EQ(v.store, c.store);
    EXPECT_EQ(v.freshness.count(), c.freshness.count());
    EXPECT_EQ(v.reason, c.reason);
  }
}

// The reason names the first rule in table order, so logs are stable when several apply.
TEST(JudgeResponseTest, FirstReasonWins) {
  const StoreVerdict v =
      judgeResponse(request("GET", {{"Authorization", "x"}}),
                    response(500, {{"Cache-Control", "no-store, private"}, {"Set-Cookie", "a=b"}}),
                    milliseconds(1000));
  EXPECT_FALSE(v.store);
  EXPECT_EQ(v.reason, "status");
}

}  // namespace
}  // namespace cachecar::cache
