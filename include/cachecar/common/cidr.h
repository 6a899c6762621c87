#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "cachecar/common/result.h"

namespace cachecar {

// An IPv4 or IPv6 address block ("10.0.0.0/8", "fd00::/8", or one address: "10.1.2.3"), for
// lists of trusted peers. An IPv4-mapped IPv6 peer ("::ffff:10.1.2.3") matches IPv4 blocks.
class CidrBlock {
 public:
  // Error on anything but an address with an optional /prefix in range; bits set past the
  // prefix ("10.1.2.3/8") are an error too, since they usually mean a typo.
  static Result<CidrBlock> parse(std::string_view text);

  // Whether the textual address `ip` lies in the block (false when `ip` is not an address).
  bool contains(std::string_view ip) const;
  std::string toString() const;
  bool operator==(const CidrBlock&) const = default;

 private:
  bool v6_ = false;
  std::array<uint8_t, 16> bytes_{};  // network order; IPv4 in the first 4
  unsigned prefix_bits_ = 0;
};

}  // namespace cachecar
