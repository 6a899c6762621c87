#include "cachecar/http/parser.h"

#include <cstring>

namespace cachecar::http {

namespace {

// Each header line costs its bytes plus ": " and CRLF; counting that keeps a flood of tiny
// headers inside the same bound as one huge header.
constexpr size_t kPerHeaderOverhead = 4;

MessageParser* self(llhttp_t* p) { return static_cast<MessageParser*>(p->data); }

}  // namespace

MessageParser::MessageParser(Kind kind, Sink& sink, size_t max_header_bytes,
                             uint64_t max_body_bytes)
    : kind_(kind), sink_(sink), max_header_bytes_(max_header_bytes),
      max_body_bytes_(max_body_bytes) {
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
  body_bytes_ = 0;
  head_complete_ = false;
  message_complete_ = false;
  limit_hit_ = ParseStatus::kNeedMore;
}

ParseResult MessageParser::feed(const char* data, size_t len) {
  if (message_complete_) {
    return {ParseStatus::kMessageComplete, 0};
  }
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) {
    return {ParseStatus::kNeedMore, len};
  }
  if (err == HPE_PAUSED && message_complete_) {
    const size_t consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    return {ParseStatus::kMessageComplete, consumed};
  }
  if (limit_hit_ != ParseStatus::kNeedMore) {
    return {limit_hit_, 0};
  }
  const char* reason = llhttp_get_error_reason(&parser_);
  error_reason_ = reason != nullptr ? reason : llhttp_errno_name(err);
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
  s->value_.append(at, len);
  return 0;
}

int MessageParser::onHeaderValueComplete(llhttp_t* p) {
  MessageParser* s = self(p);
  if (!s->countHeaderBytes(kPerHeaderOverhead)) {
    return HPE_USER;
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
