#include "cachecar/common/cidr.h"

#include <gtest/gtest.h>

namespace cachecar {
namespace {

CidrBlock block(const char* text) {
  Result<CidrBlock> parsed = CidrBlock::parse(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed ? "" : parsed.error().message);
  return parsed ? *parsed : CidrBlock{};
}

TEST(CidrBlockTest, MatchesAddressesInsideTheBlockOnly) {
  const CidrBlock ten = block("10.0.0.0/8");
  EXPECT_TRUE(ten.contains("10.1.2.3"));
  EXPECT_TRUE(ten.contains("10.255.255.255"));
  EXPECT_FALSE(ten.contains("11.0.0.0"));
  EXPECT_FALSE(ten.contains("not an address"));
  EXPECT_FALSE(ten.contains(""));
  const CidrBlock odd = block("192.168.0.128/25");
  EXPECT_TRUE(odd.contains("192.168.0.200"));
  EXPECT_FALSE(odd.contains("192.168.0.127"));
}

TEST(CidrBlockTest, ASingleAddressIsItsOwnBlock) {
  const CidrBlock one = block("127.0.0.1");
  EXPECT_TRUE(one.contains("127.0.0.1"));
  EXPECT_FALSE(one.contains("127.0.0.2"));
  EXPECT_EQ(one.toString(), "127.0.0.1/32");
}

TEST(CidrBlockTest, Ipv6AndMappedIpv4) {
  const CidrBlock ula = block("fd00::/8");
  EXPECT_TRUE(ula.contains("fd12::1"));
  EXPECT_FALSE(ula.contains("fe80::1"));
  EXPECT_FALSE(ula.contains("10.0.0.1"));
  EXPECT_TRUE(block("10.0.0.0/8").contains("::ffff:10.9.8.7"));
  EXPECT_TRUE(block("::/0").contains("::1"));
  EXPECT_TRUE(block("0.0.0.0/0").contains("8.8.8.8"));
}

TEST(CidrBlockTest, RejectsWhatIsNotABlock) {
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.1.2.3/8", "fd00::/129",
                          "host.example", "10.0.0.0/8/8", "10.0.0.0/-1"}) {
    EXPECT_FALSE(CidrBlock::parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace cachecar
