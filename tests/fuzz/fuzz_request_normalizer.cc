// The request normalizer on arbitrary request heads (built straight from the input, so values
// the parser would refuse reach it too). Properties of an accepted request: origin-form target
// (or "*"), no dot segments, no empty segments, no fragment; exactly one Host, first; no
// hop-by-hop, framing or untrusted forwarding field left; and normalizing it again changes
// nothing (one normal form).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cachecar/http/request_normalizer.h"

namespace {

using cachecar::http::RequestHead;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// Splits the input on '\n' into: method, target, then "name:value" lines.
RequestHead headFrom(std::string_view input, int version_minor) {
  RequestHead head;
  head.version_minor = version_minor;
  size_t line = 0;
  while (!input.empty()) {
    const size_t end = input.find('\n');
    const std::string_view text = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    if (line == 0) {
      head.method = std::string(text);
    } else if (line == 1) {
      head.target = std::string(text);
    } else {
      const size_t colon = text.find(':');
      head.headers.add(std::string(text.substr(0, colon)),
                       colon == std::string_view::npos ? std::string()
                                                       : std::string(text.substr(colon + 1)));
    }
    ++line;
  }
  return head;
}

bool hasField(const RequestHead& head, std::string_view name) { return head.headers.has(name); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  cachecar::http::NormalizeOptions options;
  options.default_host = "app.internal:8000";
  options.trusted_peer = (data[0] & 1) != 0;
  options.encoded_slashes = (data[0] & 2) != 0 ? cachecar::http::EncodedSlashes::kDecode
                                               : cachecar::http::EncodedSlashes::kReject;
  RequestHead head =
      headFrom(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1),
               (data[0] & 4) != 0 ? 0 : 1);
  if (cachecar::http::normalizeRequest(head, options)) {
    return 0;
  }
  const std::string_view target = head.target;
  check(target == "*" || (!target.empty() && target.front() == '/'));
  const std::string_view path = target.substr(0, target.find('?'));
  check(path.find("//") == std::string_view::npos);
  check(path.find("/./") == std::string_view::npos && path.find("/../") == std::string_view::npos);
  check(!path.ends_with("/.") && !path.ends_with("/.."));
  check(target.find('#') == std::string_view::npos);
  check(head.headers.count("Host") == 1 && head.headers.all().front().name == "Host");
  for (const char* gone : {"Connection", "Content-Length", "Transfer-Encoding", "TE", "Upgrade",
                           "Keep-Alive", "Expect", "X-Original-URL"}) {
    check(!hasField(head, gone));
  }
  if (!options.trusted_peer) {
    check(!hasField(head, "X-Forwarded-Host") && !hasField(head, "Forwarded"));
  }
  RequestHead again = head;
  check(!cachecar::http::normalizeRequest(again, options));
  check(again.target == head.target);
  check(again.headers.all().size() == head.headers.all().size());
  for (size_t i = 0; i < head.headers.all().size(); ++i) {
    check(again.headers.all()[i].name == head.headers.all()[i].name);
    check(again.headers.all()[i].value == head.headers.all()[i].value);
  }
  return 0;
}
