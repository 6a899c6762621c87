#include "cachecar/admin/purge_target.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar::admin {
namespace {

struct UrlCase {
  std::string_view url;
  std::optional<PurgeTarget> want;         // nullopt: must be an Error
  std::vector<std::string_view> mentions;  // for errors: substrings the message must hold
};
const std::vector<std::string_view> kNoMentions;

TEST(ParsePurgeUrlTest, SplitsAbsoluteUrlsAndExplainsWhatIsWrong) {
  const UrlCase cases[] = {
      {"http://shop.example/products/1", PurgeTarget{"http", "shop.example", "/products/1", ""},
       kNoMentions},
      {"http://Shop.Example/products/1?a=1",
       PurgeTarget{"http", "shop.example", "/products/1", "a=1"}, kNoMentions},
      {"HTTPS://SHOP.example:8443/A/B?X=Y&z",
       PurgeTarget{"https", "shop.example:8443", "/A/B", "X=Y&z"}, kNoMentions},
      {"http://shop.example", PurgeTarget{"http", "shop.example", "/", ""}, kNoMentions},
      {"http://shop.example?page=2", PurgeTarget{"http", "shop.example", "/", "page=2"},
       kNoMentions},
      {"http://shop.example/#top", PurgeTarget{"http", "shop.example", "/", ""}, kNoMentions},
      {"http://shop.example/a?b=1#frag?x", PurgeTarget{"http", "shop.example", "/a", "b=1"},
       kNoMentions},
      {"http://user:pw@shop.example/a", PurgeTarget{"http", "shop.example", "/a", ""}, kNoMentions},
      {"http://a@b@shop.example/a", PurgeTarget{"http", "shop.example", "/a", ""}, kNoMentions},
      {"http://[::1]:8080/x", PurgeTarget{"http", "[::1]:8080", "/x", ""}, kNoMentions},
      {"http://[FE80::1]/x", PurgeTarget{"http", "[fe80::1]", "/x", ""}, kNoMentions},
      {"http://shop.example:/x", PurgeTarget{"http", "shop.example:", "/x", ""}, kNoMentions},
      {"http://127.0.0.1:8000/x", PurgeTarget{"http", "127.0.0.1:8000", "/x", ""}, kNoMentions},
      // Escapes stay as sent (and as the cache key has them); only the host is lowercased.
      {"http://shop.example/caf%C3%a9?q=%2F",
       PurgeTarget{"http", "shop.example", "/caf%C3%a9", "q=%2F"}, kNoMentions},
      // What a browser would have escaped is escaped the same way.
      {"http://shop.example/a b/caf\xC3\xA9?q=x y",
       PurgeTarget{"http", "shop.example", "/a%20b/caf%C3%A9", "q=x%20y"}, kNoMentions},
      {"http://shop.example/{x}|\"<>",
       PurgeTarget{"http", "shop.example", "/%7Bx%7D%7C%22%3C%3E", ""}, kNoMentions},
      {"http://shop.example//double//slash",
       PurgeTarget{"http", "shop.example", "//double//slash", ""}, kNoMentions},

      {"", std::nullopt, {"empty", "absolute", "keyed by host"}},
      {"/products/1",
       std::nullopt,
       {"absolute", "http://shop.example/products/1", "keyed by host"}},
      {"/", std::nullopt, {"absolute", "keyed by host"}},
      {"//shop.example/products/1", std::nullopt, {"absolute", "http"}},
      {"shop.example/products/1", std::nullopt, {"absolute", "keyed by host"}},
      {"localhost:8080/x", std::nullopt, {"absolute", "keyed by host"}},
      {"products/1", std::nullopt, {"absolute"}},
      {"1http://shop.example/", std::nullopt, {"absolute"}},
      {"ftp://shop.example/file", std::nullopt, {"scheme 'ftp'", "http and https"}},
      {"ws://shop.example/", std::nullopt, {"scheme 'ws'"}},
      {"http:///products/1", std::nullopt, {"no host", "keyed by host"}},
      {"http://", std::nullopt, {"no host"}},
      {"http://user@/x", std::nullopt, {"no host"}},
      {"http://:8080/x", std::nullopt, {"no host"}},
      {"http://shop.example:80x/", std::nullopt, {"port"}},
      {"http://shop.example:123456/", std::nullopt, {"port"}},
      {"http://shop.example:65536/", std::nullopt, {"out of range"}},
      {"http://sh op.example/", std::nullopt, {"host"}},
      {"http://shop<.example/", std::nullopt, {"host"}},
      {"http://[::1/x", std::nullopt, {"'['"}},
      {"http://[::1]x/", std::nullopt, {"after ']'"}},
      {"http://[zz::<]/", std::nullopt, {"IP literal"}},
      {"http://shop.example/a\r\nX-Injected: 1", std::nullopt, {"control character", "0D"}},
      {std::string_view("http://shop.example/\0", 21), std::nullopt, {"control character"}},
      {"http://shop.example/\x7F", std::nullopt, {"control character"}},
  };
  for (const UrlCase& c : cases) {
    SCOPED_TRACE(std::string(c.url));
    const Result<PurgeTarget> got = parsePurgeUrl(c.url);
    if (c.want) {
      ASSERT_TRUE(got.ok()) << got.error().message;
      EXPECT_EQ(got->scheme, c.want->scheme);
      EXPECT_EQ(got->host, c.want->host);
      EXPECT_EQ(got->path, c.want->path);
      EXPECT_EQ(got->query, c.want->query);
    } else {
      ASSERT_FALSE(got.ok()) << "parsed as host=" << got->host << " path=" << got->path;
      for (std::string_view needle : c.mentions) {
        EXPECT_NE(got.error().message.find(needle), std::string::npos)
            << "'" << got.error().message << "' does not mention '" << needle << "'";
      }
    }
  }
}

struct DecodeCase {
  std::string_view in;
  std::optional<std::string_view> want;  // nullopt: must be an Error
};

TEST(DecodeQueryValueTest, DecodesFormEncodingAndRejectsBrokenEscapes) {
  const DecodeCase cases[] = {
      {"", ""},
      {"plain", "plain"},
      {"a+b", "a b"},
      {"a%20b", "a b"},
      {"%2B", "+"},
      {"%2b", "+"},
      {"%25", "%"},
      {"%2525", "%25"},
      {"http%3A%2F%2FShop.Example%2Fproducts%2F1%3Fa%3D1", "http://Shop.Example/products/1?a=1"},
      {"%C3%A9", "\xC3\xA9"},
      {"%00", std::string_view("\0", 1)},
      {"%FF", "\xFF"},
      {"100%", std::nullopt},
      {"%", std::nullopt},
      {"%2", std::nullopt},
      {"%zz", std::nullopt},
      {"%g0", std::nullopt},
      {"%0g", std::nullopt},
      {"a%2", std::nullopt},
      {"%%41", std::nullopt},
  };
  for (const DecodeCase& c : cases) {
    SCOPED_TRACE(std::string(c.in));
    const Result<std::string> got = decodeQueryValue(c.in);
    if (c.want) {
      ASSERT_TRUE(got.ok()) << got.error().message;
      EXPECT_EQ(*got, *c.want);
    } else {
      ASSERT_FALSE(got.ok()) << "decoded to '" << *got << "'";
      EXPECT_NE(got.error().message.find("percent-escape"), std::string::npos)
          << got.error().message;
      EXPECT_NE(got.error().message.find("%25"), std::string::npos) << got.error().message;
    }
  }
}

TEST(DecodeQueryValueTest, ErrorNamesTheOffset) {
  const Result<std::string> got = decodeQueryValue("abc%4");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("'%4'"), std::string::npos) << got.error().message;
  EXPECT_NE(got.error().message.find("offset 3"), std::string::npos) << got.error().message;
}

TEST(ParseQueryStringTest, SplitsAndDecodesParameters) {
  struct Case {
    std::string_view in;
    std::vector<QueryParam> want;
  };
  const Case cases[] = {
      {"", {}},
      {"url=a", {{"url", "a"}}},
      {"cache=default&x", {{"cache", "default"}, {"x", ""}}},
      {"a=&&b=2&", {{"a", ""}, {"b", "2"}}},
      {"url=http%3A%2F%2Fh%2Fp%3Fa%3D1%26b%3D2", {{"url", "http://h/p?a=1&b=2"}}},
      {"na%6De=v+w", {{"name", "v w"}}},
      {"k=a=b", {{"k", "a=b"}}},
      {"=v", {{"", "v"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.in));
    const auto got = parseQueryString(c.in);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(*got, c.want);
  }
}

TEST(ParseQueryStringTest, NamesTheParameterWithABrokenEscape) {
  const auto bad_value = parseQueryString("cache=x&url=%zz");
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.error().message.find("'url'"), std::string::npos)
      << bad_value.error().message;
  const auto bad_name = parseQueryString("u%rl=x");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().message.find("'u%rl'"), std::string::npos) << bad_name.error().message;
}

TEST(ConstantTimeEqualsTest, EqualOnlyForIdenticalBytes) {
  EXPECT_TRUE(constantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "s3creT"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "t3cret"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "s3cre"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "s3crets3cret"));  // the secret repeated
  EXPECT_FALSE(constantTimeEquals("s3cret", std::string_view("s3cret\0", 7)));
  EXPECT_FALSE(constantTimeEquals("s3cret", ""));
  EXPECT_FALSE(constantTimeEquals("", "x"));
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(constantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

}  // namespace
}  // namespace cachecar::admin
