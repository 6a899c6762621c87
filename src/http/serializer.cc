#include "cachecar/http/serializer.h"

#include <charconv>

namespace cachecar::http {

namespace {

void appendNumber(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  (void)ec;
  out.append(buf, end);
}

}  // namespace

void appendHeaderLine(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void appendRequestHead(std::string& out, const RequestHead& head) {
  out.append(head.method);
  out.push_back(' ');
  out.append(head.target);
  out.append(" HTTP/1.1\r\n");
  for (const auto& h : head.headers.all()) {
    appendHeaderLine(out, h.name, h.value);
  }
  out.append("\r\n");
}

void appendResponseHeadOpen(std::string& out, const ResponseHead& head) {
  out.append("HTTP/1.1 ");
  appendNumber(out, static_cast<uint64_t>(head.status));
  out.push_back(' ');
  if (head.reason.empty()) {
    out.append(reasonPhrase(head.status));
  } else {
    out.append(head.reason);
  }
  out.append("\r\n");
  for (const auto& h : head.headers.all()) {
    appendHeaderLine(out, h.name, h.value);
  }
}

void appendChunkHeader(std::string& out, size_t size) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), size, 16);
  (void)ec;
  out.append(buf, end);
  out.append("\r\n");
}

std::string makeErrorResponse(int status, std::string_view body, bool close_connection) {
  std::string out;
  out.reserve(160 + body.size());
  out.append("HTTP/1.1 ");
  appendNumber(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  out.append(reasonPhrase(status));
  out.append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  appendNumber(out, body.size() + 1);
  out.append("\r\nCache-Control: no-store\r\n");
  if (close_connection) {
    out.append("Connection: close\r\n");
  }
  out.append("\r\n");
  out.append(body);
  out.push_back('\n');
  return out;
}

}  // namespace cachecar::http
