#include "cachecar/http/hop_by_hop.h"

#include <array>
#include <string>
#include <vector>

namespace cachecar::http {

namespace {

constexpr std::array<std::string_view, 9> kHopByHop = {
    "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
    "TE",         "Trailer",    "Transfer-Encoding", "Upgrade"};

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
  std::vector<std::string> named;
  forEachConnectionToken(headers, [&](std::string_view t) { named.emplace_back(t); });
  for (const auto& name : named) {
    headers.remove(name);
  }
  for (std::string_view name : kHopByHop) {
    headers.remove(name);
  }
}

}  // namespace cachecar::http
