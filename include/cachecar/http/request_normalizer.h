#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "cachecar/http/message.h"
#include "cachecar/http/request_target.h"

// The request cachecar acts on. A parsed request is turned, once, into the one normalized
// request that routing, cache keys, Vary, purge, the access log and the upstream request all
// read, so no two of them can disagree about what was asked (the root of cache poisoning: the
// key says one thing, the app is told another).
namespace cachecar::http {

struct NormalizeOptions {
  EncodedSlashes encoded_slashes = EncodedSlashes::kReject;
  // The Host of an HTTP/1.0 request that has none: the app's own address.
  std::string_view default_host;
  // The client is a proxy of the deployment's own (an ingress): its forwarding fields are kept.
  bool trusted_peer = false;
};

// Why a request is refused: a status (400, 405, 417, 501, 505) and a short reason for its body.
struct Rejection {
  int status = 400;
  std::string reason;
};

// Normalizes `request` in place, or says why it is refused. Afterwards:
//  - the version is HTTP/1.0 or 1.1, the method is not CONNECT or TRACE;
//  - `target` is origin-form ("/path?query", path and query normalized as in
//    request_target.h), or "*" for OPTIONS;
//  - there is exactly one Host field, first, holding the decided authority: the absolute-form
//    target's if there is one (RFC 9112 §3.2.2), else the Host field's; lowercased, the
//    default port dropped, syntax checked. HTTP/1.1 without Host, two Host fields or an empty
//    one are 400;
//  - `headers` hold only end-to-end fields: hop-by-hop ones (Connection, Keep-Alive, TE,
//    Upgrade, Proxy-*, Trailer), framing (Content-Length, Transfer-Encoding: the framing is in
//    `framing`/`content_length` and cachecar writes it), Expect, and every field Connection
//    names are gone, except Host, which Connection can never remove. One pass, O(fields log
//    tokens), however many tokens Connection lists;
//  - forwarding fields (X-Forwarded-*, Forwarded, X-Real-IP, ...) are gone unless the peer is
//    trusted, and fields that rewrite the URL (X-Original-URL, X-Rewrite-URL, X-Host) always;
//    method overrides (X-HTTP-Method-Override, ...) on GET and HEAD.
// Refused: Transfer-Encoding other than plain "chunked" (501: a coding cachecar would have to
// drop), an Expect other than 100-continue (417), a fragment in the target, and every path or
// host rule of request_target.h (400).
std::optional<Rejection> normalizeRequest(RequestHead& request, const NormalizeOptions& options);

// Forwarding fields that change what an app answers (the links it builds): kept only from a
// trusted proxy, and then part of the cache key. Lowercase, sorted.
bool isKeyedForwardingField(std::string_view name);

// "host[:port]" normalized as a Host: lowercase, syntax checked, `default_port` (":80") dropped.
Result<std::string> normalizeAuthority(std::string_view authority, std::string_view default_port);

}  // namespace cachecar::http
