#include "cachecar/http/upstream_request.h"

#include <charconv>

#include "cachecar/http/serializer.h"

namespace cachecar::http {

namespace {

constexpr std::string_view kVia = "1.1 cachecar";

bool isFramingOrHost(std::string_view name) {
  return equalsIgnoreCase(name, "host") || equalsIgnoreCase(name, "content-length") ||
         equalsIgnoreCase(name, "transfer-encoding") || equalsIgnoreCase(name, "connection");
}

bool isOwnForwardingField(std::string_view name) {
  return equalsIgnoreCase(name, "x-forwarded-for") || equalsIgnoreCase(name, "forwarded");
}

// RFC 7239 §6: an IPv6 node is quoted and bracketed.
void appendForwardedNode(std::string& out, std::string_view ip) {
  if (ip.find(':') != std::string_view::npos) {
    out.append("\"[").append(ip).append("]\"");
  } else {
    out.append(ip);
  }
}

// All values of a field, joined as one list.
void appendCombined(std::string& out, const HeaderMap& headers, std::string_view name) {
  bool first = true;
  for (const Header& h : headers.all()) {
    if (equalsIgnoreCase(h.name, name)) {
      if (!first) {
        out.append(", ");
      }
      out.append(h.value);
      first = false;
    }
  }
}

void appendForwardingFields(std::string& out, const RequestHead& request, std::string_view host,
                            std::string_view client_ip) {
  // Present only when a trusted proxy sent them (the normalizer drops them otherwise).
  out.append("X-Forwarded-For: ");
  if (request.headers.has("x-forwarded-for")) {
    appendCombined(out, request.headers, "x-forwarded-for");
    out.append(", ");
  }
  out.append(client_ip).append("\r\n");
  if (!request.headers.has("x-forwarded-proto")) {
    appendHeaderLine(out, "X-Forwarded-Proto", "http");
  }
  if (!request.headers.has("x-forwarded-host")) {
    appendHeaderLine(out, "X-Forwarded-Host", host);
  }
  out.append("Forwarded: ");
  if (request.headers.has("forwarded")) {
    appendCombined(out, request.headers, "forwarded");
    out.append(", for=");
    appendForwardedNode(out, client_ip);
  } else {
    out.append("for=");
    appendForwardedNode(out, client_ip);
    out.append(";host=\"").append(host).append("\";proto=http");
  }
  out.append("\r\n");
}

bool expectsBody(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

void appendFraming(std::string& out, const RequestHead& request) {
  if (request.framing == BodyFraming::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n");
    return;
  }
  if (request.framing == BodyFraming::kContentLength || expectsBody(request.method)) {
    const uint64_t length =
        request.framing == BodyFraming::kContentLength ? request.content_length : 0;
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof(digits), length);
    out.append("Content-Length: ").append(digits, result.ptr).append("\r\n");
  }
}

}  // namespace

void appendUpstreamBodyPiece(std::string& out, const RequestHead& request, std::string_view piece) {
  if (request.framing != BodyFraming::kChunked) {
    out.append(piece);
    return;
  }
  if (piece.empty()) {
    return;  // an empty chunk would end the body
  }
  appendChunkHeader(out, piece.size());
  out.append(piece);
  out.append(kChunkTrailer);
}

void appendUpstreamBodyEnd(std::string& out, const RequestHead& request) {
  if (request.framing == BodyFraming::kChunked) {
    out.append(kLastChunk);
  }
}

bool isClientConditionalField(std::string_view name) {
  for (std::string_view conditional : {"if-none-match", "if-modified-since", "if-match",
                                       "if-unmodified-since", "if-range", "range"}) {
    if (equalsIgnoreCase(name, conditional)) {
      return true;
    }
  }
  return false;
}

void appendUpstreamRequestHead(std::string& out, const RequestHead& request,
                               const UpstreamRequestOptions& options) {
  const std::string_view host = request.headers.get("host").value_or(std::string_view());
  out.append(request.method).push_back(' ');
  out.append(request.target).append(" HTTP/1.1\r\n");
  appendHeaderLine(out, "Host", host);
  for (const Header& h : request.headers.all()) {
    if (isFramingOrHost(h.name) || isOwnForwardingField(h.name) ||
        (options.cache_conditional && isClientConditionalField(h.name))) {
      continue;
    }
    appendHeaderLine(out, h.name, h.value);
  }
  if (options.cache_conditional && options.validators != nullptr) {
    for (const Header& h : options.validators->all()) {
      appendHeaderLine(out, h.name, h.value);
    }
  }
  appendForwardingFields(out, request, host, options.client_ip);
  appendHeaderLine(out, "Via", kVia);
  appendFraming(out, request);
  out.append("\r\n");
}

}  // namespace cachecar::http
