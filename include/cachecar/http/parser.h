#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "cachecar/http/message.h"

namespace cachecar::http {

enum class ParseStatus {
  kNeedMore,         // all input consumed, message not complete yet
  kMessageComplete,  // one message finished; the parser stops there (pipelining waits its turn)
  kHeaderTooLarge,   // header section over the limit -> 431
  kBodyTooLarge,     // declared or streamed body over the limit -> 413
  kError,            // malformed -> 400 / 502; the connection cannot be trusted anymore
};

struct ParseResult {
  ParseStatus status;
  size_t consumed;  // bytes of the input used; the rest belongs to the next message
};

// Incremental HTTP/1.1 parser over llhttp (strict mode: lenient flags off, so conflicting
// Content-Length / Transfer-Encoding and bad characters are errors). On top of llhttp 8.1,
// which lets them through, it refuses what RFC 9112 says a recipient must reject or may not
// pass on: a field name that is not a token ("Host : x", an empty name), obs-fold line
// continuations (§5.2), NUL in a field value, and responses in an HTTP version other than 1.x. Body bytes are passed
// through as they arrive; chunked framing is removed. One object per connection, reused for
// every message on it.
class MessageParser {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    // Called once the header section is complete: request() or response() is filled.
    virtual void onHeadComplete() = 0;
    virtual void onBody(std::string_view chunk) = 0;
    // A response's interim (1xx) head, before its final one: response() holds it.
    virtual void onInterim() {}
  };

  enum class Kind { kRequest, kResponse };

  // A header section over `max_header_bytes`, or with more than `max_header_fields` fields, is
  // kHeaderTooLarge: both bound the memory and the per-field work one message can cost.
  MessageParser(Kind kind, Sink& sink, size_t max_header_bytes, uint64_t max_body_bytes,
                size_t max_header_fields = kDefaultMaxHeaderFields);
  static constexpr size_t kDefaultMaxHeaderFields = 100;
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  // Parses from `data`. Stops after a complete message: call `nextMessage()` before feeding
  // the bytes that follow it.
  ParseResult feed(const char* data, size_t len);
  // The peer closed the connection: completes a read-until-close response body.
  ParseStatus finish();
  void nextMessage();
  // For responses: the request was HEAD (or the status has no body), so no body follows.
  void setNoBodyExpected(bool no_body) { no_body_expected_ = no_body; }

  const RequestHead& request() const { return request_; }
  RequestHead& request() { return request_; }
  const ResponseHead& response() const { return response_; }
  ResponseHead& response() { return response_; }
  bool headComplete() const { return head_complete_; }
  std::string_view errorReason() const { return error_reason_; }

 private:
  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, size_t len);
  static int onStatus(llhttp_t* p, const char* at, size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersComplete(llhttp_t* p);
  static int onBodyData(llhttp_t* p, const char* at, size_t len);
  static int onMessageComplete(llhttp_t* p);

  bool countHeaderBytes(size_t len);
  // Whether the value bytes at `at` follow a line break (and whitespace): an obs-fold line.
  bool continuesFoldedLine(const char* at) const;
  // Remembers how the bytes fed so far end, for a value that starts the next feed.
  void noteFedBytes(const char* data, size_t len);
  int fail(const char* reason);
  void reset();

  Kind kind_;
  Sink& sink_;
  size_t max_header_bytes_;
  uint64_t max_body_bytes_;
  size_t max_header_fields_;
  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  RequestHead request_;
  ResponseHead response_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  size_t header_bytes_ = 0;
  size_t header_fields_ = 0;
  // Where the input of the current feed() starts, and whether the input before it ended in a
  // line break and whitespace: what precedes value bytes llhttp reports, wherever the input
  // was split.
  const char* feed_begin_ = nullptr;
  bool fed_line_break_then_whitespace_ = false;
  uint64_t body_bytes_ = 0;
  bool head_complete_ = false;
  bool message_complete_ = false;
  bool no_body_expected_ = false;
  ParseStatus limit_hit_ = ParseStatus::kNeedMore;
  std::string error_reason_;
};

}  // namespace cachecar::http
