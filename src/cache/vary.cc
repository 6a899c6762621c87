#include "cachecar/cache/vary.h"

#include <xxhash.h>

#include <algorithm>
#include <cstdio>

namespace cachecar::cache {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  return out;
}


std::string normalizeValue(std::string_view combined) {
  std::string out;
  bool first = true;
  http::forEachListItem(combined, [&](std::string_view item) {
    if (!first) {
      out.append(",");
    }
    first = false;
    bool space = false;
    for (char c : item) {
      if (c == ' ' || c == '\t') {
        space = true;
        continue;
      }
      if (space) {
        out.push_back(' ');
        space = false;
      }
      out.push_back(c);
    }
  });
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> varyFields(const http::HeaderMap& response_headers) {
  std::vector<std::string> fields;
  bool unusable = false;  // `*`, or too many names
  for (const auto& h : response_headers.all()) {
    if (unusable || !http::equalsIgnoreCase(h.name, "Vary")) {
      continue;
    }
    http::forEachListItem(h.value, [&](std::string_view item) {
      if (unusable || item == "*") {
        unusable = true;
        return;
      }
      std::string name = lower(item);
      if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
        // The list stays short (at most kMaxVaryFields), so this search does too.
        fields.push_back(std::move(name));
        unusable = fields.size() > kMaxVaryFields;
      }
    });
  }
  if (unusable) {
    return std::nullopt;
  }
  return fields;
}

std::string varianceOf(const std::vector<std::string>& fields, const http::HeaderMap& request) {
  std::string out;
  for (const auto& name : fields) {
    if (!out.empty()) {
      out.push_back('\n');
    }
    out.append(name);
    auto value = request.getCombined(name);
    if (!value) {
      out.push_back('!');
      continue;
    }
    out.push_back('=');
    out.append(normalizeValue(*value));
  }
  return out;
}

std::string variantStorageKey(std::string_view primary_key, std::string_view variance) {
  const XXH128_hash_t hash = XXH3_128bits(variance.data(), variance.size());
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64));
  std::string out;
  out.reserve(primary_key.size() + 34);
  out.append(primary_key);
  out.append("|v");
  out.append(hex, 32);
  return out;
}

std::string joinFields(const std::vector<std::string>& fields) {
  std::string out;
  for (const auto& f : fields) {
    if (!out.empty()) {
      out.append(", ");
    }
    out.append(f);
  }
  return out;
}

std::vector<std::string> splitFields(std::string_view joined) {
  std::vector<std::string> out;
  http::forEachListItem(joined, [&](std::string_view item) { out.emplace_back(item); });
  return out;
}

}  // namespace cachecar::cache
