#include "cachecar/cache/cache_control.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

// The tables spell expected values with designated initializers; g++ 12 warns that the members
// left out (value-initialized, exactly what is meant) have no initializer.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace cachecar::cache {
namespace {

constexpr int64_t kTwoTo31 = int64_t{1} << 31;

http::HeaderMap cacheControl(const std::vector<std::string>& fields) {
  http::HeaderMap headers;
  headers.add("Content-Type", "text/html");
  for (const std::string& value : fields) {
    headers.add("Cache-Control", value);
  }
  return headers;
}

std::string describe(const std::optional<int64_t>& v) {
  return v ? std::to_string(*v) : std::string("-");
}

std::string describe(const std::vector<std::string>& fields) {
  std::string out = "[";
  for (const std::string& f : fields) {
    out += "<" + f + ">";
  }
  return out + "]";
}

// One line per field, so a failing case shows exactly which directive differs.
std::string describe(const ResponseCacheControl& cc) {
  std::ostringstream out;
  out << "no_store=" << cc.no_store << " no_cache=" << cc.no_cache
      << " no_cache_fields=" << describe(cc.no_cache_fields) << " private=" << cc.is_private
      << " private_fields=" << describe(cc.private_fields) << " public=" << cc.is_public
      << " must_revalidate=" << cc.must_revalidate << " proxy_revalidate=" << cc.proxy_revalidate
      << " must_understand=" << cc.must_understand << " no_transform=" << cc.no_transform
      << " immutable=" << cc.immutable << " max_age=" << describe(cc.max_age)
      << " s_maxage=" << describe(cc.s_maxage) << " swr=" << describe(cc.stale_while_revalidate)
      << " sie=" << describe(cc.stale_if_error);
  return out.str();
}

std::string describe(const RequestCacheControl& cc) {
  std::ostringstream out;
  out << "no_store=" << cc.no_store << " no_cache=" << cc.no_cache
      << " only_if_cached=" << cc.only_if_cached << " max_age=" << describe(cc.max_age)
      << " max_stale_any=" << cc.max_stale_any << " max_stale=" << describe(cc.max_stale)
      << " min_fresh=" << describe(cc.min_fresh);
  return out.str();
}

struct ResponseCase {
  std::string name;
  std::vector<std::string> fields;  // each one Cache-Control field
  ResponseCacheControl expected;
};

TEST(ResponseCacheControlTest, Table) {
  const std::vector<ResponseCase> cases = {
      {"absent", {}, {}},
      {"empty", {""}, {}},
      {"max-age", {"max-age=60"}, {.max_age = 60}},
      {"names are case-insensitive", {"MAX-Age=60, No-Store"}, {.no_store = true, .max_age = 60}},
      {"quoted delta", {"max-age=\"60\""}, {.max_age = 60}},
      {"zero", {"max-age=0"}, {.max_age = 0}},
      {"leading zeros", {"max-age=007"}, {.max_age = 7}},
      {"invalid max-age is stale", {"max-age=abc"}, {.max_age = 0}},
      {"negative max-age is stale", {"max-age=-1"}, {.max_age = 0}},
      {"fractional max-age is stale", {"max-age=1.5"}, {.max_age = 0}},
      {"max-age without value is stale", {"max-age"}, {.max_age = 0}},
      {"max-age with empty value is stale", {"max-age="}, {.max_age = 0}},
      {"overflow clamps to 2^31", {"max-age=99999999999999999999999"}, {.max_age = kTwoTo31}},
      {"2^31 exactly", {"max-age=2147483648"}, {.max_age = kTwoTo31}},
      {"below 2^31", {"max-age=2147483647"}, {.max_age = kTwoTo31 - 1}},
      {"same duplicate kept", {"max-age=60, max-age=60"}, {.max_age = 60}},
      {"conflicting duplicate is stale", {"max-age=60, max-age=120"}, {.max_age = 0}},
      {"conflict across fields is stale", {"max-age=60", "max-age=120"}, {.max_age = 0}},
      {"conflicting s-maxage is stale", {"s-maxage=5, s-maxage=6"}, {.s_maxage = 0}},
      {"s-maxage and max-age", {"s-maxage=10, max-age=60"}, {.max_age = 60, .s_maxage = 10}},
      {"invalid s-maxage is stale", {"s-maxage=x"}, {.s_maxage = 0}},
      {"no-store", {"no-store"}, {.no_store = true}},
      {"no-cache unqualified", {"no-cache"}, {.no_cache = true}},
      {"no-cache with fields",
       {"no-cache=\"Set-Cookie, X-Foo\""},
       {.no_cache_fields = {"Set-Cookie", "X-Foo"}}},
      {"no-cache with token field", {"no-cache=Set-Cookie"}, {.no_cache_fields = {"Set-Cookie"}}},
      {"no-cache with empty list counts as unqualified", {"no-cache=\"\""}, {.no_cache = true}},
      {"no-cache field list with empty members",
       {"no-cache=\" , A,,B ,\""},
       {.no_cache_fields = {"A", "B"}}},
      {"no-cache both forms",
       {"no-cache=\"A\", no-cache"},
       {.no_cache = true, .no_cache_fields = {"A"}}},
      {"private unqualified", {"private"}, {.is_private = true}},
      {"private with field", {"private=\"X-Name\""}, {.private_fields = {"X-Name"}}},
      {"private lists accumulate",
       {"private=\"A\"", "private=\"B\""},
       {.private_fields = {"A", "B"}}},
      {"flags",
       {"public, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable"},
       {.is_public = true,
        .must_revalidate = true,
        .proxy_revalidate = true,
        .must_understand = true,
        .no_transform = true,
        .immutable = true}},
      {"stale extensions",
       {"stale-while-revalidate=30, stale-if-error=600"},
       {.stale_while_revalidate = 30, .stale_if_error = 600}},
      {"invalid stale-if-error ignored", {"stale-if-error=abc"}, {}},
      {"first valid stale-if-error wins",
       {"stale-if-error=abc, stale-if-error=10, stale-if-error=20"},
       {.stale_if_error = 10}},
      {"stale-while-revalidate first wins",
       {"stale-while-revalidate=10", "stale-while-revalidate=20"},
       {.stale_while_revalidate = 10}},
      {"stale-while-revalidate without value ignored", {"stale-while-revalidate"}, {}},
      {"whitespace and empty elements",
       {" ,\t, max-age=5 ,,  no-store , "},
       {.no_store = true, .max_age = 5}},
      {"spaces around equals", {"max-age = 5"}, {.max_age = 5}},
      {"unknown directives ignored",
       {"foo=bar, community=\"UCI\", max-age=5, baz"},
       {.max_age = 5}},
      {"comma inside a quoted value does not split",
       {"foo=\"a, no-store, max-age=1\", max-age=7"},
       {.max_age = 7}},
      {"escaped quote inside quoted value",
       {R"(foo="a\", no-store", public)"},
       {.is_public = true}},
      {"backslash escape in field name",
       {R"(private="X-\Na\"me")"},
       {.private_fields = {"X-Na\"me"}}},
      {"junk after a value is skipped",
       {"max-age=5 junk, no-store"},
       {.no_store = true, .max_age = 5}},
      {"unterminated quote runs to the end",
       {"no-cache=\"Set-Cookie, X-A"},
       {.no_cache_fields = {"Set-Cookie", "X-A"}}},
      {"prefix of a directive is not the directive", {"no-stored, max-ages=5"}, {}},
      {"directive split across fields",
       {"no-store", "private"},
       {.no_store = true, .is_private = true}},
  };
  for (const ResponseCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(describe(parseResponseCacheControl(cacheControl(c.fields))), describe(c.expected));
  }
}

TEST(ResponseCacheControlTest, HeaderNameIsCaseInsensitive) {
  http::HeaderMap headers;
  headers.add("cache-CONTROL", "max-age=42");
  EXPECT_EQ(parseResponseCacheControl(headers).max_age, 42);
}

struct RequestCase {
  std::string name;
  std::vector<std::string> fields;
  RequestCacheControl expected;
};

TEST(RequestCacheControlTest, Table) {
  const std::vector<RequestCase> cases = {
      {"absent", {}, {}},
      {"no-store", {"no-store"}, {.no_store = true}},
      {"no-cache", {"No-Cache"}, {.no_cache = true}},
      {"only-if-cached", {"only-if-cached"}, {.only_if_cached = true}},
      {"max-age=0", {"max-age=0"}, {.max_age = 0}},
      {"max-age", {"max-age=30"}, {.max_age = 30}},
      {"invalid max-age is 0", {"max-age=x"}, {.max_age = 0}},
      {"conflicting max-age is 0", {"max-age=30, max-age=40"}, {.max_age = 0}},
      {"max-stale without value", {"max-stale"}, {.max_stale_any = true}},
      {"max-stale with value", {"max-stale=30"}, {.max_stale = 30}},
      {"max-stale quoted", {"max-stale=\"30\""}, {.max_stale = 30}},
      {"invalid max-stale ignored", {"max-stale=abc"}, {}},
      {"min-fresh", {"min-fresh=10"}, {.min_fresh = 10}},
      {"invalid min-fresh ignored", {"min-fresh=-5"}, {}},
      {"min-fresh overflow clamps", {"min-fresh=123456789012345"}, {.min_fresh = kTwoTo31}},
      {"response-only directives ignored", {"private, s-maxage=5, public"}, {}},
      {"mixed",
       {"no-cache, max-stale, min-fresh=5", "only-if-cached"},
       {.no_cache = true, .only_if_cached = true, .max_stale_any = true, .min_fresh = 5}},
  };
  for (const RequestCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(describe(parseRequestCacheControl(cacheControl(c.fields))), describe(c.expected));
  }
}

// Hostile values must parse to something, quickly, without reading past the end.
TEST(CacheControlTest, HostileInputsDoNotCrash) {
  const std::vector<std::string> inputs = {
      "\"",
      "\\",
      "=",
      "==,==",
      "max-age=\"",
      "max-age=\"\\",
      ",,,,,,,,",
      "private=\"\\\"",
      std::string(10000, '"'),
      std::string(10000, ','),
      "a=\"b\"c\"d\"e, max-age=3",
      std::string("max-age=1\0, no-store", 20),
  };
  for (const std::string& input : inputs) {
    SCOPED_TRACE(input.substr(0, 40));
    const ResponseCacheControl response = parseResponseCacheControl(cacheControl({input}));
    const RequestCacheControl request = parseRequestCacheControl(cacheControl({input}));
    EXPECT_FALSE(response.max_age.value_or(0) > 3);
    EXPECT_FALSE(request.max_age.value_or(0) > 3);
  }
  // The junk after "b" holds a balanced quoted part; the element after the comma still counts.
  EXPECT_EQ(parseResponseCacheControl(cacheControl({"a=\"b\"c\"d\"e, max-age=3"})).max_age, 3);
  EXPECT_TRUE(
      parseResponseCacheControl(cacheControl({std::string("max-age=1\0, no-store", 20)})).no_store);
}

}  // namespace
}  // namespace cachecar::cache
