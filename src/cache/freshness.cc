#include "cachecar/cache/freshness.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

namespace cachecar::cache {

namespace {

using std::chrono::seconds;

constexpr std::array<std::string_view, 7> kDayNames = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDayNames = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// SystemTime counts nanoseconds in 64 bits, which ends in 2262. Dates are clamped to this window
// before conversion: "Expires: Fri, 31 Dec 9999 23:59:59 GMT" (a common "never") must come out as
// far future rather than overflow or be rejected as invalid, which would mean "expired".
constexpr int64_t kMinUnixSeconds =
    int64_t{std::chrono::sys_days{std::chrono::year{1900} / 1 / 1}.time_since_epoch().count()} *
    86400;
constexpr int64_t kMaxUnixSeconds =
    int64_t{std::chrono::sys_days{std::chrono::year{2200} / 1 / 1}.time_since_epoch().count()} *
        86400 -
    1;

// RFC 9111 §1.2.2: delta-seconds too large to represent are taken as 2^31.
constexpr int64_t kDeltaSecondsMax = int64_t{1} << 31;

// Time arithmetic runs on whole seconds in 64 bits: the difference of two SystemTimes in
// nanoseconds can overflow (1900 to 2199 is more than the 292 years int64 nanoseconds hold).
int64_t unixSeconds(SystemTime t) {
  return std::chrono::floor<seconds>(t).time_since_epoch().count();
}

// Whole seconds from `from` to `to`, never negative (clocks step back).
int64_t wholeSecondsBetween(SystemTime from, SystemTime to) {
  return std::max<int64_t>(0, std::chrono::floor<seconds>(to - from).count());
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

// Month and day names are matched case-insensitively: being lenient here costs nothing and
// a date that is rejected would turn an Expires into "already expired".
bool equalsNoCase(std::string_view a, std::string_view b) { return http::equalsIgnoreCase(a, b); }

struct DateFields {
  int year = 0;
  int month = 0;  // 1..12
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}

  bool atEnd() const { return pos_ == s_.size(); }

  bool literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) {
      return false;
    }
    pos_ += lit.size();
    return true;
  }

  bool digits(size_t n, int& out) {
    if (s_.size() - pos_ < n) {
      return false;
    }
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      const char c = s_[pos_ + i];
      if (c < '0' || c > '9') {
        return false;
      }
      v = v * 10 + (c - '0');
    }
    pos_ += n;
    out = v;
    return true;
  }

  template <size_t N>
  bool oneOf(const std::array<std::string_view, N>& names, size_t len, int* index = nullptr) {
    const std::string_view word = s_.substr(pos_, len);
    for (size_t i = 0; i < N; ++i) {
      if (names[i].size() == word.size() && equalsNoCase(names[i], word)) {
        pos_ += len;
        if (index != nullptr) {
          *index = static_cast<int>(i);
        }
        return true;
      }
    }
    return false;
  }

  // A long day name: the letters up to the comma.
  bool longDayName() {
    const size_t comma = s_.find(',', pos_);
    if (comma == std::string_view::npos) {
      return false;
    }
    return oneOf(kLongDayNames, comma - pos_);
  }

  bool month(int& out) {
    int index = 0;
    if (!oneOf(kMonthNames, 3, &index)) {
      return false;
    }
    out = index + 1;
    return true;
  }

  // time-of-day = hour ":" minute ":" second; second 60 is a leap second.
  bool timeOfDay(DateFields& f) {
    return digits(2, f.hour) && literal(":") && digits(2, f.minute) && literal(":") &&
           digits(2, f.second) && f.hour <= 23 && f.minute <= 59 && f.second <= 60;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// "Sun, 06 Nov 1994 08:49:37 GMT"
bool parseImfFixdate(std::string_view s, DateFields& f) {
  Cursor c(s);
  return c.oneOf(kDayNames, 3) && c.literal(", ") && c.digits(2, f.day) && c.literal(" ") &&
         c.month(f.month) && c.literal(" ") && c.digits(4, f.year) && c.literal(" ") &&
         c.timeOfDay(f) && c.literal(" GMT") && c.atEnd();
}

// "Sunday, 06-Nov-94 08:49:37 GMT". Returns the number of year digits (2, or 4 from senders that
// print the full year in this form), 0 when invalid.
int parseRfc850(std::string_view s, DateFields& f) {
  Cursor c(s);
  if (!(c.longDayName() && c.literal(", ") && c.digits(2, f.day) && c.literal("-") &&
        c.month(f.month) && c.literal("-"))) {
    return 0;
  }
  int year_digits = 0;
  Cursor four = c;
  if (four.digits(4, f.year) && four.literal(" ")) {
    c = four;
    year_digits = 4;
  } else if (c.digits(2, f.year) && c.literal(" ")) {
    year_digits = 2;
  } else {
    return 0;
  }
  return c.timeOfDay(f) && c.literal(" GMT") && c.atEnd() ? year_digits : 0;
}

// "Sun Nov  6 08:49:37 1994" (day padded with a space, or two digits).
bool parseAsctime(std::string_view s, DateFields& f) {
  Cursor c(s);
  if (!(c.oneOf(kDayNames, 3) && c.literal(" ") && c.month(f.month) && c.literal(" "))) {
    return false;
  }
  if (!(c.literal(" ") ? c.digits(1, f.day) : c.digits(2, f.day))) {
    return false;
  }
  return c.literal(" ") && c.timeOfDay(f) && c.literal(" ") && c.digits(4, f.year) && c.atEnd();
}

int yearOf(SystemTime t) {
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
  return static_cast<int>(ymd.year());
}

// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead of now is in the past century;
// i.e. the latest year ending in those digits that is at most 50 years ahead.
int expandTwoDigitYear(int yy, std::optional<SystemTime> now) {
  if (!now) {
    return yy < 70 ? 2000 + yy : 1900 + yy;
  }
  const int current = yearOf(*now);
  int candidate = current - current % 100 + yy;
  while (candidate > current + 50) {
    candidate -= 100;
  }
  while (candidate + 100 <= current + 50) {
    candidate += 100;
  }
  return candidate;
}

std::optional<SystemTime> parseHttpDateImpl(std::string_view text, std::optional<SystemTime> now) {
  text = http::trimOws(text);
  DateFields f;
  const size_t comma = text.find(',');
  bool ok = false;
  if (comma == 3) {
    ok = parseImfFixdate(text, f);
  } else if (comma != std::string_view::npos) {
    const int year_digits = parseRfc850(text, f);
    if (year_digits == 2) {
      f.year = expandTwoDigitYear(f.year, now);
    }
    ok = year_digits != 0;
  } else {
    ok = parseAsctime(text, f);
  }
  if (!ok) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{f.year},
                                        std::chrono::month{static_cast<unsigned>(f.month)},
                                        std::chrono::day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok()) {
    return std::nullopt;  // "31 Feb"
  }
  // Whole seconds in 64 bits cover years 0..9999 without overflow; clamp before going to
  // SystemTime's nanoseconds.
  const int64_t unix_seconds =
      int64_t{std::chrono::sys_days{ymd}.time_since_epoch().count()} * 86400 +
      int64_t{f.hour} * 3600 + int64_t{f.minute} * 60 + f.second;
  return SystemTime(seconds(std::clamp(unix_seconds, kMinUnixSeconds, kMaxUnixSeconds)));
}

void appendTwoDigits(std::string& out, unsigned v) {
  out.push_back(static_cast<char>('0' + v / 10 % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

// delta-seconds from a header value; nullopt when not all digits.
std::optional<int64_t> parseDeltaSeconds(std::string_view s) {
  s = http::trimOws(s);
  if (s.empty()) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    if (v < kDeltaSecondsMax) {
      v = v * 10 + (c - '0');
    }
  }
  return std::min(v, kDeltaSecondsMax);
}

std::optional<seconds> explicitLifetimeImpl(const http::ResponseHead& response,
                                            const ResponseCacheControl& cc,
                                            std::optional<SystemTime> response_time) {
  // A shared cache: s-maxage overrides max-age, which overrides Expires (RFC 9111 §4.2.1).
  if (cc.s_maxage) {
    return seconds(*cc.s_maxage);
  }
  if (cc.max_age) {
    return seconds(*cc.max_age);
  }
  const std::optional<std::string_view> expires_text = response.headers.get("expires");
  if (!expires_text) {
    return std::nullopt;
  }
  const std::optional<SystemTime> expires =
      response_time ? parseHttpDate(*expires_text, *response_time) : parseHttpDate(*expires_text);
  if (!expires) {
    return seconds(0);  // RFC 9111 §5.3: an invalid Expires ("0") means already expired
  }
  std::optional<SystemTime> date;
  if (const std::optional<std::string_view> date_text = response.headers.get("date")) {
    date = response_time ? parseHttpDate(*date_text, *response_time) : parseHttpDate(*date_text);
  }
  if (!date) {
    date = response_time;
  }
  if (!date) {
    return seconds(0);
  }
  return seconds(std::max<int64_t>(0, unixSeconds(*expires) - unixSeconds(*date)));
}

}  // namespace

std::optional<SystemTime> parseHttpDate(std::string_view text) {
  return parseHttpDateImpl(text, std::nullopt);
}

std::optional<SystemTime> parseHttpDate(std::string_view text, SystemTime now) {
  return parseHttpDateImpl(text, now);
}

std::string formatHttpDate(SystemTime t) {
  const auto secs = std::chrono::floor<seconds>(t);
  const auto day_point = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{day_point};
  const std::chrono::hh_mm_ss hms{secs - day_point};
  const std::chrono::weekday wd{day_point};

  std::string out;
  out.reserve(29);
  out.append(kDayNames[wd.c_encoding()]);
  out.append(", ");
  appendTwoDigits(out, static_cast<unsigned>(ymd.day()));
  out.push_back(' ');
  out.append(kMonthNames[static_cast<unsigned>(ymd.month()) - 1]);
  out.push_back(' ');
  // SystemTime spans 1677..2262, so the year always has four digits.
  const auto year = static_cast<unsigned>(static_cast<int>(ymd.year()));
  appendTwoDigits(out, year / 100);
  appendTwoDigits(out, year % 100);
  out.push_back(' ');
  appendTwoDigits(out, static_cast<unsigned>(hms.hours().count()));
  out.push_back(':');
  appendTwoDigits(out, static_cast<unsigned>(hms.minutes().count()));
  out.push_back(':');
  appendTwoDigits(out, static_cast<unsigned>(hms.seconds().count()));
  out.append(" GMT");
  return out;
}

std::optional<seconds> explicitFreshnessLifetime(const http::ResponseHead& response,
                                                 const ResponseCacheControl& cc) {
  return explicitLifetimeImpl(response, cc, std::nullopt);
}

std::optional<seconds> explicitFreshnessLifetime(const http::ResponseHead& response,
                                                 const ResponseCacheControl& cc,
                                                 SystemTime response_time) {
  return explicitLifetimeImpl(response, cc, response_time);
}

seconds correctedInitialAge(const http::ResponseHead& response, SystemTime request_time,
                            SystemTime response_time) {
  int64_t age_value = 0;
  if (const std::optional<std::string_view> age = response.headers.get("age")) {
    // A list ("Age: 5, 7") is malformed; its first member is the best available guess.
    age_value = parseDeltaSeconds(age->substr(0, age->find(','))).value_or(0);
  }
  const int64_t response_secs = unixSeconds(response_time);
  int64_t apparent_age = 0;
  if (const std::optional<std::string_view> date_text = response.headers.get("date")) {
    if (const std::optional<SystemTime> date = parseHttpDate(*date_text, response_time)) {
      apparent_age = std::max<int64_t>(0, response_secs - unixSeconds(*date));
    }
  }
  // The delay is measured, not read from two clocks at second precision: a 2 ms exchange across
  // a second boundary is 0 s old, not 1 s (which would make a 1 s TTL expire on arrival).
  const int64_t response_delay = wholeSecondsBetween(request_time, response_time);
  const int64_t corrected_age_value = age_value + response_delay;
  return seconds(std::max(apparent_age, corrected_age_value));
}

seconds currentAge(seconds corrected_initial_age, SystemTime response_time, SystemTime now) {
  // Clocks step back: a negative resident time counts as none. The initial age may come from
  // a stored entry, so the sum saturates rather than overflow.
  const int64_t resident_time = wholeSecondsBetween(response_time, now);
  return seconds(std::max<int64_t>(0, saturatingAdd(corrected_initial_age.count(), resident_time)));
}

}  // namespace cachecar::cache
