#include "cachecar/cache/cacheability.h"

#include <array>

#include "cachecar/cache/freshness.h"

namespace cachecar::cache {

namespace {

using std::chrono::milliseconds;

// What the rules look at; the Cache-Control fields are parsed once per judgement.
struct Exchange {
  const http::RequestHead& request;
  const http::ResponseHead& response;
  const RequestCacheControl& request_cc;
  const ResponseCacheControl& response_cc;
};

// One reason a response is never stored. The first rule that refuses names the reason, so the
// table's order decides which reason a log shows when several apply.
struct NeverStoreRule {
  std::string_view reason;
  bool (*refuses)(const Exchange&);
};

bool isGetOrHead(const http::RequestHead& request) {
  return request.isMethod("GET") || request.isMethod("HEAD");
}

// Vary: * (RFC 9111 §4.1): the response varies on something outside the request, so no stored
// copy can ever be selected.
bool varyHasStar(const http::ResponseHead& response) {
  for (const http::Header& h : response.headers.all()) {
    if (!http::equalsIgnoreCase(h.name, "vary")) {
      continue;
    }
    std::string_view rest = h.value;
    while (true) {
      const size_t comma = rest.find(',');
      if (http::trimOws(rest.substr(0, comma)) == "*") {
        return true;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

// Unqualified no-cache needs revalidation on every use, which comes with a later issue, so such
// responses are not stored yet. no-cache="Field" only forbids reusing that field unvalidated:
// storing is safe when the response does not carry it.
bool noCacheRefuses(const Exchange& e) {
  if (e.response_cc.no_cache) {
    return true;
  }
  for (const std::string& field : e.response_cc.no_cache_fields) {
    if (e.response.headers.has(field)) {
      return true;
    }
  }
  return false;
}

// Basics for a shared cache (RFC 9111 §3); later rules (must-understand, Authorization with
// public / s-maxage, more status codes) slot into this table.
constexpr std::array<NeverStoreRule, 10> kNeverStoreRules = {{
    {"status", [](const Exchange& e) { return e.response.status != 200; }},
    {"method", [](const Exchange& e) { return !isGetOrHead(e.request); }},
    // GET and HEAD share a key, and a HEAD response has no body: storing it would answer later
    // GETs with an empty page.
    {"head", [](const Exchange& e) { return e.request.isMethod("HEAD"); }},
    // Never one user's page for another (RFC 9111 §3.5 allows exceptions; we take none).
    {"authorization", [](const Exchange& e) { return e.request.headers.has("authorization"); }},
    {"request-no-store", [](const Exchange& e) { return e.request_cc.no_store; }},
    {"no-store", [](const Exchange& e) { return e.response_cc.no_store; }},
    // private="Field" would allow storing the rest; dropping the whole response is the safe
    // reading for a cache shared between users.
    {"private",
     [](const Exchange& e) {
       return e.response_cc.is_private || !e.response_cc.private_fields.empty();
     }},
    {"set-cookie", [](const Exchange& e) { return e.response.headers.has("set-cookie"); }},
    {"vary-star", [](const Exchange& e) { return varyHasStar(e.response); }},
    {"no-cache", noCacheRefuses},
}};

}  // namespace

RequestVerdict judgeRequest(const http::RequestHead& request) {
  if (!isGetOrHead(request)) {
    return {false, "method"};
  }
  if (request.headers.has("authorization")) {
    return {false, "authorization"};
  }
  if (parseRequestCacheControl(request.headers).no_store) {
    return {false, "no-store"};
  }
  return {true, {}};
}

StoreVerdict judgeResponse(const http::RequestHead& request, const http::ResponseHead& response,
                           std::optional<milliseconds> fallback_ttl) {
  const RequestCacheControl request_cc = parseRequestCacheControl(request.headers);
  const ResponseCacheControl response_cc = parseResponseCacheControl(response.headers);
  const Exchange exchange{request, response, request_cc, response_cc};
  for (const NeverStoreRule& rule : kNeverStoreRules) {
    if (rule.refuses(exchange)) {
      return {false, milliseconds(0), rule.reason};
    }
  }

  // The app's own freshness wins over the route's ttl: a route fills in, never extends or
  // shortens what the response states.
  if (const std::optional<std::chrono::seconds> lifetime =
          explicitFreshnessLifetime(response, response_cc)) {
    if (lifetime->count() <= 0) {
      return {false, milliseconds(0), "stale"};
    }
    return {true, *lifetime, {}};
  }
  if (!fallback_ttl) {
    return {false, milliseconds(0), "no-freshness"};
  }
  if (fallback_ttl->count() <= 0) {
    return {false, milliseconds(0), "zero-ttl"};
  }
  return {true, *fallback_ttl, {}};
}

}  // namespace cachecar::cache
