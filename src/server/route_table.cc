#include "cachecar/server/route_table.h"

#include <algorithm>

namespace cachecar::server {

RouteTable::RouteTable(const std::vector<config::RouteSettings>& routes) {
  by_length_.reserve(routes.size());
  for (const auto& r : routes) {
    by_length_.push_back(&r);
  }
  std::stable_sort(by_length_.begin(), by_length_.end(),
                   [](const config::RouteSettings* a, const config::RouteSettings* b) {
                     return a->match.size() > b->match.size();
                   });
}

const config::RouteSettings* RouteTable::match(std::string_view path) const {
  for (const config::RouteSettings* r : by_length_) {
    if (path.substr(0, r->match.size()) == r->match) {
      return r;
    }
  }
  return nullptr;
}

}  // namespace cachecar::server
