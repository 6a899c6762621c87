#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cachecar::event {

struct EventBaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};
struct EventDeleter {
  void operator()(struct event* e) const { event_free(e); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<struct event, EventDeleter>;

// One libevent event_base, driven by one thread. Everything attached to a loop (connections,
// timers, Redis clients) is used from that thread only; other threads talk to it via post().
class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  event_base* base() const { return base_.get(); }

  // Runs until stop() (or until no events remain).
  void run();
  // Thread-safe: makes run() return after the current callbacks.
  void stop();
  // Thread-safe: runs `fn` on the loop thread soon (never inside this call).
  void post(std::function<void()> fn);
  bool isInLoopThread() const { return std::this_thread::get_id() == loop_thread_; }
  // Runs everything posted so far (and what that posts), on the calling thread. For shutdown,
  // when the loop no longer runs but its owners must still see their callbacks fire.
  void drainPosted();

 private:
  static void onPosted(evutil_socket_t, short, void* arg);

  EventBasePtr base_;
  EventPtr post_event_;
  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;
  std::thread::id loop_thread_;
};

// A one-shot or re-armable timer on a loop; cancelled when destroyed.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> on_fire);
  ~Timer() = default;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm(std::chrono::milliseconds after);
  void cancel();
  bool armed() const;

 private:
  static void onFire(evutil_socket_t, short, void* arg);

  std::function<void()> on_fire_;
  EventPtr event_;
};

}  // namespace cachecar::event
