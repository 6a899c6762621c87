#include "cachecar/cache/entry_codec.h"

#include <xxhash.h>

#include <limits>

namespace cachecar::cache {

namespace {

constexpr std::string_view kMagic = "CCE1";

// Field offsets, as documented in entry_codec.h.
constexpr size_t kVersionOffset = 4;
constexpr size_t kFlagsOffset = 6;
constexpr size_t kRequestTimeOffset = 8;
constexpr size_t kResponseTimeOffset = 16;
constexpr size_t kFreshnessOffset = 24;
constexpr size_t kInitialAgeOffset = 32;
constexpr size_t kIdentityLengthOffset = 40;
constexpr size_t kHeadLengthOffset = 44;
constexpr size_t kBodyLengthOffset = 48;
constexpr size_t kChecksumOffset = 56;
constexpr size_t kStaleWhileRevalidateOffset = 64;
constexpr size_t kStaleIfErrorOffset = 68;

// Times and durations read from a shared store are untrusted too: anything outside
// [0, 2^45 ms] (about the year 3084) is not a value this program wrote, and passing it on
// could overflow time arithmetic.
constexpr uint64_t kMaxMillis = uint64_t{1} << 45;

// Little-endian by byte assembly: independent of the host's byte order and alignment.
template <typename T>
void putLe(char* at, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    at[i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
}

template <typename T>
T getLe(std::string_view bytes, size_t offset) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |=
        static_cast<T>(static_cast<T>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i));
  }
  return value;
}

uint64_t tailChecksum(std::string_view tail) { return XXH3_64bits(tail.data(), tail.size()); }

std::optional<EntryView> fail(DecodeError* error, DecodeError e) {
  if (error != nullptr) {
    *error = e;
  }
  return std::nullopt;
}

}  // namespace

std::string encodeEntry(const EntryMeta& meta, std::string_view identity, std::string_view head,
                        std::string_view body) {
  constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
  if (identity.size() > kMaxU32 || head.size() > kMaxU32) {
    // Not representable; an empty value decodes as kTooShort, i.e. a miss, never a wrong page.
    return {};
  }
  std::string out(kEntryHeaderSize, '\0');
  out.reserve(kEntryHeaderSize + identity.size() + head.size() + body.size());
  out.replace(0, kMagic.size(), kMagic);
  char* header = out.data();
  putLe<uint16_t>(header + kVersionOffset, kEntryFormatVersion);
  putLe<uint16_t>(header + kFlagsOffset, meta.flags);
  putLe<uint64_t>(header + kRequestTimeOffset, static_cast<uint64_t>(meta.request_time_ms));
  putLe<uint64_t>(header + kResponseTimeOffset, static_cast<uint64_t>(meta.response_time_ms));
  putLe<uint64_t>(header + kFreshnessOffset, static_cast<uint64_t>(meta.freshness_lifetime_ms));
  putLe<uint64_t>(header + kInitialAgeOffset, static_cast<uint64_t>(meta.corrected_initial_age_ms));
  putLe<uint32_t>(header + kIdentityLengthOffset, static_cast<uint32_t>(identity.size()));
  putLe<uint32_t>(header + kHeadLengthOffset, static_cast<uint32_t>(head.size()));
  putLe<uint64_t>(header + kBodyLengthOffset, static_cast<uint64_t>(body.size()));
  putLe<uint32_t>(header + kStaleWhileRevalidateOffset, meta.stale_while_revalidate_s);
  putLe<uint32_t>(header + kStaleIfErrorOffset, meta.stale_if_error_s);
  out.append(identity);
  out.append(head);
  out.append(body);
  const uint64_t checksum = tailChecksum(std::string_view(out).substr(kEntryHeaderSize));
  putLe<uint64_t>(out.data() + kChecksumOffset, checksum);
  return out;
}

std::string_view toString(DecodeError e) {
  switch (e) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kTooShort:
      return "too-short";
    case DecodeError::kBadMagic:
      return "bad-magic";
    case DecodeError::kBadVersion:
      return "bad-version";
    case DecodeError::kBadLength:
      return "bad-length";
    case DecodeError::kBadChecksum:
      return "bad-checksum";
  }
  return "unknown";
}

std::optional<EntryView> decodeEntry(std::string_view bytes, bool verify_checksum,
                                     DecodeError* error) {
  if (bytes.size() < kEntryHeaderSize) {
    return fail(error, DecodeError::kTooShort);
  }
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return fail(error, DecodeError::kBadMagic);
  }
  // A writer that sets an unknown flag speaks a format this reader does not know.
  if (getLe<uint16_t>(bytes, kVersionOffset) != kEntryFormatVersion ||
      (getLe<uint16_t>(bytes, kFlagsOffset) & ~kEntryKnownFlags) != 0) {
    return fail(error, DecodeError::kBadVersion);
  }
  for (size_t offset : {kRequestTimeOffset, kResponseTimeOffset, kFreshnessOffset,
                        kInitialAgeOffset}) {
    if (getLe<uint64_t>(bytes, offset) > kMaxMillis) {
      return fail(error, DecodeError::kBadLength);
    }
  }
  // Lengths are untrusted: compare each against what is left instead of adding them up, so no
  // sum can wrap around.
  const uint64_t identity_len = getLe<uint32_t>(bytes, kIdentityLengthOffset);
  const uint64_t head_len = getLe<uint32_t>(bytes, kHeadLengthOffset);
  const uint64_t body_len = getLe<uint64_t>(bytes, kBodyLengthOffset);
  uint64_t remaining = bytes.size() - kEntryHeaderSize;
  if (identity_len > remaining) {
    return fail(error, DecodeError::kBadLength);
  }
  remaining -= identity_len;
  if (head_len > remaining) {
    return fail(error, DecodeError::kBadLength);
  }
  remaining -= head_len;
  if (body_len != remaining) {
    return fail(error, DecodeError::kBadLength);
  }
  const std::string_view tail = bytes.substr(kEntryHeaderSize);
  if (verify_checksum && tailChecksum(tail) != getLe<uint64_t>(bytes, kChecksumOffset)) {
    return fail(error, DecodeError::kBadChecksum);
  }

  EntryView view;
  view.meta.request_time_ms = static_cast<int64_t>(getLe<uint64_t>(bytes, kRequestTimeOffset));
  view.meta.response_time_ms = static_cast<int64_t>(getLe<uint64_t>(bytes, kResponseTimeOffset));
  view.meta.freshness_lifetime_ms = static_cast<int64_t>(getLe<uint64_t>(bytes, kFreshnessOffset));
  view.meta.corrected_initial_age_ms =
      static_cast<int64_t>(getLe<uint64_t>(bytes, kInitialAgeOffset));
  view.meta.flags = getLe<uint16_t>(bytes, kFlagsOffset);
  view.meta.stale_while_revalidate_s = getLe<uint32_t>(bytes, kStaleWhileRevalidateOffset);
  view.meta.stale_if_error_s = getLe<uint32_t>(bytes, kStaleIfErrorOffset);
  view.identity = tail.substr(0, identity_len);
  view.head = tail.substr(identity_len, head_len);
  view.body = tail.substr(identity_len + head_len);
  if (error != nullptr) {
    *error = DecodeError::kNone;
  }
  return view;
}

}  // namespace cachecar::cache
