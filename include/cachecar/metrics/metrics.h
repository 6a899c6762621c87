#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

// Counters, gauges and histograms for GET /metrics, in the Prometheus text exposition format
// 0.0.4. No prometheus-cpp package exists for our toolchain, and we need only this much.
//
// Hot path vs. setup: a series is looked up by name and labels once (under the registry's
// mutex) and the caller keeps the returned reference; counting through it is a relaxed atomic
// add on the worker's own cache line. Nothing here allocates or locks per count.
namespace cachecar::metrics {

using Labels = std::vector<std::string>;  // label VALUES, in the order of the family's names

// The size of the cache line that two workers' counts must not share.
inline constexpr size_t kCacheLine = 64;

// One counter series sharded by "slot" (a worker's index): each slot is its own cache line, so
// workers counting on the request path never share a line; a read sums the slots.
class Counter {
 public:
  explicit Counter(size_t slots);
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // slot >= slots() counts on the last slot (still correct, only no longer contention-free).
  void add(size_t slot, uint64_t n = 1) noexcept {
    cells_[slot < slots_ ? slot : slots_ - 1].value.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value() const noexcept;
  size_t slots() const noexcept { return slots_; }

 private:
  struct alignas(kCacheLine) Cell {
    std::atomic<uint64_t> value{0};
  };
  size_t slots_;
  std::unique_ptr<Cell[]> cells_;
};

// A value that goes up and down (set by whoever knows it, e.g. at scrape time). Not sharded:
// a gauge is written rarely and last-write-wins, so slots would mean nothing.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double delta) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed upper bounds in seconds; sharded like Counter. Each slot holds one (non-cumulative)
// count per bucket plus the +Inf overflow and the sum in whole nanoseconds (exact; no atomic
// floating-point adds). Buckets are made cumulative on output only.
class Histogram {
 public:
  // Ascending, finite, no +Inf (that bucket is implicit). An observation equal to a bound goes
  // in that bound's bucket (Prometheus "le" = less than or equal).
  Histogram(size_t slots, std::vector<double> upper_bounds_seconds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Negative durations count as zero.
  void observe(size_t slot, std::chrono::nanoseconds d) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound (the +Inf bucket is `count`)
    uint64_t count = 0;
    double sum_seconds = 0.0;
  };
  // Taken while others may observe: count is the sum of the buckets read, so the cumulative
  // counts never exceed it (the sum may lag the counts by an observation in flight).
  Snapshot snapshot() const;

  size_t slots() const noexcept { return slots_; }
  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  struct alignas(kCacheLine) Line {
    static constexpr size_t kCells = kCacheLine / sizeof(std::atomic<uint64_t>);
    std::atomic<uint64_t> cells[kCells];  // zero: C++20 atomics value-initialize
  };
  std::atomic<uint64_t>& cell(size_t slot, size_t index) const noexcept {
    const size_t flat = slot * lines_per_slot_ * Line::kCells + index;
    return lines_[flat / Line::kCells].cells[flat % Line::kCells];
  }

  size_t slots_;
  std::vector<double> bounds_;
  std::vector<int64_t> bounds_ns_;  // what observe() compares against
  size_t lines_per_slot_;           // cells per slot: bounds + 1 (+Inf) + 1 (sum), rounded up
  std::unique_ptr<Line[]> lines_;
};

// 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 (seconds): from a memory
// hit (well under a millisecond) to a slow origin.
std::vector<double> latencyBuckets();

// Writes the text exposition format. Label values are escaped (\\, \", \n), HELP text too (\\,
// \n). Numbers are printed so Prometheus parses them: integral values without exponent or
// fraction, others in the shortest form that reads back exactly, NaN, +Inf and -Inf by name.
class TextWriter {
 public:
  // "# HELP name help\n# TYPE name type\n"; type is "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  // `name{a="x",b="y"} value\n` (no braces without labels). The two overloads are distinct
  // on purpose: pass a uint64_t or a double, not an int literal (that would be ambiguous).
  void sample(std::string_view name, const std::vector<std::string_view>& label_names,
              const Labels& label_values, double value);
  void sample(std::string_view name, const std::vector<std::string_view>& label_names,
              const Labels& label_values, uint64_t value);
  // name_bucket{...,le="..."} lines (cumulative, ending with le="+Inf"), name_sum, name_count.
  void histogram(std::string_view name, const std::vector<std::string_view>& label_names,
                 const Labels& label_values, const Histogram::Snapshot& snapshot);

  const std::string& text() const { return out_; }
  std::string take();

  // The number as it appears in the output (also used for "le" values).
  static std::string formatNumber(double value);

 private:
  void labels(const std::vector<std::string_view>& label_names, const Labels& label_values,
              std::string_view extra_name = {}, std::string_view extra_value = {});

  std::string out_;
};

// Process-wide registry (owned by main and passed by reference: no global state). Families
// are declared once (name, help, label names); series are created on first use and live as
// long as the registry, so callers keep the returned reference (looked up once at setup,
// never per request). Thread-safe: lookups and render() take a mutex; counting through a kept
// reference takes none.
//
// Misuse is a programming error and aborts with a message on stderr: an invalid metric or
// label name, a counter whose name does not end in "_total", an undeclared family, a family
// used as the wrong type, a wrong number of label values, or declaring a name again with a
// different type, label names or buckets. Declaring the same family again identically is a
// no-op (the first help text stays), so independent setup code may each declare what it uses.
class Registry {
 public:
  explicit Registry(size_t slots);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  size_t slots() const { return slots_; }

  void declareCounter(std::string name, std::string help, std::vector<std::string> label_names);
  void declareGauge(std::string name, std::string help, std::vector<std::string> label_names);
  void declareHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                        std::vector<double> upper_bounds_seconds = latencyBuckets());
  bool isDeclared(std::string_view family) const;

  // The family must be declared with that type and labels.size() must equal its label count.
  Counter& counter(std::string_view family, const Labels& labels);
  Gauge& gauge(std::string_view family, const Labels& labels);
  Histogram& histogram(std::string_view family, const Labels& labels);

  // Every declared family, in declaration order, series sorted by labels. A declared family
  // with no series yet still gets its HELP/TYPE lines.
  void render(TextWriter& out) const;
  std::string render() const;

 private:
  enum class Type : uint8_t { kCounter, kGauge, kHistogram };
  struct Family;

  static std::string_view typeName(Type type);
  void declare(Type type, std::string name, std::string help, std::vector<std::string> label_names,
               std::vector<double> bounds);
  Family& find(std::string_view name, Type type, const Labels& labels);

  size_t slots_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;  // declaration order
  std::map<std::string, Family*, std::less<>> by_name_;
};

}  // namespace cachecar::metrics
