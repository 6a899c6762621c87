#pragma once

#include <string_view>
#include <vector>

#include "cachecar/config/config.h"

namespace cachecar::server {

// Finds the route for a request path: the longest `match` prefix wins (file order breaks no
// ties, since duplicate prefixes are a config error).
class RouteTable {
 public:
  explicit RouteTable(const std::vector<config::RouteSettings>& routes);
  // nullptr when no route matches.
  const config::RouteSettings* match(std::string_view path) const;

 private:
  std::vector<const config::RouteSettings*> by_length_;  // longest first
};

}  // namespace cachecar::server
