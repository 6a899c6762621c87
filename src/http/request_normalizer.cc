#include "cachecar/http/request_normalizer.h"

#include "cachecar/http/hop_by_hop.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

namespace cachecar::http {

namespace {

// What a request field is to cachecar, by name.
enum class FieldRole : uint8_t {
  kEndToEnd,          // passed on as it is
  kRemoved,           // hop-by-hop, framing, Expect, Host (cachecar writes its own)
  kForwarding,        // per-client forwarding data: kept from a trusted proxy only
  kKeyedForwarding,   // forwarding data an app builds links from: trusted only, then keyed
  kUrlOverride,       // rewrites the URL or host behind the cache's back: always removed
  kMethodOverride,    // turns a GET into another method: removed from GET and HEAD
};

struct NamedRole {
  std::string_view name;  // lowercase
  FieldRole role;
};

// Sorted by name (checked below), searched with a case-insensitive comparison.
constexpr std::array kFieldRoles = {
    NamedRole{"connection", FieldRole::kRemoved},
    NamedRole{"content-length", FieldRole::kRemoved},
    NamedRole{"expect", FieldRole::kRemoved},
    NamedRole{"forwarded", FieldRole::kKeyedForwarding},
    NamedRole{"host", FieldRole::kRemoved},
    NamedRole{"keep-alive", FieldRole::kRemoved},
    NamedRole{"proxy-authenticate", FieldRole::kRemoved},
    NamedRole{"proxy-authorization", FieldRole::kRemoved},
    NamedRole{"proxy-connection", FieldRole::kRemoved},
    NamedRole{"te", FieldRole::kRemoved},
    NamedRole{"trailer", FieldRole::kRemoved},
    NamedRole{"transfer-encoding", FieldRole::kRemoved},
    NamedRole{"true-client-ip", FieldRole::kForwarding},
    NamedRole{"upgrade", FieldRole::kRemoved},
    NamedRole{"x-client-ip", FieldRole::kForwarding},
    NamedRole{"x-forwarded-for", FieldRole::kForwarding},
    NamedRole{"x-forwarded-host", FieldRole::kKeyedForwarding},
    NamedRole{"x-forwarded-port", FieldRole::kKeyedForwarding},
    NamedRole{"x-forwarded-prefix", FieldRole::kKeyedForwarding},
    NamedRole{"x-forwarded-proto", FieldRole::kKeyedForwarding},
    NamedRole{"x-forwarded-scheme", FieldRole::kKeyedForwarding},
    NamedRole{"x-forwarded-server", FieldRole::kKeyedForwarding},
    NamedRole{"x-forwarded-ssl", FieldRole::kKeyedForwarding},
    NamedRole{"x-host", FieldRole::kUrlOverride},
    NamedRole{"x-http-method", FieldRole::kMethodOverride},
    NamedRole{"x-http-method-override", FieldRole::kMethodOverride},
    NamedRole{"x-method-override", FieldRole::kMethodOverride},
    NamedRole{"x-original-host", FieldRole::kUrlOverride},
    NamedRole{"x-original-url", FieldRole::kUrlOverride},
    NamedRole{"x-real-ip", FieldRole::kForwarding},
    NamedRole{"x-rewrite-url", FieldRole::kUrlOverride},
};

constexpr bool rolesSorted() {
  for (size_t i = 1; i < kFieldRoles.size(); ++i) {
    if (!(kFieldRoles[i - 1].name < kFieldRoles[i].name)) {
      return false;
    }
  }
  return true;
}
static_assert(rolesSorted(), "kFieldRoles must be sorted for binary search");

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

FieldRole roleOf(std::string_view name) {
  const auto it = std::lower_bound(
      kFieldRoles.begin(), kFieldRoles.end(), name,
      [](const NamedRole& entry, std::string_view n) { return lessIgnoreCase(entry.name, n); });
  if (it != kFieldRoles.end() && equalsIgnoreCase(it->name, name)) {
    return it->role;
  }
  return FieldRole::kEndToEnd;
}

bool isMethodOverrideTarget(const RequestHead& request) {
  return request.method == "GET" || request.method == "HEAD";
}

bool keepField(const Header& field, FieldRole role, const ConnectionOptions& connection,
               const RequestHead& request, const NormalizeOptions& options) {
  switch (role) {
    case FieldRole::kRemoved:
    case FieldRole::kUrlOverride:
      return false;
    case FieldRole::kForwarding:
    case FieldRole::kKeyedForwarding:
      if (!options.trusted_peer) {
        return false;
      }
      break;
    case FieldRole::kMethodOverride:
      if (isMethodOverrideTarget(request)) {
        return false;
      }
      break;
    case FieldRole::kEndToEnd:
      break;
  }
  // Host is never in the list (kRemoved above, then written by cachecar), so Connection can
  // name it without effect; framing fields likewise.
  return !connection.names(field.name);
}

// Removes every field cachecar does not pass on, in one pass. (The Connection options are views
// into Connection values; those fields are never kept, so moving the kept ones leaves the views
// intact.)
void keepEndToEndFields(RequestHead& request, const NormalizeOptions& options) {
  const ConnectionOptions connection(request.headers);
  std::vector<Header> kept;
  kept.reserve(request.headers.size() + 1);
  for (Header& field : request.headers.all()) {
    if (keepField(field, roleOf(field.name), connection, request, options)) {
      kept.push_back(std::move(field));
    }
  }
  request.headers.all() = std::move(kept);
}

std::optional<Rejection> checkVersionAndMethod(const RequestHead& request) {
  if (request.version_major != 1) {
    return Rejection{505, "only HTTP/1.0 and HTTP/1.1 are served"};
  }
  if (request.method == "CONNECT") {
    return Rejection{405, "CONNECT is not served: this is a reverse proxy, not a tunnel"};
  }
  if (request.method == "TRACE") {
    return Rejection{405, "TRACE is not served"};
  }
  return std::nullopt;
}

std::optional<Rejection> checkTransferCodings(const RequestHead& request) {
  bool any = false;
  bool only_chunked = true;
  for (const Header& h : request.headers.all()) {
    if (!equalsIgnoreCase(h.name, "transfer-encoding")) {
      continue;
    }
    forEachListItem(h.value, [&](std::string_view coding) {
      only_chunked = only_chunked && !any && equalsIgnoreCase(coding, "chunked");
      any = true;
    });
  }
  if (any && !only_chunked) {
    // RFC 9112 §6.1: a coding the server does not understand is 501. cachecar would have to
    // remove the chunked coding and pass on the rest, which it does not do.
    return Rejection{501, "request transfer codings other than chunked are not supported"};
  }
  return std::nullopt;
}

std::optional<Rejection> checkExpect(const RequestHead& request) {
  bool other = false;
  for (const Header& h : request.headers.all()) {
    if (equalsIgnoreCase(h.name, "expect")) {
      forEachListItem(h.value, [&](std::string_view e) {
        other = other || !equalsIgnoreCase(e, "100-continue");
      });
    }
  }
  if (other) {
    return Rejection{417, "only Expect: 100-continue is understood"};
  }
  return std::nullopt;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}
bool isIpLiteralChar(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

Result<std::string> checkPort(std::string_view port) {
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), isDigit)) {
    return Error{"the Host port is not a port number"};
  }
  uint32_t value = 0;
  for (char c : port) {
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) {
    return Error{"the Host port is out of range"};
  }
  return std::string(port);
}

struct TargetParts {
  std::string_view path;
  std::optional<std::string_view> query;
};

TargetParts splitTarget(std::string_view target) {
  const size_t question = target.find('?');
  if (question == std::string_view::npos) {
    return {target, std::nullopt};
  }
  return {target.substr(0, question), target.substr(question + 1)};
}

// The authority of an absolute-form target, and the rest ("/path?query").
struct AbsoluteForm {
  std::string_view authority;
  std::string_view rest;
  std::string_view default_port;
};

Result<AbsoluteForm> splitAbsoluteForm(std::string_view target) {
  const size_t scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) {
    return Error{"the request target is neither a path nor an absolute http URL"};
  }
  const std::string_view scheme = target.substr(0, scheme_end);
  AbsoluteForm form;
  if (equalsIgnoreCase(scheme, "http")) {
    form.default_port = ":80";
  } else if (equalsIgnoreCase(scheme, "https")) {
    form.default_port = ":443";
  } else {
    return Error{"only http and https URLs are served"};
  }
  const std::string_view after = target.substr(scheme_end + 3);
  const size_t end = after.find_first_of("/?");
  form.authority = after.substr(0, end);
  form.rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
  if (form.authority.find('@') != std::string_view::npos) {
    // RFC 9110 §4.2.4: userinfo in an http URI is to be treated as an error.
    return Error{"userinfo in the request target"};
  }
  return form;
}

// Decides the request's authority and its origin-form target ("/path?query" before the path
// and query are normalized).
struct DecidedTarget {
  std::string host;
  std::string_view rest;
};

Result<DecidedTarget> decideHostAndTarget(const RequestHead& request,
                                          const NormalizeOptions& options) {
  if (request.headers.count("host") > 1) {
    return Error{"more than one Host field"};
  }
  const std::string_view target = request.target;
  if (target.find('#') != std::string_view::npos) {
    return Error{"a fragment ('#') in the request target"};
  }
  if (!target.empty() && target.front() != '/' && target != "*") {
    Result<AbsoluteForm> form = splitAbsoluteForm(target);
    if (!form) {
      return form.error();
    }
    Result<std::string> host = normalizeAuthority(form->authority, form->default_port);
    if (!host) {
      return host.error();
    }
    // RFC 9112 §3.2.2: the target's authority replaces whatever Host says.
    return DecidedTarget{std::move(host).value(), form->rest.empty() ? "/" : form->rest};
  }
  if (target == "*" && request.method != "OPTIONS") {
    return Error{"the '*' target is for OPTIONS only"};
  }
  const std::optional<std::string_view> host_field = request.headers.get("host");
  if (!host_field) {
    if (request.version_minor >= 1) {
      return Error{"HTTP/1.1 request without Host"};  // RFC 9112 §3.2
    }
    return DecidedTarget{std::string(options.default_host), target};
  }
  Result<std::string> host = normalizeAuthority(trimOws(*host_field), ":80");
  if (!host) {
    return host.error();
  }
  return DecidedTarget{std::move(host).value(), target};
}

Result<std::string> normalizeTarget(std::string_view rest, const NormalizeOptions& options) {
  if (rest == "*") {
    return std::string(rest);
  }
  const TargetParts parts = splitTarget(rest);
  Result<std::string> path = normalizePath(parts.path, options.encoded_slashes);
  if (!path) {
    return path;
  }
  if (!parts.query || parts.query->empty()) {
    return path;  // "/a?" is "/a": the key could not tell them apart either
  }
  Result<std::string> query = normalizeQueryString(*parts.query);
  if (!query) {
    return query;
  }
  std::string out = std::move(path).value();
  out.push_back('?');
  out.append(*query);
  return out;
}

void putHostFirst(RequestHead& request, std::string host) {
  std::vector<Header>& fields = request.headers.all();
  fields.insert(fields.begin(), Header{"Host", std::move(host)});
}

}  // namespace

bool isKeyedForwardingField(std::string_view name) {
  return roleOf(name) == FieldRole::kKeyedForwarding;
}

Result<std::string> normalizeAuthority(std::string_view authority, std::string_view default_port) {
  if (authority.empty()) {
    return Error{"empty Host"};
  }
  std::string_view host = authority;
  std::string_view port;
  if (host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos || close == 1 ||
        !std::all_of(host.begin() + 1, host.begin() + static_cast<std::ptrdiff_t>(close),
                     isIpLiteralChar)) {
      return Error{"the Host is not a valid IP literal"};
    }
    const std::string_view after = host.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      return Error{"bytes after the IP literal in Host"};
    }
    port = after.empty() ? after : after.substr(1);
    host = host.substr(0, close + 1);
  } else {
    const size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), isHostNameChar)) {
      return Error{"the Host has a character not allowed in a host name"};
    }
  }
  std::string out;
  out.reserve(authority.size());
  for (char c : host) {
    out.push_back(lowerAscii(c));
  }
  if (!port.empty()) {
    Result<std::string> checked = checkPort(port);
    if (!checked) {
      return checked;
    }
    // "host:0080" is "host:80": compare numbers, not digits.
    const std::string digits = std::to_string(std::stoul(*checked));
    if (default_port.substr(1) != digits) {
      out.push_back(':');
      out.append(digits);
    }
  }
  return out;
}

std::optional<Rejection> normalizeRequest(RequestHead& request, const NormalizeOptions& options) {
  if (auto rejected = checkVersionAndMethod(request)) {
    return rejected;
  }
  if (auto rejected = checkTransferCodings(request)) {
    return rejected;
  }
  if (auto rejected = checkExpect(request)) {
    return rejected;
  }
  Result<DecidedTarget> decided = decideHostAndTarget(request, options);
  if (!decided) {
    return Rejection{400, decided.error().message};
  }
  Result<std::string> target = normalizeTarget(decided->rest, options);
  if (!target) {
    return Rejection{400, target.error().message};
  }
  std::string host = std::move(decided->host);
  request.target = std::move(target).value();  // last use of the old target's views
  keepEndToEndFields(request, options);
  putHostFirst(request, std::move(host));
  return std::nullopt;
}

}  // namespace cachecar::http
