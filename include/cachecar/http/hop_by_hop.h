#pragma once

#include "cachecar/http/message.h"

namespace cachecar::http {

// Removes hop-by-hop fields (RFC 9110 §7.6.1): Connection and every field it names,
// Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade. Framing is redone by whoever writes the message on.
void removeHopByHop(HeaderMap& headers);

// Whether a Connection header (all its values) lists `token` (case-insensitive).
bool connectionHas(const HeaderMap& headers, std::string_view token);

}  // namespace cachecar::http
