#include "cachecar/server/stored_response_writer.h"

#include <charconv>

#include "cachecar/cache/validation.h"
#include "cachecar/http/serializer.h"

namespace cachecar::server {

namespace {

void appendDecimal(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  (void)ec;
  out.append(buf, end);
}

// evbuffer_add_reference cleanup: drops the reference that kept the stored bytes alive while
// the kernel sent them.
void releaseBlob(const void*, size_t, void* extra) { delete static_cast<storage::Blob*>(extra); }

// evbuffer_file_segment cleanup: the same, once the segment's last chain is sent or dropped.
void releaseSegmentBlob(const evbuffer_file_segment*, int, void* extra) {
  delete static_cast<storage::Blob*>(extra);
}

// A body in a sealed file goes out as a file segment: written to a socket, libevent sends it
// with sendfile(), by reference to the file's pages. One segment per response, used by this
// loop's buffer only, so it needs no lock.
bool addBodyFromSealedFile(evbuffer* out, const storage::Blob& blob, std::string_view body) {
  const auto offset = static_cast<ev_off_t>(body.data() - blob->data());
  evbuffer_file_segment* segment = evbuffer_file_segment_new(
      blob->sealedFile(), offset, static_cast<ev_off_t>(body.size()), EVBUF_FS_DISABLE_LOCKING);
  if (segment == nullptr) {
    return false;
  }
  evbuffer_file_segment_add_cleanup_cb(segment, &releaseSegmentBlob, new storage::Blob(blob));
  const bool added =
      evbuffer_add_file_segment(out, segment, 0, static_cast<ev_off_t>(body.size())) == 0;
  evbuffer_file_segment_free(segment);  // the buffer's chain holds its own reference
  return added;
}

void addBodyReference(evbuffer* out, const storage::Blob& blob, std::string_view body) {
  if (body.empty()) {
    return;
  }
  if (blob->sealedFile() >= 0 && addBodyFromSealedFile(out, blob, body)) {
    return;
  }
  evbuffer_add_reference(out, body.data(), body.size(), &releaseBlob, new storage::Blob(blob));
}

// The per-delivery fields and the blank line that ends the head.
void closeHead(std::string& head, const DeliveryFields& fields) {
  head.append(fields.extra);
  head.append("Age: ");
  appendDecimal(head, static_cast<uint64_t>(fields.age_seconds < 0 ? 0 : fields.age_seconds));
  head.append("\r\nX-Cache: ");
  head.append(fields.x_cache);
  head.append("\r\nCache-Status: ");
  head.append(fields.cache_status);
  head.append("\r\nVia: 1.1 cachecar\r\n");
  if (fields.close) {
    head.append("Connection: close\r\n");
  } else if (fields.http10_keep_alive) {
    head.append("Connection: keep-alive\r\n");
  }
  head.append("\r\n");
}

bool wantsMoreThanPlain(const http::RequestHead& request) {
  return request.headers.has("If-None-Match") || request.headers.has("If-Modified-Since") ||
         (request.headers.has("Range") && !request.headers.has("If-Range"));
}

}  // namespace

int writeStoredResponse(evbuffer* out, const StoredResponse& stored,
                        const http::RequestHead& request, const DeliveryFields& fields) {
  const bool head_only = request.method == "HEAD";
  const cache::EntryView& view = stored.view;
  std::optional<http::ResponseHead> parsed;
  if (wantsMoreThanPlain(request)) {
    parsed = cache::parseStoredHead(view.head);
  }
  if (parsed && cache::isNotModified(request, parsed->headers)) {
    http::ResponseHead not_modified;
    not_modified.status = 304;
    not_modified.headers = cache::notModifiedFields(parsed->headers);
    std::string head;
    http::appendResponseHeadOpen(head, not_modified);
    closeHead(head, fields);
    evbuffer_add(out, head.data(), head.size());
    return 304;
  }
  if (parsed && parsed->status == 200 && request.headers.has("Range")) {
    const cache::RangeRequest range = cache::parseRange(request, view.body.size());
    if (range.kind == cache::RangeRequest::Kind::kSatisfiable ||
        range.kind == cache::RangeRequest::Kind::kUnsatisfiable) {
      const bool ok = range.kind == cache::RangeRequest::Kind::kSatisfiable;
      http::ResponseHead partial;
      partial.status = ok ? 206 : 416;
      partial.headers = parsed->headers;
      partial.headers.remove("Content-Length");
      std::string content_range = "bytes ";
      if (ok) {
        appendDecimal(content_range, range.first);
        content_range.push_back('-');
        appendDecimal(content_range, range.last);
      } else {
        content_range.push_back('*');
      }
      content_range.push_back('/');
      appendDecimal(content_range, view.body.size());
      partial.headers.set("Content-Range", content_range);
      const uint64_t length = ok ? range.last - range.first + 1 : 0;
      std::string head;
      http::appendResponseHeadOpen(head, partial);
      head.append("Content-Length: ");
      appendDecimal(head, length);
      head.append("\r\n");
      closeHead(head, fields);
      evbuffer_add(out, head.data(), head.size());
      if (ok && !head_only) {
        addBodyReference(out, stored.blob, view.body.substr(range.first, length));
      }
      return partial.status;
    }
  }
  // The common case: the stored head as it is, plus the per-delivery fields.
  std::string head;
  head.reserve(view.head.size() + 128 + fields.cache_status.size());
  head.append(view.head);
  closeHead(head, fields);
  evbuffer_add(out, head.data(), head.size());
  if (!head_only) {
    addBodyReference(out, stored.blob, view.body);
  }
  return 200;
}

}  // namespace cachecar::server
