// What the app receives for what a client sends: request smuggling (RFC 9112 §6.3, §11.2 and
// the desync classes: CL.TE, TE.CL, TE.TE obfuscations, Connection-named framing fields, bare
// CR/LF, obs-fold), Host decisions, hop-by-hop and forwarding fields, and normalized targets.
// Every case runs the real parse -> normalize -> build steps, fed whole and a byte at a time,
// and every forwarded case is read back as the app would read it: exactly one well-framed
// request whose Host is the one cachecar decided.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/forwarding_pipeline.h"

namespace cachecar::testing {
namespace {

using http::EncodedSlashes;
using http::NormalizeOptions;

NormalizeOptions options(bool trusted = false,
                         EncodedSlashes slashes = EncodedSlashes::kReject) {
  NormalizeOptions o;
  o.default_host = "app.internal:8000";
  o.trusted_peer = trusted;
  o.encoded_slashes = slashes;
  return o;
}

// The request the app reads from what cachecar sent; fails the test unless there is exactly one.
http::RequestHead appRequest(const ForwardOutcome& out, std::string* body = nullptr) {
  const AppView app = readAsApp(out.upstream);
  EXPECT_FALSE(app.error) << out.upstream;
  EXPECT_EQ(app.unparsed, 0u) << out.upstream;
  EXPECT_EQ(app.requests.size(), 1u) << "the app reads " << app.requests.size()
                                     << " requests from:\n" << out.upstream;
  if (app.requests.empty()) {
    return {};
  }
  if (body != nullptr) {
    *body = app.bodies.front();
  }
  return app.requests.front();
}

std::string field(const http::RequestHead& r, std::string_view name) {
  return std::string(r.headers.get(name).value_or("<absent>"));
}

// --- refused: the status cachecar answers with, fed whole and a byte at a time -------------

struct Refused {
  const char* name;
  std::string raw;
  int status;
};

class RefusedRequestTest : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedRequestTest, IsAnsweredByCachecarAndNeverForwarded) {
  const Refused& c = GetParam();
  for (size_t piece : {size_t{0}, size_t{1}, size_t{7}}) {
    const ForwardOutcome out = forwardFirstRequest(c.raw, options(), piece);
    EXPECT_EQ(out.status, c.status) << c.name << " (piece " << piece << "): " << out.reason;
    EXPECT_TRUE(out.upstream.empty()) << c.name;
  }
}

const std::string kHost = "Host: shop.test\r\n";

INSTANTIATE_TEST_SUITE_P(
    Smuggling, RefusedRequestTest,
    ::testing::Values(
        Refused{"CL.TE", "POST / HTTP/1.1\r\n" + kHost +
                             "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
                400},
        Refused{"TE.CL", "POST / HTTP/1.1\r\n" + kHost +
                             "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
                400},
        Refused{"TE.TE xchunked", "POST / HTTP/1.1\r\n" + kHost +
                                      "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
                400},
        Refused{"TE.TE chunked then identity", "POST / HTTP/1.1\r\n" + kHost +
                                                   "Transfer-Encoding: chunked, identity\r\n\r\n",
                400},
        Refused{"TE.TE twice", "POST / HTTP/1.1\r\n" + kHost +
                                   "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
                400},
        Refused{"TE.TE space before colon", "POST / HTTP/1.1\r\n" + kHost +
                                                "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                400},
        Refused{"TE.TE folded", "POST / HTTP/1.1\r\n" + kHost +
                                    "X: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400},
        Refused{"TE.TE folded value", "POST / HTTP/1.1\r\n" + kHost +
                                          "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
                400},
        Refused{"transfer coding cachecar would drop",
                "POST / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                501},
        Refused{"two Content-Length", "POST / HTTP/1.1\r\n" + kHost +
                                          "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                400},
        Refused{"Content-Length list", "POST / HTTP/1.1\r\n" + kHost +
                                           "Content-Length: 3, 3\r\n\r\nabc",
                400},
        Refused{"Content-Length sign", "POST / HTTP/1.1\r\n" + kHost +
                                           "Content-Length: +3\r\n\r\nabc",
                400},
        Refused{"bare LF", "GET / HTTP/1.1\nHost: shop.test\n\n", 400},
        Refused{"bare CR", "GET / HTTP/1.1\r\nHost: shop.test\rX: y\r\n\r\n", 400},
        Refused{"NUL in a value",
                std::string("GET / HTTP/1.1\r\nHost: shop.test\r\nX: a") + '\0' + "b\r\n\r\n", 400},
        Refused{"obs-fold", "GET / HTTP/1.1\r\n" + kHost + "X-A: 1\r\n\t2\r\n\r\n", 400},
        Refused{"empty field name", "GET / HTTP/1.1\r\n" + kHost + ": x\r\n\r\n", 400},
        Refused{"chunk size with bare LF", "POST / HTTP/1.1\r\n" + kHost +
                                               "Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
                400}));

INSTANTIATE_TEST_SUITE_P(
    Host, RefusedRequestTest,
    ::testing::Values(
        Refused{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
        Refused{"two Host fields", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400},
        Refused{"space before the colon", "GET / HTTP/1.1\r\nHost : a.test\r\n\r\n", 400},
        Refused{"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
        Refused{"path in Host", "GET / HTTP/1.1\r\nHost: a.test/x\r\n\r\n", 400},
        Refused{"userinfo in Host", "GET / HTTP/1.1\r\nHost: u@a.test\r\n\r\n", 400},
        Refused{"port out of range", "GET / HTTP/1.1\r\nHost: a.test:99999\r\n\r\n", 400},
        Refused{"userinfo in the target", "GET http://u@a.test/ HTTP/1.1\r\n" + kHost + "\r\n",
                400},
        Refused{"another scheme", "GET ftp://a.test/ HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"authority-form", "GET a.test:80 HTTP/1.1\r\n" + kHost + "\r\n", 400}));

INSTANTIATE_TEST_SUITE_P(
    Target, RefusedRequestTest,
    ::testing::Values(
        Refused{"dot segments above the root", "GET /../etc HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"encoded slash", "GET /static/..%2Faccount HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"encoded slash lowercase", "GET /a%2fb HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"backslash", "GET /static/..\\account HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"encoded backslash", "GET /static/..%5Caccount HTTP/1.1\r\n" + kHost + "\r\n",
                400},
        Refused{"encoded NUL", "GET /a%00.html HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"dot segment with parameters", "GET /static/..;/account HTTP/1.1\r\n" + kHost +
                                                   "\r\n",
                400},
        Refused{"malformed escape", "GET /a%zz HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"fragment", "GET /a#b HTTP/1.1\r\n" + kHost + "\r\n", 400},
        Refused{"asterisk for GET", "GET * HTTP/1.1\r\n" + kHost + "\r\n", 400}));

INSTANTIATE_TEST_SUITE_P(
    MethodAndVersion, RefusedRequestTest,
    ::testing::Values(
        Refused{"CONNECT", "CONNECT shop.test:443 HTTP/1.1\r\n" + kHost + "\r\n", 405},
        Refused{"TRACE", "TRACE / HTTP/1.1\r\n" + kHost + "\r\n", 405},
        Refused{"HTTP/2.0 request line", "GET / HTTP/2.0\r\n" + kHost + "\r\n", 505},
        Refused{"HTTP/0.9 request line", "GET /\r\n\r\n", 505},
        Refused{"Expect other than 100-continue",
                "POST / HTTP/1.1\r\n" + kHost + "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417},
        Refused{"an unknown method", "BREW / HTTP/1.1\r\n" + kHost + "\r\n", 400}));

TEST(RefusedRequestTest, TooManyFieldsIs431) {
  std::string raw = "GET / HTTP/1.1\r\n" + kHost;
  for (int i = 0; i < 20; ++i) {
    raw += "X-" + std::to_string(i) + ": v\r\n";
  }
  raw += "\r\n";
  EXPECT_EQ(forwardFirstRequest(raw, options(), 0, 20).status, 431);
  EXPECT_EQ(forwardFirstRequest(raw, options(), 0, 21).status, 0);
}

// --- forwarded: what the app reads ---------------------------------------------------------

TEST(ForwardingTest, ConnectionNamingContentLengthCannotUnframeTheBody) {
  // The body is a second request; were Content-Length dropped, the app would read it as one.
  const std::string smuggled =
      "GET /static/EVIL HTTP/1.1\r\nHost: shop.test\r\nX-Padding: aaaaaaaaaaaaa\r\n\r\n";
  const std::string raw = "POST /x HTTP/1.1\r\n" + kHost +
                          "Connection: keep-alive, Content-Length\r\nContent-Length: " +
                          std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled;
  for (size_t piece : {size_t{0}, size_t{1}}) {
    const ForwardOutcome out = forwardFirstRequest(raw, options(), piece);
    ASSERT_EQ(out.status, 0) << out.reason;
    std::string body;
    const http::RequestHead app = appRequest(out, &body);
    EXPECT_EQ(app.target, "/x");
    EXPECT_EQ(body, smuggled);
  }
}

TEST(ForwardingTest, ConnectionNamingTransferEncodingKeepsTheChunkedFraming) {
  const std::string raw = "POST /x HTTP/1.1\r\n" + kHost +
                          "Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n0\r\n\r\n";
  const ForwardOutcome out = forwardFirstRequest(raw, options());
  ASSERT_EQ(out.status, 0) << out.reason;
  std::string body;
  appRequest(out, &body);
  EXPECT_EQ(body, "hello");
}

TEST(ForwardingTest, ConnectionCannotRemoveHost) {
  const ForwardOutcome out =
      forwardFirstRequest("GET /p HTTP/1.1\r\nHost: Victim.test\r\nConnection: Host\r\n\r\n",
                          options());
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_EQ(field(appRequest(out), "Host"), "victim.test");
}

TEST(ForwardingTest, ConnectionRemovesTheFieldsItNamesFromWhatEveryStepSees) {
  // Accept-Language named by Connection is gone before the key, Vary or the app see it, so a
  // response to the request without it can never be stored under the German key.
  const ForwardOutcome out = forwardFirstRequest(
      "GET /p HTTP/1.1\r\n" + kHost +
          "Accept-Language: de\r\nConnection: close, Accept-Language\r\nCookie: a=1\r\n\r\n",
      options());
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_FALSE(out.request.headers.has("Accept-Language"));
  const http::RequestHead app = appRequest(out);
  EXPECT_FALSE(app.headers.has("Accept-Language"));
  EXPECT_FALSE(app.headers.has("Connection"));
  EXPECT_EQ(field(app, "Cookie"), "a=1");
}

TEST(ForwardingTest, HopByHopFieldsNeverReachTheApp) {
  const ForwardOutcome out = forwardFirstRequest(
      "GET /p HTTP/1.1\r\n" + kHost +
          "TE: gzip\r\nKeep-Alive: 5\r\nUpgrade: websocket\r\nProxy-Authorization: x\r\n"
          "Proxy-Connection: keep-alive\r\nTrailer: X\r\nConnection: upgrade\r\n\r\n",
      options());
  ASSERT_EQ(out.status, 0) << out.reason;
  const http::RequestHead app = appRequest(out);
  for (const char* name : {"TE", "Keep-Alive", "Upgrade", "Proxy-Authorization",
                           "Proxy-Connection", "Trailer", "Connection"}) {
    EXPECT_FALSE(app.headers.has(name)) << name;
  }
}

TEST(ForwardingTest, AbsoluteFormAuthorityReplacesHost) {
  const ForwardOutcome out = forwardFirstRequest(
      "GET http://Victim.test:80/p?q=1 HTTP/1.1\r\nHost: evil.test\r\n\r\n", options());
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_EQ(out.request.target, "/p?q=1");
  EXPECT_EQ(field(out.request, "Host"), "victim.test");
  const http::RequestHead app = appRequest(out);
  EXPECT_EQ(app.target, "/p?q=1");
  EXPECT_EQ(field(app, "Host"), "victim.test");
  EXPECT_EQ(app.headers.count("Host"), 1u);
  EXPECT_EQ(field(app, "X-Forwarded-Host"), "victim.test");
}

TEST(ForwardingTest, HostIsLowercasedWithoutTheDefaultPort) {
  for (const char* host : {"Shop.Test", "shop.test:80", "SHOP.test:0080", "shop.test:"}) {
    const ForwardOutcome out =
        forwardFirstRequest("GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n", options());
    ASSERT_EQ(out.status, 0) << host << ": " << out.reason;
    EXPECT_EQ(field(appRequest(out), "Host"), "shop.test") << host;
  }
  const ForwardOutcome port =
      forwardFirstRequest("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", options());
  EXPECT_EQ(field(appRequest(port), "Host"), "[::1]:8080");
}

TEST(ForwardingTest, Http10WithoutHostGetsTheAppsAddress) {
  const ForwardOutcome out = forwardFirstRequest("GET / HTTP/1.0\r\n\r\n", options());
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_EQ(field(appRequest(out), "Host"), "app.internal:8000");
}

TEST(ForwardingTest, ClientForwardingFieldsAreReplacedByCachecars) {
  const ForwardOutcome out = forwardFirstRequest(
      "GET / HTTP/1.1\r\n" + kHost +
          "X-Forwarded-Host: evil.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: "
          "https\r\nForwarded: host=evil.test\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Prefix: /evil\r\n"
          "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Host: evil.test\r\n\r\n",
      options());
  ASSERT_EQ(out.status, 0) << out.reason;
  const http::RequestHead app = appRequest(out);
  EXPECT_EQ(field(app, "X-Forwarded-Host"), "shop.test");
  EXPECT_EQ(field(app, "X-Forwarded-For"), "192.0.2.7");
  EXPECT_EQ(field(app, "X-Forwarded-Proto"), "http");
  EXPECT_EQ(field(app, "Forwarded"), "for=192.0.2.7;host=\"shop.test\";proto=http");
  for (const char* gone : {"X-Real-IP", "X-Forwarded-Prefix", "X-Original-URL", "X-Rewrite-URL",
                           "X-Host"}) {
    EXPECT_FALSE(app.headers.has(gone)) << gone;
  }
  EXPECT_EQ(app.headers.count("X-Forwarded-Host"), 1u);
}

TEST(ForwardingTest, ATrustedProxysForwardingFieldsAreKept) {
  const ForwardOutcome out = forwardFirstRequest(
      "GET / HTTP/1.1\r\nHost: internal\r\nX-Forwarded-Host: shop.test\r\nX-Forwarded-For: "
      "203.0.113.9\r\nX-Forwarded-Proto: https\r\nForwarded: for=203.0.113.9\r\n"
      "X-Original-URL: /admin\r\n\r\n",
      options(/*trusted=*/true));
  ASSERT_EQ(out.status, 0) << out.reason;
  const http::RequestHead app = appRequest(out);
  EXPECT_EQ(field(app, "X-Forwarded-Host"), "shop.test");
  EXPECT_EQ(field(app, "X-Forwarded-For"), "203.0.113.9, 192.0.2.7");
  EXPECT_EQ(field(app, "X-Forwarded-Proto"), "https");
  EXPECT_EQ(field(app, "Forwarded"), "for=203.0.113.9, for=192.0.2.7");
  EXPECT_FALSE(app.headers.has("X-Original-URL"));
}

TEST(ForwardingTest, MethodOverridesAreDroppedFromGetOnly) {
  const std::string fields = kHost + "X-HTTP-Method-Override: DELETE\r\n";
  const ForwardOutcome get = forwardFirstRequest("GET / HTTP/1.1\r\n" + fields + "\r\n", options());
  EXPECT_FALSE(appRequest(get).headers.has("X-HTTP-Method-Override"));
  const ForwardOutcome post = forwardFirstRequest(
      "POST / HTTP/1.1\r\n" + fields + "Content-Length: 0\r\n\r\n", options());
  EXPECT_EQ(field(appRequest(post), "X-HTTP-Method-Override"), "DELETE");
}

TEST(ForwardingTest, FramingIsWrittenByCachecar) {
  const ForwardOutcome empty_post =
      forwardFirstRequest("POST / HTTP/1.1\r\n" + kHost + "\r\n", options());
  EXPECT_EQ(field(appRequest(empty_post), "Content-Length"), "0");
  const ForwardOutcome get = forwardFirstRequest("GET / HTTP/1.1\r\n" + kHost + "\r\n", options());
  const http::RequestHead app = appRequest(get);
  EXPECT_FALSE(app.headers.has("Content-Length"));
  EXPECT_FALSE(app.headers.has("Transfer-Encoding"));
  const ForwardOutcome chunked = forwardFirstRequest(
      "PUT / HTTP/1.1\r\n" + kHost + "Transfer-Encoding: \tChunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      options());
  std::string body;
  EXPECT_EQ(field(appRequest(chunked, &body), "Transfer-Encoding"), "chunked");
  EXPECT_EQ(body, "abc");
}

TEST(ForwardingTest, ExpectIsAnsweredByCachecarNotForwarded) {
  const ForwardOutcome out = forwardFirstRequest(
      "POST / HTTP/1.1\r\n" + kHost + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
      options());
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_TRUE(out.request.expect_continue);
  EXPECT_FALSE(appRequest(out).headers.has("Expect"));
}

struct Target {
  const char* raw;
  const char* normalized;
};

class NormalizedTargetTest : public ::testing::TestWithParam<Target> {};

TEST_P(NormalizedTargetTest, RoutesKeysAndTheAppSeeOnePath) {
  const Target& c = GetParam();
  const ForwardOutcome out = forwardFirstRequest(
      "GET " + std::string(c.raw) + " HTTP/1.1\r\n" + kHost + "\r\n", options());
  ASSERT_EQ(out.status, 0) << c.raw << ": " << out.reason;
  EXPECT_EQ(out.request.target, c.normalized) << c.raw;
  EXPECT_EQ(appRequest(out).target, c.normalized) << c.raw;
}

INSTANTIATE_TEST_SUITE_P(
    Paths, NormalizedTargetTest,
    ::testing::Values(Target{"/static/../account/profile", "/account/profile"},
                      Target{"/static/%2e%2e/account/profile", "/account/profile"},
                      Target{"/static/.%2E/account/profile", "/account/profile"},
                      Target{"/static/./a/", "/static/a/"},
                      Target{"//account//profile", "/account/profile"},
                      Target{"/a/b/..", "/a/"},
                      Target{"/%7euser/%41", "/~user/A"},
                      Target{"/caf%c3%a9", "/caf%C3%A9"},
                      Target{"/caf\xc3\xa9", "/caf%C3%A9"},
                      Target{"/a?", "/a"},
                      Target{"/a?b=%c3%a9&c=\xc3\xa9", "/a?b=%C3%A9&c=%C3%A9"},
                      Target{"/a?q=100%", "/a?q=100%"},
                      Target{"/a?x=/../b", "/a?x=/../b"},
                      Target{"http://shop.test", "/"}));

TEST(NormalizedTargetTest, EncodedSlashesCanBeDecodedInstead) {
  const ForwardOutcome out = forwardFirstRequest(
      "GET /static/..%2Faccount/profile HTTP/1.1\r\n" + kHost + "\r\n",
      options(false, EncodedSlashes::kDecode));
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_EQ(appRequest(out).target, "/account/profile");
}

TEST(NormalizedTargetTest, OptionsAsteriskIsKept) {
  const ForwardOutcome out = forwardFirstRequest("OPTIONS * HTTP/1.1\r\n" + kHost + "\r\n", options());
  ASSERT_EQ(out.status, 0) << out.reason;
  EXPECT_EQ(appRequest(out).target, "*");
}

// --- cost: O(fields) whatever Connection lists -------------------------------------------

TEST(ForwardingTest, ManyConnectionTokensAndFieldsAreHandledInOnePass) {
  // 2000 tokens and 2000 fields: with a scan of the field list per token this is four million
  // comparisons; it must simply work, and the named fields must all be gone. (The cost itself
  // is measured by a benchmark, not here.)
  std::string raw = "GET / HTTP/1.1\r\n" + kHost + "Connection: keep-alive";
  std::string fields;
  for (int i = 0; i < 2000; ++i) {
    raw += ", X-" + std::to_string(i);
    fields += "X-" + std::to_string(i) + ": v\r\n";
  }
  raw += "\r\n" + fields + "Kept: yes\r\n\r\n";
  const ForwardOutcome out = forwardFirstRequest(raw, options(), 0, 10000);
  ASSERT_EQ(out.status, 0) << out.reason;
  ASSERT_EQ(out.request.headers.size(), 2u);  // Host and Kept
  EXPECT_EQ(field(appRequest(out), "Kept"), "yes");
}

}  // namespace
}  // namespace cachecar::testing
