#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cachecar::storage {

// Caps how many sealed files (each one open descriptor) the values of one store hold at once,
// counting values still being sent after the store dropped them.
class SealedFileBudget {
 public:
  explicit SealedFileBudget(uint64_t max_files) : max_files_(max_files) {}

  // A sealed file's claim on the budget; gives it back when destroyed.
  class Lease {
   public:
    explicit Lease(std::shared_ptr<SealedFileBudget> budget) : budget_(std::move(budget)) {}
    ~Lease() { budget_->open_.fetch_sub(1, std::memory_order_relaxed); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

   private:
    std::shared_ptr<SealedFileBudget> budget_;
  };

  // A lease, or nullptr when max_files are already open.
  static std::unique_ptr<Lease> tryLease(const std::shared_ptr<SealedFileBudget>& budget);

  uint64_t open() const { return open_.load(std::memory_order_relaxed); }
  uint64_t maxFiles() const { return max_files_; }

 private:
  const uint64_t max_files_;
  std::atomic<uint64_t> open_{0};
};

// The immutable bytes of a stored value, shared by reference between the store and every
// response that sends them.
//
// Large values of the in-process store live in a sealed in-memory file (memfd; its size and
// contents sealed, mapped read-only) instead of ordinary memory. Same bytes, same cost, but
// the kernel can then send them to a socket by reference (sendfile): a hit's body is copied
// neither in user space nor into the socket buffer, and the reader of the socket copies from
// the same pages every time. The seals make the kernel itself guarantee that the bytes a
// socket still references never change, also after the store has dropped the value.
class StoredBytes {
 public:
  explicit StoredBytes(std::string bytes);
  ~StoredBytes();
  StoredBytes(const StoredBytes&) = delete;
  StoredBytes& operator=(const StoredBytes&) = delete;

  // A copy of `bytes` in a sealed file, or nullptr when the system refuses one (no memfd, no
  // descriptor or mapping left, or the budget is spent): the caller keeps the ordinary copy.
  static std::shared_ptr<const StoredBytes> sealedCopy(
      std::string_view bytes, const std::shared_ptr<SealedFileBudget>& budget);

  std::string_view view() const { return {data_, size_}; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  // The sealed file holding these bytes from offset 0, or -1 when they are in ordinary memory.
  int sealedFile() const { return fd_; }

 private:
  StoredBytes() = default;

  std::string heap_;     // ordinary memory (empty when sealed)
  const char* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;          // the sealed file, owned
  void* mapping_ = nullptr;  // its read-only mapping, owned
  std::unique_ptr<SealedFileBudget::Lease> lease_;
};

// A stored value: opaque bytes (an encoded cache entry), immutable and shared by reference, so
// a hit hands the same bytes to every client without copying them.
using Blob = std::shared_ptr<const StoredBytes>;

inline Blob makeBlob(std::string bytes) {
  return std::make_shared<const StoredBytes>(std::move(bytes));
}

}  // namespace cachecar::storage
