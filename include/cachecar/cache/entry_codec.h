#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar::cache {

// A cached response as stored: versioned, little-endian, bounds-checked binary.
//   0  4  magic "CCE1"
//   4  2  format version (1)
//   6  2  flags (kEntryFlag*; unknown bits are rejected)
//   8  8  request_time_ms    (unix ms; RFC 9111 §4.2.3)
//  16  8  response_time_ms
//  24  8  freshness_lifetime_ms
//  32  8  corrected_initial_age_ms
//  40  4  identity length
//  44  4  head length   (status line + header lines in HTTP/1.1 wire form, no final CRLF;
//                        readable with redis-cli)
//  48  8  body length
//  56  8  checksum: XXH3-64 of everything after this header (identity, head, body)
//  64  4  stale_while_revalidate_s
//  68  4  stale_if_error_s
//  72 ...  identity, head, body
// Any layout change bumps the version, which is also part of the storage key, so old and new
// pods sharing one Redis never read each other's entries.
inline constexpr uint16_t kEntryFormatVersion = 2;
inline constexpr size_t kEntryHeaderSize = 72;

// The entry is a Vary marker: its head lists the request fields the variants differ by
// ("accept-encoding, accept-language") and its body is empty.
inline constexpr uint16_t kEntryFlagVaryMarker = 1;
// no-cache: validate with the app before every reuse.
inline constexpr uint16_t kEntryFlagRevalidateAlways = 2;
// must-revalidate, proxy-revalidate or s-maxage: never served stale.
inline constexpr uint16_t kEntryFlagNoStale = 4;
inline constexpr uint16_t kEntryKnownFlags =
    kEntryFlagVaryMarker | kEntryFlagRevalidateAlways | kEntryFlagNoStale;

struct EntryMeta {
  int64_t request_time_ms = 0;
  int64_t response_time_ms = 0;
  int64_t freshness_lifetime_ms = 0;
  int64_t corrected_initial_age_ms = 0;
  uint16_t flags = 0;
  uint32_t stale_while_revalidate_s = 0;
  uint32_t stale_if_error_s = 0;
};

// Views into the decoded bytes: valid while the bytes are (the Blob is held by reference).
struct EntryView {
  EntryMeta meta;
  std::string_view identity;
  std::string_view head;
  std::string_view body;
};

std::string encodeEntry(const EntryMeta& meta, std::string_view identity, std::string_view head,
                        std::string_view body);

enum class DecodeError { kNone, kTooShort, kBadMagic, kBadVersion, kBadLength, kBadChecksum };
std::string_view toString(DecodeError e);

// Never reads out of bounds, whatever the input (a shared store may hold anything).
// `verify_checksum` hashes the whole value: done for values from a shared store (Redis); the
// in-process memory store holds only bytes this process encoded, so its hits skip that cost.
std::optional<EntryView> decodeEntry(std::string_view bytes, bool verify_checksum,
                                     DecodeError* error = nullptr);

}  // namespace cachecar::cache
