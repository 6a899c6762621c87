#include "cachecar/cache/cache_key.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace cachecar::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

http::RequestHead get(std::string target, Fields fields = {{"Host", "example.com"}},
                      std::string method = "GET") {
  http::RequestHead r;
  r.method = std::move(method);
  r.target = std::move(target);
  for (auto& [name, value] : fields) {
    r.headers.add(std::move(name), std::move(value));
  }
  return r;
}

CacheKey key(const http::RequestHead& r, const config::KeySettings& settings = {}) {
  return buildCacheKey("shop", 3, settings, r);
}

bool isPrintable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x21 && u <= 0x7e;
  });
}

// "h" + 32 lowercase hex digits.
bool isHashedPart(std::string_view s) {
  return s.size() == 33 && s[0] == 'h' && std::all_of(s.begin() + 1, s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

TEST(KeyNamespaceTest, VersionBumpsKeyIsOutsideEveryVersionNamespace) {
  EXPECT_EQ(versionBumpsKey("shop"), "shop:version-bumps");
  for (int64_t version : {0, 1, 2, 10, -1}) {
    EXPECT_FALSE(versionBumpsKey("shop").starts_with(keyNamespace("shop", version))) << version;
  }
}

TEST(KeyNamespaceTest, Layout) {
  EXPECT_EQ(keyNamespace("shop", 1), "shop:1:");
  EXPECT_EQ(keyNamespace("", 0), ":0:");
  EXPECT_EQ(keyNamespace("a:b", -2), "a:b:-2:");
  EXPECT_EQ(keyNamespace("p", 9223372036854775807), "p:9223372036854775807:");
}

TEST(CacheKeyTest, Layout) {
  const CacheKey k = key(get("/products/42?b=2&a=1"));
  EXPECT_EQ(k.identity, "g|example.com|/products/42|a=1&b=2");
  EXPECT_EQ(k.storage_key, "shop:3:g|example.com|/products/42|a=1&b=2");
  EXPECT_EQ(k.storage_key.rfind(keyNamespace("shop", 3), 0), 0u);
}

// The first example in the README's key layout section.
TEST(CacheKeyTest, ReadmeExample) {
  config::KeySettings settings;
  settings.query = std::vector<std::string>{"page", "sort"};
  settings.headers = {"Accept-Language"};
  const http::RequestHead r = get("/products?utm_source=mail&sort=price&page=2",
                                  {{"Host", "Shop.Example.com:80"}, {"Accept-Language", "de"}});
  EXPECT_EQ(key(r, settings).storage_key,
            "shop:3:g|shop.example.com|/products|page=2&sort=price|h:accept-language=de");
}

TEST(CacheKeyTest, NoQuery) {
  EXPECT_EQ(key(get("/")).identity, "g|example.com|/|");
  EXPECT_EQ(key(get("/?")).identity, "g|example.com|/|");
  EXPECT_EQ(key(get("/?&&")).identity, "g|example.com|/|");
}

TEST(CacheKeyTest, VersionAndPrefixSeparateEntries) {
  const http::RequestHead r = get("/x");
  const config::KeySettings none;
  EXPECT_NE(buildCacheKey("shop", 1, none, r).storage_key,
            buildCacheKey("shop", 2, none, r).storage_key);
  EXPECT_NE(buildCacheKey("shop", 1, none, r).storage_key,
            buildCacheKey("blog", 1, none, r).storage_key);
  // The identity is the request part alone; the namespace is in the storage key.
  EXPECT_EQ(buildCacheKey("shop", 1, none, r).identity, buildCacheKey("blog", 2, none, r).identity);
}

TEST(CacheKeyTest, GetAndHeadShareTheKey) {
  const CacheKey g = key(get("/a?x=1"));
  const CacheKey h = key(get("/a?x=1", {{"Host", "example.com"}}, "HEAD"));
  EXPECT_EQ(g.storage_key, h.storage_key);
  EXPECT_EQ(g.identity, h.identity);
  const CacheKey other = key(get("/a?x=1", {{"Host", "example.com"}}, "OPTIONS"));
  EXPECT_NE(g.identity, other.identity);
  EXPECT_EQ(other.identity, "m:OPTIONS|example.com|/a|x=1");
}

TEST(CacheKeyTest, QueryOrderDoesNotMatter) {
  EXPECT_EQ(key(get("/s?q=shoes&page=2&sort=asc")).storage_key,
            key(get("/s?sort=asc&q=shoes&page=2")).storage_key);
  EXPECT_EQ(key(get("/s?a=2&a=1")).identity, key(get("/s?a=1&a=2")).identity);
  EXPECT_NE(key(get("/s?a=1")).identity, key(get("/s?a=2")).identity);
  EXPECT_NE(key(get("/s?a=1")).identity, key(get("/s")).identity);
}

TEST(CacheKeyTest, QueryFilteredByRoute) {
  config::KeySettings settings;
  settings.query = std::vector<std::string>{"page", "sort"};
  const CacheKey k = key(get("/s?utm_source=x&sort=asc&fbclid=1&page=2"), settings);
  EXPECT_EQ(k.identity, "g|example.com|/s|page=2&sort=asc");
  EXPECT_EQ(k.storage_key, key(get("/s?page=2&sort=asc&utm_campaign=y"), settings).storage_key);
  EXPECT_NE(k.storage_key, key(get("/s?page=3&sort=asc"), settings).storage_key);
  // An empty list keeps no parameter at all.
  settings.query = std::vector<std::string>{};
  EXPECT_EQ(key(get("/s?page=2"), settings).identity, "g|example.com|/s|");
}

TEST(CacheKeyTest, HostsDiffer) {
  EXPECT_NE(key(get("/", {{"Host", "a.example"}})).storage_key,
            key(get("/", {{"Host", "b.example"}})).storage_key);
}

TEST(CacheKeyTest, HostNormalized) {
  const std::string expected = "g|example.com|/|";
  EXPECT_EQ(key(get("/", {{"Host", "Example.COM"}})).identity, expected);
  EXPECT_EQ(key(get("/", {{"Host", "example.com:80"}})).identity, expected);
  EXPECT_EQ(key(get("/", {{"Host", "example.com:"}})).identity, expected);
  EXPECT_EQ(key(get("/", {{"Host", " example.com "}})).identity, expected);
  EXPECT_EQ(key(get("/", {{"Host", "example.com:8080"}})).identity, "g|example.com:8080|/|");
  EXPECT_EQ(key(get("/", {{"Host", "[::1]:80"}})).identity, "g|[::1]|/|");
  EXPECT_EQ(key(get("/", {})).identity, "g||/|");
}

TEST(CacheKeyTest, AbsoluteFormUsesItsAuthority) {
  const Fields other_host = {{"Host", "ignored.example"}};
  EXPECT_EQ(key(get("http://Example.com:80/a?b=1", other_host)).identity, "g|example.com|/a|b=1");
  EXPECT_EQ(key(get("http://user:pw@example.com/a", other_host)).identity, "g|example.com|/a|");
  EXPECT_EQ(key(get("http://example.com", other_host)).identity, "g|example.com|/|");
  EXPECT_EQ(key(get("http://example.com?x=1", other_host)).identity, "g|example.com|/|x=1");
  EXPECT_EQ(key(get("https://example.com:443/", other_host)).identity, "g|example.com|/|");
  EXPECT_EQ(key(get("http://example.com:443/", other_host)).identity, "g|example.com:443|/|");
}

TEST(CacheKeyTest, KeyHeaders) {
  config::KeySettings settings;
  settings.headers = {"Accept-Language", "X-Variant"};
  const CacheKey en =
      key(get("/", {{"Host", "example.com"}, {"accept-language", " en "}, {"X-Variant", "b"}}),
          settings);
  EXPECT_EQ(en.identity, "g|example.com|/||h:accept-language=en|h:x-variant=b");
  const CacheKey fr = key(
      get("/", {{"Host", "example.com"}, {"Accept-Language", "fr"}, {"X-Variant", "b"}}), settings);
  EXPECT_NE(en.storage_key, fr.storage_key);
  // Absent and empty are different variants.
  const CacheKey absent = key(get("/"), settings);
  const CacheKey empty = key(
      get("/", {{"Host", "example.com"}, {"Accept-Language", ""}, {"X-Variant", ""}}), settings);
  EXPECT_EQ(absent.identity, "g|example.com|/||h:accept-language!|h:x-variant!");
  EXPECT_EQ(empty.identity, "g|example.com|/||h:accept-language=|h:x-variant=");
  // Repeated fields are combined in order.
  const CacheKey twice =
      key(get("/", {{"Host", "example.com"}, {"X-Variant", "a"}, {"x-variant", "b"}}), settings);
  EXPECT_EQ(twice.identity, "g|example.com|/||h:accept-language!|h:x-variant=a, b");
  // Headers that are not configured do not matter.
  EXPECT_EQ(key(get("/", {{"Host", "example.com"}, {"User-Agent", "x"}})).storage_key,
            key(get("/", {{"Host", "example.com"}, {"User-Agent", "y"}})).storage_key);
}

TEST(CacheKeyTest, KeyCookies) {
  config::KeySettings settings;
  settings.cookies = {"lang", "theme"};
  const CacheKey k = key(
      get("/", {{"Host", "example.com"}, {"Cookie", "sid=secret; lang=de;theme=dark"}}), settings);
  EXPECT_EQ(k.identity, "g|example.com|/||c:lang=de|c:theme=dark");
  // Other cookies (a session id) do not enter the key.
  EXPECT_EQ(k.storage_key,
            key(get("/", {{"Host", "example.com"}, {"Cookie", "theme=dark; lang=de; sid=other"}}),
                settings)
                .storage_key);
  // Cookies split over several fields; every occurrence of a name counts, in order (apps
  // differ on which one they read), names compared without case and percent-decoded.
  EXPECT_EQ(
      key(get("/",
              {{"Host", "example.com"}, {"Cookie", "lang=it"}, {"cookie", "theme=light; lang=en"}}),
          settings)
          .identity,
      "g|example.com|/||c:lang=it; en|c:theme=light");
  EXPECT_EQ(key(get("/"), settings).identity, "g|example.com|/||c:lang!|c:theme!");
  EXPECT_EQ(
      key(get("/", {{"Host", "example.com"}, {"Cookie", "lang=; Lang=x; language=y; l%61ng=z"}}),
          settings)
          .identity,
      "g|example.com|/||c:lang=; x; z|c:theme!");
  EXPECT_NE(key(get("/", {{"Host", "example.com"}, {"Cookie", "lang=de"}}), settings).storage_key,
            key(get("/", {{"Host", "example.com"}, {"Cookie", "lang=fr"}}), settings).storage_key);
}

TEST(CacheKeyTest, SeparatorsInValuesCannotForgeAnotherKey) {
  // Without escaping, host "a|/x" + path "/y" and host "a" + path "/x|/y" would both read
  // "g|a|/x|/y|".
  const CacheKey forged = key(get("/y", {{"Host", "a|/x"}}));
  const CacheKey real = key(get("/x|/y", {{"Host", "a"}}));
  EXPECT_NE(forged.identity, real.identity);
  EXPECT_NE(forged.storage_key, real.storage_key);
  EXPECT_EQ(real.identity, "g|a|/x\\|/y|");

  config::KeySettings settings;
  settings.headers = {"X-A", "X-B"};
  const CacheKey one = key(get("/", {{"Host", "h"}, {"X-A", "1|h:x-b=2"}}), settings);
  const CacheKey two = key(get("/", {{"Host", "h"}, {"X-A", "1"}, {"X-B", "2"}}), settings);
  EXPECT_NE(one.identity, two.identity);
  EXPECT_NE(key(get("/a\\|b")).identity, key(get("/a|b")).identity);
}

TEST(CacheKeyTest, LongTargetIsHashedButIdentityStaysFull) {
  const std::string long_path = "/" + std::string(3000, 'p');
  const CacheKey k = key(get(long_path + "?z=1&a=2"));
  EXPECT_LE(k.storage_key.size(), 250u);
  EXPECT_TRUE(isPrintable(k.storage_key));
  ASSERT_EQ(k.storage_key.rfind("shop:3:", 0), 0u);
  EXPECT_TRUE(isHashedPart(std::string_view(k.storage_key).substr(7))) << k.storage_key;
  EXPECT_EQ(k.identity, "g|example.com|" + long_path + "|a=2&z=1");
  // Stable: the same request gives the same key; a different one another key.
  EXPECT_EQ(k.storage_key, key(get(long_path + "?a=2&z=1")).storage_key);
  EXPECT_NE(k.storage_key, key(get(long_path + "?a=2&z=2")).storage_key);
}

TEST(CacheKeyTest, LengthBoundary) {
  // "g|example.com|" + path + "|" is 200 bytes: kept as is; one byte more: hashed.
  const std::string prefix = "g|example.com|";
  const std::string path200 = "/" + std::string(200 - prefix.size() - 2, 'x');
  const CacheKey at = key(get(path200));
  EXPECT_EQ(at.identity.size(), 200u);
  EXPECT_EQ(at.storage_key, "shop:3:" + at.identity);
  const CacheKey over = key(get(path200 + "x"));
  EXPECT_EQ(over.identity.size(), 201u);
  EXPECT_TRUE(isHashedPart(std::string_view(over.storage_key).substr(7)));
}

TEST(CacheKeyTest, UnprintableBytesAreHashed) {
  const std::vector<std::string> paths = {"/caf\xc3\xa9", "/a b", "/tab\there",
                                          std::string("/nul\0x", 6), "/del\x7f"};
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    const CacheKey k = key(get(path));
    EXPECT_TRUE(isPrintable(k.storage_key));
    EXPECT_TRUE(isHashedPart(std::string_view(k.storage_key).substr(7))) << k.storage_key;
    EXPECT_EQ(k.identity, "g|example.com|" + path + "|");
  }
  // A space in a key header value hashes the key too, and keeps variants apart.
  config::KeySettings settings;
  settings.headers = {"Accept-Language"};
  const CacheKey a = key(get("/", {{"Host", "h"}, {"Accept-Language", "en, fr"}}), settings);
  const CacheKey b = key(get("/", {{"Host", "h"}, {"Accept-Language", "en, de"}}), settings);
  EXPECT_TRUE(isHashedPart(std::string_view(a.storage_key).substr(7)));
  EXPECT_NE(a.storage_key, b.storage_key);
}

TEST(CacheKeyTest, HashIsStableAcrossBuilds) {
  // Pods of different builds share one Redis: the hashed form must never change silently.
  // The digits are XXH3-128 of the request part, high half first (the form `xxhsum -H2`
  // prints), so an operator can recompute a key by hand.
  const CacheKey k = key(get("/" + std::string(300, 'a')));
  EXPECT_EQ(k.identity, "g|example.com|/" + std::string(300, 'a') + "|");
  EXPECT_EQ(k.storage_key, "shop:3:he5cc2b6894b5db824a8d2004ca868e4a");
  // Unprintable bytes in the request part (a request that never went through normalization).
  EXPECT_EQ(key(get("/caf\xc3\xa9")).storage_key, "shop:3:h5e76c8cfbc262922f504dfcf4c046ee1");
  // The hashed example in the README's key layout section.
  config::KeySettings settings;
  settings.headers = {"Accept-Language"};
  EXPECT_EQ(key(get("/products", {{"Host", "example.com"}, {"Accept-Language", "de, en;q=0.5"}}),
                settings)
                .storage_key,
            "shop:3:h5585b76d09a78697aef2451215256a91");
}

TEST(NormalizeQueryTest, Table) {
  const std::vector<std::string> allowed = {"a", "c"};
  struct Case {
    std::string query;
    const std::vector<std::string>* allowed;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", nullptr, ""},
      {"b=2&a=1", nullptr, "a=1&b=2"},
      {"&&b=2&&a=1&", nullptr, "a=1&b=2"},
      {"a=2&a=1&a", nullptr, "a&a=1&a=2"},
      {"flag&x=1", nullptr, "flag&x=1"},
      {"b=2&a=1&c=3&ab=4", &allowed, "a=1&c=3"},
      {"a&c=&cc=1&b", &allowed, "a&c="},
      {"b=1", &allowed, ""},
      {"q=a%20b&p=%26", nullptr, "p=%26&q=a%20b"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.query);
    EXPECT_EQ(normalizeQuery(c.query, c.allowed), c.expected);
  }
}

TEST(NormalizeQueryTest, ManyParameters) {
  // More parameters than the inline buffer holds.
  std::string query;
  std::string expected;
  for (int i = 39; i >= 0; --i) {
    query += (query.empty() ? "" : "&") + std::string("p") + static_cast<char>('A' + i) + "=1";
  }
  for (int i = 0; i < 40; ++i) {
    expected +=
        (expected.empty() ? "" : "&") + std::string("p") + static_cast<char>('A' + i) + "=1";
  }
  EXPECT_EQ(normalizeQuery(query, nullptr), expected);
  const std::vector<std::string> allowed = {"pA", "pZ"};
  // Names compare case-insensitively (some frameworks read "pa" as "pA"), so "pa" is kept too.
  EXPECT_EQ(normalizeQuery(query, &allowed), "pA=1&pZ=1&pa=1");
}

}  // namespace
}  // namespace cachecar::cache

namespace cachecar::cache {
namespace {

// An app may read "pag%65", "PAGE" or "utm=x;page" as `page`: a filtered key must keep any
// parameter that could carry an allowed name, or the app's answer to it would be stored
// under the key of a request without it.
TEST(CacheKeyTest, FilteredQueryKeepsParametersAnAppCouldReadAsAnAllowedOne) {
  config::KeySettings settings;
  settings.query = std::vector<std::string>{"page"};
  for (const char* target : {"/api/x?page=1&pag%65=666", "/api/x?page=1&PAGE=666",
                             "/api/x?page=1&utm=x;page=666", "/api/x?page=1&pa%67e=666",
                             "/api/x?page=1;page=666"}) {
    EXPECT_NE(key(get(target), settings).identity, key(get("/api/x?page=1"), settings).identity)
        << target;
  }
  // What is truly not the parameter still leaves the key.
  EXPECT_EQ(key(get("/api/x?page=1&utm_source=mail"), settings).identity,
            key(get("/api/x?page=1"), settings).identity);
}

TEST(CacheKeyTest, TrustedForwardingFieldsEnterTheKey) {
  const CacheKey direct = key(get("/p", {{"Host", "shop.test"}}));
  const CacheKey https = key(get("/p", {{"Host", "shop.test"}, {"X-Forwarded-Proto", "https"}}));
  const CacheKey other_host =
      key(get("/p", {{"Host", "shop.test"}, {"X-Forwarded-Host", "evil.test"}}));
  EXPECT_NE(direct.identity, https.identity);
  EXPECT_NE(direct.identity, other_host.identity);
  EXPECT_NE(https.identity, other_host.identity);
  // After the primary part, like key headers, so a purge of the URL's prefix reaches them.
  EXPECT_EQ(https.identity.rfind(direct.identity, 0), 0u) << https.identity;
  // Per-client fields (X-Forwarded-For) do not split the cache.
  EXPECT_EQ(key(get("/p", {{"Host", "shop.test"}, {"X-Forwarded-For", "1.2.3.4"}})).identity,
            direct.identity);
}

}  // namespace
}  // namespace cachecar::cache
