#pragma once

#include <event2/bufferevent.h>

#include <cstddef>

namespace cachecar::event {

// Reading and writing a bufferevent's socket directly, where libevent 2.1's own schedule costs
// whole trips around the loop.

// libevent 2.1 reads at most 4 KiB per readable event (EVBUFFER_MAX_READ, not configurable
// before 2.2), so a 256 KiB response from the app took 64 trips around the loop, each with its
// own write to the client. Called from a read callback, this takes the rest of what the kernel
// holds for `bev`'s socket straight into the bufferevent's input with one readv(), until the
// input holds `input_limit` bytes. It reads only when libevent's read came back full (the
// input holds 4 KiB or more), since a shorter read already took everything.
//
// Returns the bytes read. Nothing waiting, end of stream and errors all return 0 and are left
// for the bufferevent to find and report on its next read, as it would have anyway.
size_t readRestOfSocket(bufferevent* bev, size_t input_limit);

// Sends what `bev`'s output holds straight to its socket, now, rather than on the loop's next
// turn through a write event (which also costs two epoll_ctl calls to arm and disarm). Memory
// goes out with writev, file segments with sendfile, in order, until the buffer is empty or
// the socket is full. Returns true when everything was sent; otherwise (socket full, or an
// error) the caller enables EV_WRITE so that the bufferevent finishes the job or reports the
// error from a clean stack. Only while the bufferevent's write event is off.
bool writeNow(bufferevent* bev);

// The way both connections send: nothing when the output is empty or while the bufferevent's
// write event is on (it is already waiting to send), else writeNow(), and the write event on
// when that left bytes.
void flushOutput(bufferevent* bev);

}  // namespace cachecar::event
