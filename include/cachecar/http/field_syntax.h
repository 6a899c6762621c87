#pragma once

#include <string_view>

// The character classes of HTTP's grammar (RFC 9110 §5.1, §5.5, §5.6.2), for checking what a
// peer sent before anything acts on it.
namespace cachecar::http {

// tchar: what a field name, a method or a Connection option may be made of.
bool isTokenChar(char c);
// A non-empty run of tchar. "Host " (space before the colon) and "" are not tokens.
bool isToken(std::string_view s);
// A field value as RFC 9110 §5.5 allows it to be forwarded: no NUL, CR or LF (a recipient that
// passed them on would let one field become two further down the line).
bool isForwardableFieldValue(std::string_view s);

}  // namespace cachecar::http
