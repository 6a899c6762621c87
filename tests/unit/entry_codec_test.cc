#include "cachecar/cache/entry_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>

namespace cachecar::cache {
namespace {

// A heap copy of exactly `bytes.size()` bytes: unlike a short std::string (whose bytes live in
// an inline buffer), any read past its end is caught by AddressSanitizer.
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view bytes)
      : size_(bytes.size()), data_(std::make_unique<char[]>(bytes.size())) {
    if (size_ > 0) {
      std::memcpy(data_.get(), bytes.data(), size_);
    }
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  size_t size_;
  std::unique_ptr<char[]> data_;
};

const EntryMeta kMeta{
    .request_time_ms = 1700000000123,
    .response_time_ms = 1700000000456,
    .freshness_lifetime_ms = 60000,
    .corrected_initial_age_ms = 2000,
};

std::string smallEntry() {
  return encodeEntry(kMeta, "g|example.com|/a|", "HTTP/1.1 200 OK\r\nContent-Length: 5", "hello");
}

void putU32(std::string& bytes, size_t offset, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) {
    bytes[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
}

void putU64(std::string& bytes, size_t offset, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) {
    bytes[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
}

DecodeError decodeError(std::string_view bytes, bool verify) {
  DecodeError e = DecodeError::kNone;
  const ExactBuffer buffer(bytes);
  const std::optional<EntryView> view = decodeEntry(buffer.view(), verify, &e);
  EXPECT_EQ(view.has_value(), e == DecodeError::kNone);
  return e;
}

TEST(EntryCodecTest, LayoutIsAsDocumented) {
  const std::string bytes = smallEntry();
  ASSERT_EQ(bytes.size(), kEntryHeaderSize + 17 + 34 + 5);
  EXPECT_EQ(bytes.substr(0, 4), "CCE1");
  EXPECT_EQ(bytes[4], 2);  // version 2, little-endian
  EXPECT_EQ(bytes[5], 0);
  EXPECT_EQ(bytes[6], 0);  // flags
  EXPECT_EQ(bytes[7], 0);
  EXPECT_EQ(static_cast<unsigned char>(bytes[24]), 60000 & 0xff);
  EXPECT_EQ(static_cast<unsigned char>(bytes[25]), 60000 >> 8);
  EXPECT_EQ(bytes[40], 17);  // identity length
  EXPECT_EQ(bytes[44], 34);  // head length
  EXPECT_EQ(bytes[48], 5);   // body length
  EXPECT_EQ(bytes.substr(72, 17), "g|example.com|/a|");
  EXPECT_EQ(bytes.substr(72 + 17 + 34), "hello");
}

TEST(EntryCodecTest, RoundTrip) {
  constexpr char kBinary[] = "bin\0ary\xff\x00\x01 body";
  const std::string body(kBinary, sizeof(kBinary) - 1);
  ASSERT_EQ(body.size(), 15u);
  const EntryMeta meta{.request_time_ms = 5,
                       .response_time_ms = int64_t{1} << 45,
                       .freshness_lifetime_ms = 3600000,
                       .corrected_initial_age_ms = 0};
  const std::string bytes = encodeEntry(meta, "id", "HTTP/1.1 200 OK", body);
  for (const bool verify : {true, false}) {
    DecodeError e = DecodeError::kBadMagic;
    const std::optional<EntryView> view = decodeEntry(bytes, verify, &e);
    ASSERT_TRUE(view.has_value());
    EXPECT_EQ(e, DecodeError::kNone);
    EXPECT_EQ(view->meta.request_time_ms, 5);
    EXPECT_EQ(view->meta.response_time_ms, int64_t{1} << 45);
    EXPECT_EQ(view->meta.freshness_lifetime_ms, 3600000);
    EXPECT_EQ(view->meta.corrected_initial_age_ms, 0);
    EXPECT_EQ(view->identity, "id");
    EXPECT_EQ(view->head, "HTTP/1.1 200 OK");
    EXPECT_EQ(view->body, body);
    // Views point into the given bytes: no copy.
    EXPECT_EQ(view->body.data(), bytes.data() + bytes.size() - body.size());
  }
}

TEST(EntryCodecTest, EmptyParts) {
  const std::string bytes = encodeEntry({}, "", "", "");
  EXPECT_EQ(bytes.size(), kEntryHeaderSize);
  const std::optional<EntryView> view = decodeEntry(bytes, true);
  ASSERT_TRUE(view.has_value());
  EXPECT_TRUE(view->identity.empty());
  EXPECT_TRUE(view->head.empty());
  EXPECT_TRUE(view->body.empty());
  EXPECT_EQ(view->meta.freshness_lifetime_ms, 0);

  const std::string no_body = encodeEntry(kMeta, "k", "HTTP/1.1 200 OK", "");
  const std::optional<EntryView> empty_body = decodeEntry(no_body, true);
  ASSERT_TRUE(empty_body.has_value());
  EXPECT_EQ(empty_body->head, "HTTP/1.1 200 OK");
  EXPECT_TRUE(empty_body->body.empty());
}

TEST(EntryCodecTest, LargeBody) {
  std::string body(5u << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : body) {
    c = static_cast<char>(rng() & 0xff);
  }
  const std::string bytes = encodeEntry(kMeta, "big", "HTTP/1.1 200 OK", body);
  const std::optional<EntryView> view = decodeEntry(bytes, true);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->body.size(), body.size());
  EXPECT_TRUE(view->body == body);
  // The last byte is covered by the checksum too.
  std::string flipped = bytes;
  flipped.back() = static_cast<char>(flipped.back() ^ 0x01);
  EXPECT_EQ(decodeError(flipped, true), DecodeError::kBadChecksum);
}

TEST(EntryCodecTest, EveryTruncationIsRejected) {
  const std::string bytes = smallEntry();
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    for (const bool verify : {true, false}) {
      const DecodeError e = decodeError(std::string_view(bytes).substr(0, n), verify);
      EXPECT_EQ(e, n < kEntryHeaderSize ? DecodeError::kTooShort : DecodeError::kBadLength);
    }
  }
  EXPECT_EQ(decodeError(bytes, true), DecodeError::kNone);
  // Trailing bytes are as wrong as missing ones.
  EXPECT_EQ(decodeError(bytes + "x", false), DecodeError::kBadLength);
}

TEST(EntryCodecTest, FlippedTailBytesFailTheChecksum) {
  const std::string bytes = smallEntry();
  for (size_t i = kEntryHeaderSize; i < bytes.size(); ++i) {
    for (const unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string corrupt = bytes;
      corrupt[i] = static_cast<char>(static_cast<unsigned char>(corrupt[i]) ^ mask);
      SCOPED_TRACE(i);
      EXPECT_EQ(decodeError(corrupt, true), DecodeError::kBadChecksum);
      // Without verification (bytes this process encoded) the flip goes unnoticed by design.
      EXPECT_EQ(decodeError(corrupt, false), DecodeError::kNone);
    }
  }
  std::string bad_sum = bytes;
  bad_sum[56] = static_cast<char>(bad_sum[56] ^ 0x10);
  EXPECT_EQ(decodeError(bad_sum, true), DecodeError::kBadChecksum);
}

TEST(EntryCodecTest, WrongMagicVersionOrFlags) {
  const std::string bytes = smallEntry();
  std::string magic = bytes;
  magic[3] = '2';
  EXPECT_EQ(decodeError(magic, true), DecodeError::kBadMagic);
  std::string zeros(kEntryHeaderSize, '\0');
  EXPECT_EQ(decodeError(zeros, false), DecodeError::kBadMagic);

  for (const uint16_t version : {0, 1, 3, 256, 0xffff}) {
    std::string v = bytes;
    v[4] = static_cast<char>(version & 0xff);
    v[5] = static_cast<char>(version >> 8);
    SCOPED_TRACE(version);
    EXPECT_EQ(decodeError(v, false), DecodeError::kBadVersion);
  }
  std::string flags = bytes;
  flags[6] = 8;  // not a known flag
  EXPECT_EQ(decodeError(flags, false), DecodeError::kBadVersion);
  flags[6] = static_cast<char>(kEntryFlagVaryMarker | kEntryFlagNoStale);
  EXPECT_EQ(decodeError(flags, false), DecodeError::kNone);
}

TEST(EntryCodecTest, NewFieldsRoundTripAndHostileTimesAreRejected) {
  EntryMeta meta;
  meta.response_time_ms = 1700000000000;
  meta.flags = kEntryFlagRevalidateAlways;
  meta.stale_while_revalidate_s = 30;
  meta.stale_if_error_s = 86400;
  const std::string bytes = encodeEntry(meta, "id", "HTTP/1.1 200 OK\r\n", "b");
  const auto view = decodeEntry(bytes, true);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->meta.flags, kEntryFlagRevalidateAlways);
  EXPECT_EQ(view->meta.stale_while_revalidate_s, 30u);
  EXPECT_EQ(view->meta.stale_if_error_s, 86400u);
  std::string hostile = bytes;
  for (size_t i = 16; i < 24; ++i) {
    hostile[i] = '\x7f';  // response time near INT64_MAX
  }
  EXPECT_EQ(decodeError(hostile, false), DecodeError::kBadLength);
}

TEST(EntryCodecTest, AbsurdLengthsAreRejected) {
  const std::string bytes = smallEntry();
  struct Case {
    const char* name;
    uint32_t identity;
    uint32_t head;
    uint64_t body;
    DecodeError expected;
  };
  const uint64_t tail = bytes.size() - kEntryHeaderSize;
  const Case cases[] = {
      {"identity 0xffffffff", 0xffffffffu, 34, 5, DecodeError::kBadLength},
      {"head 0xffffffff", 17, 0xffffffffu, 5, DecodeError::kBadLength},
      {"body 2^64-1", 17, 34, UINT64_MAX, DecodeError::kBadLength},
      {"all max", 0xffffffffu, 0xffffffffu, UINT64_MAX, DecodeError::kBadLength},
      // These sum to the real tail length modulo 2^64: a decoder that adds the lengths up would
      // accept them and slice far out of bounds.
      {"sum wraps around", 0xffffffffu, 0xffffffffu, tail - 2 * uint64_t{0xffffffff},
       DecodeError::kBadLength},
      {"body wraps with identity", 0xffffffffu, 0, tail - uint64_t{0xffffffff},
       DecodeError::kBadLength},
      {"identity too long by one", 18, 34, 5, DecodeError::kBadLength},
      {"body short by one", 17, 34, 4, DecodeError::kBadLength},
      {"body long by one", 17, 34, 6, DecodeError::kBadLength},
      // A consistent total with moved boundaries: the tail's bytes are intact, so the checksum
      // passes; the identity comparison on read is what turns this into a miss.
      {"shifted between parts", 16, 35, 5, DecodeError::kNone},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string corrupt = bytes;
    putU32(corrupt, 40, c.identity);
    putU32(corrupt, 44, c.head);
    putU64(corrupt, 48, c.body);
    EXPECT_EQ(decodeError(corrupt, true), c.expected);
    EXPECT_EQ(decodeError(corrupt, false), c.expected);
  }
}

// Deterministic garbage: pure noise, and valid entries with random bytes overwritten, so the
// inputs get past the magic and version checks and exercise the length logic.
TEST(EntryCodecTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(20240611);
  const std::string valid = smallEntry();
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    if (i % 2 == 0) {
      input.resize(rng() % 160);
      for (char& c : input) {
        c = static_cast<char>(rng() & 0xff);
      }
      if (input.size() >= 6 && i % 4 == 0) {
        std::memcpy(input.data(), "CCE1\x01\x00", 6);
      }
    } else {
      input = valid;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        // Mostly the length fields, where the danger is.
        const size_t at = (rng() % 2 == 0) ? 40 + rng() % 16 : rng() % input.size();
        input[at] = static_cast<char>(rng() & 0xff);
      }
      if (rng() % 3 == 0) {
        input.resize(rng() % (input.size() + 1));
      }
    }
    const ExactBuffer buffer(input);
    const std::string_view bytes = buffer.view();
    for (const bool verify : {true, false}) {
      const std::optional<EntryView> view = decodeEntry(bytes, verify);
      if (!view) {
        continue;
      }
      ++accepted;
      // Anything accepted lies inside the input and accounts for every byte.
      const char* begin = bytes.data();
      const char* end = begin + bytes.size();
      for (const std::string_view part : {view->identity, view->head, view->body}) {
        ASSERT_GE(part.data(), begin);
        ASSERT_LE(part.data() + part.size(), end);
      }
      ASSERT_EQ(kEntryHeaderSize + view->identity.size() + view->head.size() + view->body.size(),
                bytes.size());
    }
  }
  // Edits that only touch times or the checksum decode without verification: the loop did
  // reach the accepting path.
  EXPECT_GT(accepted, 0u);
}

TEST(EntryCodecTest, ErrorNames) {
  EXPECT_EQ(toString(DecodeError::kNone), "none");
  EXPECT_EQ(toString(DecodeError::kTooShort), "too-short");
  EXPECT_EQ(toString(DecodeError::kBadMagic), "bad-magic");
  EXPECT_EQ(toString(DecodeError::kBadVersion), "bad-version");
  EXPECT_EQ(toString(DecodeError::kBadLength), "bad-length");
  EXPECT_EQ(toString(DecodeError::kBadChecksum), "bad-checksum");
}

}  // namespace
}  // namespace cachecar::cache
