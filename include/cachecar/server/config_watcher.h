#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "cachecar/event/event_loop.h"

namespace cachecar::server {

// Notices that a configuration file changed, including the way Kubernetes updates a mounted
// ConfigMap: the mounted path is a chain of symlinks (cachecar.yaml -> ..data/cachecar.yaml,
// ..data -> ..2026_11_22_06_51_38.1234) and an update swaps the ..data link to a new directory,
// so the file behind the path is a new inode while the path itself never changes. Polling
// stat() (which follows the links) sees that; inotify on the path would not, and polling also
// survives the watched directory being replaced. A stat() per interval costs nothing.
class ConfigWatcher {
 public:
  ConfigWatcher(event::EventLoop& loop, std::string path, std::chrono::milliseconds interval,
                std::function<void()> on_change);

  // Takes the first snapshot and starts polling.
  void start();

  // What identifies one version of a file (a missing file is a version too).
  struct Identity {
    bool exists = false;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  static Identity identityOf(const std::string& path);

 private:
  void poll();

  std::string path_;
  std::chrono::milliseconds interval_;
  std::function<void()> on_change_;
  Identity last_;
  event::Timer timer_;
};

}  // namespace cachecar::server
