#include "cachecar/server/upstream_probe.h"

#include <event2/bufferevent.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "cachecar/upstream/upstream_pool.h"

namespace cachecar::server {

struct TcpProber::Probe {
  Probe(TcpProber& prober, std::function<void(Status)> on_done)
      : owner(&prober),
        done(std::move(on_done)),
        timer(prober.loop_, [this] { owner->finish(self, Error{"connect timed out"}); }) {}

  static void onEvent(bufferevent*, short what, void* arg) {
    auto* probe = static_cast<Probe*>(arg);
    if ((what & BEV_EVENT_CONNECTED) != 0) {
      probe->owner->finish(probe->self, Ok{});
      return;
    }
    const int error = EVUTIL_SOCKET_ERROR();
    probe->owner->finish(probe->self, Error{error != 0 ? std::strerror(error) : "connect failed"});
  }

  TcpProber* owner = nullptr;
  std::list<std::unique_ptr<Probe>>::iterator self;
  std::function<void(Status)> done;
  event::Timer timer;
  upstream::BufferEventPtr bev;
};

TcpProber::TcpProber(event::EventLoop& loop) : loop_(loop) {}

TcpProber::~TcpProber() = default;

void TcpProber::probe(const sockaddr_storage& address, socklen_t length,
                      std::chrono::milliseconds timeout, std::function<void(Status)> done) {
  probes_.push_front(std::make_unique<Probe>(*this, std::move(done)));
  Probe& probe = *probes_.front();
  probe.self = probes_.begin();
  probe.bev.reset(bufferevent_socket_new(loop_.base(), -1, BEV_OPT_CLOSE_ON_FREE));
  if (!probe.bev) {
    finish(probe.self, Error{"cannot create a socket"});
    return;
  }
  bufferevent_setcb(probe.bev.get(), nullptr, nullptr, &Probe::onEvent, &probe);
  probe.timer.arm(timeout);
  if (bufferevent_socket_connect(probe.bev.get(), reinterpret_cast<const sockaddr*>(&address),
                                 static_cast<int>(length)) != 0) {
    finish(probe.self, Error{std::string("connect failed: ") + std::strerror(errno)});
  }
}

void TcpProber::finish(std::list<std::unique_ptr<Probe>>::iterator probe, Status status) {
  // The socket and the timer go first (libevent allows freeing them from their own
  // callbacks); the answer last, so a callback that probes again starts clean.
  std::function<void(Status)> done = std::move((*probe)->done);
  probes_.erase(probe);
  done(std::move(status));
}

}  // namespace cachecar::server
