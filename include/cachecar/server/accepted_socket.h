#pragma once

#include <event2/event.h>

#include <string_view>

#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::server {

// A just-accepted client socket as both listeners (proxy and admin) take it on.

// Over a connection limit: sends `response` if the socket takes it at once (never waits, never
// raises SIGPIPE) and closes the socket.
void refuseAccepted(evutil_socket_t fd, std::string_view response);

// TCP_NODELAY (responses are written whole; Nagle would only delay their last segment) and a
// bufferevent that owns the socket. On failure the socket is closed and null is returned.
upstream::BufferEventPtr adoptAccepted(event_base* base, evutil_socket_t fd);

}  // namespace cachecar::server
