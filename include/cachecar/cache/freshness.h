#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "cachecar/cache/cache_control.h"
#include "cachecar/common/clock.h"
#include "cachecar/http/message.h"

namespace cachecar::cache {

// Parses an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime
// forms). nullopt when invalid. The day name is checked for spelling, not against the date.
// An RFC 850 two-digit year is read as 1970-2069 here (a fixed pivot); pass `now` to
// get the RFC rule instead: the latest year with those digits that is at most 50 years ahead.
// Dates outside 1900..2199 are clamped into that range: "Expires: ... 9999" means far future,
// and SystemTime (64-bit nanoseconds) ends in 2262.
std::optional<SystemTime> parseHttpDate(std::string_view text);
std::optional<SystemTime> parseHttpDate(std::string_view text, SystemTime now);
// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string formatHttpDate(SystemTime t);

// The freshness lifetime the response itself states (RFC 9111 §4.2.1, shared cache):
// s-maxage, else max-age, else Expires - Date (an invalid Expires means already expired, 0;
// an Expires before Date gives 0 too). nullopt when the response states none.
// Without `response_time`, Expires with a missing or invalid Date yields 0 (the lifetime cannot
// be computed, so the response counts as stale); with it, that time stands in for Date, as
// RFC 9110 §6.6.1 has a recipient add Date when the origin sent none.
std::optional<std::chrono::seconds> explicitFreshnessLifetime(const http::ResponseHead& response,
                                                              const ResponseCacheControl& cc);
std::optional<std::chrono::seconds> explicitFreshnessLifetime(const http::ResponseHead& response,
                                                              const ResponseCacheControl& cc,
                                                              SystemTime response_time);

// RFC 9111 §4.2.3 corrected_initial_age: the age the response already had when it arrived,
// from its Age and Date fields and the time the exchange took. A missing or invalid Age counts
// as 0, a missing or invalid Date gives no apparent age; a response_time before request_time
// (clock stepped back) counts as no delay.
std::chrono::seconds correctedInitialAge(const http::ResponseHead& response,
                                         SystemTime request_time, SystemTime response_time);

// current_age = corrected_initial_age + (now - response_time), never negative.
std::chrono::seconds currentAge(std::chrono::seconds corrected_initial_age,
                                SystemTime response_time, SystemTime now);

}  // namespace cachecar::cache
