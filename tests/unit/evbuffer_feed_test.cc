// feedFromBuffer: a parser reading straight from a libevent buffer that holds several pieces.
#include "cachecar/http/evbuffer_feed.h"

#include <event2/buffer.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace cachecar::http {
namespace {

struct EvbufferDeleter {
  void operator()(evbuffer* b) const { evbuffer_free(b); }
};

class RecordingSink : public MessageParser::Sink {
 public:
  void onHeadComplete() override { ++heads; }
  void onBody(std::string_view chunk) override { body.append(chunk); }
  int heads = 0;
  std::string body;
};

class EvbufferFeedTest : public ::testing::Test {
 protected:
  // Each piece becomes its own chain in the buffer, as separate reads from a socket would.
  void append(const std::string& piece) {
    evbuffer* part = evbuffer_new();
    evbuffer_add(part, piece.data(), piece.size());
    evbuffer_add_buffer(input_.get(), part);
    evbuffer_free(part);
  }
  size_t left() const { return evbuffer_get_length(input_.get()); }

  std::unique_ptr<evbuffer, EvbufferDeleter> input_{evbuffer_new()};
  RecordingSink sink_;
  MessageParser parser_{MessageParser::Kind::kRequest, sink_, 8192, 1 << 20};
};

TEST_F(EvbufferFeedTest, EmptyInputIsNothingToParse) {
  EXPECT_FALSE(feedFromBuffer(parser_, input_.get()).has_value());
}

TEST_F(EvbufferFeedTest, ConsumedBytesAreDrainedAndThePipelinedRestStays) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  append(first.substr(0, 20));
  append(first.substr(20) + second);

  std::optional<ParseResult> r = feedFromBuffer(parser_, input_.get());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, ParseStatus::kNeedMore);
  EXPECT_EQ(left(), first.size() - 20 + second.size());

  r = feedFromBuffer(parser_, input_.get());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, ParseStatus::kMessageComplete);
  EXPECT_EQ(sink_.body, "hello");
  EXPECT_EQ(left(), second.size());  // the next request waits its turn

  parser_.nextMessage();
  r = feedFromBuffer(parser_, input_.get());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, ParseStatus::kMessageComplete);
  EXPECT_EQ(parser_.request().path(), "/b");
  EXPECT_EQ(sink_.heads, 2);
  EXPECT_EQ(left(), 0u);
}

TEST_F(EvbufferFeedTest, AnErrorDrainsNothing) {
  const std::string bad = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
  append(bad);
  const std::optional<ParseResult> r = feedFromBuffer(parser_, input_.get());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, ParseStatus::kError);
  EXPECT_EQ(left(), bad.size());
}

}  // namespace
}  // namespace cachecar::http
