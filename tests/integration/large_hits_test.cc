// Large hits from the memory cache go out of sealed in-memory files with sendfile(): the real
// binary in front of a real origin, checked byte for byte, for whole bodies, HEAD, ranges and
// pipelining, and for a hit still being sent when its entry is replaced. The proxy's open
// descriptors (/proc/PID/fd) show which entries live in sealed files.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support/proxy_fixture.h"

namespace cachecar::testing {
namespace {

using namespace std::chrono_literals;

// How many of the process's descriptors are sealed entry files.
int sealedFilesOf(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* fds = ::opendir(dir.c_str());
  if (fds == nullptr) {
    return -1;
  }
  int count = 0;
  while (dirent* entry = ::readdir(fds)) {
    char target[256];
    const std::string link = dir + "/" + entry->d_name;
    const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
    const std::string_view name(target, n > 0 ? static_cast<size_t>(n) : 0);
    if (name.starts_with("/memfd:cachecar-entry")) {
      ++count;
    }
  }
  ::closedir(fds);
  return count;
}

OriginResponse binary(std::string body) {
  OriginResponse r;
  r.body = std::move(body);
  r.headers = {{"Content-Type", "application/octet-stream"}};
  r.piece_size = 256 << 10;
  return r;
}

class LargeHitsTest : public ProxyFixture {
 protected:
  int sealedFiles() const { return sealedFilesOf(proxy_->pid()); }

  // Polls (bounded) until the proxy holds `want` sealed files. The client may read the last
  // byte of a miss before the proxy has finished storing it, so counts are always awaited.
  bool waitForSealedFiles(int want) const {
    for (int i = 0; i < 100; ++i) {
      if (sealedFiles() == want) {
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

TEST_F(LargeHitsTest, LargeHitIsServedWholeFromASealedFile) {
  const std::string body = patternBody(1u << 20, 3);
  origin_.setResponse("/static/large.bin", binary(body));
  origin_.setResponse("/static/small.txt", OriginResponse::text("small page"));
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(sealedFiles(), 0);

  HttpResponse miss = get("/static/large.bin");
  ASSERT_EQ(miss.status, 200) << miss.error;
  EXPECT_EQ(miss.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(fnv1a(miss.body), fnv1a(body));
  EXPECT_TRUE(waitForSealedFiles(1)) << sealedFiles();  // the stored entry

  HttpClient client(port());
  for (int i = 0; i < 3; ++i) {
    HttpResponse hit = client.get("/static/large.bin");
    ASSERT_EQ(hit.status, 200) << hit.error;
    EXPECT_EQ(hit.headerOr("X-Cache"), "HIT");
    EXPECT_EQ(hit.headerOr("Content-Length"), std::to_string(body.size()));
    EXPECT_EQ(hit.body.size(), body.size());
    EXPECT_EQ(fnv1a(hit.body), fnv1a(body));
  }
  // Small entries stay in ordinary memory.
  EXPECT_EQ(get("/static/small.txt").status, 200);
  HttpResponse small = client.get("/static/small.txt");
  EXPECT_EQ(small.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(small.body, "small page");
  EXPECT_TRUE(waitForSealedFiles(1)) << sealedFiles();

  HttpResponse head = client.head("/static/large.bin");
  ASSERT_EQ(head.status, 200) << head.error;
  EXPECT_EQ(head.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(head.headerOr("Content-Length"), std::to_string(body.size()));
  EXPECT_TRUE(head.body.empty());
  // The connection is still in step after the HEAD.
  EXPECT_EQ(fnv1a(client.get("/static/large.bin").body), fnv1a(body));
  EXPECT_EQ(origin_.requestCount("/static/large.bin"), 1);
}

TEST_F(LargeHitsTest, RangesOfASealedEntryAreTheRightBytes) {
  const std::string body = patternBody(900000, 5);
  origin_.setResponse("/static/range.bin", binary(body));
  ASSERT_NO_FATAL_FAILURE(startProxy());
  ASSERT_EQ(get("/static/range.bin").status, 200);
  ASSERT_TRUE(waitForSealedFiles(1)) << sealedFiles();

  HttpClient client(port());
  HttpResponse middle = client.get("/static/range.bin", {"Range: bytes=700000-700099"});
  ASSERT_EQ(middle.status, 206) << middle.describe();
  EXPECT_EQ(middle.headerOr("Content-Range"), "bytes 700000-700099/900000");
  EXPECT_EQ(middle.body, body.substr(700000, 100));

  HttpResponse tail = client.get("/static/range.bin", {"Range: bytes=-70000"});
  ASSERT_EQ(tail.status, 206) << tail.describe();
  EXPECT_EQ(tail.body, body.substr(body.size() - 70000));

  HttpResponse whole = client.get("/static/range.bin");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(fnv1a(whole.body), fnv1a(body));
}

TEST_F(LargeHitsTest, PipelinedLargeAndSmallHitsArriveInOrder) {
  const std::string first = patternBody(300000, 11);
  const std::string second = patternBody(500000, 12);
  origin_.setResponse("/static/first.bin", binary(first));
  origin_.setResponse("/static/second.bin", binary(second));
  origin_.setResponse("/static/note.txt", OriginResponse::text("note"));
  ASSERT_NO_FATAL_FAILURE(startProxy());
  for (const char* path : {"/static/first.bin", "/static/second.bin", "/static/note.txt"}) {
    ASSERT_EQ(get(path).status, 200) << path;
  }
  ASSERT_TRUE(waitForSealedFiles(2)) << sealedFiles();

  HttpClient client(port());
  ASSERT_TRUE(client.sendRaw(HttpClient::buildRequest("GET", "/static/first.bin") +
                             HttpClient::buildRequest("GET", "/static/note.txt") +
                             HttpClient::buildRequest("GET", "/static/second.bin") +
                             HttpClient::buildRequest("GET", "/static/first.bin")));
  HttpResponse r1 = client.readResponse();
  HttpResponse r2 = client.readResponse();
  HttpResponse r3 = client.readResponse();
  HttpResponse r4 = client.readResponse();
  for (const HttpResponse* r : {&r1, &r2, &r3, &r4}) {
    ASSERT_EQ(r->status, 200) << r->describe();
    EXPECT_EQ(r->headerOr("X-Cache"), "HIT");
  }
  EXPECT_EQ(fnv1a(r1.body), fnv1a(first));
  EXPECT_EQ(r2.body, "note");
  EXPECT_EQ(fnv1a(r3.body), fnv1a(second));
  EXPECT_EQ(fnv1a(r4.body), fnv1a(first));
}

// The entry a slow client is still receiving expires and is replaced by a new version of the
// page: that client still gets every byte of the version it asked for, others get the new
// one, and the old file closes once the last byte is sent.
TEST_F(LargeHitsTest, AHitBeingSentOutlivesItsEntry) {
  const std::string old_body = patternBody(8u << 20, 21);
  const std::string new_body = patternBody(8u << 20, 22);
  origin_.setResponse("/short/page.bin", binary(old_body));
  std::string config = basicConfig("max_object_bytes: 16MiB");
  const std::string routes = "routes:\n";
  config.insert(config.find(routes) + routes.size(), "  - {match: /short/, ttl: 1s}\n");
  ASSERT_NO_FATAL_FAILURE(startProxy(config));
  ASSERT_EQ(get("/short/page.bin").status, 200);
  ASSERT_TRUE(waitForSealedFiles(1)) << sealedFiles();

  // A client asks for the hit and reads nothing: most of 8 MiB waits in the proxy.
  HttpClient slow(port(), 10s);
  ASSERT_TRUE(slow.sendRaw(HttpClient::buildRequest("GET", "/short/page.bin")));
  std::this_thread::sleep_for(1200ms);  // meanwhile the entry expires
  // The new version states its own freshness: the route's 1s, counted from a Date with
  // one-second precision, could expire it again before the checks below are done.
  OriginResponse replacement = binary(new_body);
  replacement.headers.emplace_back("Cache-Control", "max-age=300");
  origin_.setResponse("/short/page.bin", replacement);
  HttpResponse fresh = get("/short/page.bin");
  ASSERT_EQ(fresh.status, 200) << fresh.error;
  EXPECT_EQ(fresh.headerOr("X-Cache"), "MISS");
  EXPECT_EQ(fnv1a(fresh.body), fnv1a(new_body));
  // The new entry, and the old one still being sent.
  EXPECT_TRUE(waitForSealedFiles(2)) << sealedFiles();

  HttpResponse old = slow.readResponse();
  ASSERT_EQ(old.status, 200) << old.error;
  EXPECT_EQ(old.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(old.body.size(), old_body.size());
  EXPECT_EQ(fnv1a(old.body), fnv1a(old_body));
  EXPECT_TRUE(waitForSealedFiles(1)) << sealedFiles() << " sealed files";

  HttpResponse hit = get("/short/page.bin");
  EXPECT_EQ(hit.headerOr("X-Cache"), "HIT");
  EXPECT_EQ(fnv1a(hit.body), fnv1a(new_body));
}

// Sealed entries and connections share the descriptor limit: a soft limit below the hard one
// (1024 is common) is raised at startup.
TEST_F(LargeHitsTest, TheProxyRaisesItsOpenFileLimitToTheHardLimit) {
  rlimit own{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &own), 0);
  if (own.rlim_max <= 64) {
    GTEST_SKIP() << "hard limit too low to lower the soft one";
  }
  origin_.setResponse("/static/after", OriginResponse::text("after"));
  rlimit lowered = own;
  lowered.rlim_cur = 64;  // inherited by the proxy
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  startProxy();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &own), 0);
  ASSERT_FALSE(HasFatalFailure());

  // "Max open files            <soft>               <hard>               files"
  std::ifstream limits("/proc/" + std::to_string(proxy_->pid()) + "/limits");
  std::string soft;
  std::string hard;
  for (std::string line; std::getline(limits, line);) {
    if (line.starts_with("Max open files")) {
      std::istringstream fields(line.substr(std::string_view("Max open files").size()));
      fields >> soft >> hard;
    }
  }
  EXPECT_EQ(soft, hard);
  EXPECT_EQ(hard, own.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(own.rlim_max));
  EXPECT_EQ(get("/static/after").status, 200);
}

}  // namespace
}  // namespace cachecar::testing
