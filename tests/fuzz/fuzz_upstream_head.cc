// What the app receives, for any bytes a client sends. Property: when cachecar forwards a
// request, the app reads exactly one well-framed request from what it is sent (no bytes left
// over that could be taken for a second request), with exactly one Host, equal to the host
// the cache key is built with, the normalized target and the client's body; and feeding the
// client's bytes whole or in pieces gives the same outcome byte for byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cachecar/cache/cache_key.h"
#include "support/forwarding_pipeline.h"

namespace {

using cachecar::testing::ForwardOutcome;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// The host part of a key identity: "g|{host}|{path}|..." (a normalized host holds no '|').
std::string_view keyHost(std::string_view identity) {
  const size_t first = identity.find('|');
  const size_t second = identity.find('|', first + 1);
  return identity.substr(first + 1, second - first - 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  cachecar::http::NormalizeOptions options;
  options.default_host = "app.internal:8000";
  options.trusted_peer = (data[0] & 1) != 0;
  options.encoded_slashes = (data[0] & 2) != 0 ? cachecar::http::EncodedSlashes::kDecode
                                               : cachecar::http::EncodedSlashes::kReject;
  const size_t piece = data[1] % 17;  // 0: whole
  const std::string_view client(reinterpret_cast<const char*>(data + 2), size - 2);

  const ForwardOutcome whole = cachecar::testing::forwardFirstRequest(client, options);
  const ForwardOutcome pieces = cachecar::testing::forwardFirstRequest(client, options, piece);
  check(whole.status == pieces.status);
  check(whole.upstream == pieces.upstream);
  if (whole.status != 0) {
    check(whole.upstream.empty());
    return 0;
  }
  const cachecar::testing::AppView app = cachecar::testing::readAsApp(whole.upstream);
  check(!app.error && app.unparsed == 0 && app.requests.size() == 1);
  const cachecar::http::RequestHead& received = app.requests.front();
  check(received.headers.count("Host") == 1);
  const std::string_view host = *received.headers.get("Host");
  check(host == *whole.request.headers.get("Host"));
  const cachecar::cache::CacheKey key =
      cachecar::cache::buildCacheKey("p", 1, cachecar::config::KeySettings{}, whole.request);
  check(keyHost(key.identity) == host);
  check(received.target == whole.request.target);
  check(received.method == whole.request.method);
  check(app.bodies.front() == whole.body);
  return 0;
}
