#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

// "250ms", "30s", "5m", "2h", "1d"; a bare number is seconds. nullopt when malformed.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);
// "512", "16KiB", "256MiB", "1GiB" (also KB/MB/GB and K/M/G, all binary). nullopt when malformed.
std::optional<uint64_t> parseSize(std::string_view text);

std::string formatDuration(std::chrono::milliseconds d);
std::string formatSize(uint64_t bytes);

}  // namespace cachecar
