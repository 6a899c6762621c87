#pragma once

#include <string_view>
#include <vector>

#include "cachecar/http/message.h"

namespace cachecar::http {

// The field names a message's Connection header lists (RFC 9110 §7.6.1), sorted and
// deduplicated case-insensitively, so that checking every field of a message against them
// costs one binary search per field however many tokens there are. Views into `headers`:
// valid while its Connection values are.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const HeaderMap& headers);
  bool names(std::string_view field) const;

 private:
  std::vector<std::string_view> tokens_;
};

// Removes hop-by-hop fields (RFC 9110 §7.6.1): Connection and every field it names,
// Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade. Framing is redone by whoever writes the message on. One pass.
void removeHopByHop(HeaderMap& headers);

// Whether a Connection header (all its values) lists `token` (case-insensitive).
bool connectionHas(const HeaderMap& headers, std::string_view token);

}  // namespace cachecar::http
