// Vary (RFC 9111 §4.1): which request fields select a variant, and how equivalent requests are
// brought to the same variance so they share one variant.
#include "cachecar/cache/vary.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace cachecar::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using Names = std::vector<std::string>;

http::HeaderMap headersOf(const Fields& fields) {
  http::HeaderMap map;
  for (const auto& [name, value] : fields) {
    map.add(name, value);
  }
  return map;
}

std::string describe(const std::optional<Names>& names) {
  if (!names) {
    return "nullopt";
  }
  std::string out = "[";
  for (const auto& n : *names) {
    out += "'" + n + "' ";
  }
  return out + "]";
}

TEST(VaryFieldsTest, NormalizesNames) {
  struct Case {
    Fields response;
    Names expected;
  };
  const std::vector<Case> cases = {
      {{}, {}},
      {{{"Content-Type", "text/html"}}, {}},
      {{{"Vary", ""}}, {}},
      {{{"Vary", " , ,"}}, {}},
      {{{"Vary", "Accept-Language"}}, {"accept-language"}},
      {{{"vary", "ACCEPT-LANGUAGE"}}, {"accept-language"}},
      {{{"Vary", "Accept-Encoding, Accept-Language"}}, {"accept-encoding", "accept-language"}},
      {{{"Vary", "  Accept-Encoding ,\tAccept-Language  "}},
       {"accept-encoding", "accept-language"}},
      {{{"Vary", "Accept-Encoding,,Accept-Language,"}}, {"accept-encoding", "accept-language"}},
      // Several field lines form one list; duplicates (in any case) count once, first order kept.
      {{{"Vary", "Accept"}, {"Content-Type", "x"}, {"VARY", "Accept-Language, accept"}},
       {"accept", "accept-language"}},
      {{{"Vary", "Cookie, cookie, COOKIE"}}, {"cookie"}},
  };
  for (const Case& c : cases) {
    const auto fields = varyFields(headersOf(c.response));
    EXPECT_EQ(describe(fields), describe(c.expected))
        << (c.response.empty() ? std::string("(no fields)") : c.response.front().second);
  }
}

TEST(VaryFieldsTest, StarAnywhereMeansNeverMatches) {
  const std::vector<Fields> cases = {
      {{"Vary", "*"}},
      {{"Vary", " * "}},
      {{"Vary", "Accept, *"}},
      {{"Vary", "*, Accept"}},
      {{"Vary", "Accept"}, {"Vary", "*"}},
  };
  for (const Fields& response : cases) {
    EXPECT_EQ(describe(varyFields(headersOf(response))), "nullopt") << response.back().second;
  }
  // A field name merely containing '*' is no wildcard... but "*" alone is.
  EXPECT_NE(describe(varyFields(headersOf({{"Vary", "X-*-Thing"}}))), "nullopt");
}

TEST(VaryFieldsTest, MoreNamesThanAPageVariesOnIsNeverStored) {
  // 60000 distinct names from a hostile app: refused without a scan per name over the others.
  std::string many;
  for (int i = 0; i < 60000; ++i) {
    many += (i == 0 ? "" : ",") + std::string("f") + std::to_string(i);
  }
  EXPECT_EQ(describe(varyFields(headersOf({{"Vary", many}}))), "nullopt");
  std::string limit;
  for (size_t i = 0; i < kMaxVaryFields; ++i) {
    limit += (i == 0 ? "" : ",") + std::string("f") + std::to_string(i);
  }
  ASSERT_TRUE(varyFields(headersOf({{"Vary", limit}})).has_value());
  EXPECT_EQ(varyFields(headersOf({{"Vary", limit}}))->size(), kMaxVaryFields);
  // Repeats of a few names are not many names.
  std::string repeats;
  for (int i = 0; i < 1000; ++i) {
    repeats += (i == 0 ? "" : ",") + std::string(i % 2 == 0 ? "Accept" : "Cookie");
  }
  EXPECT_EQ(describe(varyFields(headersOf({{"Vary", repeats}}))), describe(Names{"accept", "cookie"}));
}

std::string variance(const Names& fields, const Fields& request) {
  return varianceOf(fields, headersOf(request));
}

TEST(VarianceTest, DocumentedFormat) {
  EXPECT_EQ(variance({"accept-language"}, {{"Accept-Language", "de"}}), "accept-language=de");
  EXPECT_EQ(variance({"accept-language"}, {}), "accept-language!");
  EXPECT_EQ(variance({"accept-language"}, {{"Accept-Language", ""}}), "accept-language=");
  EXPECT_EQ(variance({"accept-encoding", "accept-language"},
                     {{"Accept-Language", "en"}, {"Accept-Encoding", "gzip"}}),
            "accept-encoding=gzip\naccept-language=en");
  EXPECT_EQ(variance({}, {{"Accept-Language", "en"}}), "");
}

TEST(VarianceTest, EquivalentRequestsShareAVariance) {
  const Names fields = {"accept-language"};
  const std::string base = variance(fields, {{"Accept-Language", "de, en"}});
  const std::vector<Fields> same = {
      {{"Accept-Language", "de,en"}},
      {{"Accept-Language", " de , en "}},
      {{"Accept-Language", "de ,\ten"}},
      {{"Accept-Language", "de,  ,en"}},  // empty list members are no members
      {{"accept-language", "de, en"}},    // field names are case-insensitive
      {{"ACCEPT-LANGUAGE", "de, en"}},
      {{"Accept-Language", "de"}, {"Accept-Language", "en"}},  // two lines are one list
      {{"Accept-Language", "de"}, {"X-Other", "1"}, {"accept-language", " en"}},
  };
  for (const Fields& request : same) {
    EXPECT_EQ(variance(fields, request), base) << request.front().second;
  }
  // Runs of spaces inside a member collapse.
  EXPECT_EQ(variance({"accept"}, {{"Accept", "text/html;  q=0.9"}}),
            variance({"accept"}, {{"Accept", "text/html; q=0.9"}}));
  EXPECT_EQ(variance({"accept"}, {{"Accept", "text/html;\t q=0.9"}}),
            variance({"accept"}, {{"Accept", "text/html; q=0.9"}}));
}

TEST(VarianceTest, DifferentRequestsGetDifferentVariances) {
  const Names fields = {"accept-language"};
  const std::vector<Fields> distinct = {
      {},                                  // absent
      {{"Accept-Language", ""}},           // present but empty
      {{"Accept-Language", "de"}},
      {{"Accept-Language", "en"}},
      {{"Accept-Language", "DE"}},         // values are case-sensitive
      {{"Accept-Language", "de, en"}},
      {{"Accept-Language", "en, de"}},     // order is meaning (preference)
      {{"Accept-Language", "d e"}},
  };
  for (size_t i = 0; i < distinct.size(); ++i) {
    for (size_t j = i + 1; j < distinct.size(); ++j) {
      EXPECT_NE(variance(fields, distinct[i]), variance(fields, distinct[j])) << i << " vs " << j;
    }
  }
  // Values cannot be moved from one field to the other.
  EXPECT_NE(variance({"a", "b"}, {{"A", "1"}, {"B", ""}}),
            variance({"a", "b"}, {{"A", ""}, {"B", "1"}}));
  EXPECT_NE(variance({"a", "b"}, {{"A", "1"}}), variance({"a", "b"}, {{"B", "1"}}));
}

TEST(VariantStorageKeyTest, PrimaryPlusHashOfTheVariance) {
  const std::string key = variantStorageKey("t:e1:abc", "accept-language=de");
  ASSERT_EQ(key.size(), std::string("t:e1:abc").size() + 2 + 32) << key;
  EXPECT_EQ(key.substr(0, 10), "t:e1:abc|v");
  for (char c : key.substr(10)) {
    EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(c)) << key;
  }
  EXPECT_EQ(variantStorageKey("t:e1:abc", "accept-language=de"), key);
  EXPECT_NE(variantStorageKey("t:e1:abc", "accept-language=en"), key);
  EXPECT_NE(variantStorageKey("t:e1:abd", "accept-language=de"), key) << "another primary key";
  EXPECT_NE(variantStorageKey("t:e1:abc", "accept-language!"),
            variantStorageKey("t:e1:abc", "accept-language="));
}

TEST(VariantStorageKeyTest, PrintableAndBoundedWhateverTheValues) {
  const std::string hostile = std::string("\0\r\n\xff \x7f", 6) + std::string(100000, 'x');
  const std::string key = variantStorageKey("p", hostile);
  ASSERT_EQ(key.size(), 1u + 2 + 32);
  for (char c : key) {
    EXPECT_TRUE(std::isprint(static_cast<unsigned char>(c))) << static_cast<int>(c);
  }
}

TEST(JoinSplitFieldsTest, RoundTrip) {
  const Names fields = {"accept-encoding", "accept-language", "x-device"};
  EXPECT_EQ(joinFields(fields), "accept-encoding, accept-language, x-device");
  EXPECT_EQ(splitFields(joinFields(fields)), fields);
  EXPECT_EQ(joinFields({}), "");
  EXPECT_TRUE(splitFields("").empty());
  EXPECT_EQ(splitFields(" a ,b,, c "), (Names{"a", "b", "c"}));
  EXPECT_EQ(joinFields({"one"}), "one");
  EXPECT_EQ(splitFields("one"), (Names{"one"}));
}

}  // namespace
}  // namespace cachecar::cache
