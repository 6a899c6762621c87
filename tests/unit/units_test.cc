#include "cachecar/common/units.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {
namespace {

using std::chrono::milliseconds;

struct DurationCase {
  std::string_view text;
  std::optional<int64_t> ms;  // nullopt: must be rejected
};

TEST(ParseDurationTest, AcceptsEveryUnitAndRejectsGarbage) {
  constexpr int64_t kMax = INT64_MAX;
  const DurationCase cases[] = {
      {"0", 0},
      {"0s", 0},
      {"250ms", 250},
      {"1s", 1000},
      {"30s", 30'000},
      {"5m", 300'000},
      {"2h", 7'200'000},
      {"1d", 86'400'000},
      {"10", 10'000},  // a bare number is seconds
      {"007s", 7000},
      {"9223372036854775807ms", kMax},
      {"9223372036854775s", 9'223'372'036'854'775'000},
      // Rejected: empty, sign, spaces, fractions, unknown or wrong-case units, overflow.
      {"", std::nullopt},
      {"s", std::nullopt},
      {"ms", std::nullopt},
      {"-5s", std::nullopt},
      {"+5s", std::nullopt},
      {" 5s", std::nullopt},
      {"5s ", std::nullopt},
      {"5 s", std::nullopt},
      {"1.5s", std::nullopt},
      {"5S", std::nullopt},
      {"5M", std::nullopt},
      {"5sec", std::nullopt},
      {"5w", std::nullopt},
      {"5ss", std::nullopt},
      {"5m5s", std::nullopt},
      {"soon", std::nullopt},
      {"0x10", std::nullopt},
      {"9223372036854775808ms", std::nullopt},
      {"9223372036854776s", std::nullopt},
      {"106751991167301d", std::nullopt},
      {"99999999999999999999999999", std::nullopt},
  };
  for (const DurationCase& c : cases) {
    SCOPED_TRACE(std::string(c.text));
    const std::optional<milliseconds> parsed = parseDuration(c.text);
    if (c.ms) {
      ASSERT_TRUE(parsed.has_value());
      EXPECT_EQ(parsed->count(), *c.ms);
    } else {
      EXPECT_FALSE(parsed.has_value()) << parsed->count();
    }
  }
}

struct SizeCase {
  std::string_view text;
  std::optional<uint64_t> bytes;
};

TEST(ParseSizeTest, AcceptsBinaryMultiplesAndRejectsGarbage) {
  const SizeCase cases[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"1K", 1024},
      {"1KB", 1024},
      {"16KiB", 16 * 1024},
      {"64KiB", 64 * 1024},
      {"1M", 1 << 20},
      {"2MB", 2 << 20},
      {"256MiB", 256ull << 20},
      {"1G", 1ull << 30},
      {"3GB", 3ull << 30},
      {"1GiB", 1ull << 30},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183GiB", 17179869183ull << 30},
      {"", std::nullopt},
      {"KiB", std::nullopt},
      {"-1", std::nullopt},
      {"-1KiB", std::nullopt},
      {"+1KiB", std::nullopt},
      {"1.5MiB", std::nullopt},
      {"1 MiB", std::nullopt},
      {"1mib", std::nullopt},
      {"1kb", std::nullopt},
      {"1TiB", std::nullopt},
      {"1KiBs", std::nullopt},
      {"big", std::nullopt},
      {"18446744073709551616", std::nullopt},
      {"17179869184GiB", std::nullopt},
      {"99999999999999999999999", std::nullopt},
  };
  for (const SizeCase& c : cases) {
    SCOPED_TRACE(std::string(c.text));
    const std::optional<uint64_t> parsed = parseSize(c.text);
    if (c.bytes) {
      ASSERT_TRUE(parsed.has_value());
      EXPECT_EQ(*parsed, *c.bytes);
    } else {
      EXPECT_FALSE(parsed.has_value()) << *parsed;
    }
  }
}

TEST(FormatDurationTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(formatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(formatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(formatDuration(milliseconds(30'000)), "30s");
  EXPECT_EQ(formatDuration(milliseconds(90'000)), "90s");
  EXPECT_EQ(formatDuration(milliseconds(300'000)), "5m");
  EXPECT_EQ(formatDuration(milliseconds(7'200'000)), "2h");
  EXPECT_EQ(formatDuration(milliseconds(86'400'000)), "1d");
  EXPECT_EQ(formatDuration(milliseconds(90'000'000)), "25h");
  EXPECT_EQ(formatDuration(milliseconds(-2000)), "-2s");
  EXPECT_EQ(formatDuration(milliseconds(INT64_MIN)), "-9223372036854775808ms");
}

TEST(FormatDurationTest, RoundTripsThroughParse) {
  for (const int64_t ms : {int64_t{0}, int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{61'000},
                           int64_t{3'600'000}, int64_t{172'800'000}, INT64_MAX}) {
    SCOPED_TRACE(ms);
    const std::optional<milliseconds> back = parseDuration(formatDuration(milliseconds(ms)));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->count(), ms);
  }
}

TEST(FormatSizeTest, UsesTheLargestExactBinaryUnit) {
  EXPECT_EQ(formatSize(0), "0B");
  EXPECT_EQ(formatSize(1000), "1000B");
  EXPECT_EQ(formatSize(1024), "1KiB");
  EXPECT_EQ(formatSize(1536), "1536B");
  EXPECT_EQ(formatSize(64ull << 10), "64KiB");
  EXPECT_EQ(formatSize(1536ull << 10), "1536KiB");
  EXPECT_EQ(formatSize(256ull << 20), "256MiB");
  EXPECT_EQ(formatSize(4ull << 30), "4GiB");
}

TEST(FormatSizeTest, RoundTripsThroughParse) {
  for (const uint64_t bytes : {uint64_t{0}, uint64_t{7}, uint64_t{4096}, uint64_t{3} << 20,
                               (uint64_t{5} << 30) + 1, UINT64_MAX}) {
    SCOPED_TRACE(bytes);
    const std::optional<uint64_t> back = parseSize(formatSize(bytes));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, bytes);
  }
}

}  // namespace
}  // namespace cachecar
