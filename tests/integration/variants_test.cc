// Vary (RFC 9111 §4.1): each distinct value of the varied request fields gets its own stored
// variant; equivalent values share one; `Vary: *` never matches.
#include <string>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

class VariantsTest : public ProxyFixture {
 protected:
  void SetUp() override {
    origin_.handle("/static/lang", [](const OriginRequest& req) {
      return OriginResponse::text(
          "lang=[" + req.headerOr("Accept-Language", "none") + "] #" +
              std::to_string(req.sequence),
          {{"Cache-Control", "max-age=600"}, {"Vary", "Accept-Language"}});
    });
  }

  HttpResponse getLang(const std::vector<std::string>& headers) {
    return get("/static/lang", headers);
  }
};

TEST_F(VariantsTest, EachLanguageHasItsOwnVariant) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse de = getLang({"Accept-Language: de"});
  HttpResponse en = getLang({"Accept-Language: en"});
  ASSERT_EQ(de.status, 200) << de.describe();
  ASSERT_EQ(en.status, 200) << en.describe();
  EXPECT_EQ(de.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(en.headerOr("X-Cache"), "MISS") << "en was answered with the de variant: " << en.body;
  EXPECT_NE(de.body.find("lang=[de]"), std::string::npos) << de.body;
  EXPECT_NE(en.body.find("lang=[en]"), std::string::npos) << en.body;
  EXPECT_EQ(origin_.requestCount("/static/lang"), 2);

  for (int round = 0; round < 2; ++round) {
    HttpResponse de_again = getLang({"Accept-Language: de"});
    HttpResponse en_again = getLang({"Accept-Language: en"});
    EXPECT_EQ(de_again.headerOr("X-Cache"), "HIT") << de_again.describe();
    EXPECT_EQ(en_again.headerOr("X-Cache"), "HIT") << en_again.describe();
    EXPECT_EQ(de_again.body, de.body);
    EXPECT_EQ(en_again.body, en.body);
    EXPECT_EQ(de_again.headerOr("Vary"), "Accept-Language");
  }
  EXPECT_EQ(origin_.requestCount("/static/lang"), 2);
}

TEST_F(VariantsTest, EquivalentValuesShareAVariant) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse de = getLang({"Accept-Language: de"});
  ASSERT_EQ(de.status, 200) << de.describe();
  HttpResponse padded = getLang({"Accept-Language:    de   "});
  EXPECT_EQ(padded.headerOr("X-Cache"), "HIT") << padded.describe();
  EXPECT_EQ(padded.body, de.body);
  HttpResponse lower = getLang({"accept-language: de"});
  EXPECT_EQ(lower.headerOr("X-Cache"), "HIT") << lower.describe();
  EXPECT_EQ(origin_.requestCount("/static/lang"), 1);

  HttpResponse list = getLang({"Accept-Language: de, en;q=0.5"});
  ASSERT_EQ(list.status, 200) << list.describe();
  EXPECT_EQ(list.headerOr("X-Cache"), "MISS");
  HttpResponse spaced = getLang({"Accept-Language: de ,  en;q=0.5"});
  EXPECT_EQ(spaced.headerOr("X-Cache"), "HIT") << spaced.describe();
  EXPECT_EQ(spaced.body, list.body);
  HttpResponse two_lines = getLang({"Accept-Language: de", "Accept-Language: en;q=0.5"});
  EXPECT_EQ(two_lines.headerOr("X-Cache"), "HIT") << two_lines.describe();
  EXPECT_EQ(two_lines.body, list.body);
  EXPECT_EQ(origin_.requestCount("/static/lang"), 2);
}

TEST_F(VariantsTest, RequestWithoutTheFieldIsItsOwnVariant) {
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse de = getLang({"Accept-Language: de"});
  HttpResponse none = getLang({});
  ASSERT_EQ(none.status, 200) << none.describe();
  EXPECT_EQ(none.headerOr("X-Cache"), "MISS") << none.describe();
  EXPECT_NE(none.body.find("lang=[none]"), std::string::npos) << none.body;
  HttpResponse empty = getLang({"Accept-Language:"});
  ASSERT_EQ(empty.status, 200) << empty.describe();
  EXPECT_EQ(empty.headerOr("X-Cache"), "MISS") << "an empty field shared the absent variant";
  EXPECT_EQ(origin_.requestCount("/static/lang"), 3);

  HttpResponse none_again = getLang({});
  EXPECT_EQ(none_again.headerOr("X-Cache"), "HIT") << none_again.describe();
  EXPECT_EQ(none_again.body, none.body);
  HttpResponse de_again = getLang({"Accept-Language: de"});
  EXPECT_EQ(de_again.body, de.body);
  EXPECT_EQ(origin_.requestCount("/static/lang"), 3);
}

TEST_F(VariantsTest, VaryStarIsNeverAHit) {
  origin_.handle("/static/star", [](const OriginRequest& req) {
    return OriginResponse::text("star #" + std::to_string(req.sequence),
                                {{"Cache-Control", "max-age=600"}, {"Vary", "*"}});
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse first = get("/static/star");
  HttpResponse second = get("/static/star");
  ASSERT_EQ(first.status, 200) << first.describe();
  ASSERT_EQ(second.status, 200) << second.describe();
  EXPECT_NE(second.headerOr("X-Cache"), "HIT");
  EXPECT_NE(first.body, second.body);
  EXPECT_EQ(origin_.requestCount("/static/star"), 2);
}

TEST_F(VariantsTest, ChangedVaryReplacesTheVariants) {
  // The app first varies on Accept-Language, later on nothing: the page is then shared.
  origin_.handle("/static/switch", [](const OriginRequest& req) {
    HeaderList headers = {{"Cache-Control", "max-age=600"}};
    if (req.sequence == 1) {
      headers.emplace_back("Vary", "Accept-Language");
    }
    return OriginResponse::text("switch #" + std::to_string(req.sequence), headers);
  });
  ASSERT_NO_FATAL_FAILURE(startProxy());
  HttpResponse de = get("/static/switch", {"Accept-Language: de"});
  ASSERT_EQ(de.status, 200) << de.describe();
  HttpResponse de_hit = get("/static/switch", {"Accept-Language: de"});
  EXPECT_EQ(de_hit.headerOr("X-Cache"), "HIT") << de_hit.describe();
  HttpResponse en = get("/static/switch", {"Accept-Language: en"});
  EXPECT_EQ(en.headerOr("X-Cache"), "MISS") << en.describe();
  EXPECT_EQ(origin_.requestCount("/static/switch"), 2);
  // Now stored without Vary: any language gets it.
  HttpResponse fr = get("/static/switch", {"Accept-Language: fr"});
  EXPECT_EQ(fr.headerOr("X-Cache"), "HIT") << fr.describe();
  EXPECT_EQ(fr.body, en.body);
  EXPECT_EQ(origin_.requestCount("/static/switch"), 2);
}

}  // namespace
}  // namespace cachecar::testing
