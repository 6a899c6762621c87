#include "cachecar/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace cachecar::metrics {
namespace {

// Misuse of the registry is a bug in the caller's setup code, found at startup: say what it
// was and stop, rather than serve metrics that silently miss a family.
[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "cachecar metrics: %s\n", message.c_str());
  std::abort();
}

bool isMetricName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) {
      return false;
    }
  }
  return true;
}

bool isLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") {  // "__" names are reserved for Prometheus
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) {
      return false;
    }
  }
  return true;
}

// A bound in whole nanoseconds such that an observation of d ns belongs in the bucket exactly
// when d <= bound_ns. 0.0025 * 1e9 is not exactly 2500000 in binary floating point, so a
// product within a rounding error of an integer is taken as that integer; otherwise floor.
int64_t boundNanos(double seconds) {
  const double ns = seconds * 1e9;
  if (ns >= static_cast<double>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  }
  if (ns < 0) {
    return -1;  // no duration is negative once observe() clamps it
  }
  const double rounded = std::round(ns);
  return static_cast<int64_t>(std::fabs(ns - rounded) < 1e-3 ? rounded : std::floor(ns));
}

void appendEscaped(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Counter

Counter::Counter(size_t slots)
    : slots_(std::max<size_t>(slots, 1)), cells_(std::make_unique<Cell[]>(slots_)) {}

uint64_t Counter::value() const noexcept {
  uint64_t total = 0;
  for (size_t i = 0; i < slots_; ++i) {
    total += cells_[i].value.load(std::memory_order_relaxed);
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Histogram

Histogram::Histogram(size_t slots, std::vector<double> upper_bounds_seconds)
    : slots_(std::max<size_t>(slots, 1)), bounds_(std::move(upper_bounds_seconds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) {
      fail("histogram bounds must be finite (the +Inf bucket is implicit)");
    }
    if (i > 0 && !(bounds_[i - 1] < bounds_[i])) {
      fail("histogram bounds must be strictly ascending");
    }
    bounds_ns_.push_back(boundNanos(bounds_[i]));
  }
  const size_t cells = bounds_.size() + 2;  // the buckets, +Inf, the sum
  lines_per_slot_ = (cells + Line::kCells - 1) / Line::kCells;
  lines_ = std::make_unique<Line[]>(slots_ * lines_per_slot_);
}

void Histogram::observe(size_t slot, std::chrono::nanoseconds d) noexcept {
  const size_t s = slot < slots_ ? slot : slots_ - 1;
  const int64_t ns = std::max<int64_t>(d.count(), 0);
  // The first bound >= ns; past the last bound is the +Inf bucket (index bounds_.size()).
  const auto bucket = static_cast<size_t>(
      std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) - bounds_ns_.begin());
  cell(s, bucket).fetch_add(1, std::memory_order_relaxed);
  cell(s, bounds_.size() + 1).fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot out;
  out.bounds = bounds_;
  out.cumulative.reserve(bounds_.size());
  uint64_t running = 0;
  for (size_t b = 0; b <= bounds_.size(); ++b) {
    for (size_t s = 0; s < slots_; ++s) {
      running += cell(s, b).load(std::memory_order_relaxed);
    }
    if (b < bounds_.size()) {
      out.cumulative.push_back(running);
    }
  }
  out.count = running;
  uint64_t sum_ns = 0;
  for (size_t s = 0; s < slots_; ++s) {
    sum_ns += cell(s, bounds_.size() + 1).load(std::memory_order_relaxed);
  }
  out.sum_seconds = static_cast<double>(sum_ns) / 1e9;
  return out;
}

std::vector<double> latencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// ---------------------------------------------------------------------------------------------
// TextWriter

std::string TextWriter::formatNumber(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  // Integral values print as integers (no "1e+06", no "3.0"): below 2^53 every integer is
  // exact, so the text reads back as the same number.
  if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(value));
    return std::string(buf, ec == std::errc() ? end : buf);
  }
  // The shortest text that parses back to the same double, in %g style like Go's
  // FormatFloat(v, 'g', -1, 64), which Prometheus's own clients use: "0.0005" (so a query for
  // le="0.0005" matches), "5e-05" below 1e-4.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general);
  return std::string(buf, ec == std::errc() ? end : buf);
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  appendEscaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void TextWriter::labels(const std::vector<std::string_view>& label_names,
                        const Labels& label_values, std::string_view extra_name,
                        std::string_view extra_value) {
  if (label_names.size() != label_values.size()) {
    fail("label names and values differ in number");
  }
  if (label_names.empty() && extra_name.empty()) {
    return;
  }
  out_ += '{';
  bool first = true;
  const auto one = [&](std::string_view name, std::string_view value) {
    if (!first) {
      out_ += ',';
    }
    first = false;
    out_ += name;
    out_ += "=\"";
    appendEscaped(out_, value, true);
    out_ += '"';
  };
  for (size_t i = 0; i < label_names.size(); ++i) {
    one(label_names[i], label_values[i]);
  }
  if (!extra_name.empty()) {
    one(extra_name, extra_value);
  }
  out_ += '}';
}

void TextWriter::sample(std::string_view name, const std::vector<std::string_view>& label_names,
                        const Labels& label_values, double value) {
  out_ += name;
  labels(label_names, label_values);
  out_ += ' ';
  out_ += formatNumber(value);
  out_ += '\n';
}

void TextWriter::sample(std::string_view name, const std::vector<std::string_view>& label_names,
                        const Labels& label_values, uint64_t value) {
  out_ += name;
  labels(label_names, label_values);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void TextWriter::histogram(std::string_view name, const std::vector<std::string_view>& label_names,
                           const Labels& label_values, const Histogram::Snapshot& snapshot) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < snapshot.bounds.size() && i < snapshot.cumulative.size(); ++i) {
    out_ += bucket;
    labels(label_names, label_values, "le", formatNumber(snapshot.bounds[i]));
    out_ += ' ';
    out_ += std::to_string(snapshot.cumulative[i]);
    out_ += '\n';
  }
  out_ += bucket;
  labels(label_names, label_values, "le", "+Inf");
  out_ += ' ';
  out_ += std::to_string(snapshot.count);
  out_ += '\n';
  sample(std::string(name) + "_sum", label_names, label_values, snapshot.sum_seconds);
  sample(std::string(name) + "_count", label_names, label_values, snapshot.count);
}

std::string TextWriter::take() {
  std::string out = std::move(out_);
  out_.clear();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Registry

struct Registry::Family {
  Type type;
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<std::string_view> label_views;  // into label_names, which never change
  std::vector<double> bounds;
  // Sorted by label values, which is the render order. Series are heap-allocated and never
  // erased, so references handed out stay valid for the registry's lifetime.
  std::map<Labels, std::unique_ptr<Counter>> counters;
  std::map<Labels, std::unique_ptr<Gauge>> gauges;
  std::map<Labels, std::unique_ptr<Histogram>> histograms;
};

std::string_view Registry::typeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Registry::Registry(size_t slots) : slots_(std::max<size_t>(slots, 1)) {}

Registry::~Registry() = default;

void Registry::declareCounter(std::string name, std::string help,
                              std::vector<std::string> label_names) {
  declare(Type::kCounter, std::move(name), std::move(help), std::move(label_names), {});
}

void Registry::declareGauge(std::string name, std::string help,
                            std::vector<std::string> label_names) {
  declare(Type::kGauge, std::move(name), std::move(help), std::move(label_names), {});
}

void Registry::declareHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::vector<double> upper_bounds_seconds) {
  declare(Type::kHistogram, std::move(name), std::move(help), std::move(label_names),
          std::move(upper_bounds_seconds));
}

void Registry::declare(Type type, std::string name, std::string help,
                       std::vector<std::string> label_names, std::vector<double> bounds) {
  if (!isMetricName(name)) {
    fail("invalid metric name '" + name + "'");
  }
  constexpr std::string_view kTotal = "_total";
  if (type == Type::kCounter &&
      (name.size() < kTotal.size() ||
       name.compare(name.size() - kTotal.size(), kTotal.size(), kTotal) != 0)) {
    fail("counter '" + name + "' must end in _total");
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (!isLabelName(label_names[i])) {
      fail("invalid label name '" + label_names[i] + "' in '" + name + "'");
    }
    if (type == Type::kHistogram && label_names[i] == "le") {
      fail("histogram '" + name + "' cannot have a label named le");
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == label_names[i]) {
        fail("label '" + label_names[i] + "' twice in '" + name + "'");
      }
    }
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      fail("histogram '" + name + "' needs finite, strictly ascending bounds");
    }
  }

  std::lock_guard lock(mutex_);
  if (const auto it = by_name_.find(name); it != by_name_.end()) {
    const Family& existing = *it->second;
    if (existing.type != type || existing.label_names != label_names || existing.bounds != bounds) {
      fail("metric '" + name + "' declared twice, differently");
    }
    return;
  }
  auto family = std::make_unique<Family>();
  family->type = type;
  family->name = std::move(name);
  family->help = std::move(help);
  family->label_names = std::move(label_names);
  for (const std::string& label : family->label_names) {
    family->label_views.emplace_back(label);
  }
  family->bounds = std::move(bounds);
  by_name_.emplace(family->name, family.get());
  families_.push_back(std::move(family));
}

bool Registry::isDeclared(std::string_view family) const {
  std::lock_guard lock(mutex_);
  return by_name_.find(family) != by_name_.end();
}

Registry::Family& Registry::find(std::string_view name, Type type, const Labels& labels) {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    fail("metric '" + std::string(name) + "' is not declared");
  }
  Family& family = *it->second;
  if (family.type != type) {
    fail("metric '" + std::string(name) + "' is a " + std::string(typeName(family.type)) +
         ", used as a " + std::string(typeName(type)));
  }
  if (labels.size() != family.label_names.size()) {
    fail("metric '" + std::string(name) + "' has " + std::to_string(family.label_names.size()) +
         " labels, given " + std::to_string(labels.size()));
  }
  return family;
}

Counter& Registry::counter(std::string_view family, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& series = find(family, Type::kCounter, labels).counters;
  auto it = series.find(labels);
  if (it == series.end()) {
    it = series.emplace(labels, std::make_unique<Counter>(slots_)).first;
  }
  return *it->second;
}

Gauge& Registry::gauge(std::string_view family, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& series = find(family, Type::kGauge, labels).gauges;
  auto it = series.find(labels);
  if (it == series.end()) {
    it = series.emplace(labels, std::make_unique<Gauge>()).first;
  }
  return *it->second;
}

Histogram& Registry::histogram(std::string_view family, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = find(family, Type::kHistogram, labels);
  auto it = f.histograms.find(labels);
  if (it == f.histograms.end()) {
    it = f.histograms.emplace(labels, std::make_unique<Histogram>(slots_, f.bounds)).first;
  }
  return *it->second;
}

void Registry::render(TextWriter& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& family : families_) {
    out.family(family->name, typeName(family->type), family->help);
    for (const auto& [labels, counter] : family->counters) {
      out.sample(family->name, family->label_views, labels, counter->value());
    }
    for (const auto& [labels, gauge] : family->gauges) {
      out.sample(family->name, family->label_views, labels, gauge->value());
    }
    for (const auto& [labels, histogram] : family->histograms) {
      out.histogram(family->name, family->label_views, labels, histogram->snapshot());
    }
  }
}

std::string Registry::render() const {
  TextWriter out;
  render(out);
  return out.take();
}

}  // namespace cachecar::metrics
