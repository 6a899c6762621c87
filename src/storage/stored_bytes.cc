#include "cachecar/storage/stored_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace cachecar::storage {

namespace {

// Owns a descriptor until released (the error paths of sealedCopy).
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::unique_ptr<SealedFileBudget::Lease> SealedFileBudget::tryLease(
    const std::shared_ptr<SealedFileBudget>& budget) {
  uint64_t open = budget->open_.load(std::memory_order_relaxed);
  do {
    if (open >= budget->max_files_) {
      return nullptr;
    }
  } while (!budget->open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
  return std::make_unique<Lease>(budget);
}

StoredBytes::StoredBytes(std::string bytes)
    : heap_(std::move(bytes)), data_(heap_.data()), size_(heap_.size()) {}

StoredBytes::~StoredBytes() {
  if (mapping_ != nullptr) {
    ::munmap(mapping_, size_);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::shared_ptr<const StoredBytes> StoredBytes::sealedCopy(
    std::string_view bytes, const std::shared_ptr<SealedFileBudget>& budget) {
  if (bytes.empty()) {
    return nullptr;  // nothing to map
  }
  auto lease = SealedFileBudget::tryLease(budget);
  if (!lease) {
    return nullptr;
  }
  FileDescriptor file(::memfd_create("cachecar-entry", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (file.get() < 0 || !writeAll(file.get(), bytes)) {
    return nullptr;
  }
  // No writes, no truncation, no growth, no changing the seals: from here on the kernel keeps
  // these bytes as they are for as long as anyone (a socket's queue included) holds them.
  constexpr int kSeals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  if (::fcntl(file.get(), F_ADD_SEALS, kSeals) != 0) {
    return nullptr;
  }
  void* mapping = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, file.get(), 0);
  if (mapping == MAP_FAILED) {
    return nullptr;
  }
  std::shared_ptr<StoredBytes> sealed(new StoredBytes());
  sealed->mapping_ = mapping;
  sealed->data_ = static_cast<const char*>(mapping);
  sealed->size_ = bytes.size();
  sealed->fd_ = file.release();
  sealed->lease_ = std::move(lease);
  return sealed;
}

}  // namespace cachecar::storage
