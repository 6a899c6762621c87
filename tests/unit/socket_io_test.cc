// readRestOfSocket and writeNow on a real socket pair and a real libevent bufferevent.
#include "cachecar/event/socket_io.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cachecar/event/event_loop.h"
#include "cachecar/storage/stored_bytes.h"

namespace cachecar::event {
namespace {

struct BufferEventDeleter {
  void operator()(bufferevent* bev) const { bufferevent_free(bev); }
};

// A bufferevent on one end of a stream socket pair; the test plays the peer on the other.
class SocketIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    peer_ = fds[1];
    bev_.reset(bufferevent_socket_new(loop_.base(), fds[0], BEV_OPT_CLOSE_ON_FREE));
    ASSERT_NE(bev_, nullptr);
  }
  void TearDown() override { ::close(peer_); }

  void peerSends(const std::string& bytes) {
    ASSERT_EQ(::write(peer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  std::string peerReads(size_t max) {
    std::string out(max, '\0');
    const ssize_t n = ::read(peer_, out.data(), out.size());
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }
  evbuffer* input() { return bufferevent_get_input(bev_.get()); }
  evbuffer* output() { return bufferevent_get_output(bev_.get()); }
  std::string drainInput() {
    std::string out(evbuffer_get_length(input()), '\0');
    evbuffer_remove(input(), out.data(), out.size());
    return out;
  }
  // What libevent's own read would have put in the input: up to 4 KiB.
  // (The bufferevent keeps its input's end frozen; its own reads unfreeze it the same way.)
  int libeventRead() {
    evbuffer_unfreeze(input(), 0);
    const int n = evbuffer_read(input(), bufferevent_getfd(bev_.get()), -1);
    evbuffer_freeze(input(), 0);
    return n;
  }

  EventLoop loop_;
  std::unique_ptr<bufferevent, BufferEventDeleter> bev_;
  int peer_ = -1;
};

std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>('A' + i % 23);
  }
  return out;
}

TEST_F(SocketIoTest, TakesTheRestAfterAFullLibeventRead) {
  const std::string sent = pattern(100000);
  peerSends(sent);
  ASSERT_GT(libeventRead(), 0);
  ASSERT_EQ(evbuffer_get_length(input()), 4096u);  // libevent 2.1's cap, the reason for this
  EXPECT_EQ(readRestOfSocket(bev_.get(), 1 << 20), sent.size() - 4096);
  EXPECT_TRUE(drainInput() == sent);
}

TEST_F(SocketIoTest, StopsAtTheInputLimit) {
  peerSends(pattern(50000));
  ASSERT_GT(libeventRead(), 0);
  EXPECT_EQ(readRestOfSocket(bev_.get(), 10000), 10000u - 4096);
  EXPECT_EQ(evbuffer_get_length(input()), 10000u);
  EXPECT_EQ(readRestOfSocket(bev_.get(), 10000), 0u);  // full: nothing more
  EXPECT_EQ(readRestOfSocket(bev_.get(), 60000), 40000u);
  EXPECT_TRUE(drainInput() == pattern(50000));
}

TEST_F(SocketIoTest, AShortLibeventReadMeansNothingIsLeft) {
  peerSends("GET / HTTP/1.1\r\n\r\n");
  ASSERT_GT(libeventRead(), 0);
  EXPECT_EQ(readRestOfSocket(bev_.get(), 1 << 20), 0u);
  EXPECT_EQ(drainInput(), "GET / HTTP/1.1\r\n\r\n");
}

TEST_F(SocketIoTest, NothingWaitingOrEndOfStreamReadsNothing) {
  peerSends(pattern(4096));
  ASSERT_GT(libeventRead(), 0);
  EXPECT_EQ(readRestOfSocket(bev_.get(), 1 << 20), 0u);  // full read, but nothing behind it
  ::shutdown(peer_, SHUT_WR);
  EXPECT_EQ(readRestOfSocket(bev_.get(), 1 << 20), 0u);  // EOF is left for libevent
  EXPECT_EQ(libeventRead(), 0);
  EXPECT_TRUE(drainInput() == pattern(4096));
}

TEST_F(SocketIoTest, WritesMemoryAndFileSegmentsInOrder) {
  auto files = std::make_shared<storage::SealedFileBudget>(1);
  storage::Blob sealed = storage::StoredBytes::sealedCopy(pattern(30000), files);
  ASSERT_NE(sealed, nullptr);
  evbuffer_add(output(), "head|", 5);
  evbuffer_file_segment* segment =
      evbuffer_file_segment_new(sealed->sealedFile(), 1000, 20000, EVBUF_FS_DISABLE_LOCKING);
  ASSERT_NE(segment, nullptr);
  ASSERT_EQ(evbuffer_add_file_segment(output(), segment, 0, 20000), 0);
  evbuffer_file_segment_free(segment);
  evbuffer_add(output(), "|tail", 5);

  EXPECT_TRUE(writeNow(bev_.get()));
  EXPECT_EQ(evbuffer_get_length(output()), 0u);
  std::string got;
  while (got.size() < 20010) {
    const std::string piece = peerReads(65536);
    ASSERT_FALSE(piece.empty());
    got += piece;
  }
  EXPECT_TRUE(got == "head|" + pattern(30000).substr(1000, 20000) + "|tail");
}

TEST_F(SocketIoTest, AFullSocketLeavesTheRestQueued) {
  const int small = 4096;
  ::setsockopt(peer_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ::setsockopt(bufferevent_getfd(bev_.get()), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  const std::string big = pattern(4 << 20);
  evbuffer_add(output(), big.data(), big.size());
  EXPECT_FALSE(writeNow(bev_.get()));  // the peer reads nothing yet
  const size_t queued = evbuffer_get_length(output());
  EXPECT_GT(queued, 0u);
  EXPECT_LT(queued, big.size());
}

}  // namespace
}  // namespace cachecar::event
