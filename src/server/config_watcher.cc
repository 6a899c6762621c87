#include "cachecar/server/config_watcher.h"

#include <sys/stat.h>

namespace cachecar::server {

namespace {

int64_t nanosOf(const timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

}  // namespace

ConfigWatcher::ConfigWatcher(event::EventLoop& loop, std::string path,
                             std::chrono::milliseconds interval, std::function<void()> on_change)
    : path_(std::move(path)),
      interval_(interval),
      on_change_(std::move(on_change)),
      timer_(loop, [this] { poll(); }) {}

void ConfigWatcher::start() {
  last_ = identityOf(path_);
  timer_.arm(interval_);
}

ConfigWatcher::Identity ConfigWatcher::identityOf(const std::string& path) {
  struct stat st {};
  Identity id;
  if (::stat(path.c_str(), &st) != 0) {
    return id;
  }
  id.exists = true;
  id.device = st.st_dev;
  id.inode = st.st_ino;
  id.size = st.st_size;
  id.mtime_ns = nanosOf(st.st_mtim);
  id.ctime_ns = nanosOf(st.st_ctim);
  return id;
}

void ConfigWatcher::poll() {
  const Identity now = identityOf(path_);
  timer_.arm(interval_);
  // A file that vanished is not a new configuration (the old one stays in force); its
  // reappearance is.
  if (now == last_ || !now.exists) {
    last_ = now;
    return;
  }
  last_ = now;
  on_change_();
}

}  // namespace cachecar::server
