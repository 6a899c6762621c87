#include "cachecar/cache/cache_control.h"

#include <string_view>

namespace cachecar::cache {

namespace {

// RFC 9111 §1.2.2: a delta-seconds too large to represent is sent on as 2^31.
constexpr int64_t kDeltaSecondsMax = int64_t{1} << 31;

bool isOws(char c) { return c == ' ' || c == '\t'; }

// One directive of a Cache-Control list, with its value unquoted.
struct Directive {
  std::string_view name;
  std::string value;  // owns the bytes because unescaping a quoted-string may change them
  bool has_value = false;
};

// Walks a combined Cache-Control value (RFC 9110 §5.6.1 list of
// `token [ "=" ( token / quoted-string ) ]`). Lenient about whitespace, empty elements and
// garbage after a value: a malformed element is skipped up to the next comma that is not
// inside a quoted-string, so one bad directive never hides the ones after it.
class DirectiveReader {
 public:
  explicit DirectiveReader(std::string_view text) : text_(text) {}

  bool next(Directive& out) {
    while (pos_ < text_.size()) {
      skipSeparators();
      if (pos_ >= text_.size()) {
        return false;
      }
      const size_t name_start = pos_;
      while (pos_ < text_.size() && text_[pos_] != '=' && text_[pos_] != ',' &&
             !isOws(text_[pos_])) {
        ++pos_;
      }
      out.name = text_.substr(name_start, pos_ - name_start);
      out.value.clear();
      out.has_value = false;
      skipOws();
      if (pos_ < text_.size() && text_[pos_] == '=') {
        ++pos_;
        skipOws();
        out.has_value = true;
        readValue(out.value);
      }
      skipToNextElement();
      if (!out.name.empty()) {
        return true;
      }
    }
    return false;
  }

 private:
  void skipOws() {
    while (pos_ < text_.size() && isOws(text_[pos_])) {
      ++pos_;
    }
  }

  void skipSeparators() {
    while (pos_ < text_.size() && (isOws(text_[pos_]) || text_[pos_] == ',')) {
      ++pos_;
    }
  }

  void readValue(std::string& value) {
    if (pos_ < text_.size() && text_[pos_] == '"') {
      ++pos_;
      while (pos_ < text_.size() && text_[pos_] != '"') {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) {
          ++pos_;  // quoted-pair: the next byte is taken literally
        }
        value.push_back(text_[pos_]);
        ++pos_;
      }
      if (pos_ < text_.size()) {
        ++pos_;  // closing quote; an unterminated string simply runs to the end
      }
      return;
    }
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && !isOws(text_[pos_])) {
      ++pos_;
    }
    value.assign(text_.substr(start, pos_ - start));
  }

  // Anything between the end of a directive and the next comma is junk; quoted-strings inside
  // the junk are skipped whole so their commas do not start new elements.
  void skipToNextElement() {
    bool quoted = false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (quoted) {
        if (c == '\\') {
          ++pos_;
        } else if (c == '"') {
          quoted = false;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        return;
      }
      ++pos_;
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// delta-seconds = 1*DIGIT; nullopt when the value is absent or not all digits.
std::optional<int64_t> parseDeltaSeconds(const Directive& d) {
  if (!d.has_value || d.value.empty()) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (const char c : d.value) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    if (v < kDeltaSecondsMax) {
      v = v * 10 + (c - '0');
    }
  }
  return v < kDeltaSecondsMax ? v : kDeltaSecondsMax;
}

// max-age / s-maxage (request and response): an invalid value counts as 0, i.e. stale
// (RFC 9111 §4.2.1), and a second occurrence with another value makes the directive 0 too,
// since the message contradicts itself and a cache must not guess the longer lifetime.
void setFreshnessDirective(std::optional<int64_t>& slot, const Directive& d) {
  const int64_t v = parseDeltaSeconds(d).value_or(0);
  if (!slot) {
    slot = v;
  } else if (*slot != v) {
    slot = 0;
  }
}

// Other delta-seconds directives: an invalid value is ignored, the first valid one wins.
void setFirstDelta(std::optional<int64_t>& slot, const Directive& d) {
  if (slot) {
    return;
  }
  slot = parseDeltaSeconds(d);
}

// no-cache="A, B" / private="A": appends the field names. An empty list ("no-cache=\"\"")
// names no field, which would weaken the directive to nothing; the caller then treats it as
// unqualified (the safe reading).
bool appendFieldList(std::vector<std::string>& fields, const std::string& value) {
  bool any = false;
  std::string_view rest = value;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = http::trimOws(rest.substr(0, comma));
    if (!item.empty()) {
      fields.emplace_back(item);
      any = true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return any;
}

template <typename Fn>
void forEachDirective(const http::HeaderMap& headers, Fn&& fn) {
  const std::optional<std::string> combined = headers.getCombined("cache-control");
  if (!combined) {
    return;
  }
  DirectiveReader reader(*combined);
  Directive d;
  while (reader.next(d)) {
    fn(d);
  }
}

}  // namespace

ResponseCacheControl parseResponseCacheControl(const http::HeaderMap& headers) {
  using http::equalsIgnoreCase;
  ResponseCacheControl cc;
  forEachDirective(headers, [&cc](const Directive& d) {
    const std::string_view n = d.name;
    if (equalsIgnoreCase(n, "max-age")) {
      setFreshnessDirective(cc.max_age, d);
    } else if (equalsIgnoreCase(n, "s-maxage")) {
      setFreshnessDirective(cc.s_maxage, d);
    } else if (equalsIgnoreCase(n, "no-store")) {
      cc.no_store = true;
    } else if (equalsIgnoreCase(n, "no-cache")) {
      if (!d.has_value || !appendFieldList(cc.no_cache_fields, d.value)) {
        cc.no_cache = true;
      }
    } else if (equalsIgnoreCase(n, "private")) {
      if (!d.has_value || !appendFieldList(cc.private_fields, d.value)) {
        cc.is_private = true;
      }
    } else if (equalsIgnoreCase(n, "public")) {
      cc.is_public = true;
    } else if (equalsIgnoreCase(n, "must-revalidate")) {
      cc.must_revalidate = true;
    } else if (equalsIgnoreCase(n, "proxy-revalidate")) {
      cc.proxy_revalidate = true;
    } else if (equalsIgnoreCase(n, "must-understand")) {
      cc.must_understand = true;
    } else if (equalsIgnoreCase(n, "no-transform")) {
      cc.no_transform = true;
    } else if (equalsIgnoreCase(n, "immutable")) {
      cc.immutable = true;
    } else if (equalsIgnoreCase(n, "stale-while-revalidate")) {
      setFirstDelta(cc.stale_while_revalidate, d);
    } else if (equalsIgnoreCase(n, "stale-if-error")) {
      setFirstDelta(cc.stale_if_error, d);
    }
    // Unknown directives are ignored (RFC 9111 §5.2.3).
  });
  return cc;
}

RequestCacheControl parseRequestCacheControl(const http::HeaderMap& headers) {
  using http::equalsIgnoreCase;
  RequestCacheControl cc;
  forEachDirective(headers, [&cc](const Directive& d) {
    const std::string_view n = d.name;
    if (equalsIgnoreCase(n, "max-age")) {
      setFreshnessDirective(cc.max_age, d);
    } else if (equalsIgnoreCase(n, "no-store")) {
      cc.no_store = true;
    } else if (equalsIgnoreCase(n, "no-cache")) {
      cc.no_cache = true;
    } else if (equalsIgnoreCase(n, "only-if-cached")) {
      cc.only_if_cached = true;
    } else if (equalsIgnoreCase(n, "max-stale")) {
      if (!d.has_value) {
        cc.max_stale_any = true;
      } else {
        setFirstDelta(cc.max_stale, d);
      }
    } else if (equalsIgnoreCase(n, "min-fresh")) {
      setFirstDelta(cc.min_fresh, d);
    }
  });
  return cc;
}

}  // namespace cachecar::cache
