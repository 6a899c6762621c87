#pragma once

#include <string>
#include <string_view>

#include "cachecar/http/message.h"

// What the app receives: the upstream request head, built by one pure function from the
// normalized request (request_normalizer.h). Nothing of the client's framing or hop-by-hop
// fields reaches the app: cachecar writes the request line, Host, its forwarding fields and the
// framing of the body it actually sends.
namespace cachecar::http {

struct UpstreamRequestOptions {
  // The client's address (an IP), for X-Forwarded-For and Forwarded.
  std::string_view client_ip;
  // A revalidation of a stored response: the client's own conditions (If-None-Match, Range,
  // ...) are left out and `validators` (If-None-Match / If-Modified-Since for the stored
  // response) are sent instead. The client's conditions are answered from the result.
  bool cache_conditional = false;
  const HeaderMap* validators = nullptr;
};

// Appends "METHOD target HTTP/1.1", then Host (the normalized request's, exactly one), the
// end-to-end fields, X-Forwarded-For (the client's IP appended to a trusted proxy's list),
// X-Forwarded-Proto and X-Forwarded-Host (a trusted proxy's, else "http" and the Host),
// Forwarded (RFC 7239), Via, and the framing: "Transfer-Encoding: chunked" for a chunked body,
// "Content-Length: N" for a sized one, "Content-Length: 0" for a POST, PUT or PATCH without a
// body. A field of the request named Host, Content-Length, Transfer-Encoding or Connection is
// never copied, whatever produced the request.
void appendUpstreamRequestHead(std::string& out, const RequestHead& request,
                               const UpstreamRequestOptions& options);

// The request body as cachecar forwards it, framed as appendUpstreamRequestHead announced:
// each piece of the (de-chunked) body, then the end of the body.
void appendUpstreamBodyPiece(std::string& out, const RequestHead& request, std::string_view piece);
void appendUpstreamBodyEnd(std::string& out, const RequestHead& request);

// The conditional fields a revalidation leaves out of the client's request.
bool isClientConditionalField(std::string_view name);

}  // namespace cachecar::http
