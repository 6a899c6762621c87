#include "cachecar/config/config_loader.h"

#include <arpa/inet.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "cachecar/common/units.h"
#include "cachecar/redis/redis_client.h"
#include "cachecar/storage/registry.h"

namespace cachecar::config {

namespace {

constexpr unsigned kMaxWorkers = 1024;
// The prefix is part of every storage key, which must stay within memcached's 250 bytes.
constexpr size_t kMaxKeyPrefixBytes = 128;
constexpr uint16_t kDefaultHttpPort = 80;
// Redis refuses larger values (proto-max-bulk-len).
constexpr uint64_t kRedisMaxObjectBytes = 512ull << 20;
constexpr std::string_view kCacheOff = "off";
// Far above any real configuration: a bigger file is almost surely the wrong file.
constexpr size_t kMaxConfigFileBytes = 4u << 20;

// ---------------------------------------------------------------------------------------------
// Text helpers (no YAML here: parseHostPort and friends also serve the command line).

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
// Printable ASCII other than space: what may appear in a storage key or a path prefix.
bool isVisible(char c) { return c > 0x20 && c < 0x7f; }

// RFC 9110 token characters (header and cookie names).
bool isTokenChar(char c) {
  return isAlpha(c) || isDigit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isHostChar(char c) { return isAlpha(c) || isDigit(c) || c == '.' || c == '-' || c == '_'; }

template <typename Pred>
bool allOf(std::string_view text, Pred pred) {
  return std::all_of(text.begin(), text.end(), pred);
}

// Decimal digits only: no sign, no spaces, no "0x". nullopt when malformed or above `max`.
std::optional<uint64_t> parseUnsigned(std::string_view text, uint64_t max) {
  if (text.empty()) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (const char c : text) {
    if (!isDigit(c)) {
      return std::nullopt;
    }
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) {
      return std::nullopt;
    }
    value = value * 10 + digit;
  }
  return value;
}

// A decimal number: digits with an optional fractional part ("0", "1", "0.25"). No sign, no
// exponent, no "inf" or "nan", no bare leading or trailing point: std::from_chars alone would
// take several of those. nullopt when malformed.
std::optional<double> parseDecimal(std::string_view text) {
  const size_t point = text.find('.');
  const std::string_view whole = text.substr(0, point);
  const std::string_view fraction =
      point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
  if (whole.empty() || !allOf(whole, isDigit)) {
    return std::nullopt;
  }
  if (point != std::string_view::npos && (fraction.empty() || !allOf(fraction, isDigit))) {
    return std::nullopt;
  }
  double value = 0;
  const char* const end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value, std::chars_format::fixed);
  if (error != std::errc() || stop != end) {
    return std::nullopt;  // out of range
  }
  return value;
}

// The shortest text that reads back as the same double: 0.1 prints as "0.1", not 0.100000.
std::string formatDecimal(double value) {
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) {
    return "?";
  }
  return std::string(buffer, end);
}

std::string toLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += separator;
    }
    out += items[i];
  }
  return out;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// "host:port", "[v6]:port", and, when `default_port` is set, "host" or "[v6]" alone.
Result<HostPort> parseAuthority(std::string_view text, std::optional<uint16_t> default_port) {
  if (text.empty()) {
    return Error{"empty address"};
  }
  std::string_view host;
  std::optional<std::string_view> port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return Error{"missing ']' in " + quoted(text)};
    }
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    in6_addr unused{};
    if (host.empty() || inet_pton(AF_INET6, std::string(host).c_str(), &unused) != 1) {
      return Error{"invalid IPv6 address " + quoted(host) + " in " + quoted(text)};
    }
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Error{"unexpected " + quoted(rest) + " after ']' in " + quoted(text)};
      }
      port_text = rest.substr(1);
    }
  } else {
    const size_t colon = text.rfind(':');
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
    }
    if (host.find(':') != std::string_view::npos) {
      return Error{"an IPv6 address needs brackets: " + quoted(text) + " (e.g. [::1]:8080)"};
    }
    if (host.empty()) {
      return Error{"missing host in " + quoted(text)};
    }
    if (!allOf(host, isHostChar)) {
      return Error{"invalid host " + quoted(host) + " in " + quoted(text)};
    }
  }
  HostPort out{std::string(host), 0};
  if (!port_text) {
    if (!default_port) {
      return Error{"missing port in " + quoted(text)};
    }
    out.port = *default_port;
    return out;
  }
  const std::optional<uint64_t> port = parseUnsigned(*port_text, 65535);
  if (!port || *port == 0) {
    return Error{"invalid port " + quoted(*port_text) + " in " + quoted(text) + " (use 1-65535)"};
  }
  out.port = static_cast<uint16_t>(*port);
  return out;
}

// Splits "scheme://authority[/tail]"; the scheme is lowercased.
struct UrlParts {
  std::string scheme;
  std::string_view authority;
  std::string_view tail;  // from the first '/', '?' or '#'
};

std::optional<UrlParts> splitUrl(std::string_view text) {
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return std::nullopt;
  }
  UrlParts parts;
  parts.scheme = toLower(text.substr(0, scheme_end));
  const std::string_view rest = text.substr(scheme_end + 3);
  const size_t end = rest.find_first_of("/?#");
  parts.authority = rest.substr(0, end);
  parts.tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  return parts;
}

// ---------------------------------------------------------------------------------------------
// YAML walking.

// A validation failure. It is thrown only inside this file and turned into an Error by
// parseConfig: yaml-cpp throws anyway, and threading a Result through every nested field would
// bury the rules under plumbing.
struct ConfigError {
  int line;  // 1-based; 0 when unknown
  std::string path;
  std::string what;
};

int lineOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return quoted(node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string childPath(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

// One value in the document and where it is: its dotted path and the line of its key.
struct Field {
  std::string path;
  int key_line = 0;  // 0 for list items and the root, which have no key
  YAML::Node value;

  // A scalar's own line; for anything else the key's line, because yaml-cpp marks an empty
  // value or a block mapping at the token after the key, often on the next line.
  int line() const {
    if (value.IsScalar() || key_line == 0) {
      const int own = lineOf(value);
      return own != 0 ? own : key_line;
    }
    return key_line;
  }

  [[noreturn]] void fail(std::string what) const {
    throw ConfigError{line(), path, std::move(what)};
  }

  bool isNull() const { return value.IsNull(); }
};

// A mapping's entries in file order. Checks, entry by entry so that the first problem in the
// file is the one reported, that every key is a plain name, that none repeats (yaml-cpp keeps
// duplicates) and, given a list of allowed keys, that each is known: a typo is an error at
// startup, never a silently ignored setting.
class MapReader {
 public:
  MapReader(const Field& field, const std::vector<std::string_view>* allowed) : path_(field.path) {
    if (!field.value.IsMap()) {
      field.fail("expected a mapping, got " + describe(field.value));
    }
    std::map<std::string, int, std::less<>> first_line;
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      // Copies: the iterator's `->` yields a temporary pair of handles (cheap to copy).
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      const int key_line = lineOf(key);
      if (!key.IsScalar() || key.Scalar().empty()) {
        throw ConfigError{key_line, path_, "keys must be plain names, got " + describe(key)};
      }
      const std::string name = key.Scalar();
      if (allowed != nullptr &&
          std::find(allowed->begin(), allowed->end(), name) == allowed->end()) {
        throw ConfigError{key_line, path_, "unknown key " + quoted(name)};
      }
      const auto [previous, inserted] = first_line.emplace(name, key_line);
      if (!inserted) {
        throw ConfigError{key_line, childPath(path_, name),
                          "duplicate key (first at line " + std::to_string(previous->second) + ")"};
      }
      entries_.push_back(Field{childPath(path_, name), key_line, value});
      names_.push_back(name);
    }
  }

  std::optional<Field> get(std::string_view name) const {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) {
        return entries_[i];
      }
    }
    return std::nullopt;
  }

  size_t size() const { return entries_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }
  const Field& field(size_t i) const { return entries_[i]; }

 private:
  std::string path_;
  std::vector<std::string> names_;
  std::vector<Field> entries_;
};

// The text of a scalar. An empty value (`key:`) is an error unless `allow_empty`, in which case
// it reads as "".
std::string scalarText(const Field& field, bool allow_empty = false) {
  if (field.isNull()) {
    if (allow_empty) {
      return "";
    }
    field.fail("missing value");
  }
  if (!field.value.IsScalar()) {
    field.fail("expected a single value, got " + describe(field.value));
  }
  return field.value.Scalar();
}

std::chrono::milliseconds durationValue(const Field& field, bool allow_zero) {
  const std::string text = scalarText(field);
  const std::optional<std::chrono::milliseconds> parsed = parseDuration(text);
  if (!parsed) {
    field.fail("invalid duration " + quoted(text) + " (use ms, s, m, h or d)");
  }
  if (!allow_zero && parsed->count() == 0) {
    field.fail("must be greater than 0");
  }
  return *parsed;
}

uint64_t sizeValue(const Field& field) {
  const std::string text = scalarText(field);
  const std::optional<uint64_t> parsed = parseSize(text);
  if (!parsed) {
    field.fail("invalid size " + quoted(text) + " (use bytes or KiB, MiB, GiB)");
  }
  if (*parsed == 0) {
    field.fail("must be greater than 0");
  }
  return *parsed;
}

uint64_t integerValue(const Field& field, uint64_t min, uint64_t max) {
  const std::string text = scalarText(field);
  const std::optional<uint64_t> parsed = parseUnsigned(text, std::numeric_limits<uint64_t>::max());
  if (!parsed) {
    field.fail("expected a whole number, got " + quoted(text));
  }
  if (*parsed < min || *parsed > max) {
    field.fail("must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
               text);
  }
  return *parsed;
}

// YAML 1.2 spellings only. YAML 1.1 readers also take yes/no/on/off, but `off` means something
// else in `cache:`, so a word that is not plainly true or false is refused rather than guessed at.
bool boolValue(const Field& field) {
  const std::string text = scalarText(field);
  if (text == "true" || text == "True" || text == "TRUE") {
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    return false;
  }
  field.fail("expected true or false, got " + quoted(text));
}

// A number from 0 to 1 written as a decimal (0.1).
double fractionValue(const Field& field) {
  const std::string text = scalarText(field);
  // A sign is no part of the number format; a number behind it is reported as out of range.
  const bool negative = !text.empty() && text.front() == '-';
  const std::optional<double> parsed =
      parseDecimal(negative ? std::string_view(text).substr(1) : std::string_view(text));
  if (!parsed) {
    field.fail("expected a number from 0 to 1 such as 0.1, got " + quoted(text));
  }
  if (negative || *parsed > 1.0) {
    field.fail("must be between 0 and 1, got " + text);
  }
  return *parsed;
}

// A list of names; each is checked by `valid` and must not repeat (header names repeat
// whatever their case).
std::vector<std::string> nameList(const Field& field, bool (*valid)(std::string_view),
                                  std::string_view what, bool case_insensitive) {
  if (!field.value.IsSequence()) {
    field.fail("expected a list of " + std::string(what) + ", got " + describe(field.value));
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  size_t index = 0;
  for (auto it = field.value.begin(); it != field.value.end(); ++it, ++index) {
    const Field item{field.path + "[" + std::to_string(index) + "]", 0, *it};
    const std::string text = scalarText(item);
    if (!valid(text)) {
      item.fail("invalid " + std::string(what) + " name " + quoted(text));
    }
    if (!seen.insert(case_insensitive ? toLower(text) : text).second) {
      item.fail("duplicate " + quoted(text));
    }
    out.push_back(text);
  }
  return out;
}

bool isValidQueryName(std::string_view name) {
  return !name.empty() &&
         allOf(name, [](char c) { return isVisible(c) && c != '&' && c != '=' && c != '#'; });
}
bool isValidToken(std::string_view name) { return !name.empty() && allOf(name, isTokenChar); }

// What a shell and a Kubernetes `env:` entry both accept as a variable name.
bool isValidEnvName(std::string_view name) {
  return !name.empty() && !isDigit(name.front()) &&
         allOf(name, [](char c) { return isAlpha(c) || isDigit(c) || c == '_'; });
}

bool isValidCacheName(std::string_view name) {
  return !name.empty() &&
         allOf(name, [](char c) { return isAlpha(c) || isDigit(c) || c == '_' || c == '-'; });
}

const std::vector<std::string_view> kTopKeys{
    "listen",     "upstream",        "workers",        "log_level", "limits",
    "heuristic",  "caches",          "routes",         "admin",     "drain_timeout",
    "access_log", "trusted_proxies", "encoded_slashes"};
const std::vector<std::string_view> kAdminKeys{"listen", "token_env"};
const std::vector<std::string_view> kLimitKeys{"header_read_timeout",
                                               "idle_timeout",
                                               "upstream_connect_timeout",
                                               "upstream_response_timeout",
                                               "max_header_bytes",
                                               "max_header_fields",
                                               "max_request_body_bytes",
                                               "max_connections",
                                               "upstream_max_idle_connections",
                                               "coalesce_wait"};
const std::vector<std::string_view> kHeuristicKeys{"fraction", "max"};
const std::vector<std::string_view> kCacheKeys{"backend",    "location", "timeout",
                                               "key_prefix", "version",  "options"};
const std::vector<std::string_view> kRouteKeys{
    "match", "cache", "ttl", "override", "stale_while_revalidate", "stale_if_error", "key"};
const std::vector<std::string_view> kKeyKeys{"query", "headers", "cookies"};

// The options each backend understands. A backend the registry knows but this table does not
// (a newer one) gets only the options common to all.
std::vector<std::string_view> optionsOf(std::string_view backend) {
  if (backend == "memory") {
    return {"max_entries", "max_bytes", "max_object_bytes"};
  }
  if (backend == "redis") {
    return {"max_object_bytes", "connect_timeout", "command_timeout"};
  }
  return {"max_object_bytes"};
}

bool isOptionOfAnyBackend(std::string_view name) {
  for (const std::string_view backend : {"memory", "redis"}) {
    const std::vector<std::string_view> options = optionsOf(backend);
    if (std::find(options.begin(), options.end(), name) != options.end()) {
      return true;
    }
  }
  return false;
}

std::string joinViews(const std::vector<std::string_view>& items) {
  return join(std::vector<std::string>(items.begin(), items.end()), ", ");
}

constexpr std::pair<std::string_view, LogLevel> kLogLevels[] = {
    {"debug", LogLevel::kDebug},
    {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},
    {"error", LogLevel::kError},
};

std::string_view logLevelName(LogLevel level) {
  for (const auto& [name, value] : kLogLevels) {
    if (value == level) {
      return name;
    }
  }
  return "info";
}

HostPort hostPortValue(const Field& field) {
  if (field.value.IsSequence()) {
    // `listen: [::1]:8080` unquoted is YAML list syntax.
    field.fail("expected host:port, got a list (quote IPv6 addresses: \"[::1]:8080\")");
  }
  Result<HostPort> parsed = parseHostPort(scalarText(field));
  if (!parsed) {
    field.fail(parsed.error().message);
  }
  return std::move(parsed).value();
}

void parseLimits(const Field& field, LimitSettings& limits) {
  if (field.isNull()) {
    return;
  }
  const MapReader map(field, &kLimitKeys);
  for (size_t i = 0; i < map.size(); ++i) {
    const std::string& name = map.name(i);
    const Field& value = map.field(i);
    if (name == "header_read_timeout") {
      limits.header_read_timeout = durationValue(value, false);
    } else if (name == "idle_timeout") {
      limits.idle_timeout = durationValue(value, false);
    } else if (name == "upstream_connect_timeout") {
      limits.upstream_connect_timeout = durationValue(value, false);
    } else if (name == "upstream_response_timeout") {
      limits.upstream_response_timeout = durationValue(value, false);
    } else if (name == "max_header_bytes") {
      limits.max_header_bytes = sizeValue(value);
    } else if (name == "max_header_fields") {
      limits.max_header_fields = integerValue(value, 1, 10000);
    } else if (name == "max_request_body_bytes") {
      limits.max_request_body_bytes = sizeValue(value);
    } else if (name == "max_connections") {
      limits.max_connections = integerValue(value, 1, std::numeric_limits<uint32_t>::max());
    } else if (name == "upstream_max_idle_connections") {
      limits.upstream_max_idle_connections =
          integerValue(value, 0, std::numeric_limits<uint32_t>::max());
    } else if (name == "coalesce_wait") {
      limits.coalesce_wait = durationValue(value, false);
    }
  }
}

// `admin:` alone (no value, or {}) turns the admin listener on with its defaults: the key's
// presence is the switch. Needs config.listen read first.
void parseAdmin(const Field& field, Config& config) {
  if (field.value.IsScalar()) {
    field.fail("expected a mapping (listen, token_env), got " + describe(field.value) +
               "; leave admin out for no admin listener");
  }
  AdminSettings& admin = config.admin.emplace();
  std::optional<Field> listen;
  if (!field.isNull()) {
    const MapReader map(field, &kAdminKeys);
    listen = map.get("listen");
    if (listen) {
      admin.listen = hostPortValue(*listen);
    }
    if (const std::optional<Field> token_env = map.get("token_env")) {
      admin.token_env = scalarText(*token_env);
      if (!isValidEnvName(admin.token_env)) {
        token_env->fail("invalid environment variable name " + quoted(admin.token_env) +
                        " (letters, digits and '_', not starting with a digit)");
      }
    }
  }
  if (const std::optional<std::string> conflict = adminListenConflict(config)) {
    // At the admin listen address, or at `admin:` when it is the default one.
    throw ConfigError{listen ? listen->line() : field.line(), childPath(field.path, "listen"),
                      *conflict};
  }
}

void parseTrustedProxies(const Field& field, Config& config) {
  if (field.isNull()) {
    return;
  }
  if (!field.value.IsSequence()) {
    field.fail("expected a list of IP addresses or CIDR blocks (like [10.0.0.0/8]), got " +
               describe(field.value));
  }
  size_t index = 0;
  for (auto it = field.value.begin(); it != field.value.end(); ++it, ++index) {
    const Field item{field.path + "[" + std::to_string(index) + "]", 0, *it};
    Result<CidrBlock> block = CidrBlock::parse(scalarText(item));
    if (!block) {
      item.fail(block.error().message);
    }
    config.trusted_proxies.push_back(std::move(block).value());
  }
}

void parseEncodedSlashes(const Field& field, Config& config) {
  const std::string text = scalarText(field);
  if (text == "reject") {
    config.encoded_slashes = http::EncodedSlashes::kReject;
  } else if (text == "decode") {
    config.encoded_slashes = http::EncodedSlashes::kDecode;
  } else {
    field.fail("expected reject or decode, got " + quoted(text));
  }
}

void parseHeuristic(const Field& field, HeuristicSettings& heuristic) {
  if (field.isNull()) {
    return;
  }
  const MapReader map(field, &kHeuristicKeys);
  if (const std::optional<Field> fraction = map.get("fraction")) {
    heuristic.fraction = fractionValue(*fraction);
  }
  if (const std::optional<Field> max = map.get("max")) {
    // 0, like fraction 0, gives such responses no heuristic freshness at all.
    heuristic.max = durationValue(*max, true);
  }
}

void parseCacheOptions(const Field& field, CacheSettings& cache) {
  if (field.isNull()) {
    return;
  }
  const MapReader map(field, nullptr);
  const std::vector<std::string_view> valid = optionsOf(cache.backend);
  for (size_t i = 0; i < map.size(); ++i) {
    const std::string& name = map.name(i);
    const Field& value = map.field(i);
    if (std::find(valid.begin(), valid.end(), name) == valid.end()) {
      const std::string what =
          isOptionOfAnyBackend(name)
              ? "option " + quoted(name) + " does not apply to backend " + quoted(cache.backend)
              : "unknown key " + quoted(name);
      throw ConfigError{value.key_line, field.path,
                        what + "; valid for " + cache.backend + ": " + joinViews(valid)};
    }
    if (name == "max_entries") {
      cache.max_entries = integerValue(value, 1, std::numeric_limits<uint64_t>::max());
    } else if (name == "max_bytes") {
      cache.max_bytes = sizeValue(value);
    } else if (name == "max_object_bytes") {
      cache.max_object_bytes = sizeValue(value);
      if (cache.backend == "redis" && cache.max_object_bytes > kRedisMaxObjectBytes) {
        value.fail("at most " + formatSize(kRedisMaxObjectBytes) +
                   " for backend 'redis' (the largest value Redis stores)");
      }
    } else if (name == "connect_timeout") {
      cache.connect_timeout = durationValue(value, false);
    } else if (name == "command_timeout") {
      cache.command_timeout = durationValue(value, false);
    }
  }
}

CacheSettings parseCache(const std::string& name, const Field& field) {
  if (!isValidCacheName(name) || name == kCacheOff) {
    throw ConfigError{
        field.key_line, field.path,
        name == kCacheOff
            ? "'off' cannot name a cache (routes use cache: off to disable caching)"
            : "invalid cache name " + quoted(name) + " (use letters, digits, '_' and '-')"};
  }
  CacheSettings cache;
  cache.name = name;
  const MapReader map(field, &kCacheKeys);

  if (const std::optional<Field> backend = map.get("backend")) {
    cache.backend = scalarText(*backend);
    const std::vector<std::string> known = storage::builtinBackendNames();
    if (std::find(known.begin(), known.end(), cache.backend) == known.end()) {
      backend->fail("unknown backend " + quoted(cache.backend) + "; valid: " + join(known, ", "));
    }
  }

  const std::optional<Field> location = map.get("location");
  if (location) {
    cache.location = scalarText(*location, true);
  }
  if (cache.backend == "redis") {
    if (cache.location.empty()) {
      const Field& where = location ? *location : field;
      throw ConfigError{where.line(), childPath(field.path, "location"),
                        "required for backend 'redis' (redis://host[:port][/db])"};
    }
    // The redis client's own parser, so that what loads here also connects there.
    const Result<redis::RedisAddress> parsed = redis::parseRedisLocation(cache.location);
    if (!parsed) {
      location->fail(parsed.error().message);
    }
  } else if (cache.backend == "memory" && !cache.location.empty()) {
    location->fail("not used by backend 'memory' (leave it out or empty)");
  }

  if (const std::optional<Field> timeout = map.get("timeout")) {
    cache.timeout = durationValue(*timeout, true);
  }
  if (const std::optional<Field> prefix = map.get("key_prefix")) {
    cache.key_prefix = scalarText(*prefix, true);
    if (!allOf(cache.key_prefix, isVisible)) {
      prefix->fail("invalid key prefix " + quoted(cache.key_prefix) +
                   " (printable ASCII without spaces)");
    }
    if (cache.key_prefix.size() > kMaxKeyPrefixBytes) {
      prefix->fail("longer than " + std::to_string(kMaxKeyPrefixBytes) + " bytes");
    }
  }
  if (const std::optional<Field> version = map.get("version")) {
    cache.version = static_cast<int64_t>(
        integerValue(*version, 0, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
  }
  if (const std::optional<Field> options = map.get("options")) {
    parseCacheOptions(*options, cache);
  }
  return cache;
}

void parseCaches(const Field& field, Config& config) {
  if (field.isNull()) {
    return;  // `caches:` with nothing under it: the built-in default cache stays
  }
  const MapReader map(field, nullptr);
  config.caches.clear();
  for (size_t i = 0; i < map.size(); ++i) {
    config.caches.emplace(map.name(i), parseCache(map.name(i), map.field(i)));
  }
  if (config.caches.find("default") == config.caches.end()) {
    field.fail(
        "missing the 'default' cache (used by routes without cache: and by requests that match "
        "no route)");
  }
}

KeySettings parseKey(const Field& field) {
  KeySettings key;
  if (field.isNull()) {
    return key;
  }
  const MapReader map(field, &kKeyKeys);
  if (const std::optional<Field> query = map.get("query")) {
    key.query = nameList(*query, isValidQueryName, "query parameter", false);
  }
  if (const std::optional<Field> headers = map.get("headers")) {
    key.headers = nameList(*headers, isValidToken, "header", true);
  }
  if (const std::optional<Field> cookies = map.get("cookies")) {
    key.cookies = nameList(*cookies, isValidToken, "cookie", false);
  }
  return key;
}

std::string cacheChoices(const Config& config) {
  std::vector<std::string> names;
  for (const auto& [name, settings] : config.caches) {
    names.push_back(name);
  }
  names.emplace_back(kCacheOff);
  return join(names, ", ");
}

void parseRoutes(const Field& field, Config& config) {
  if (field.isNull()) {
    return;
  }
  if (!field.value.IsSequence()) {
    field.fail("expected a list of routes, got " + describe(field.value));
  }
  std::map<std::string, int> match_lines;
  size_t index = 0;
  for (auto it = field.value.begin(); it != field.value.end(); ++it, ++index) {
    const Field item{field.path + "[" + std::to_string(index) + "]", 0, *it};
    if (!item.value.IsMap()) {
      item.fail("expected a mapping with match and cache, ttl or key; got " + describe(item.value));
    }
    const MapReader map(item, &kRouteKeys);
    RouteSettings route;
    route.line = item.line();

    const std::optional<Field> match = map.get("match");
    if (!match) {
      item.fail("missing 'match' (a path prefix such as /static/)");
    }
    route.match = scalarText(*match);
    if (route.match.empty() || route.match.front() != '/' || !allOf(route.match, isVisible)) {
      match->fail("must be a path prefix starting with '/', got " + quoted(route.match));
    }
    // Requests are routed by their normalized path, so the prefix is normalized the same way
    // ("/a/./b/" is "/a/b/", "%7e" is "~").
    Result<std::string> normalized = http::normalizePath(route.match, config.encoded_slashes);
    if (!normalized) {
      match->fail("not a path a request could have: " + normalized.error().message);
    }
    route.match = std::move(normalized).value();
    const auto [previous, inserted] = match_lines.emplace(route.match, match->line());
    if (!inserted) {
      match->fail("duplicate match " + quoted(route.match) + " (first at line " +
                  std::to_string(previous->second) + ")");
    }

    if (const std::optional<Field> cache = map.get("cache")) {
      // The raw text: YAML 1.1 readers take a bare `off` for false, but it means "off" here.
      const std::string name = scalarText(*cache);
      if (name == kCacheOff) {
        route.cache_off = true;
      } else if (config.caches.find(name) == config.caches.end()) {
        cache->fail("unknown cache " + quoted(name) + "; valid: " + cacheChoices(config));
      } else {
        route.cache = name;
      }
    }
    if (const std::optional<Field> ttl = map.get("ttl")) {
      if (route.cache_off) {
        ttl->fail("not allowed with cache: off");
      }
      route.ttl = durationValue(*ttl, true);
    }
    if (const std::optional<Field> override_field = map.get("override")) {
      if (route.cache_off) {
        override_field->fail("not allowed with cache: off");
      }
      route.override_ttl = boolValue(*override_field);
      // Without its own ttl the route would override the app with the cache's generic timeout,
      // which is never what `override` is written for.
      if (route.override_ttl && !route.ttl) {
        throw ConfigError{override_field->line(), item.path, "override needs ttl"};
      }
    }
    if (const std::optional<Field> swr = map.get("stale_while_revalidate")) {
      if (route.cache_off) {
        swr->fail("not allowed with cache: off");
      }
      route.stale_while_revalidate = durationValue(*swr, true);
    }
    if (const std::optional<Field> sie = map.get("stale_if_error")) {
      if (route.cache_off) {
        sie->fail("not allowed with cache: off");
      }
      route.stale_if_error = durationValue(*sie, true);
    }
    if (const std::optional<Field> key = map.get("key")) {
      if (route.cache_off) {
        key->fail("not allowed with cache: off");
      }
      route.key = parseKey(*key);
    }
    config.routes.push_back(std::move(route));
  }
}

Config parseRoot(const YAML::Node& root, const std::string& source) {
  Config config = defaultConfig();
  config.source = source;
  if (root.IsNull()) {
    return config;  // an empty file, or only comments: every default applies
  }
  const Field top_field{"", 0, root};
  if (!root.IsMap()) {
    top_field.fail("expected a mapping of settings (listen, upstream, ...), got " + describe(root));
  }
  const MapReader top(top_field, &kTopKeys);
  if (const std::optional<Field> listen = top.get("listen")) {
    config.listen = hostPortValue(*listen);
  }
  if (const std::optional<Field> upstream = top.get("upstream")) {
    Result<UpstreamSettings> parsed = parseUpstreamUrl(scalarText(*upstream));
    if (!parsed) {
      upstream->fail(parsed.error().message);
    }
    config.upstream = std::move(parsed).value();
  }
  if (const std::optional<Field> workers = top.get("workers")) {
    const std::string text = scalarText(*workers);
    if (text == "auto") {
      config.workers = 0;
    } else {
      const std::optional<uint64_t> count =
          parseUnsigned(text, std::numeric_limits<uint64_t>::max());
      if (!count || *count == 0) {
        workers->fail("expected 'auto' or a positive integer, got " + quoted(text));
      }
      if (*count > kMaxWorkers) {
        workers->fail("at most " + std::to_string(kMaxWorkers) + ", got " + text);
      }
      config.workers = static_cast<unsigned>(*count);
    }
  }
  if (const std::optional<Field> level = top.get("log_level")) {
    const std::string text = scalarText(*level);
    bool found = false;
    for (const auto& [name, value] : kLogLevels) {
      if (text == name) {
        config.log_level = value;
        found = true;
      }
    }
    if (!found) {
      level->fail("unknown log level " + quoted(text) + "; valid: debug, info, warn, error");
    }
  }
  if (const std::optional<Field> limits = top.get("limits")) {
    parseLimits(*limits, config.limits);
  }
  if (const std::optional<Field> admin = top.get("admin")) {
    parseAdmin(*admin, config);  // after listen, whatever the order of the keys in the file
  }
  if (const std::optional<Field> drain = top.get("drain_timeout")) {
    // 0: stop at once, cutting off whatever is in flight.
    config.drain_timeout = durationValue(*drain, true);
  }
  if (const std::optional<Field> access_log = top.get("access_log")) {
    config.access_log = boolValue(*access_log);
  }
  if (const std::optional<Field> heuristic = top.get("heuristic")) {
    parseHeuristic(*heuristic, config.heuristic);
  }
  if (const std::optional<Field> trusted = top.get("trusted_proxies")) {
    parseTrustedProxies(*trusted, config);
  }
  // Before routes: their prefixes are normalized as requests' paths are.
  if (const std::optional<Field> slashes = top.get("encoded_slashes")) {
    parseEncodedSlashes(*slashes, config);
  }
  // Caches before routes: a route's `cache:` must name one of them.
  if (const std::optional<Field> caches = top.get("caches")) {
    parseCaches(*caches, config);
  }
  if (const std::optional<Field> routes = top.get("routes")) {
    parseRoutes(*routes, config);
  }
  return config;
}

// Records where a document starts; the events themselves are not needed.
class DocumentStart : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { mark_ = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnAlias(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {}
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {}
  void OnMapEnd() override {}

  const YAML::Mark& mark() const { return mark_; }

 private:
  YAML::Mark mark_ = YAML::Mark::null_mark();
};

// The file must hold exactly one YAML document. YAML::Load reads only the first one and ignores
// the rest, so a second document would be silently dropped. Worse, yaml-cpp 0.7 stops at a
// stray ',' outside any collection and reports an empty document there, again and again without
// advancing (LoadAll then allocates until memory runs out), so whatever follows the ',' would
// be silently ignored too. Asking the parser for at most two documents catches both, in bounded
// time.
std::optional<ConfigError> checkSingleDocument(const std::string& text) {
  std::istringstream stream(text);
  YAML::Parser parser(stream);
  DocumentStart first;
  if (!parser.HandleNextDocument(first)) {
    return std::nullopt;  // nothing but comments and blank lines
  }
  DocumentStart second;
  if (!parser.HandleNextDocument(second)) {
    return std::nullopt;
  }
  const YAML::Mark& mark = second.mark();
  const int line = mark.is_null() ? 0 : mark.line + 1;
  size_t pos = mark.is_null() ? 0 : static_cast<size_t>(mark.pos);
  pos = std::min(text.find_first_not_of(" \t\r\n", pos), text.size());
  if (text.compare(pos, 3, "---") == 0) {
    return ConfigError{line, "", "more than one YAML document ('---'); put all settings in one"};
  }
  const std::string found = pos < text.size() ? quoted(text.substr(pos, 1)) : "end of file";
  return ConfigError{line, "", "invalid YAML: unexpected " + found};
}

std::string formatError(const std::string& source, int line, const std::string& path,
                        const std::string& what) {
  std::string out = source;
  if (line > 0) {
    out += ":" + std::to_string(line);
  }
  out += ": ";
  if (!path.empty()) {
    out += path + ": ";
  }
  out += what;
  return out;
}

std::string listOrDash(const std::vector<std::string>& items) {
  return items.empty() ? "-" : "[" + join(items, ", ") + "]";
}

}  // namespace

Result<HostPort> parseHostPort(std::string_view text) {
  Result<HostPort> parsed = parseAuthority(text, std::nullopt);
  if (!parsed) {
    return Error{parsed.error().message +
                 " (expected host:port, e.g. 127.0.0.1:8080 or [::1]:8080)"};
  }
  return parsed;
}

Result<UpstreamSettings> parseUpstreamUrl(std::string_view text) {
  const std::string shown = quoted(text);
  const std::optional<UrlParts> parts = splitUrl(text);
  if (!parts) {
    return Error{"invalid upstream URL " + shown + " (expected http://host[:port])"};
  }
  if (parts->scheme == "https") {
    return Error{"https upstreams are not supported: " + shown +
                 " (cachecar talks plain http:// to the app beside it)"};
  }
  if (parts->scheme != "http") {
    return Error{"unsupported scheme " + quoted(parts->scheme) + " in " + shown +
                 " (expected http://host[:port])"};
  }
  if (parts->tail != "" && parts->tail != "/") {
    return Error{"the upstream URL must not have a path, query or fragment: " + shown +
                 " (requests keep their own path)"};
  }
  if (parts->authority.find('@') != std::string_view::npos) {
    return Error{"credentials in the upstream URL are not supported: " + shown};
  }
  Result<HostPort> address = parseAuthority(parts->authority, kDefaultHttpPort);
  if (!address) {
    return Error{"invalid upstream URL " + shown + ": " + address.error().message};
  }
  return UpstreamSettings{std::move(address).value(), std::string(text)};
}

Result<Config> parseConfig(std::string_view yaml_text, const std::string& source) {
  try {
    const std::string text(yaml_text);
    if (const std::optional<ConfigError> error = checkSingleDocument(text)) {
      return Error{formatError(source, error->line, error->path, error->what)};
    }
    return parseRoot(YAML::Load(text), source);
  } catch (const ConfigError& error) {
    return Error{formatError(source, error.line, error.path, error.what)};
  } catch (const YAML::Exception& error) {
    const int line = error.mark.is_null() ? 0 : error.mark.line + 1;
    return Error{formatError(source, line, "", "invalid YAML: " + error.msg)};
  } catch (const std::exception& error) {
    return Error{formatError(source, 0, "", error.what())};
  } catch (...) {
    return Error{formatError(source, 0, "", "unexpected error while reading the configuration")};
  }
}

Result<Config> loadConfigFile(const std::string& path) {
  const auto closer = [](std::FILE* file) { std::fclose(file); };
  errno = 0;
  const std::unique_ptr<std::FILE, decltype(closer)> file(std::fopen(path.c_str(), "rb"), closer);
  if (!file) {
    return Error{path + ": cannot read file: " + std::generic_category().message(errno)};
  }
  std::string text;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file.get())) > 0) {
    text.append(buffer, n);
    if (text.size() > kMaxConfigFileBytes) {
      return Error{path + ": larger than " + formatSize(kMaxConfigFileBytes) +
                   "; is this the configuration file?"};
    }
  }
  if (std::ferror(file.get()) != 0) {
    // A directory opens fine and fails here with EISDIR.
    return Error{path + ": cannot read file: " + std::generic_category().message(errno)};
  }
  return parseConfig(text, path);
}

std::string summarize(const Config& config) {
  std::ostringstream out;
  out << "config: " << config.source << "\n";
  out << "listen: " << config.listen.toString() << "\n";
  out << "upstream: " << config.upstream.url << " (" << config.upstream.address.toString() << ")\n";
  out << "workers: ";
  if (config.workers == 0) {
    out << "auto (" << config.effectiveWorkers() << ")";
  } else {
    out << config.workers;
  }
  out << "\n";
  out << "log_level: " << logLevelName(config.log_level) << "\n";
  if (config.admin) {
    out << "admin: listen=" << config.admin->listen.toString() << " token_env="
        << (config.admin->token_env.empty() ? "-" : config.admin->token_env) << "\n";
  } else {
    out << "admin: off\n";
  }
  out << "drain_timeout: " << formatDuration(config.drain_timeout) << "\n";
  out << "access_log: " << (config.access_log ? "true" : "false") << "\n";
  std::vector<std::string> trusted;
  for (const CidrBlock& block : config.trusted_proxies) {
    trusted.push_back(block.toString());
  }
  out << "trusted_proxies: " << listOrDash(trusted) << "\n";
  out << "encoded_slashes: "
      << (config.encoded_slashes == http::EncodedSlashes::kReject ? "reject" : "decode") << "\n";
  const LimitSettings& limits = config.limits;
  out << "limits: header_read_timeout=" << formatDuration(limits.header_read_timeout)
      << " idle_timeout=" << formatDuration(limits.idle_timeout)
      << " upstream_connect_timeout=" << formatDuration(limits.upstream_connect_timeout)
      << " upstream_response_timeout=" << formatDuration(limits.upstream_response_timeout)
      << " max_header_bytes=" << formatSize(limits.max_header_bytes)
      << " max_header_fields=" << limits.max_header_fields
      << " max_request_body_bytes=" << formatSize(limits.max_request_body_bytes)
      << " max_connections=" << limits.max_connections
      << " upstream_max_idle_connections=" << limits.upstream_max_idle_connections
      << " coalesce_wait=" << formatDuration(limits.coalesce_wait) << "\n";
  out << "heuristic: fraction=" << formatDecimal(config.heuristic.fraction)
      << " max=" << formatDuration(config.heuristic.max) << "\n";
  for (const auto& [name, cache] : config.caches) {
    out << "cache " << name << ": backend=" << cache.backend;
    if (!cache.location.empty()) {
      out << " location=" << cache.location;
    }
    out << " timeout=" << formatDuration(cache.timeout)
        << " key_prefix=" << (cache.key_prefix.empty() ? "''" : cache.key_prefix)
        << " version=" << cache.version;
    if (cache.backend == "memory") {
      out << " max_entries=" << cache.max_entries << " max_bytes=" << formatSize(cache.max_bytes);
    }
    out << " max_object_bytes=" << formatSize(cache.max_object_bytes);
    if (cache.backend == "redis") {
      out << " connect_timeout=" << formatDuration(cache.connect_timeout)
          << " command_timeout=" << formatDuration(cache.command_timeout);
    }
    out << "\n";
  }
  if (config.routes.empty()) {
    out << "routes: none (every response follows the app's Cache-Control; cache default)\n";
  }
  for (const RouteSettings& route : config.routes) {
    out << "route " << route.match << ": ";
    if (route.cache_off) {
      out << "cache=off\n";
      continue;
    }
    out << "cache=" << route.cache << " ttl=";
    if (route.ttl) {
      out << formatDuration(*route.ttl);
    } else {
      const auto cache = config.caches.find(route.cache);
      out << "(cache timeout"
          << (cache != config.caches.end() ? " " + formatDuration(cache->second.timeout) : "")
          << ")";
    }
    if (route.override_ttl) {
      out << " override=true";
    }
    if (route.stale_while_revalidate) {
      out << " stale_while_revalidate=" << formatDuration(*route.stale_while_revalidate);
    }
    if (route.stale_if_error) {
      out << " stale_if_error=" << formatDuration(*route.stale_if_error);
    }
    // Unset query: the whole (sorted) query enters the key; an empty list: none of it does.
    std::string query = "all";
    if (route.key.query) {
      query = route.key.query->empty() ? "none" : listOrDash(*route.key.query);
    }
    out << " key.query=" << query << " key.headers=" << listOrDash(route.key.headers)
        << " key.cookies=" << listOrDash(route.key.cookies) << "\n";
  }
  return out.str();
}

}  // namespace cachecar::config
