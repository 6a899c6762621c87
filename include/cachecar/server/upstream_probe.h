#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <list>
#include <memory>

#include "cachecar/common/result.h"
#include "cachecar/event/event_loop.h"

namespace cachecar::server {

// Readiness: does the app accept a TCP connection? Each probe is one non-blocking connect on
// the loop, answered with Ok, or an Error saying why, within its timeout. Nothing is sent:
// the app sees a connection that closes at once.
class TcpProber {
 public:
  explicit TcpProber(event::EventLoop& loop);
  // Probes still in flight are abandoned: their callbacks never run.
  ~TcpProber();
  TcpProber(const TcpProber&) = delete;
  TcpProber& operator=(const TcpProber&) = delete;

  void probe(const sockaddr_storage& address, socklen_t length, std::chrono::milliseconds timeout,
             std::function<void(Status)> done);

 private:
  struct Probe;
  void finish(std::list<std::unique_ptr<Probe>>::iterator probe, Status status);

  event::EventLoop& loop_;
  std::list<std::unique_ptr<Probe>> probes_;
};

}  // namespace cachecar::server
