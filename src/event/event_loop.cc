#include "cachecar/event/event_loop.h"

#include <event2/thread.h>

#include <cstdlib>
#include <iostream>

namespace cachecar::event {

namespace {

// libevent needs its locking callbacks installed before any event_base exists, so that
// event_active() from another thread (post()) is safe. Idempotent.
void useThreadsOnce() {
  static const int result = evthread_use_pthreads();
  if (result != 0) {
    std::cerr << "fatal: libevent has no pthreads support\n";
    std::abort();
  }
}

}  // namespace

EventLoop::EventLoop() : loop_thread_(std::this_thread::get_id()) {
  useThreadsOnce();
  base_.reset(event_base_new());
  if (!base_) {
    std::cerr << "fatal: event_base_new failed\n";
    std::abort();
  }
  post_event_.reset(event_new(base_.get(), -1, 0, &EventLoop::onPosted, this));
}

EventLoop::~EventLoop() {
  // Run what is still queued so posted callbacks (and the callbacks they promise) fire once.
  drainPosted();
  post_event_.reset();
}

void EventLoop::run() {
  loop_thread_ = std::this_thread::get_id();
  event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY);
}

void EventLoop::stop() { event_base_loopbreak(base_.get()); }

void EventLoop::post(std::function<void()> fn) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    first = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (first) {
    event_active(post_event_.get(), EV_READ, 0);
  }
}

void EventLoop::onPosted(evutil_socket_t, short, void* arg) {
  static_cast<EventLoop*>(arg)->drainPosted();
}

void EventLoop::drainPosted() {
  for (;;) {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(post_mutex_);
      batch.swap(posted_);
    }
    if (batch.empty()) {
      return;
    }
    for (auto& fn : batch) {
      fn();
    }
  }
}

Timer::Timer(EventLoop& loop, std::function<void()> on_fire)
    : on_fire_(std::move(on_fire)), event_(evtimer_new(loop.base(), &Timer::onFire, this)) {}

void Timer::arm(std::chrono::milliseconds after) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(after.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((after.count() % 1000) * 1000);
  evtimer_add(event_.get(), &tv);
}

void Timer::cancel() { evtimer_del(event_.get()); }

bool Timer::armed() const { return evtimer_pending(event_.get(), nullptr) != 0; }

void Timer::onFire(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Timer*>(arg);
  // Copy: the callback may destroy this Timer.
  auto fn = self->on_fire_;
  fn();
}

}  // namespace cachecar::event
