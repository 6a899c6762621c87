#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cachecar/http/message.h"

namespace cachecar::cache {

// The field names a response varies on (lowercased, in order, duplicates removed); empty when
// it has no Vary; nullopt for `Vary: *`, which never matches any later request (RFC 9111 §4.1),
// and for more than kMaxVaryFields distinct names: no real page varies on that many, and every
// lookup of a variant costs a scan of the request per name, so such a response is not stored.
inline constexpr size_t kMaxVaryFields = 32;
std::optional<std::vector<std::string>> varyFields(const http::HeaderMap& response_headers);

// The request's values of those fields, normalized so equivalent requests compare equal:
// field lines combined with ", ", whitespace around commas and at the ends removed, runs of
// spaces collapsed. "name=value" per field, joined with "\n"; an absent field is "name!" so it
// differs from an empty one. Compared in full on every read (never only hashed).
std::string varianceOf(const std::vector<std::string>& fields, const http::HeaderMap& request);

// Where a variant lives: the primary storage key + "|v" + 32 hex digits of XXH3-128 of the
// variance (printable and bounded whatever the header values are).
std::string variantStorageKey(std::string_view primary_key, std::string_view variance);

// "accept-encoding, accept-language" for a marker entry, and back.
std::string joinFields(const std::vector<std::string>& fields);
std::vector<std::string> splitFields(std::string_view joined);

}  // namespace cachecar::cache
