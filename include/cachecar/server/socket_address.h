#pragma once

#include <sys/socket.h>

#include <string>

#include "cachecar/common/result.h"
#include "cachecar/config/config.h"

namespace cachecar::server {

// A resolved socket address, ready for bind() or connect().
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Resolves `address` (getaddrinfo: blocking, so only at startup and on the control thread).
// `passive`: for a listener (bind). The error reads "cannot resolve 'host:port': why".
Result<SocketAddress> resolveAddress(const config::HostPort& address, bool passive);

// "127.0.0.1" / "::1" for logs and X-Forwarded-For; "unknown" for other families.
std::string peerAddressOf(const sockaddr* addr);

}  // namespace cachecar::server
