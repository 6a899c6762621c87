#include "cachecar/event/socket_io.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <sys/uio.h>

#include <cerrno>

namespace cachecar::event {

namespace {

// What libevent 2.1 reads at most per readable event (EVBUFFER_MAX_READ in its buffer.c).
constexpr size_t kLibeventMaxRead = 4096;

}  // namespace

size_t readRestOfSocket(bufferevent* bev, size_t input_limit) {
  evbuffer* input = bufferevent_get_input(bev);
  const size_t buffered = evbuffer_get_length(input);
  if (buffered < kLibeventMaxRead || buffered >= input_limit) {
    return 0;
  }
  const size_t max_bytes = input_limit - buffered;
  // The bufferevent keeps its input's end frozen so only it adds to the buffer; we add to it
  // here, on the loop that owns it, between its own reads.
  evbuffer_unfreeze(input, 0);
  evbuffer_iovec space[2];
  const int n_space = evbuffer_reserve_space(input, static_cast<ev_ssize_t>(max_bytes), space, 2);
  size_t got = 0;
  if (n_space > 0) {
    // The reserved extents may hold more than asked for; read no more than max_bytes.
    iovec iov[2];
    size_t room = max_bytes;
    for (int i = 0; i < n_space; ++i) {
      iov[i].iov_base = space[i].iov_base;
      iov[i].iov_len = space[i].iov_len < room ? space[i].iov_len : room;
      room -= iov[i].iov_len;
    }
    ssize_t n = 0;
    do {
      n = ::readv(bufferevent_getfd(bev), iov, n_space);
    } while (n < 0 && errno == EINTR);
    got = n > 0 ? static_cast<size_t>(n) : 0;
    // Commit exactly the bytes read, in the order of the reserved extents.
    int used = 0;
    size_t left = got;
    while (used < n_space && left > 0) {
      const size_t take = left < space[used].iov_len ? left : space[used].iov_len;
      space[used].iov_len = take;
      left -= take;
      ++used;
    }
    evbuffer_commit_space(input, space, used);
  }
  evbuffer_freeze(input, 0);
  return got;
}

bool writeNow(bufferevent* bev) {
  evbuffer* out = bufferevent_get_output(bev);
  // The bufferevent keeps its output's front frozen so only it drains the buffer; while its
  // write event is off, draining it here is ours to do.
  evbuffer_unfreeze(out, 1);
  // One evbuffer_write sends either memory (writev) or one file segment (sendfile).
  int written = 0;
  while (evbuffer_get_length(out) > 0) {
    written = evbuffer_write(out, bufferevent_getfd(bev));
    if (written <= 0) {
      break;
    }
  }
  evbuffer_freeze(out, 1);
  return evbuffer_get_length(out) == 0;
}

void flushOutput(bufferevent* bev) {
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 ||
      (bufferevent_get_enabled(bev) & EV_WRITE) != 0) {
    return;  // nothing to send, or the bufferevent is already waiting to send it
  }
  if (!writeNow(bev)) {
    // The socket is full (or failed): let libevent finish, and report errors to the event
    // callback from a clean stack.
    bufferevent_enable(bev, EV_WRITE);
  }
}

}  // namespace cachecar::event
