// StoredBytes: ordinary and sealed-file values, the seals the kernel enforces, the descriptor
// budget and the descriptor's lifetime.
#include "cachecar/storage/stored_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

namespace cachecar::storage {
namespace {

std::string sample(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    out[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  }
  return out;
}

std::shared_ptr<SealedFileBudget> budget(uint64_t files) {
  return std::make_shared<SealedFileBudget>(files);
}

bool isOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

TEST(StoredBytesTest, OrdinaryBytesHaveNoFile) {
  Blob blob = makeBlob("page bytes");
  EXPECT_EQ(blob->view(), "page bytes");
  EXPECT_EQ(blob->size(), 10u);
  EXPECT_EQ(blob->sealedFile(), -1);
}

TEST(StoredBytesTest, SealedCopyHoldsTheSameBytesInAFile) {
  const std::string bytes = sample(300000);
  Blob sealed = StoredBytes::sealedCopy(bytes, budget(4));
  ASSERT_NE(sealed, nullptr);
  EXPECT_EQ(sealed->view(), bytes);  // through the read-only mapping
  ASSERT_GE(sealed->sealedFile(), 0);

  struct stat st {};
  ASSERT_EQ(::fstat(sealed->sealedFile(), &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), bytes.size());
  std::string read_back(bytes.size(), '\0');
  ASSERT_EQ(::pread(sealed->sealedFile(), read_back.data(), read_back.size(), 0),
            static_cast<ssize_t>(bytes.size()));
  EXPECT_EQ(read_back, bytes);  // what sendfile() sends
}

TEST(StoredBytesTest, TheKernelRefusesToChangeASealedFile) {
  Blob sealed = StoredBytes::sealedCopy(sample(70000), budget(1));
  ASSERT_NE(sealed, nullptr);
  const int fd = sealed->sealedFile();
  const int seals = ::fcntl(fd, F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_EQ(::pwrite(fd, "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(fd, 10), -1);
  EXPECT_EQ(::ftruncate(fd, 1 << 20), -1);
  EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, 0), -1);  // F_SEAL_SEAL: the seals stay
  EXPECT_EQ(sealed->view(), sample(70000));
}

TEST(StoredBytesTest, TheBudgetCapsOpenFilesAndComesBackWhenOneCloses) {
  auto files = budget(2);
  Blob first = StoredBytes::sealedCopy(sample(5000), files);
  Blob second = StoredBytes::sealedCopy(sample(6000), files);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(files->open(), 2u);
  EXPECT_EQ(StoredBytes::sealedCopy(sample(7000), files), nullptr);  // over the cap

  const int fd = first->sealedFile();
  first.reset();  // the last reference: file closed, lease returned
  EXPECT_FALSE(isOpen(fd));
  EXPECT_EQ(files->open(), 1u);
  Blob third = StoredBytes::sealedCopy(sample(7000), files);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->view(), sample(7000));
}

TEST(StoredBytesTest, AReferenceKeepsTheFileOpen) {
  auto files = budget(1);
  Blob stored = StoredBytes::sealedCopy(sample(9000), files);
  ASSERT_NE(stored, nullptr);
  Blob in_flight = stored;  // a response still sending it
  const int fd = stored->sealedFile();
  stored.reset();
  EXPECT_TRUE(isOpen(fd));
  EXPECT_EQ(in_flight->view(), sample(9000));
  in_flight.reset();
  EXPECT_FALSE(isOpen(fd));
  EXPECT_EQ(files->open(), 0u);
}

TEST(StoredBytesTest, NothingToSealIsRefused) {
  auto files = budget(1);
  EXPECT_EQ(StoredBytes::sealedCopy("", files), nullptr);
  EXPECT_EQ(StoredBytes::sealedCopy("x", budget(0)), nullptr);
  EXPECT_EQ(files->open(), 0u);
}

}  // namespace
}  // namespace cachecar::storage
