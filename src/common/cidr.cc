#include "cachecar/common/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <optional>

namespace cachecar {

namespace {

struct Address {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
};

std::optional<Address> parseAddress(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return std::nullopt;
  }
  char buffer[INET6_ADDRSTRLEN];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  Address address;
  if (inet_pton(AF_INET, buffer, address.bytes.data()) == 1) {
    return address;
  }
  if (inet_pton(AF_INET6, buffer, address.bytes.data()) == 1) {
    address.v6 = true;
    return address;
  }
  return std::nullopt;
}

// "::ffff:a.b.c.d" is the IPv4 peer a dual-stack socket reports.
Address unmapped(Address address) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (address.v6 && std::memcmp(address.bytes.data(), kMapped, sizeof(kMapped)) == 0) {
    Address v4;
    std::memcpy(v4.bytes.data(), address.bytes.data() + 12, 4);
    return v4;
  }
  return address;
}

bool samePrefix(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) {
    return false;
  }
  const unsigned rest = bits % 8;
  if (rest == 0) {
    return true;
  }
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Result<CidrBlock> CidrBlock::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::optional<Address> address = parseAddress(text.substr(0, slash));
  if (!address) {
    return Error{"'" + std::string(text) + "' is not an IP address or CIDR block (like "
                 "10.0.0.0/8 or fd00::/8)"};
  }
  const unsigned max_bits = address->v6 ? 128 : 32;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        bits > max_bits) {
      return Error{"'" + std::string(text) + "': the prefix length must be 0 to " +
                   std::to_string(max_bits)};
    }
  }
  CidrBlock block;
  block.v6_ = address->v6;
  block.prefix_bits_ = bits;
  // Bits past the prefix must be zero: "10.1.2.3/8" is more likely a typo than 10.0.0.0/8.
  std::array<uint8_t, 16> masked{};
  for (unsigned i = 0; i < bits; ++i) {
    masked[i / 8] |= static_cast<uint8_t>(address->bytes[i / 8] & (0x80 >> (i % 8)));
  }
  if (masked != address->bytes) {
    return Error{"'" + std::string(text) + "' has address bits set past its /" +
                 std::to_string(bits) + " prefix"};
  }
  block.bytes_ = address->bytes;
  return block;
}

bool CidrBlock::contains(std::string_view ip) const {
  const std::optional<Address> parsed = parseAddress(ip);
  if (!parsed) {
    return false;
  }
  const Address address = unmapped(*parsed);
  return address.v6 == v6_ && samePrefix(address.bytes, bytes_, prefix_bits_);
}

std::string CidrBlock::toString() const {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), text, sizeof(text));
  return std::string(text) + "/" + std::to_string(prefix_bits_);
}

}  // namespace cachecar
