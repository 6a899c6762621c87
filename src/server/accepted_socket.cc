#include "cachecar/server/accepted_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace cachecar::server {

void refuseAccepted(evutil_socket_t fd, std::string_view response) {
  const ssize_t ignored = ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
  evutil_closesocket(fd);
}

upstream::BufferEventPtr adoptAccepted(event_base* base, evutil_socket_t fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  upstream::BufferEventPtr bev(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE));
  if (!bev) {
    evutil_closesocket(fd);
  }
  return bev;
}

}  // namespace cachecar::server
