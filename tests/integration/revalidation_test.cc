// Validation (RFC 9111 §4.3): stale entries are revalidated with the stored validators and
// refreshed by a 304; client conditionals and byte ranges are answered from a fresh entry;
// the request directives no-cache, no-store and only-if-cached.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

// Long enough for an entry with max-age=1 to be stale (ages are whole seconds).
constexpr auto kPastOneSecond = 1200ms;

OriginResponse notModified(HeaderList headers) {
  OriginResponse r;
  r.status = 304;
  r.headers = std::move(headers);
  return r;
}

class RevalidationTest : public ProxyFixture {
 protected:
  // A page with ETag "v1" that is fresh for a second (X-Version: 1); the app answers a
  // revalidation with that ETag by a 304 that makes it fresh for a minute (X-Version: 2).
  // Starts the proxy, stores the page and returns once it is stale.
  HttpResponse startWithStaleEtagPage(const std::string& path) {
    origin_.handle(path, [](const OriginRequest& req) {
      if (req.headerOr("If-None-Match") == "\"v1\"") {
        return notModified(
            {{"ETag", "\"v1\""}, {"Cache-Control", "max-age=60"}, {"X-Version", "2"}});
      }
      return OriginResponse::text("the stored body #" + std::to_string(req.sequence),
                                  {{"ETag", "\"v1\""},
                                   {"Cache-Control", "max-age=1"},
                                   {"X-Version", "1"}});
    });
    startProxy();
    if (HasFatalFailure()) {
      return HttpResponse{};  // status 0: the caller's check stops the test
    }
    HttpResponse first = get(path);
    std::this_thread::sleep_for(kPastOneSecond);
    return first;
  }
};

TEST_F(RevalidationTest, StaleEntryIsRevalidatedWithIfNoneMatchAndRefreshedBy304) {
  HttpResponse first = startWithStaleEtagPage("/static/etag");
  ASSERT_EQ(first.status, 200) << first.describe();
  EXPECT_EQ(first.headerOr("X-Version"), "1");

  HttpResponse revalidated = get("/static/etag");
  ASSERT_EQ(revalidated.status, 200) << revalidated.describe();
  EXPECT_EQ(revalidated.body, first.body);
  EXPECT_EQ(revalidated.headerOr("Content-Length"), std::to_string(first.body.size()));
  EXPECT_EQ(revalidated.headerOr("X-Version"), "2");
  EXPECT_EQ(countHeader(revalidated.headers, "X-Version"), 1u);
  EXPECT_EQ(revalidated.headerOr("Cache-Control"), "max-age=60");
  EXPECT_EQ(revalidated.headerOr("X-Cache"), "REVALIDATED");
  EXPECT_TRUE(contains(revalidated.headerOr("Cache-Status"), "fwd=stale"))
      << revalidated.headerOr("Cache-Status");
  EXPECT_TRUE(contains(revalidated.headerOr("Cache-Status"), "fwd-status=304"))
      << revalidated.headerOr("Cache-Status");
  ASSERT_EQ(origin_.requestCount("/static/etag"), 2);
  const auto conditional = origin_.lastRequest("/static/etag");
  ASSERT_TRUE(conditional.has_value());
  EXPECT_EQ(conditional->headerOr("If-None-Match"), "\"v1\"");

  HttpResponse hit = get("/static/etag");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Version"), "2");
  EXPECT_EQ(hit.body, first.body);
  EXPECT_EQ(origin_.requestCount("/static/etag"), 2);
}

// A HEAD for a stale page revalidates the stored GET response; the 304 refreshes that entry
// as a GET's would (its body is the stored one), so the next GET is a hit.
TEST_F(RevalidationTest, HeadRevalidationRefreshesTheStoredEntry) {
  HttpResponse first = startWithStaleEtagPage("/static/head-etag");
  ASSERT_EQ(first.status, 200) << first.describe();

  HttpClient client(port());
  HttpResponse head = client.head("/static/head-etag");
  ASSERT_EQ(head.status, 200) << head.describe();
  EXPECT_EQ(head.headerOr("X-Cache"), "REVALIDATED");
  EXPECT_EQ(head.headerOr("X-Version"), "2");
  EXPECT_EQ(head.headerOr("Content-Length"), std::to_string(first.body.size()));
  EXPECT_TRUE(head.body.empty());
  ASSERT_EQ(origin_.requestCount("/static/head-etag"), 2);
  EXPECT_EQ(origin_.lastRequest("/static/head-etag")->method, "HEAD");

  HttpResponse hit = client.get("/static/head-etag");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Version"), "2");
  EXPECT_EQ(hit.body, first.body);
  EXPECT_EQ(origin_.requestCount("/static/head-etag"), 2);
}

// RFC 9111 §4.3.5, with an app that ignores conditional requests: its 200 to a HEAD about the
// same page (same Last-Modified, same length) updates the stored GET response; one about a
// changed page (another ETag) retires it.
TEST_F(RevalidationTest, HeadAnswerAboutTheSamePageUpdatesTheStoredResponse) {
  const std::string modified = httpDate(-3600s);
  auto plain_calls = std::make_shared<std::atomic<int>>(0);
  origin_.handle("/static/plain", [modified, plain_calls](const OriginRequest&) {
    const int n = ++*plain_calls;
    return OriginResponse::text("plain body",
                                {{"Last-Modified", modified},
                                 {"Cache-Control", n == 1 ? "max-age=1" : "max-age=60"},
                                 {"X-Version", std::to_string(n)}});
  });
  auto changed_calls = std::make_shared<std::atomic<int>>(0);
  origin_.handle("/static/changed", [changed_calls](const OriginRequest&) {
    const std::string n = std::to_string(++*changed_calls);
    return OriginResponse::text("version " + n,
                                {{"ETag", "\"" + n + "\""}, {"Cache-Control", "max-age=1"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/plain").status, 200);
  ASSERT_EQ(get("/static/changed").status, 200);
  std::this_thread::sleep_for(kPastOneSecond);

  HttpClient client(port());
  HttpResponse head = client.head("/static/plain");
  ASSERT_EQ(head.status, 200) << head.describe();
  EXPECT_EQ(head.headerOr("X-Cache"), "REVALIDATED");
  EXPECT_EQ(head.headerOr("X-Version"), "2");
  EXPECT_EQ(head.headerOr("Content-Length"), "10");
  EXPECT_EQ(origin_.lastRequest("/static/plain")->method, "HEAD");
  HttpResponse hit = client.get("/static/plain");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Version"), "2");
  EXPECT_EQ(hit.headerOr("Cache-Control"), "max-age=60");
  EXPECT_EQ(hit.body, "plain body");
  EXPECT_EQ(origin_.requestCount("/static/plain"), 2);

  HttpResponse changed = client.head("/static/changed");
  ASSERT_EQ(changed.status, 200) << changed.describe();
  EXPECT_EQ(changed.headerOr("ETag"), "\"2\"");
  HttpResponse refetched = client.get("/static/changed");
  EXPECT_EQ(refetched.headerOr("X-Cache"), "MISS") << refetched.describe();
  EXPECT_EQ(refetched.body, "version 3");
  EXPECT_EQ(origin_.requestCount("/static/changed"), 3);
}

TEST_F(RevalidationTest, StaleEntryIsRevalidatedWithIfModifiedSince) {
  const std::string modified = httpDate(-3600s);
  origin_.handle("/static/lm", [modified](const OriginRequest& req) {
    if (req.headerOr("If-Modified-Since") == modified) {
      return notModified({{"Cache-Control", "max-age=60"}, {"X-Version", "2"}});
    }
    return OriginResponse::text("dated body #" + std::to_string(req.sequence),
                                {{"Last-Modified", modified},
                                 {"Cache-Control", "max-age=1"},
                                 {"X-Version", "1"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/lm");
  ASSERT_EQ(first.status, 200) << first.describe();
  std::this_thread::sleep_for(kPastOneSecond);

  HttpResponse revalidated = get("/static/lm");
  ASSERT_EQ(revalidated.status, 200) << revalidated.describe();
  EXPECT_EQ(revalidated.body, first.body);
  EXPECT_EQ(revalidated.headerOr("X-Version"), "2");
  EXPECT_EQ(revalidated.headerOr("Last-Modified"), modified);
  EXPECT_EQ(revalidated.headerOr("X-Cache"), "REVALIDATED");
  const auto conditional = origin_.lastRequest("/static/lm");
  ASSERT_TRUE(conditional.has_value());
  EXPECT_EQ(conditional->headerOr("If-Modified-Since"), modified);
  EXPECT_FALSE(conditional->hasHeader("If-None-Match"));

  HttpResponse hit = get("/static/lm");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.headerOr("X-Version"), "2");
  EXPECT_EQ(origin_.requestCount("/static/lm"), 2);
}

TEST_F(RevalidationTest, FullAnswerToARevalidationReplacesTheEntry) {
  origin_.handle("/static/changed", [](const OriginRequest& req) {
    const std::string n = std::to_string(req.sequence);
    return OriginResponse::text(
        "content " + n,
        {{"ETag", "\"" + n + "\""},
         {"Cache-Control", req.sequence == 1 ? "max-age=1" : "max-age=60"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/changed");
  ASSERT_EQ(first.body, "content 1") << first.describe();
  std::this_thread::sleep_for(kPastOneSecond);

  HttpResponse changed = get("/static/changed");
  ASSERT_EQ(changed.status, 200) << changed.describe();
  EXPECT_EQ(changed.body, "content 2");
  EXPECT_EQ(changed.headerOr("ETag"), "\"2\"");
  EXPECT_EQ(changed.headerOr("Cache-Status"), "cachecar; fwd=stale; fwd-status=200; stored");
  EXPECT_EQ(origin_.lastRequest("/static/changed")->headerOr("If-None-Match"), "\"1\"");

  HttpResponse hit = get("/static/changed");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT") << hit.describe();
  EXPECT_EQ(hit.body, "content 2");
  EXPECT_EQ(hit.headerOr("ETag"), "\"2\"");
  EXPECT_EQ(origin_.requestCount("/static/changed"), 2);
}

// --- client conditionals answered from the cache ----------------------------------------------

class ConditionalTest : public ProxyFixture {
 protected:
  void SetUp() override {
    modified_ = httpDate(-86400s);
    origin_.handle("/static/cond", [this](const OriginRequest& req) {
      return OriginResponse::text("conditional body #" + std::to_string(req.sequence),
                                  {{"ETag", "\"c1\""},
                                   {"Last-Modified", modified_},
                                   {"Cache-Control", "max-age=600"}});
    });
  }
  std::string modified_;
};

TEST_F(ConditionalTest, MatchingIfNoneMatchGets304FromTheCache) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/cond");
  ASSERT_EQ(first.status, 200) << first.describe();

  for (const char* tag : {"\"c1\"", "W/\"c1\"", "\"other\", \"c1\"", "*"}) {
    SCOPED_TRACE(tag);
    HttpResponse r = get("/static/cond", {std::string("If-None-Match: ") + tag});
    EXPECT_EQ(r.status, 304) << r.describe();
    EXPECT_EQ(r.headerOr("ETag"), "\"c1\"");
    EXPECT_TRUE(r.hasHeader("Age"));
    EXPECT_EQ(r.headerOr("Cache-Control"), "max-age=600");
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.headerOr("X-Cache"), "HIT");
  }
  HttpResponse other = get("/static/cond", {"If-None-Match: \"other\""});
  EXPECT_EQ(other.status, 200) << other.describe();
  EXPECT_EQ(other.body, first.body);
  EXPECT_EQ(origin_.requestCount("/static/cond"), 1);
}

TEST_F(ConditionalTest, IfModifiedSinceGets304FromTheCache) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/cond");
  ASSERT_EQ(first.status, 200) << first.describe();

  HttpResponse same = get("/static/cond", {"If-Modified-Since: " + modified_});
  EXPECT_EQ(same.status, 304) << same.describe();
  EXPECT_EQ(same.headerOr("Last-Modified"), modified_);
  EXPECT_TRUE(same.body.empty());
  HttpResponse later = get("/static/cond", {"If-Modified-Since: " + httpDate(0s)});
  EXPECT_EQ(later.status, 304) << later.describe();
  HttpResponse earlier = get("/static/cond", {"If-Modified-Since: " + httpDate(-30 * 86400s)});
  EXPECT_EQ(earlier.status, 200) << earlier.describe();
  EXPECT_EQ(earlier.body, first.body);
  // If-None-Match wins over If-Modified-Since.
  HttpResponse both = get("/static/cond", {"If-None-Match: \"other\"",
                                           "If-Modified-Since: " + modified_});
  EXPECT_EQ(both.status, 200) << both.describe();
  EXPECT_EQ(origin_.requestCount("/static/cond"), 1);
}

// --- byte ranges from the cache -----------------------------------------------------------

class RangeTest : public ProxyFixture {
 protected:
  void SetUp() override {
    body_ = patternBody(10240);
    origin_.setResponse("/static/big",
                        OriginResponse::text(body_, {{"Cache-Control", "max-age=600"}}));
  }
  std::string body_;
};

TEST_F(RangeTest, RangesAreCutFromTheStoredBody) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse full = get("/static/big");
  ASSERT_EQ(full.status, 200) << full.describe();
  ASSERT_EQ(full.body.size(), body_.size());

  HttpResponse head = get("/static/big", {"Range: bytes=0-99"});
  EXPECT_EQ(head.status, 206) << head.describe();
  EXPECT_EQ(head.headerOr("Content-Range"), "bytes 0-99/10240");
  EXPECT_EQ(head.headerOr("Content-Length"), "100");
  EXPECT_EQ(head.body.size(), 100u);
  EXPECT_TRUE(head.body == body_.substr(0, 100)) << "wrong bytes in 0-99";
  EXPECT_EQ(head.headerOr("X-Cache"), "HIT");

  HttpResponse middle = get("/static/big", {"Range: bytes=5000-5009"});
  EXPECT_EQ(middle.status, 206) << middle.describe();
  EXPECT_EQ(middle.headerOr("Content-Range"), "bytes 5000-5009/10240");
  EXPECT_TRUE(middle.body == body_.substr(5000, 10)) << "wrong bytes in 5000-5009";

  HttpResponse tail = get("/static/big", {"Range: bytes=-10"});
  EXPECT_EQ(tail.status, 206) << tail.describe();
  EXPECT_EQ(tail.headerOr("Content-Range"), "bytes 10230-10239/10240");
  EXPECT_TRUE(tail.body == body_.substr(10230)) << "wrong bytes in the last 10";

  HttpResponse clamped = get("/static/big", {"Range: bytes=10200-99999"});
  EXPECT_EQ(clamped.status, 206) << clamped.describe();
  EXPECT_EQ(clamped.headerOr("Content-Range"), "bytes 10200-10239/10240");
  EXPECT_TRUE(clamped.body == body_.substr(10200));
  EXPECT_EQ(origin_.requestCount("/static/big"), 1);
}

TEST_F(RangeTest, UnsatisfiableRangeIs416) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/big").status, 200);
  HttpResponse r = get("/static/big", {"Range: bytes=20000-"});
  EXPECT_EQ(r.status, 416) << r.describe();
  EXPECT_EQ(r.headerOr("Content-Range"), "bytes */10240");
  EXPECT_TRUE(r.body.empty());
  // The connection is still in a clean state afterwards (no stray body bytes).
  HttpClient client(port());
  HttpResponse a = client.get("/static/big", {"Range: bytes=10240-10300"});
  EXPECT_EQ(a.status, 416) << a.describe();
  HttpResponse b = client.get("/static/big", {"Range: bytes=0-9"});
  EXPECT_EQ(b.status, 206) << b.describe();
  EXPECT_TRUE(b.body == body_.substr(0, 10));
  EXPECT_EQ(origin_.requestCount("/static/big"), 1);
}

TEST_F(RangeTest, SeveralRangesAreNeverCutWrongly) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/big").status, 200);
  // Not cut by the cache: either passed on (this origin ignores Range and sends it all) or the
  // whole stored body (RFC 9110 §14.2 lets a server ignore Range); never a 206 of one part.
  HttpResponse r = get("/static/big", {"Range: bytes=0-9,20-29"});
  EXPECT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(r.body == body_) << "body of " << r.body.size() << " bytes";
  EXPECT_FALSE(r.hasHeader("Content-Range"));
}

// --- request directives ------------------------------------------------------------------

class RequestDirectivesTest : public ProxyFixture {};

TEST_F(RequestDirectivesTest, OnlyIfCachedNeverAsksTheApp) {
  origin_.handle("/static/oic", [](const OriginRequest& req) {
    return OriginResponse::text("oic #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse cold = get("/static/oic", {"Cache-Control: only-if-cached"});
  EXPECT_EQ(cold.status, 504) << cold.describe();
  EXPECT_EQ(origin_.requestCount("/static/oic"), 0);

  HttpResponse stored = get("/static/oic");
  ASSERT_EQ(stored.status, 200) << stored.describe();
  HttpResponse warm = get("/static/oic", {"Cache-Control: only-if-cached"});
  EXPECT_EQ(warm.status, 200) << warm.describe();
  EXPECT_EQ(warm.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(warm.body, stored.body);
  EXPECT_EQ(origin_.requestCount("/static/oic"), 1);
}

TEST_F(RequestDirectivesTest, NoCacheGoesToTheAppConditionallyWhenItCan) {
  origin_.handle("/static/nc", [](const OriginRequest& req) {
    if (req.headerOr("If-None-Match") == "\"n1\"") {
      return notModified({{"ETag", "\"n1\""}, {"Cache-Control", "max-age=600"}});
    }
    return OriginResponse::text("nc #" + std::to_string(req.sequence),
                                {{"ETag", "\"n1\""}, {"Cache-Control", "max-age=600"}});
  });
  origin_.handle("/static/nc-plain", [](const OriginRequest& req) {
    return OriginResponse::text("plain #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/nc");
  ASSERT_EQ(first.status, 200) << first.describe();

  HttpResponse forced = get("/static/nc", {"Cache-Control: no-cache"});
  EXPECT_EQ(forced.status, 200) << forced.describe();
  EXPECT_EQ(forced.body, first.body);
  EXPECT_EQ(forced.headerOr("X-Cache"), "REVALIDATED");
  ASSERT_EQ(origin_.requestCount("/static/nc"), 2) << "no-cache was answered from the cache";
  EXPECT_EQ(origin_.lastRequest("/static/nc")->headerOr("If-None-Match"), "\"n1\"");

  HttpResponse pragma = get("/static/nc", {"Pragma: no-cache"});
  EXPECT_EQ(pragma.status, 200) << pragma.describe();
  EXPECT_EQ(origin_.requestCount("/static/nc"), 3)
      << "Pragma: no-cache was answered from the cache";

  // Without a validator: a full fetch, which then replaces the entry.
  HttpResponse plain = get("/static/nc-plain");
  ASSERT_EQ(plain.status, 200) << plain.describe();
  HttpResponse plain_forced = get("/static/nc-plain", {"Cache-Control: no-cache"});
  EXPECT_EQ(plain_forced.status, 200) << plain_forced.describe();
  EXPECT_NE(plain_forced.body, plain.body);
  EXPECT_FALSE(origin_.lastRequest("/static/nc-plain")->hasHeader("If-None-Match"));
  EXPECT_EQ(origin_.requestCount("/static/nc-plain"), 2);
  HttpResponse plain_hit = get("/static/nc-plain");
  EXPECT_EQ(plain_hit.headerOr("X-Cache"), "HIT") << plain_hit.describe();
  EXPECT_EQ(plain_hit.body, plain_forced.body);
}

TEST_F(RequestDirectivesTest, NoStoreRequestIsNotStored) {
  origin_.handle("/static/ns", [](const OriginRequest& req) {
    return OriginResponse::text("ns #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse secret = get("/static/ns", {"Cache-Control: no-store"});
  ASSERT_EQ(secret.status, 200) << secret.describe();
  EXPECT_FALSE(contains(secret.headerOr("Cache-Status"), "stored"))
      << secret.headerOr("Cache-Status");
  HttpResponse next = get("/static/ns");
  ASSERT_EQ(next.status, 200) << next.describe();
  EXPECT_EQ(next.headerOr("X-Cache"), "MISS") << "the no-store request's answer was kept";
  EXPECT_NE(next.body, secret.body);
  EXPECT_EQ(origin_.requestCount("/static/ns"), 2);
}

}  // namespace
}  // namespace cachecar::testing

namespace cachecar::testing {
namespace {

// A 304 that sets a cookie and changes a field: the client that caused it gets both, the
// stored head gets the field and never the cookie, and the next client gets no cookie.
TEST_F(RevalidationTest, A304sNewFieldsReachTheClientButItsCookieIsNeverStored) {
  origin_.handle("/static/always", [](const OriginRequest& req) {
    if (req.headerOr("If-None-Match") == "\"v1\"") {
      OriginResponse r = notModified({{"ETag", "\"v1\""}, {"X-Version", "2"}});
      if (req.hasHeader("X-Login")) {
        r.headers.emplace_back("Set-Cookie", "session=alice");
      }
      return r;
    }
    return OriginResponse::text("page", {{"ETag", "\"v1\""},
                                         {"Cache-Control", "public, no-cache"},
                                         {"X-Version", "1"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/always").status, 200);

  const HttpResponse alice = get("/static/always", {"X-Login: alice"});
  ASSERT_EQ(alice.status, 200) << alice.describe();
  EXPECT_EQ(alice.headerOr("X-Cache"), "REVALIDATED") << alice.describe();
  EXPECT_EQ(alice.headerOr("Set-Cookie"), "session=alice") << alice.describe();
  EXPECT_EQ(alice.headerOr("X-Version"), "2") << alice.describe();
  EXPECT_EQ(alice.body, "page");

  const HttpResponse bob = get("/static/always");
  ASSERT_EQ(bob.status, 200) << bob.describe();
  EXPECT_FALSE(bob.hasHeader("Set-Cookie")) << bob.describe();
  EXPECT_EQ(bob.headerOr("X-Version"), "2") << bob.describe();
  EXPECT_EQ(origin_.requestCount("/static/always"), 3);
}

}  // namespace
}  // namespace cachecar::testing
