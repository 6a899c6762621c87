#include "cachecar/http/hop_by_hop.h"

#include <algorithm>
#include <array>

namespace cachecar::http {

namespace {

constexpr std::array<std::string_view, 9> kHopByHop = {
    "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
    "TE",         "Trailer",    "Transfer-Encoding", "Upgrade"};

bool isHopByHop(std::string_view name) {
  return std::any_of(kHopByHop.begin(), kHopByHop.end(),
                     [name](std::string_view h) { return equalsIgnoreCase(h, name); });
}

// Calls fn(token) for each comma-separated token of every Connection field.
template <typename Fn>
void forEachConnectionToken(const HeaderMap& headers, Fn&& fn) {
  for (const auto& h : headers.all()) {
    if (equalsIgnoreCase(h.name, "Connection")) {
      forEachListItem(h.value, fn);
    }
  }
}

}  // namespace

ConnectionOptions::ConnectionOptions(const HeaderMap& headers) {
  forEachConnectionToken(headers, [this](std::string_view token) { tokens_.push_back(token); });
  std::sort(tokens_.begin(), tokens_.end(), lessIgnoreCase);
  tokens_.erase(std::unique(tokens_.begin(), tokens_.end(), equalsIgnoreCase), tokens_.end());
}

bool ConnectionOptions::names(std::string_view field) const {
  return std::binary_search(tokens_.begin(), tokens_.end(), field, lessIgnoreCase);
}

bool connectionHas(const HeaderMap& headers, std::string_view token) {
  bool found = false;
  forEachConnectionToken(headers, [&](std::string_view t) {
    if (equalsIgnoreCase(t, token)) {
      found = true;
    }
  });
  return found;
}

void removeHopByHop(HeaderMap& headers) {
  std::vector<Header>& fields = headers.all();
  const ConnectionOptions connection(headers);
  // Decide first, then compact: the options are views into the Connection values.
  std::vector<bool> drop(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    drop[i] = isHopByHop(fields[i].name) || connection.names(fields[i].name);
  }
  size_t kept = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (!drop[i]) {
      if (kept != i) {
        fields[kept] = std::move(fields[i]);
      }
      ++kept;
    }
  }
  fields.resize(kept);
}

}  // namespace cachecar::http
