#include "cachecar/http/parser.h"

#include <cstring>

#include "cachecar/http/field_syntax.h"

namespace cachecar::http {

namespace {

// Each header line costs its bytes plus ": " and CRLF; counting that keeps a flood of tiny
// headers inside the same bound as one huge header.
constexpr size_t kPerHeaderOverhead = 4;

MessageParser* self(llhttp_t* p) { return static_cast<MessageParser*>(p->data); }

}  // namespace

MessageParser::MessageParser(Kind kind, Sink& sink, size_t max_header_bytes,
                             uint64_t max_body_bytes, size_t max_header_fields)
    : kind_(kind), sink_(sink), max_header_bytes_(max_header_bytes),
      max_body_bytes_(max_body_bytes), max_header_fields_(max_header_fields) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &MessageParser::onMessageBegin;
  settings_.on_url = &MessageParser::onUrl;
  settings_.on_status = &MessageParser::onStatus;
  settings_.on_header_field = &MessageParser::onHeaderField;
  settings_.on_header_value = &MessageParser::onHeaderValue;
  settings_.on_header_value_complete = &MessageParser::onHeaderValueComplete;
  settings_.on_headers_complete = &MessageParser::onHeadersComplete;
  settings_.on_body = &MessageParser::onBodyData;
  settings_.on_message_complete = &MessageParser::onMessageComplete;
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
  reset();
}

void MessageParser::reset() {
  request_ = RequestHead{};
  response_ = ResponseHead{};
  field_.clear();
  value_.clear();
  header_bytes_ = 0;
  header_fields_ = 0;
  body_bytes_ = 0;
  head_complete_ = false;
  message_complete_ = false;
  limit_hit_ = ParseStatus::kNeedMore;
  error_reason_.clear();
}

ParseResult MessageParser::feed(const char* data, size_t len) {
  if (message_complete_) {
    return {ParseStatus::kMessageComplete, 0};
  }
  feed_begin_ = data;
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) {
    noteFedBytes(data, len);
    return {ParseStatus::kNeedMore, len};
  }
  if (err == HPE_PAUSED && message_complete_) {
    const size_t consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    noteFedBytes(data, consumed);
    return {ParseStatus::kMessageComplete, consumed};
  }
  if (limit_hit_ != ParseStatus::kNeedMore) {
    return {limit_hit_, 0};
  }
  if (error_reason_.empty()) {
    const char* reason = llhttp_get_error_reason(&parser_);
    error_reason_ = reason != nullptr ? reason : llhttp_errno_name(err);
  }
  return {ParseStatus::kError, 0};
}

ParseStatus MessageParser::finish() {
  if (message_complete_) {
    return ParseStatus::kMessageComplete;
  }
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if ((err == HPE_OK || err == HPE_PAUSED) && message_complete_) {
    return ParseStatus::kMessageComplete;
  }
  error_reason_ = "connection closed before the message was complete";
  return ParseStatus::kError;
}

void MessageParser::nextMessage() {
  if (message_complete_) {
    llhttp_resume(&parser_);
  }
  reset();
}

bool MessageParser::countHeaderBytes(size_t len) {
  header_bytes_ += len;
  if (header_bytes_ > max_header_bytes_) {
    limit_hit_ = ParseStatus::kHeaderTooLarge;
    llhttp_set_error_reason(&parser_, "header section too large");
    return false;
  }
  return true;
}

namespace {

bool isLinearWhitespace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

bool MessageParser::continuesFoldedLine(const char* at) const {
  // llhttp skips the whitespace that starts a continuation line when the value is still
  // empty, so look back over any whitespace for the line break.
  const char* p = at;
  while (p > feed_begin_ && isLinearWhitespace(p[-1])) {
    --p;
  }
  if (p > feed_begin_) {
    return p[-1] == '\n';
  }
  return fed_line_break_then_whitespace_;
}

void MessageParser::noteFedBytes(const char* data, size_t len) {
  const char* p = data + len;
  while (p > data && isLinearWhitespace(p[-1])) {
    --p;
  }
  if (p > data) {
    fed_line_break_then_whitespace_ = p[-1] == '\n';
  }
  // else: only whitespace was fed; what came before it still decides.
}

int MessageParser::fail(const char* reason) {
  // Kept here too: llhttp replaces the reason of an error returned from on_headers_complete
  // with its own generic one.
  error_reason_ = reason;
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

int MessageParser::onMessageBegin(llhttp_t* p) {
  MessageParser* s = self(p);
  s->reset();
  return 0;
}

int MessageParser::onUrl(llhttp_t* p, const char* at, size_t len) {
  MessageParser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return HPE_USER;
  }
  s->request_.target.append(at, len);
  return 0;
}

int MessageParser::onStatus(llhttp_t* p, const char* at, size_t len) {
  MessageParser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return HPE_USER;
  }
  s->response_.reason.append(at, len);
  return 0;
}

int MessageParser::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  MessageParser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return HPE_USER;
  }
  s->field_.append(at, len);
  return 0;
}

int MessageParser::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  MessageParser* s = self(p);
  if (!s->countHeaderBytes(len)) {
    return HPE_USER;
  }
  if (len > 0 && s->continuesFoldedLine(at)) {
    // RFC 9112 §5.2: obs-fold is rejected. Joining the lines would make this field mean
    // something else to a recipient that splits them.
    return s->fail("obsolete line folding in a header field");
  }
  s->value_.append(at, len);
  return 0;
}

int MessageParser::onHeaderValueComplete(llhttp_t* p) {
  MessageParser* s = self(p);
  if (!s->countHeaderBytes(kPerHeaderOverhead)) {
    return HPE_USER;
  }
  if (++s->header_fields_ > s->max_header_fields_) {
    s->limit_hit_ = ParseStatus::kHeaderTooLarge;
    return s->fail("too many header fields");
  }
  if (!isToken(s->field_)) {
    // "Host : x" or ": x": a name that is not a token is read differently by every parser
    // down the line (RFC 9112 §5.1 says 400).
    return s->fail("invalid header field name");
  }
  if (!isForwardableFieldValue(s->value_)) {
    return s->fail("invalid character in a header field value");
  }
  HeaderMap& headers = s->kind_ == Kind::kRequest ? s->request_.headers : s->response_.headers;
  std::string_view value = trimOws(s->value_);
  headers.add(std::move(s->field_), std::string(value));
  s->field_.clear();
  s->value_.clear();
  return 0;
}

int MessageParser::onHeadersComplete(llhttp_t* p) {
  MessageParser* s = self(p);
  const bool chunked = (p->flags & F_CHUNKED) != 0;
  const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
  const bool keep_alive = llhttp_should_keep_alive(p) != 0;
  s->head_complete_ = true;
  if (s->kind_ == Kind::kRequest) {
    RequestHead& r = s->request_;
    r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    r.version_major = p->http_major;
    r.version_minor = p->http_minor;
    r.keep_alive = keep_alive;
    r.framing = chunked ? BodyFraming::kChunked
                        : (has_length && p->content_length > 0 ? BodyFraming::kContentLength
                                                               : BodyFraming::kNone);
    r.content_length = has_length ? p->content_length : 0;
    if (auto expect = r.headers.get("Expect")) {
      r.expect_continue = equalsIgnoreCase(*expect, "100-continue");
    }
    if (has_length && p->content_length > s->max_body_bytes_) {
      s->limit_hit_ = ParseStatus::kBodyTooLarge;
      llhttp_set_error_reason(p, "request body too large");
      return -1;
    }
    if (p->upgrade != 0 || r.method == "CONNECT") {
      // No tunnels: upgrades are answered without switching protocols.
      p->upgrade = 0;
    }
    s->sink_.onHeadComplete();
    return 0;
  }
  ResponseHead& r = s->response_;
  if (p->http_major != 1) {
    return s->fail("response in an HTTP version other than 1.x");
  }
  r.status = p->status_code;
  r.version_minor = p->http_minor;
  r.keep_alive = keep_alive;
  const bool no_body = s->no_body_expected_ || r.status == 204 || r.status == 304 ||
                       (r.status >= 100 && r.status < 200);
  if (no_body) {
    r.framing = BodyFraming::kNone;
  } else if (chunked) {
    r.framing = BodyFraming::kChunked;
  } else if (has_length) {
    r.framing = p->content_length > 0 ? BodyFraming::kContentLength : BodyFraming::kNone;
    r.content_length = p->content_length;
  } else {
    r.framing = BodyFraming::kUntilClose;
    r.keep_alive = false;
  }
  if (r.status >= 100 && r.status < 200) {
    // Interim responses (103 Early Hints, ...): reported, then the parser moves on to the
    // final response.
    s->sink_.onInterim();
    return 1;
  }
  s->sink_.onHeadComplete();
  return no_body ? 1 : 0;
}

int MessageParser::onBodyData(llhttp_t* p, const char* at, size_t len) {
  MessageParser* s = self(p);
  s->body_bytes_ += len;
  if (s->body_bytes_ > s->max_body_bytes_) {
    s->limit_hit_ = ParseStatus::kBodyTooLarge;
    llhttp_set_error_reason(p, "body too large");
    return HPE_USER;
  }
  s->sink_.onBody(std::string_view(at, len));
  return 0;
}

int MessageParser::onMessageComplete(llhttp_t* p) {
  MessageParser* s = self(p);
  if (s->kind_ == Kind::kResponse && s->response_.status >= 100 && s->response_.status < 200) {
    s->reset();
    return 0;
  }
  s->message_complete_ = true;
  // Stop here: the bytes after this message belong to the next exchange.
  return HPE_PAUSED;
}

}  // namespace cachecar::http
