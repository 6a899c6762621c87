#include "cachecar/cache/freshness.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cachecar::cache {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SystemTime utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return SystemTime(std::chrono::sys_days{std::chrono::year{y} / mo / d}) + std::chrono::hours(h) +
         std::chrono::minutes(mi) + seconds(s);
}

// The RFC 9110 example instant: Sun, 06 Nov 1994 08:49:37 GMT.
const SystemTime kRfcExample = utc(1994, 11, 6, 8, 49, 37);

std::string describe(const std::optional<SystemTime>& t) {
  return t ? formatHttpDate(*t) + " (" + std::to_string(toUnixMillis(*t)) + ")" : "nullopt";
}

TEST(HttpDateTest, ParsesTheThreeForms) {
  const std::vector<std::pair<std::string, SystemTime>> cases = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", kRfcExample},
      {"Sunday, 06-Nov-94 08:49:37 GMT", kRfcExample},
      {"Sun Nov  6 08:49:37 1994", kRfcExample},
      {"Wed Nov 16 08:49:37 1994", utc(1994, 11, 16, 8, 49, 37)},
      {"  Sun, 06 Nov 1994 08:49:37 GMT\t", kRfcExample},
      {"sun, 06 nov 1994 08:49:37 GMT", kRfcExample},
      {"Thu, 01 Jan 1970 00:00:00 GMT", utc(1970, 1, 1)},
      {"Wed, 31 Dec 1969 23:59:59 GMT", utc(1969, 12, 31, 23, 59, 59)},
      {"Thu, 29 Feb 2024 12:00:00 GMT", utc(2024, 2, 29, 12)},
      {"Fri, 31 Dec 2038 23:59:59 GMT", utc(2038, 12, 31, 23, 59, 59)},
      // A leap second is the next second's start.
      {"Sat, 31 Dec 2016 23:59:60 GMT", utc(2017, 1, 1)},
      // The day name is not checked against the date (lenient, like most caches).
      {"Mon, 06 Nov 1994 08:49:37 GMT", kRfcExample},
      // RFC 850 with a four-digit year, as some servers send it.
      {"Sunday, 06-Nov-1994 08:49:37 GMT", kRfcExample},
      // Far-future "never expires" dates clamp instead of overflowing or failing.
      {"Fri, 31 Dec 9999 23:59:59 GMT", utc(2199, 12, 31, 23, 59, 59)},
      {"Mon, 01 Jan 1000 00:00:00 GMT", utc(1900, 1, 1)},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(describe(parseHttpDate(text)), describe(expected));
  }
}

TEST(HttpDateTest, RejectsInvalidDates) {
  const std::vector<std::string> cases = {
      "",
      "0",
      "-1",
      "now",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Sun, 06 Nov 1994 08:49:37 GMT junk",
      "Sun, 06 Nov 1994 08:49:37",
      "Sun, 6 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 94 08:49:37 GMT",
      "Sun, 31 Feb 1994 08:49:37 GMT",
      "Sun, 00 Nov 1994 08:49:37 GMT",
      "Sun, 06 Xyz 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 23:60:00 GMT",
      "Sun, 06 Nov 1994 23:59:61 GMT",
      "Sun, 06 Nov 1994 8:49:37 GMT",
      "Xyz, 06 Nov 1994 08:49:37 GMT",
      "Sunday, 06-Nov-94 08:49:37",
      "Someday, 06-Nov-94 08:49:37 GMT",
      "Sunday, 06-Nov-941 08:49:37 GMT",
      "Sun Nov 6 08:49:37 1994",
      "Sun Nov  6 08:49:37 94",
      "Sun Nov  6 08:49:37 1994 GMT",
      "Sun, 06 Nov 1994 08:49:37 GMT\r\nX: y",
      std::string("Sun, 06 Nov 1994 08:49:37 GMT\0", 30),
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(describe(parseHttpDate(text)), "nullopt");
  }
}

TEST(HttpDateTest, TwoDigitYears) {
  struct Case {
    std::string text;
    std::optional<SystemTime> now;
    int expected_year;
  };
  const std::vector<Case> cases = {
      // Fixed pivot without a reference time.
      {"Thursday, 01-Jan-70 00:00:00 GMT", std::nullopt, 1970},
      {"Wednesday, 31-Dec-69 00:00:00 GMT", std::nullopt, 2069},
      {"Saturday, 01-Jan-00 00:00:00 GMT", std::nullopt, 2000},
      // RFC 9110 §5.6.7 relative to now: at most 50 years ahead, else the previous century.
      {"Thursday, 01-Jan-70 00:00:00 GMT", utc(2025, 6, 1), 2070},
      {"Thursday, 01-Jan-75 00:00:00 GMT", utc(2025, 6, 1), 2075},
      {"Thursday, 01-Jan-76 00:00:00 GMT", utc(2025, 6, 1), 1976},
      {"Sunday, 06-Nov-94 08:49:37 GMT", utc(2025, 6, 1), 1994},
      {"Sunday, 06-Nov-25 08:49:37 GMT", utc(2025, 6, 1), 2025},
      {"Sunday, 06-Nov-30 08:49:37 GMT", utc(2090, 6, 1), 2130},
      {"Sunday, 06-Nov-41 08:49:37 GMT", utc(2090, 6, 1), 2041},
      {"Sunday, 06-Nov-94 08:49:37 GMT", utc(1995, 1, 1), 1994},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::optional<SystemTime> t =
        c.now ? parseHttpDate(c.text, *c.now) : parseHttpDate(c.text);
    ASSERT_TRUE(t.has_value());
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(*t)};
    EXPECT_EQ(static_cast<int>(ymd.year()), c.expected_year);
  }
  // Four-digit forms ignore `now`.
  EXPECT_EQ(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT", utc(2090, 1, 1)), kRfcExample);
}

TEST(HttpDateTest, Formats) {
  EXPECT_EQ(formatHttpDate(kRfcExample), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(formatHttpDate(kRfcExample + milliseconds(999)), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(formatHttpDate(utc(1970, 1, 1)), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(formatHttpDate(utc(1970, 1, 1) - milliseconds(500)), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(formatHttpDate(utc(2024, 2, 29, 23, 5, 9)), "Thu, 29 Feb 2024 23:05:09 GMT");
  EXPECT_EQ(formatHttpDate(utc(2100, 12, 31, 1, 2, 3)), "Fri, 31 Dec 2100 01:02:03 GMT");
}

TEST(HttpDateTest, FormatParseRoundTrip) {
  // A day and a bit less than a prime number of seconds apart: covers every weekday, month and
  // many times of day over two centuries.
  for (SystemTime t = utc(1901, 1, 1); t < utc(2199, 1, 1); t += seconds(86400 * 13 + 3607)) {
    const std::string text = formatHttpDate(t);
    ASSERT_EQ(parseHttpDate(text), t) << text;
  }
}

ResponseCacheControl ccWith(std::optional<int64_t> max_age, std::optional<int64_t> s_maxage) {
  ResponseCacheControl cc;
  cc.max_age = max_age;
  cc.s_maxage = s_maxage;
  return cc;
}

http::ResponseHead responseWith(std::vector<std::pair<std::string, std::string>> headers) {
  http::ResponseHead response;
  for (auto& [name, value] : headers) {
    response.headers.add(std::move(name), std::move(value));
  }
  return response;
}

std::string describe(const std::optional<seconds>& s) {
  return s ? std::to_string(s->count()) + "s" : std::string("nullopt");
}

TEST(FreshnessTest, ExplicitLifetime) {
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  const std::string plus_hour = "Sun, 06 Nov 1994 09:49:37 GMT";
  struct Case {
    std::string name;
    ResponseCacheControl cc;
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<seconds> expected;
  };
  const std::vector<Case> cases = {
      {"nothing stated", {}, {{"Date", date}}, std::nullopt},
      {"max-age", ccWith(60, std::nullopt), {}, seconds(60)},
      {"max-age=0", ccWith(0, std::nullopt), {}, seconds(0)},
      {"s-maxage wins for a shared cache", ccWith(60, 10), {}, seconds(10)},
      {"s-maxage wins even when longer", ccWith(10, 600), {}, seconds(600)},
      {"max-age wins over Expires",
       ccWith(5, std::nullopt),
       {{"Date", date}, {"Expires", plus_hour}},
       seconds(5)},
      {"Expires minus Date", {}, {{"Date", date}, {"Expires", plus_hour}}, seconds(3600)},
      {"Expires in another format",
       {},
       {{"Date", date}, {"Expires", "Sunday, 06-Nov-94 09:49:37 GMT"}},
       seconds(3600)},
      {"Expires equal to Date", {}, {{"Date", date}, {"Expires", date}}, seconds(0)},
      {"Expires before Date", {}, {{"Date", plus_hour}, {"Expires", date}}, seconds(0)},
      {"invalid Expires means expired", {}, {{"Date", date}, {"Expires", "0"}}, seconds(0)},
      {"empty Expires means expired", {}, {{"Date", date}, {"Expires", ""}}, seconds(0)},
      {"Expires without Date cannot be computed", {}, {{"Expires", plus_hour}}, seconds(0)},
      {"Expires with invalid Date",
       {},
       {{"Date", "yesterday"}, {"Expires", plus_hour}},
       seconds(0)},
      {"first Expires counts",
       {},
       {{"Date", date}, {"Expires", plus_hour}, {"Expires", "0"}},
       seconds(3600)},
      {"far-future Expires",
       {},
       {{"Date", "Thu, 01 Jan 2099 00:00:00 GMT"}, {"Expires", "Fri, 31 Dec 9999 23:59:59 GMT"}},
       seconds(3187209599)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(describe(explicitFreshnessLifetime(responseWith(c.headers), c.cc)),
              describe(c.expected));
  }
}

TEST(FreshnessTest, ExplicitLifetimeWithResponseTime) {
  const SystemTime response_time = kRfcExample + seconds(100);
  // No Date: the response time stands in for it.
  EXPECT_EQ(explicitFreshnessLifetime(responseWith({{"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"}}),
                                      {}, response_time),
            seconds(3500));
  EXPECT_EQ(explicitFreshnessLifetime(
                responseWith({{"Date", "garbage"}, {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"}}),
                {}, response_time),
            seconds(3500));
  // A valid Date still wins over the response time.
  EXPECT_EQ(explicitFreshnessLifetime(responseWith({{"Date", "Sun, 06 Nov 1994 08:49:37 GMT"},
                                                    {"Expires", "Sun, 06 Nov 1994 09:49:37 GMT"}}),
                                      {}, response_time),
            seconds(3600));
  EXPECT_EQ(explicitFreshnessLifetime(responseWith({{"Expires", "0"}}), {}, response_time),
            seconds(0));
  EXPECT_EQ(explicitFreshnessLifetime(responseWith({}), {}, response_time), std::nullopt);
  EXPECT_EQ(explicitFreshnessLifetime(responseWith({}), ccWith(7, std::nullopt), response_time),
            seconds(7));
  // The two-digit-year rule follows the response time.
  EXPECT_EQ(
      explicitFreshnessLifetime(responseWith({{"Expires", "Thursday, 01-Jan-70 00:00:10 GMT"}}), {},
                                utc(2069, 12, 31, 23, 59, 50)),
      seconds(20));
}

TEST(FreshnessTest, CorrectedInitialAge) {
  const SystemTime request_time = kRfcExample;
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::string>> headers;
    SystemTime request_time;
    SystemTime response_time;
    seconds expected;
  };
  const std::vector<Case> cases = {
      {"nothing: the response delay", {}, request_time, request_time + seconds(2), seconds(2)},
      {"sub-second delay", {}, request_time, request_time + milliseconds(900), seconds(0)},
      {"Age plus delay", {{"Age", "10"}}, request_time, request_time + seconds(2), seconds(12)},
      {"apparent age wins when larger",
       {{"Age", "10"}, {"Date", "Sun, 06 Nov 1994 08:47:57 GMT"}},
       request_time,
       request_time + seconds(2),
       seconds(102)},
      {"corrected Age wins when larger",
       {{"Age", "500"}, {"Date", "Sun, 06 Nov 1994 08:47:57 GMT"}},
       request_time,
       request_time + seconds(2),
       seconds(502)},
      {"Date in the future gives no apparent age",
       {{"Date", "Sun, 06 Nov 1994 09:49:37 GMT"}},
       request_time,
       request_time + seconds(1),
       seconds(1)},
      {"invalid Date ignored",
       {{"Date", "soon"}},
       request_time,
       request_time + seconds(1),
       seconds(1)},
      {"invalid Age is 0", {{"Age", "ten"}}, request_time, request_time + seconds(1), seconds(1)},
      {"negative Age is 0", {{"Age", "-5"}}, request_time, request_time + seconds(1), seconds(1)},
      {"Age list takes its first member",
       {{"Age", "7, 9"}},
       request_time,
       request_time,
       seconds(7)},
      {"huge Age clamps to 2^31",
       {{"Age", "999999999999999999999999"}},
       request_time,
       request_time,
       seconds(int64_t{1} << 31)},
      {"a short exchange across a second boundary has no delay",
       {},
       request_time + milliseconds(999),
       request_time + milliseconds(1002),
       seconds(0)},
      {"clock stepped back: no delay",
       {{"Age", "3"}},
       request_time,
       request_time - seconds(5),
       seconds(3)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(correctedInitialAge(responseWith(c.headers), c.request_time, c.response_time).count(),
              c.expected.count());
  }
}

TEST(FreshnessTest, CurrentAge) {
  const SystemTime response_time = kRfcExample;
  EXPECT_EQ(currentAge(seconds(10), response_time, response_time), seconds(10));
  EXPECT_EQ(currentAge(seconds(10), response_time, response_time + seconds(5)), seconds(15));
  EXPECT_EQ(currentAge(seconds(0), response_time, response_time + milliseconds(1999)), seconds(1));
  // Resident time is measured, not the difference of two second-precision clock readings.
  EXPECT_EQ(currentAge(seconds(0), response_time + milliseconds(999),
                       response_time + milliseconds(1002)),
            seconds(0));
  // now before the response arrived (clock stepped back): no resident time, never negative.
  EXPECT_EQ(currentAge(seconds(10), response_time, response_time - seconds(60)), seconds(10));
  EXPECT_EQ(currentAge(seconds(-100), response_time, response_time + seconds(5)), seconds(0));
  // An absurd stored age saturates instead of overflowing.
  EXPECT_EQ(currentAge(seconds::max(), response_time, response_time + seconds(5)), seconds::max());
}

}  // namespace
}  // namespace cachecar::cache
