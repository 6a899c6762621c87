// Cache poisoning attacks against the real binary in front of a reflecting origin: each test
// sends the attack from one client (raw bytes on its own socket), then asks for the same page
// from another client as a victim would, and checks the victim never gets what the attacker
// chose, and that normal caching still works. `workers: 1` (basicConfig) puts the attacker and
// the victim on one event loop and one upstream connection pool, where a desync would land.
#include <gtest/gtest.h>

#include <string>

#include "support/http_client.h"
#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

// The first value of `name` in an application/x-www-form-urlencoded query, decoded as most
// frameworks decode it (the last of repeated names wins, like PHP and Rails).
std::string appQueryValue(const std::string& query, const std::string& name) {
  auto decode = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(s[i] == '+' ? ' ' : s[i]);
      }
    }
    return out;
  };
  std::string value = "<none>";
  size_t start = 0;
  while (start <= query.size()) {
    const size_t end = std::min(query.find('&', start), query.size());
    const std::string_view param = std::string_view(query).substr(start, end - start);
    const size_t eq = param.find('=');
    if (decode(param.substr(0, eq)) == name) {
      value = eq == std::string_view::npos ? "" : decode(param.substr(eq + 1));
    }
    start = end + 1;
  }
  return value;
}

// The value of the last cookie called `name` (what many frameworks keep of repeated cookies).
std::string appCookie(const std::string& cookies, const std::string& name) {
  std::string value = "<none>";
  size_t start = 0;
  while (start < cookies.size()) {
    const size_t end = std::min(cookies.find(';', start), cookies.size());
    std::string pair = cookies.substr(start, end - start);
    pair.erase(0, pair.find_first_not_of(' '));
    if (pair.rfind(name + "=", 0) == 0) {
      value = pair.substr(name.size() + 1);
    }
    start = end + 1;
  }
  return value;
}

class PoisoningTest : public ProxyFixture {
 protected:
  void SetUp() override {
    // Cacheable pages that reflect what the app was told, as apps that build links from Host
    // or X-Forwarded-Host, or read the query themselves, do.
    origin_.handlePrefix("/", [](const OriginRequest& req) {
      return OriginResponse::text(
          "path=" + req.path + " host=" + req.headerOr("Host", "<none>") +
              " xfh=" + req.headerOr("X-Forwarded-Host", "<none>") +
              " lang=" + req.headerOr("Accept-Language", "<none>") +
              " page=" + appQueryValue(req.query, "page") +
              " currency=" + appCookie(req.headerOr("Cookie"), "currency") +
              " user=" + req.headerOr("Cookie", "<anonymous>"),
          {{"Cache-Control", "public, max-age=300"}});
    });
  }

  // Sends raw bytes on a fresh connection and returns the first response.
  HttpResponse sendRaw(const std::string& bytes) {
    HttpClient client(port(), 3s);
    EXPECT_TRUE(client.sendRaw(bytes));
    return client.readResponse();
  }

  HttpResponse victimGet(const std::string& path, const std::string& host = "shop.test",
                         std::vector<std::string> extra = {}) {
    HttpClient client(port(), 3s);
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
    for (const auto& line : extra) {
      request += line + "\r\n";
    }
    EXPECT_TRUE(client.sendRaw(request + "\r\n"));
    return client.readResponse();
  }

  // Normal caching still works after the attack: a MISS, then a HIT with the same body.
  void expectCachingWorks(const std::string& path) {
    const HttpResponse first = victimGet(path);
    const HttpResponse second = victimGet(path);
    EXPECT_EQ(first.status, 200) << first.describe();
    EXPECT_EQ(second.headerOr("X-Cache"), "HIT") << second.describe();
    EXPECT_EQ(second.body, first.body);
  }
};

TEST_F(PoisoningTest, ConnectionNamedContentLengthCannotSmuggleARequest) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const std::string smuggled =
      "GET /static/EVIL HTTP/1.1\r\nHost: shop.test\r\nX-Pad: 0123456789\r\n\r\n";
  const std::string attack = "POST /x HTTP/1.1\r\nHost: shop.test\r\n"
                             "Connection: keep-alive, Content-Length\r\nContent-Length: " +
                             std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled;
  const HttpResponse answer = sendRaw(attack);
  EXPECT_EQ(answer.status, 200) << answer.describe();
  ASSERT_TRUE(origin_.waitForRequests("/x", 1, 3s));
  EXPECT_EQ(origin_.lastRequest("/x")->body, smuggled) << "the app did not get the whole body";

  const HttpResponse victim = victimGet("/static/page");
  EXPECT_EQ(victim.status, 200) << victim.describe();
  EXPECT_NE(victim.body.find("path=/static/page "), std::string::npos) << victim.body;
  EXPECT_EQ(origin_.requestCount("/static/EVIL"), 0) << "the app read the body as a request";
  expectCachingWorks("/static/after");
}

TEST_F(PoisoningTest, AbsoluteFormAuthorityIsTheHostTheAppIsToldAndKeyedUnder) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const HttpResponse attack =
      sendRaw("GET http://victim.test/static/home HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  ASSERT_EQ(attack.status, 200) << attack.describe();
  EXPECT_NE(attack.body.find("host=victim.test "), std::string::npos) << attack.body;

  const HttpResponse victim = victimGet("/static/home", "victim.test");
  EXPECT_EQ(victim.headerOr("X-Cache"), "HIT") << victim.describe();
  EXPECT_EQ(victim.body.find("evil"), std::string::npos) << victim.body;
  expectCachingWorks("/static/after");
}

TEST_F(PoisoningTest, ClientXForwardedHostNeverReachesTheApp) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const HttpResponse attack = sendRaw(
      "GET /static/links HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-Host: evil.test\r\n\r\n");
  ASSERT_EQ(attack.status, 200) << attack.describe();

  const HttpResponse victim = victimGet("/static/links");
  EXPECT_EQ(victim.body.find("evil"), std::string::npos) << victim.body;
  EXPECT_NE(victim.body.find("xfh=shop.test "), std::string::npos) << victim.body;
}

TEST_F(PoisoningTest, ATrustedProxysXForwardedHostIsKeptAndKeyed) {
  ASSERT_NO_FATAL_FAILURE(startProxy(basicConfig() + "trusted_proxies: [127.0.0.1]\n"));
  const HttpResponse via_ingress = sendRaw(
      "GET /static/links HTTP/1.1\r\nHost: internal\r\nX-Forwarded-Host: shop.test\r\n\r\n");
  EXPECT_NE(via_ingress.body.find("xfh=shop.test "), std::string::npos) << via_ingress.body;
  // Another forwarded host is another page, never the first one's.
  const HttpResponse other = sendRaw(
      "GET /static/links HTTP/1.1\r\nHost: internal\r\nX-Forwarded-Host: other.test\r\n\r\n");
  EXPECT_EQ(other.headerOr("X-Cache"), "MISS") << other.describe();
  EXPECT_NE(other.body.find("xfh=other.test "), std::string::npos) << other.body;
}

TEST_F(PoisoningTest, ConnectionCannotRemoveHost) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const HttpResponse attack =
      sendRaw("GET /static/site HTTP/1.1\r\nHost: victim.test\r\nConnection: Host\r\n\r\n");
  EXPECT_NE(attack.body.find("host=victim.test "), std::string::npos) << attack.body;
  const HttpResponse victim = victimGet("/static/site", "victim.test");
  EXPECT_NE(victim.body.find("host=victim.test "), std::string::npos) << victim.body;
}

TEST_F(PoisoningTest, ConnectionNamingAKeyHeaderCannotStoreTheDefaultVariantUnderIt) {
  ASSERT_NO_FATAL_FAILURE(startProxy(
      configWithRoutes("  - {match: /i18n/, ttl: 1h, key: {headers: [Accept-Language]}}\n")));
  const HttpResponse attack = sendRaw(
      "GET /i18n/home HTTP/1.1\r\nHost: shop.test\r\nAccept-Language: de\r\n"
      "Connection: Accept-Language\r\n\r\n");
  EXPECT_NE(attack.body.find("lang=<none>"), std::string::npos) << attack.body;
  const HttpResponse german = victimGet("/i18n/home", "shop.test", {"Accept-Language: de"});
  EXPECT_NE(german.body.find("lang=de "), std::string::npos) << german.body;
}

class AmbiguousHostTest : public PoisoningTest,
                          public ::testing::WithParamInterface<std::string> {};

TEST_P(AmbiguousHostTest, Gets400AndTheAppNeverSeesIt) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpClient client(port(), 3s);
  ASSERT_TRUE(client.sendRaw(GetParam()));
  const HttpResponse r = client.readResponse();
  EXPECT_EQ(r.status, 400) << r.describe();
  EXPECT_FALSE(r.body.empty());
  EXPECT_TRUE(client.isClosedByPeer(3s));
  EXPECT_EQ(origin_.totalRequests(), 0);
  expectCachingWorks("/static/after");
}

INSTANTIATE_TEST_SUITE_P(
    Requests, AmbiguousHostTest,
    ::testing::Values("GET /static/p HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
                      "GET /static/p HTTP/1.1\r\nHost : evil.test\r\n\r\n",
                      "GET /static/p HTTP/1.1\r\nHost: a.test\r\n: evil\r\n\r\n",
                      "GET /static/p HTTP/1.1\r\n\r\n",
                      "GET /static/p HTTP/1.1\r\nHost: a.test\r\nX: 1\r\n Host: evil\r\n\r\n"));

class DotSegmentTest : public PoisoningTest, public ::testing::WithParamInterface<std::string> {};

// /static/ has a long ttl; /account/ is `cache: off`. An app that normalizes the path answers
// /static/../account/profile with the account page: it must be routed as /account/ (never
// stored), and the victim's anonymous request for the same spelling must reach the app.
TEST_P(DotSegmentTest, ARouteCannotBeBypassedWithDotSegments) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const HttpResponse logged_in = victimGet(GetParam(), "shop.test", {"Cookie: session=alice"});
  ASSERT_EQ(logged_in.status, 200) << logged_in.describe();
  EXPECT_NE(logged_in.body.find("path=/account/profile "), std::string::npos) << logged_in.body;
  EXPECT_EQ(logged_in.headerOr("X-Cache"), "BYPASS") << logged_in.describe();

  const HttpResponse anonymous = victimGet(GetParam());
  EXPECT_EQ(anonymous.body.find("alice"), std::string::npos) << anonymous.body;
  EXPECT_EQ(origin_.requestCount("/account/profile"), 2);
  expectCachingWorks("/static/after");
}

INSTANTIATE_TEST_SUITE_P(Paths, DotSegmentTest,
                         ::testing::Values("/static/../account/profile",
                                           "/static/%2e%2e/account/profile",
                                           "/static/.%2E/account/profile",
                                           "//account/profile", "/static/./../account/profile"));

TEST_F(PoisoningTest, EncodedSlashAndBackslashBypassesAreRefused) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (const char* path : {"/static/..%2faccount/profile", "/static/..%5Caccount/profile",
                           "/static/..\\account/profile", "/static/..;/account/profile"}) {
    const HttpResponse r = victimGet(path, "shop.test", {"Cookie: session=alice"});
    EXPECT_EQ(r.status, 400) << path << ": " << r.describe();
  }
  EXPECT_EQ(origin_.totalRequests(), 0);
}

TEST_F(PoisoningTest, AnEncodedQueryNameCannotHideFromAFilteredKey) {
  // /api/ keys on `page` only. The app decodes "pag%65" as "page" (and takes the last value).
  ASSERT_NO_FATAL_FAILURE(startProxy());
  const HttpResponse attack = victimGet("/api/list?page=1&pag%65=666");
  EXPECT_NE(attack.body.find("page=666 "), std::string::npos) << attack.body;

  const HttpResponse victim = victimGet("/api/list?page=1");
  EXPECT_NE(victim.body.find("page=1 "), std::string::npos) << victim.body;
  EXPECT_EQ(victim.headerOr("X-Cache"), "MISS") << victim.describe();
  const HttpResponse again = victimGet("/api/list?page=1&utm_source=mail");
  EXPECT_EQ(again.headerOr("X-Cache"), "HIT") << "parameters outside the key still share it";
}

TEST_F(PoisoningTest, ARepeatedKeyCookieCannotStoreAnotherValuesPage) {
  // /shop/ keys on the currency cookie. The app reads the last of repeated cookies.
  ASSERT_NO_FATAL_FAILURE(
      startProxy(configWithRoutes("  - {match: /shop/, ttl: 1h, key: {cookies: [currency]}}\n")));
  const HttpResponse attack =
      victimGet("/shop/prices", "shop.test", {"Cookie: currency=EUR; currency=USD"});
  EXPECT_NE(attack.body.find("currency=USD "), std::string::npos) << attack.body;
  const HttpResponse victim = victimGet("/shop/prices", "shop.test", {"Cookie: currency=EUR"});
  EXPECT_NE(victim.body.find("currency=EUR "), std::string::npos) << victim.body;
  const HttpResponse again = victimGet("/shop/prices", "shop.test", {"Cookie: currency=EUR"});
  EXPECT_EQ(again.headerOr("X-Cache"), "HIT") << again.describe();
}

TEST_F(PoisoningTest, RequestsThatAreNotPlainHttp11AreAnsweredByCachecar) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  struct Case {
    std::string raw;
    int status;
  };
  for (const Case& c : {Case{"CONNECT shop.test:443 HTTP/1.1\r\nHost: shop.test\r\n\r\n", 405},
                        Case{"TRACE /static/x HTTP/1.1\r\nHost: shop.test\r\n\r\n", 405},
                        Case{"GET /static/x HTTP/2.0\r\nHost: shop.test\r\n\r\n", 505},
                        Case{"POST /x HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: gzip, "
                             "chunked\r\n\r\n0\r\n\r\n",
                             501},
                        Case{"POST /x HTTP/1.1\r\nHost: shop.test\r\nExpect: 999-x\r\n"
                             "Content-Length: 1\r\n\r\nx",
                             417}}) {
    const HttpResponse r = sendRaw(c.raw);
    EXPECT_EQ(r.status, c.status) << c.raw << "\n" << r.describe();
  }
  EXPECT_EQ(origin_.totalRequests(), 0);
  expectCachingWorks("/static/after");
}

TEST_F(PoisoningTest, ManyConnectionTokensAreServed) {
  std::string config = basicConfig();
  config.replace(config.find("limits: {"), 9, "limits: {max_header_fields: 4000, ");
  ASSERT_NO_FATAL_FAILURE(startProxy(config));
  std::string request = "GET /static/many HTTP/1.1\r\nHost: shop.test\r\nConnection: keep-alive";
  std::string fields;
  for (int i = 0; i < 2000; ++i) {
    request += ",x-" + std::to_string(i);
    fields += "x-" + std::to_string(i) + ": v\r\n";
  }
  const HttpResponse r = sendRaw(request + "\r\n" + fields + "\r\n");
  EXPECT_EQ(r.status, 200) << r.describe();
  ASSERT_TRUE(origin_.lastRequest("/static/many").has_value());
  EXPECT_FALSE(origin_.lastRequest("/static/many")->hasHeader("x-7"));
}

}  // namespace
}  // namespace cachecar::testing
