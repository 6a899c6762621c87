#include "cachecar/common/units.h"

#include <array>
#include <cstdint>
#include <limits>
#include <string>

namespace cachecar {

namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

// Suffixes are case-sensitive on purpose: "m" (minutes) and "M" (mebibytes) must never be
// confused, and "ms" must not be read as minutes followed by garbage.
constexpr std::array<Unit, 6> kDurationUnits{{
    {"", 1000},
    {"ms", 1},
    {"s", 1000},
    {"m", 60ull * 1000},
    {"h", 60ull * 60 * 1000},
    {"d", 24ull * 60 * 60 * 1000},
}};

// Every multiple is binary: a config written "256MB" by someone who means 256 MiB should not
// silently get 5% less memory than the same config written "256MiB".
constexpr std::array<Unit, 11> kSizeUnits{{
    {"", 1},
    {"B", 1},
    {"K", 1ull << 10},
    {"KB", 1ull << 10},
    {"KiB", 1ull << 10},
    {"M", 1ull << 20},
    {"MB", 1ull << 20},
    {"MiB", 1ull << 20},
    {"G", 1ull << 30},
    {"GB", 1ull << 30},
    {"GiB", 1ull << 30},
}};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// "<digits><suffix>" -> digits * factor, bounded by `max`. No sign, no spaces, no fractions.
template <size_t N>
std::optional<uint64_t> parseScaled(std::string_view text, const std::array<Unit, N>& units,
                                    uint64_t max) {
  size_t digits = 0;
  while (digits < text.size() && isDigit(text[digits])) {
    ++digits;
  }
  if (digits == 0) {
    return std::nullopt;
  }
  const std::string_view suffix = text.substr(digits);
  const Unit* unit = nullptr;
  for (const Unit& candidate : units) {
    if (candidate.suffix == suffix) {
      unit = &candidate;
      break;
    }
  }
  if (unit == nullptr) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < digits; ++i) {
    const auto digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (max - digit) / 10) {
      return std::nullopt;
    }
    value = value * 10 + digit;
  }
  if (value > max / unit->factor) {
    return std::nullopt;
  }
  return value * unit->factor;
}

}  // namespace

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  constexpr auto kMax =
      static_cast<uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
  const std::optional<uint64_t> ms = parseScaled(text, kDurationUnits, kMax);
  if (!ms) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*ms));
}

std::optional<uint64_t> parseSize(std::string_view text) {
  return parseScaled(text, kSizeUnits, std::numeric_limits<uint64_t>::max());
}

std::string formatDuration(std::chrono::milliseconds d) {
  const int64_t count = d.count();
  // Through uint64_t so that the most negative value does not overflow when negated.
  const uint64_t magnitude =
      count < 0 ? 0 - static_cast<uint64_t>(count) : static_cast<uint64_t>(count);
  const std::string sign = count < 0 ? "-" : "";
  if (magnitude == 0) {
    return "0s";
  }
  // The largest unit that divides exactly, so the result parses back to the same value.
  for (const std::string_view suffix : {"d", "h", "m", "s"}) {
    for (const Unit& unit : kDurationUnits) {
      if (unit.suffix == suffix && magnitude % unit.factor == 0) {
        return sign + std::to_string(magnitude / unit.factor) + std::string(suffix);
      }
    }
  }
  return sign + std::to_string(magnitude) + "ms";
}

std::string formatSize(uint64_t bytes) {
  constexpr std::array<Unit, 3> kBinary{
      {{"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}}};
  if (bytes != 0) {
    for (const Unit& unit : kBinary) {
      if (bytes % unit.factor == 0) {
        return std::to_string(bytes / unit.factor) + std::string(unit.suffix);
      }
    }
  }
  return std::to_string(bytes) + "B";
}

}  // namespace cachecar
