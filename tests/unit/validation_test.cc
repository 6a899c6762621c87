// Validation (RFC 9110 §13, RFC 9111 §4.3): stored heads read back from a shared (untrusted)
// store, conditional requests answered from the cache, 304 merging and byte ranges.
#include "cachecar/cache/validation.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cachecar::cache {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

http::HeaderMap headersOf(const Fields& fields) {
  http::HeaderMap map;
  for (const auto& [name, value] : fields) {
    map.add(name, value);
  }
  return map;
}

http::RequestHead getRequest(const Fields& fields) {
  http::RequestHead request;
  request.method = "GET";
  request.target = "/page";
  request.headers = headersOf(fields);
  return request;
}

std::string dump(const http::HeaderMap& headers) {
  std::string out;
  for (const auto& h : headers.all()) {
    out += h.name + ": " + h.value + "\n";
  }
  return out;
}

constexpr std::string_view kModified = "Wed, 01 May 2024 12:00:00 GMT";
constexpr std::string_view kBefore = "Wed, 01 May 2024 11:59:59 GMT";
constexpr std::string_view kAfter = "Wed, 01 May 2024 13:00:00 GMT";

// --- isNotModified --------------------------------------------------------------------------

TEST(IsNotModifiedTest, EntityTagsUseWeakComparison) {
  struct Case {
    std::string if_none_match;
    std::string etag;  // "" = the stored response has none
    bool expected;
  };
  const std::vector<Case> cases = {
      {"\"abc\"", "\"abc\"", true},
      {"W/\"abc\"", "\"abc\"", true},
      {"\"abc\"", "W/\"abc\"", true},
      {"W/\"abc\"", "W/\"abc\"", true},
      {"\"abd\"", "\"abc\"", false},
      {"\"ABC\"", "\"abc\"", false},      // opaque tags are case-sensitive
      {"abc", "\"abc\"", false},          // the quotes are part of the tag
      {"\"x\", \"abc\"", "\"abc\"", true},
      {"\"x\" ,W/\"abc\" ", "\"abc\"", true},
      {"\"x\", \"y\"", "\"abc\"", false},
      {"*", "\"abc\"", true},
      {"*", "", true},                    // any current representation matches "*"
      {"\"abc\"", "", false},
      {"", "\"abc\"", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.if_none_match + " vs " + c.etag);
    Fields stored = {{"Last-Modified", std::string(kModified)}};
    if (!c.etag.empty()) {
      stored.emplace_back("ETag", c.etag);
    }
    EXPECT_EQ(isNotModified(getRequest({{"If-None-Match", c.if_none_match}}), headersOf(stored)),
              c.expected);
  }
}

TEST(IsNotModifiedTest, SeveralIfNoneMatchLinesFormOneList) {
  const http::HeaderMap stored = headersOf({{"ETag", "\"abc\""}});
  EXPECT_TRUE(isNotModified(
      getRequest({{"If-None-Match", "\"x\""}, {"If-None-Match", "\"abc\""}}), stored));
}

TEST(IsNotModifiedTest, IfNoneMatchTakesPrecedenceOverIfModifiedSince) {
  const http::HeaderMap stored =
      headersOf({{"ETag", "\"abc\""}, {"Last-Modified", std::string(kModified)}});
  // The tag does not match: never 304, however recent If-Modified-Since is.
  EXPECT_FALSE(isNotModified(getRequest({{"If-None-Match", "\"other\""},
                                         {"If-Modified-Since", std::string(kAfter)}}),
                             stored));
  // The tag matches: 304 even though If-Modified-Since alone would say "modified".
  EXPECT_TRUE(isNotModified(getRequest({{"If-None-Match", "\"abc\""},
                                        {"If-Modified-Since", std::string(kBefore)}}),
                            stored));
}

TEST(IsNotModifiedTest, IfModifiedSinceAgainstLastModifiedOrDate) {
  struct Case {
    std::string name;
    Fields stored;
    std::string since;
    bool expected;
  };
  const std::vector<Case> cases = {
      {"same instant", {{"Last-Modified", std::string(kModified)}}, std::string(kModified), true},
      {"later", {{"Last-Modified", std::string(kModified)}}, std::string(kAfter), true},
      {"earlier", {{"Last-Modified", std::string(kModified)}}, std::string(kBefore), false},
      {"other date form", {{"Last-Modified", std::string(kModified)}},
       "Wednesday, 01-May-24 12:00:00 GMT", true},
      {"invalid since", {{"Last-Modified", std::string(kModified)}}, "yesterday", false},
      {"invalid last-modified", {{"Last-Modified", "soon"}}, std::string(kAfter), false},
      {"date stands in", {{"Date", std::string(kModified)}}, std::string(kModified), true},
      {"date stands in, earlier", {{"Date", std::string(kModified)}}, std::string(kBefore),
       false},
      {"last-modified before date",
       {{"Date", std::string(kAfter)}, {"Last-Modified", std::string(kModified)}},
       std::string(kModified), true},
      {"no date at all", {{"ETag", "\"abc\""}}, std::string(kAfter), false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(isNotModified(getRequest({{"If-Modified-Since", c.since}}), headersOf(c.stored)),
              c.expected)
        << c.name;
  }
}

TEST(IsNotModifiedTest, UnconditionalRequestIsNeverNotModified) {
  const http::HeaderMap stored =
      headersOf({{"ETag", "\"abc\""}, {"Last-Modified", std::string(kModified)}});
  EXPECT_FALSE(isNotModified(getRequest({}), stored));
  EXPECT_FALSE(isNotModified(getRequest({{"If-Match", "\"abc\""}}), stored));
}

// --- addValidators / hasValidator ------------------------------------------------------------

TEST(AddValidatorsTest, CopiesTheStoredValidators) {
  http::HeaderMap request = headersOf({{"Host", "example"}, {"If-None-Match", "\"client\""}});
  const http::HeaderMap stored =
      headersOf({{"ETag", "W/\"v1\""}, {"Last-Modified", std::string(kModified)}});
  EXPECT_TRUE(hasValidator(stored));
  EXPECT_TRUE(addValidators(request, stored));
  EXPECT_EQ(request.count("If-None-Match"), 1u) << dump(request);
  EXPECT_EQ(request.get("If-None-Match").value_or(""), "W/\"v1\"");
  EXPECT_EQ(request.get("If-Modified-Since").value_or(""), kModified);
  EXPECT_EQ(request.get("Host").value_or(""), "example");

  http::HeaderMap only_etag;
  EXPECT_TRUE(addValidators(only_etag, headersOf({{"ETag", "\"a\""}})));
  EXPECT_FALSE(only_etag.has("If-Modified-Since"));

  http::HeaderMap only_date;
  EXPECT_TRUE(addValidators(only_date, headersOf({{"Last-Modified", std::string(kModified)}})));
  EXPECT_FALSE(only_date.has("If-None-Match"));
  EXPECT_EQ(only_date.get("If-Modified-Since").value_or(""), kModified);
}

TEST(AddValidatorsTest, NothingToAddWithoutAValidator) {
  http::HeaderMap request = headersOf({{"Host", "example"}});
  const http::HeaderMap stored = headersOf({{"Date", std::string(kModified)}});
  EXPECT_FALSE(hasValidator(stored));
  EXPECT_FALSE(addValidators(request, stored));
  EXPECT_EQ(request.size(), 1u) << dump(request);
}

// --- parseStoredHead ------------------------------------------------------------------------

TEST(ParseStoredHeadTest, ReadsAWellFormedHead) {
  const auto head = parseStoredHead(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag:  \"x\" \r\nX-Empty:\r\n"
      "X-Multi: a\r\nx-multi: b\r\n");
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->reason, "OK");
  ASSERT_EQ(head->headers.size(), 5u) << dump(head->headers);
  EXPECT_EQ(head->headers.all()[0].name, "Content-Type");
  EXPECT_EQ(head->headers.get("ETag").value_or(""), "\"x\"");
  EXPECT_EQ(head->headers.get("X-Empty").value_or("absent"), "");
  EXPECT_EQ(head->headers.getCombined("X-Multi").value_or(""), "a, b");

  const auto not_found = parseStoredHead("HTTP/1.1 404 Not Found\r\n");
  ASSERT_TRUE(not_found.has_value());
  EXPECT_EQ(not_found->status, 404);
  EXPECT_EQ(not_found->reason, "Not Found");
  EXPECT_TRUE(not_found->headers.empty());

  const auto no_reason = parseStoredHead("HTTP/1.1 204\r\nX: y\r\n");
  ASSERT_TRUE(no_reason.has_value());
  EXPECT_EQ(no_reason->status, 204);
  EXPECT_EQ(no_reason->headers.get("X").value_or(""), "y");
}

TEST(ParseStoredHeadTest, RejectsHostileBytes) {
  const std::vector<std::string> cases = {
      "",
      "garbage",
      "\r\n",
      "Content-Type: text/plain\r\n",            // no status line
      "HTTP/1.1\r\n",
      "HTTP/1.1 \r\n",
      "HTTP/1.1 20\r\n",
      "HTTP/1.1 2x0 OK\r\n",                     // bad status
      "HTTP/1.1 -20 OK\r\n",
      "HTTP/1.1 +20 OK\r\n",
      "HTTP/1.1 099 OK\r\n",
      "HTTP/1.1 2000 OK\r\n",                    // four digits
      "HTTP/1.1 200OK\r\n",
      "HTTP/9.9 200 OK\r\n",
      "http/1.1 200 OK\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain",   // last line without CRLF
      "HTTP/1.1 200 OK\r\nA: b\r\nC: d",
      "HTTP/1.1 200 OK\r\nno colon here\r\n",
      "HTTP/1.1 200 OK\r\n: no name\r\n",
      "HTTP/1.1 200 OK\r\nA: b\r\n\r\n",         // a blank line is no header line
      "HTTP/1.1 200 OK\nA: b\n",                 // bare LF: "OK\nA: b" is no reason phrase
      "HTTP/1.1 200 OK\rA: b\r\n",
      std::string("HTTP/1.1 200 OK\r\nA: b\r\n") + std::string(1, '\0'),
  };
  for (const std::string& text : cases) {
    const auto head = parseStoredHead(text);
    EXPECT_FALSE(head.has_value()) << "accepted: '" << text << "' as status "
                                   << (head ? head->status : 0) << " reason '"
                                   << (head ? head->reason : "") << "'";
  }
}

std::string headWithHeaders(size_t n) {
  std::string text = "HTTP/1.1 200 OK\r\n";
  for (size_t i = 0; i < n; ++i) {
    text += "X-H" + std::to_string(i) + ": v\r\n";
  }
  return text;
}

TEST(ParseStoredHeadTest, BoundsTheNumberOfHeaders) {
  const auto at_limit = parseStoredHead(headWithHeaders(512));
  ASSERT_TRUE(at_limit.has_value());
  EXPECT_EQ(at_limit->headers.size(), 512u);
  EXPECT_FALSE(parseStoredHead(headWithHeaders(513)).has_value());
  EXPECT_FALSE(parseStoredHead(headWithHeaders(100000)).has_value());
}

// --- mergeNotModified / notModifiedFields ----------------------------------------------------

TEST(MergeNotModifiedTest, UpdatesFieldsButKeepsFraming) {
  http::HeaderMap stored = headersOf({{"Content-Type", "text/html"},
                                      {"Content-Length", "1234"},
                                      {"ETag", "\"v1\""},
                                      {"Cache-Control", "max-age=1"},
                                      {"X-Version", "1"},
                                      {"X-Multi", "old"},
                                      {"Content-Encoding", "gzip"}});
  const http::HeaderMap not_modified = headersOf({{"Content-Length", "0"},
                                                  {"Transfer-Encoding", "chunked"},
                                                  {"Connection", "keep-alive"},
                                                  {"Keep-Alive", "timeout=5"},
                                                  {"Content-Encoding", "identity"},
                                                  {"ETag", "\"v1\""},
                                                  {"cache-control", "max-age=60"},
                                                  {"X-Version", "2"},
                                                  {"X-Multi", "a"},
                                                  {"X-Multi", "b"},
                                                  {"Date", std::string(kAfter)}});
  mergeNotModified(stored, not_modified);
  SCOPED_TRACE(dump(stored));
  EXPECT_EQ(stored.count("Content-Length"), 1u);
  EXPECT_EQ(stored.get("Content-Length").value_or(""), "1234");
  EXPECT_FALSE(stored.has("Transfer-Encoding"));
  EXPECT_FALSE(stored.has("Connection"));
  EXPECT_FALSE(stored.has("Keep-Alive"));
  EXPECT_EQ(stored.getCombined("Content-Encoding").value_or(""), "gzip");
  EXPECT_EQ(stored.getCombined("Cache-Control").value_or(""), "max-age=60");
  EXPECT_EQ(stored.getCombined("X-Version").value_or(""), "2");
  EXPECT_EQ(stored.getCombined("X-Multi").value_or(""), "a, b");
  EXPECT_EQ(stored.getCombined("ETag").value_or(""), "\"v1\"");
  EXPECT_EQ(stored.get("Date").value_or(""), kAfter);
  EXPECT_EQ(stored.get("Content-Type").value_or(""), "text/html");
}

TEST(MergeNotModifiedTest, EmptyNotModifiedChangesNothing) {
  const http::HeaderMap original =
      headersOf({{"Content-Length", "5"}, {"ETag", "\"a\""}, {"X", "1"}});
  http::HeaderMap stored = original;
  mergeNotModified(stored, http::HeaderMap{});
  EXPECT_EQ(dump(stored), dump(original));
}

// --- headResponseDescribesStored -----------------------------------------------------------

TEST(HeadResponseDescribesStoredTest, SameValidatorAndLength) {
  const http::HeaderMap stored =
      headersOf({{"ETag", "\"v1\""}, {"Last-Modified", std::string(kModified)}});
  EXPECT_TRUE(headResponseDescribesStored(stored, 10,
                                          headersOf({{"ETag", "\"v1\""}, {"Content-Length", "10"}})));
  EXPECT_TRUE(headResponseDescribesStored(stored, 10, headersOf({{"ETag", "\"v1\""}})));
  EXPECT_TRUE(headResponseDescribesStored(
      stored, 10, headersOf({{"Last-Modified", std::string(kModified)}})));
  // The ETag decides before Last-Modified.
  EXPECT_FALSE(headResponseDescribesStored(
      stored, 10, headersOf({{"ETag", "\"v2\""}, {"Last-Modified", std::string(kModified)}})));
}

TEST(HeadResponseDescribesStoredTest, AnotherValidatorOrLengthIsAnotherPage) {
  const http::HeaderMap stored = headersOf({{"ETag", "\"v1\""}});
  EXPECT_FALSE(headResponseDescribesStored(stored, 10, headersOf({{"ETag", "\"v2\""}})));
  EXPECT_FALSE(headResponseDescribesStored(stored, 10, headersOf({{"ETag", "W/\"v1\""}})));
  EXPECT_FALSE(headResponseDescribesStored(
      stored, 10, headersOf({{"ETag", "\"v1\""}, {"Content-Length", "11"}})));
  EXPECT_FALSE(headResponseDescribesStored(
      stored, 10, headersOf({{"ETag", "\"v1\""}, {"Content-Length", "10x"}})));
  // The stored response has a validator the HEAD response lacks: nothing proves it the same.
  EXPECT_FALSE(headResponseDescribesStored(stored, 10, headersOf({{"Content-Length", "10"}})));
  EXPECT_FALSE(headResponseDescribesStored(
      headersOf({{"Last-Modified", std::string(kModified)}}), 10,
      headersOf({{"Last-Modified", std::string(kAfter)}})));
}

TEST(HeadResponseDescribesStoredTest, WithoutValidatorsTheLengthDecides) {
  const http::HeaderMap stored = headersOf({{"Content-Type", "text/plain"}});
  EXPECT_TRUE(headResponseDescribesStored(stored, 10, headersOf({{"Content-Length", "10"}})));
  EXPECT_TRUE(headResponseDescribesStored(stored, 10, http::HeaderMap{}));
  EXPECT_FALSE(headResponseDescribesStored(stored, 10, headersOf({{"Content-Length", "9"}})));
  EXPECT_FALSE(headResponseDescribesStored(stored, 10, headersOf({{"ETag", "\"new\""}})));
}

TEST(NotModifiedFieldsTest, CarriesOnlyTheFieldsA304Has) {
  const http::HeaderMap stored = headersOf({{"Content-Type", "text/html"},
                                            {"Content-Length", "1234"},
                                            {"etag", "\"v1\""},
                                            {"Cache-Control", "max-age=60"},
                                            {"Date", std::string(kModified)},
                                            {"Expires", std::string(kAfter)},
                                            {"Vary", "Accept-Language"},
                                            {"Last-Modified", std::string(kBefore)},
                                            {"Content-Location", "/page.de"},
                                            {"Set-Cookie", "a=b"},
                                            {"X-Other", "1"}});
  const http::HeaderMap fields = notModifiedFields(stored);
  SCOPED_TRACE(dump(fields));
  EXPECT_EQ(fields.size(), 7u);
  for (std::string_view name : {"ETag", "Cache-Control", "Date", "Expires", "Vary",
                                "Last-Modified", "Content-Location"}) {
    EXPECT_TRUE(fields.has(name)) << name;
  }
  for (std::string_view name : {"Content-Type", "Content-Length", "Set-Cookie", "X-Other"}) {
    EXPECT_FALSE(fields.has(name)) << name;
  }
  EXPECT_EQ(fields.get("ETag").value_or(""), "\"v1\"");
}

// --- parseRange -----------------------------------------------------------------------------

std::string describe(const RangeRequest& r) {
  switch (r.kind) {
    case RangeRequest::Kind::kNone:
      return "none";
    case RangeRequest::Kind::kSatisfiable:
      return std::to_string(r.first) + "-" + std::to_string(r.last);
    case RangeRequest::Kind::kUnsatisfiable:
      return "unsatisfiable";
    case RangeRequest::Kind::kUnsupported:
      return "unsupported";
  }
  return "?";
}

TEST(ParseRangeTest, Table) {
  struct Case {
    std::string range;  // "" = no Range field
    uint64_t size;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"", 10240, "none"},
      {"bytes=0-99", 10240, "0-99"},
      {"bytes=100-199", 10240, "100-199"},
      {"bytes=0-0", 10240, "0-0"},
      {"bytes=10239-10239", 10240, "10239-10239"},
      {"bytes=100-", 10240, "100-10239"},
      {"bytes=0-", 10240, "0-10239"},
      {"bytes=-10", 10240, "10230-10239"},
      {"bytes=-10240", 10240, "0-10239"},
      {"bytes=-20000", 10240, "0-10239"},       // longer suffix than the body: all of it
      {"bytes=0-20000", 10240, "0-10239"},      // last beyond the end: clamped
      {"bytes=10000-99999", 10240, "10000-10239"},
      {" bytes=0-99 ", 10240, "0-99"},
      {"bytes=10240-", 10240, "unsatisfiable"},  // first at the end
      {"bytes=10240-10300", 10240, "unsatisfiable"},
      {"bytes=99999-", 10240, "unsatisfiable"},
      {"bytes=-0", 10240, "unsatisfiable"},
      {"bytes=0-", 0, "unsatisfiable"},
      {"bytes=-5", 0, "unsatisfiable"},
      {"bytes=0-9,20-29", 10240, "unsupported"},  // several ranges: the app decides
      {"bytes=0-9, 20-29", 10240, "unsupported"},
      {"items=0-9", 10240, "unsupported"},
      {"bytes 0-9", 10240, "unsupported"},
      {"bytes=", 10240, "unsupported"},
      {"bytes=-", 10240, "unsupported"},
      {"bytes=abc", 10240, "unsupported"},
      {"bytes=a-9", 10240, "unsupported"},
      {"bytes=0-x", 10240, "unsupported"},
      {"bytes=5-2", 10240, "unsupported"},  // invalid: ignored, never a wrong 206
      {"bytes=1-2-3", 10240, "unsupported"},
      {"bytes=+1-2", 10240, "unsupported"},
  };
  for (const Case& c : cases) {
    Fields fields;
    if (!c.range.empty()) {
      fields.emplace_back("Range", c.range);
    }
    EXPECT_EQ(describe(parseRange(getRequest(fields), c.size)), c.expected)
        << "'" << c.range << "' over " << c.size;
  }
}

}  // namespace
}  // namespace cachecar::cache
