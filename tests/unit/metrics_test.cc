#include "cachecar/metrics/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace cachecar::metrics {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(CounterTest, ValueSumsTheSlots) {
  Counter counter(4);
  EXPECT_EQ(counter.slots(), 4u);
  EXPECT_EQ(counter.value(), 0u);
  counter.add(0);
  counter.add(3, 41);
  EXPECT_EQ(counter.value(), 42u);
}

TEST(CounterTest, SlotPastTheEndCountsOnTheLastSlot) {
  Counter counter(2);
  counter.add(2, 5);
  counter.add(1000, 5);
  counter.add(std::numeric_limits<size_t>::max());
  EXPECT_EQ(counter.value(), 11u);
}

TEST(CounterTest, ZeroSlotsStillCounts) {
  Counter counter(0);
  EXPECT_EQ(counter.slots(), 1u);
  counter.add(7, 3);
  EXPECT_EQ(counter.value(), 3u);
}

TEST(CounterTest, ShardedCountingFromSeveralThreadsSumsExactly) {
  constexpr size_t kThreads = 4;
  constexpr uint64_t kPerThread = 200000;
  Counter counter(kThreads);
  // Two threads share the last slot (through an out-of-range slot), so the shared-line path
  // is exercised as well as the private one.
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counter, t] {
      const size_t slot = t == kThreads - 1 ? kThreads + 10 : t;
      for (uint64_t i = 0; i < kPerThread; ++i) {
        counter.add(slot);
      }
    });
  }
  std::thread reader([&counter] {
    uint64_t last = 0;
    for (int i = 0; i < 1000; ++i) {
      const uint64_t now = counter.value();
      ASSERT_GE(now, last);  // a sum of monotonic cells never goes back
      last = now;
    }
  });
  for (auto& t : threads) {
    t.join();
  }
  reader.join();
  EXPECT_EQ(counter.value(), kThreads * kPerThread);
}

TEST(HistogramTest, ObservationEqualToABoundGoesInThatBucket) {
  Histogram h(1, {0.001, 0.0025, 0.01});
  h.observe(0, microseconds(1000));     // == 0.001
  h.observe(0, nanoseconds(1000001));   // just over 0.001
  h.observe(0, microseconds(2500));     // == 0.0025 (not exact in binary floating point)
  h.observe(0, milliseconds(10));       // == 0.01
  h.observe(0, nanoseconds(10000001));  // just over the last bound: +Inf only
  h.observe(0, nanoseconds(0));         // first bucket
  const Histogram::Snapshot s = h.snapshot();
  ASSERT_EQ(s.bounds, (std::vector<double>{0.001, 0.0025, 0.01}));
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 5}));
  EXPECT_EQ(s.count, 6u);
  const double expected_sum = (1000000 + 1000001 + 2500000 + 10000000 + 10000001) / 1e9;
  EXPECT_DOUBLE_EQ(s.sum_seconds, expected_sum);
}

TEST(HistogramTest, EveryDefaultBoundIsInclusive) {
  const std::vector<double> bounds = latencyBuckets();
  Histogram h(1, bounds);
  for (double b : bounds) {
    h.observe(0, nanoseconds(std::llround(b * 1e9)));
  }
  const Histogram::Snapshot s = h.snapshot();
  ASSERT_EQ(s.cumulative.size(), bounds.size());
  for (size_t i = 0; i < bounds.size(); ++i) {
    EXPECT_EQ(s.cumulative[i], i + 1) << "bound " << bounds[i];
  }
  EXPECT_EQ(s.count, bounds.size());
}

TEST(HistogramTest, NegativeDurationsCountAsZero) {
  Histogram h(1, {0.001});
  h.observe(0, nanoseconds(-5));
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{1}));
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.sum_seconds, 0.0);
}

TEST(HistogramTest, SlotsSumAndManyBucketsSpanSeveralLines) {
  // 20 bounds: 22 cells per slot, three cache lines; checks the slot/line arithmetic.
  std::vector<double> bounds;
  for (int i = 1; i <= 20; ++i) {
    bounds.push_back(i * 0.001);
  }
  constexpr size_t kSlots = 3;
  Histogram h(kSlots, bounds);
  for (size_t slot = 0; slot < kSlots; ++slot) {
    for (int i = 1; i <= 21; ++i) {
      h.observe(slot, milliseconds(i));  // one per bucket, 21 ms lands in +Inf
    }
  }
  h.observe(99, milliseconds(1));  // past the last slot: counted on slot 2
  const Histogram::Snapshot s = h.snapshot();
  ASSERT_EQ(s.cumulative.size(), 20u);
  EXPECT_EQ(s.cumulative[0], kSlots + 1);
  for (size_t i = 1; i < 20; ++i) {
    EXPECT_EQ(s.cumulative[i], kSlots * (i + 1) + 1) << i;
  }
  EXPECT_EQ(s.count, kSlots * 21 + 1);
  EXPECT_DOUBLE_EQ(s.sum_seconds, (kSlots * (21 * 22 / 2) + 1) / 1000.0);
}

TEST(HistogramTest, ConcurrentObservationsAreAllCounted) {
  Histogram h(2, latencyBuckets());
  constexpr int kPerThread = 100000;
  std::thread a([&h] {
    for (int i = 0; i < kPerThread; ++i) {
      h.observe(0, microseconds(100));
    }
  });
  std::thread b([&h] {
    for (int i = 0; i < kPerThread; ++i) {
      h.observe(1, milliseconds(20));
    }
  });
  a.join();
  b.join();
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 2u * kPerThread);
  EXPECT_EQ(s.cumulative.front(), static_cast<uint64_t>(kPerThread));  // le=0.0005
  EXPECT_EQ(s.cumulative[4], static_cast<uint64_t>(kPerThread));       // le=0.01
  EXPECT_EQ(s.cumulative[5], 2u * kPerThread);                         // le=0.025
  EXPECT_NEAR(s.sum_seconds, kPerThread * (0.0001 + 0.02), 1e-6);
}

TEST(LatencyBucketsTest, AreTheDocumentedBounds) {
  EXPECT_EQ(latencyBuckets(), (std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1, 0.25, 0.5, 1, 2.5, 5, 10}));
}

TEST(TextWriterTest, FormatsNumbersSoPrometheusParsesThem) {
  EXPECT_EQ(TextWriter::formatNumber(0), "0");
  EXPECT_EQ(TextWriter::formatNumber(-0.0), "0");
  EXPECT_EQ(TextWriter::formatNumber(3), "3");
  EXPECT_EQ(TextWriter::formatNumber(1e6), "1000000");  // not 1e+06
  EXPECT_EQ(TextWriter::formatNumber(-42), "-42");
  EXPECT_EQ(TextWriter::formatNumber(2.5), "2.5");
  EXPECT_EQ(TextWriter::formatNumber(0.0005), "0.0005");
  EXPECT_EQ(TextWriter::formatNumber(0.1), "0.1");
  EXPECT_EQ(TextWriter::formatNumber(0.00005), "5e-05");
  EXPECT_EQ(TextWriter::formatNumber(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(TextWriter::formatNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(TextWriter::formatNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(TextWriter::formatNumber(std::nan("")), "NaN");
  // Beyond 2^53 a double is printed in its shortest exact form (exponent allowed).
  EXPECT_EQ(std::stod(TextWriter::formatNumber(1e300)), 1e300);
}

TEST(TextWriterTest, SamplesAndEscaping) {
  TextWriter w;
  w.family("x_total", "counter", "Help with \\ and\nnewline \"quoted\".");
  w.sample("x_total", {}, {}, uint64_t{18446744073709551615ull});
  w.sample("x_total", {"a", "b"}, {"q\"uote", "back\\slash\nnl"}, uint64_t{7});
  w.family("g", "gauge", "A gauge.");
  w.sample("g", {"k"}, {""}, 1.5);
  EXPECT_EQ(w.text(),
            "# HELP x_total Help with \\\\ and\\nnewline \"quoted\".\n"
            "# TYPE x_total counter\n"
            "x_total 18446744073709551615\n"
            "x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 7\n"
            "# HELP g A gauge.\n"
            "# TYPE g gauge\n"
            "g{k=\"\"} 1.5\n");
  const std::string taken = w.take();
  EXPECT_FALSE(taken.empty());
  EXPECT_TRUE(w.text().empty());
}

TEST(TextWriterTest, HistogramLines) {
  Histogram h(1, {0.5, 1});
  h.observe(0, milliseconds(250));
  h.observe(0, milliseconds(1000));
  h.observe(0, milliseconds(3000));
  TextWriter w;
  w.histogram("lat_seconds", {"op"}, {"get"}, h.snapshot());
  EXPECT_EQ(w.text(),
            "lat_seconds_bucket{op=\"get\",le=\"0.5\"} 1\n"
            "lat_seconds_bucket{op=\"get\",le=\"1\"} 2\n"
            "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{op=\"get\"} 4.25\n"
            "lat_seconds_count{op=\"get\"} 3\n");
  TextWriter unlabelled;
  unlabelled.histogram("h", {}, {}, Histogram(1, {}).snapshot());
  EXPECT_EQ(unlabelled.text(),
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(RegistryTest, RendersFamiliesInDeclarationOrderAndSeriesSortedByLabels) {
  Registry registry(2);
  EXPECT_EQ(registry.slots(), 2u);
  registry.declareCounter("zz_requests_total", "Requests.", {"method", "path"});
  registry.declareHistogram("aa_latency_seconds", "Latency.", {"op"}, {0.01, 0.1});
  registry.declareCounter("mm_empty_total", "Declared, never used.", {"x"});
  registry.declareGauge("bb_entries", "Entries.", {});

  // Created out of order; rendered sorted by label values.
  Counter& post = registry.counter("zz_requests_total", {"POST", "/a"});
  Counter& get_b = registry.counter("zz_requests_total", {"GET", "/b\"\\\n"});
  Counter& get_a = registry.counter("zz_requests_total", {"GET", "/a"});
  post.add(0, 3);
  get_b.add(1);
  get_a.add(0, 1000000);
  get_a.add(1, 1);
  // The same labels give back the same series.
  EXPECT_EQ(&registry.counter("zz_requests_total", {"GET", "/a"}), &get_a);

  Histogram& set = registry.histogram("aa_latency_seconds", {"set"});
  Histogram& get = registry.histogram("aa_latency_seconds", {"get"});
  get.observe(0, milliseconds(10));  // == le 0.01
  get.observe(1, milliseconds(50));
  set.observe(0, milliseconds(500));
  EXPECT_EQ(&registry.histogram("aa_latency_seconds", {"get"}), &get);

  registry.gauge("bb_entries", {}).set(12);

  EXPECT_EQ(registry.render(),
            "# HELP zz_requests_total Requests.\n"
            "# TYPE zz_requests_total counter\n"
            "zz_requests_total{method=\"GET\",path=\"/a\"} 1000001\n"
            "zz_requests_total{method=\"GET\",path=\"/b\\\"\\\\\\n\"} 1\n"
            "zz_requests_total{method=\"POST\",path=\"/a\"} 3\n"
            "# HELP aa_latency_seconds Latency.\n"
            "# TYPE aa_latency_seconds histogram\n"
            "aa_latency_seconds_bucket{op=\"get\",le=\"0.01\"} 1\n"
            "aa_latency_seconds_bucket{op=\"get\",le=\"0.1\"} 2\n"
            "aa_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 2\n"
            "aa_latency_seconds_sum{op=\"get\"} 0.06\n"
            "aa_latency_seconds_count{op=\"get\"} 2\n"
            "aa_latency_seconds_bucket{op=\"set\",le=\"0.01\"} 0\n"
            "aa_latency_seconds_bucket{op=\"set\",le=\"0.1\"} 0\n"
            "aa_latency_seconds_bucket{op=\"set\",le=\"+Inf\"} 1\n"
            "aa_latency_seconds_sum{op=\"set\"} 0.5\n"
            "aa_latency_seconds_count{op=\"set\"} 1\n"
            "# HELP mm_empty_total Declared, never used.\n"
            "# TYPE mm_empty_total counter\n"
            "# HELP bb_entries Entries.\n"
            "# TYPE bb_entries gauge\n"
            "bb_entries 12\n");
}

TEST(RegistryTest, DeclaredButEmptyFamilyRendersHelpAndType) {
  Registry registry(1);
  registry.declareHistogram("cachecar_x_seconds", "Nothing yet.", {"a"});
  registry.declareCounter("cachecar_y_total", "Nothing either.", {});
  TextWriter w;
  registry.render(w);
  EXPECT_EQ(w.text(),
            "# HELP cachecar_x_seconds Nothing yet.\n"
            "# TYPE cachecar_x_seconds histogram\n"
            "# HELP cachecar_y_total Nothing either.\n"
            "# TYPE cachecar_y_total counter\n");
}

TEST(RegistryTest, HistogramsUseTheFamilyBucketsAndDefaultToLatencyBuckets) {
  Registry registry(1);
  registry.declareHistogram("d_seconds", "Default buckets.", {});
  EXPECT_EQ(registry.histogram("d_seconds", {}).bounds(), latencyBuckets());
  registry.declareHistogram("c_seconds", "Custom.", {}, {1, 2});
  EXPECT_EQ(registry.histogram("c_seconds", {}).bounds(), (std::vector<double>{1, 2}));
}

TEST(RegistryTest, IdenticalRedeclarationIsANoOp) {
  Registry registry(1);
  registry.declareCounter("a_total", "First help.", {"x"});
  registry.counter("a_total", {"1"}).add(0, 5);
  registry.declareCounter("a_total", "Second help.", {"x"});
  EXPECT_TRUE(registry.isDeclared("a_total"));
  EXPECT_FALSE(registry.isDeclared("b_total"));
  EXPECT_EQ(registry.render(),
            "# HELP a_total First help.\n"
            "# TYPE a_total counter\n"
            "a_total{x=\"1\"} 5\n");
}

TEST(RegistryTest, SeriesReferencesSurviveLaterInsertionsAndCountFromThreads) {
  Registry registry(4);
  registry.declareCounter("hits_total", "Hits.", {"worker"});
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&registry, t] {
      // Setup-time lookups (locked) race with other threads' counting (lock-free).
      Counter& mine = registry.counter("hits_total", {std::to_string(t)});
      Counter& shared = registry.counter("hits_total", {"all"});
      for (int i = 0; i < 50000; ++i) {
        mine.add(t);
        shared.add(t);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(registry.counter("hits_total", {"all"}).value(), 200000u);
  for (size_t t = 0; t < 4; ++t) {
    EXPECT_EQ(registry.counter("hits_total", {std::to_string(t)}).value(), 50000u);
  }
}

using RegistryDeathTest = ::testing::Test;

TEST(RegistryDeathTest, MisuseAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareCounter("requests", "No _total suffix.", {});
      },
      "must end in _total");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("nope_total", {});
      },
      "not declared");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareCounter("a_total", "A.", {"x", "y"});
        r.counter("a_total", {"only one"});
      },
      "has 2 labels, given 1");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareCounter("a_total", "A.", {});
        r.histogram("a_total", {});
      },
      "is a counter, used as a histogram");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareCounter("a_total", "A.", {"x"});
        r.declareCounter("a_total", "A.", {"y"});
      },
      "declared twice, differently");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareHistogram("h_seconds", "H.", {}, {1, 0.5});
      },
      "ascending");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareGauge("bad-name", "G.", {});
      },
      "invalid metric name");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.declareHistogram("h_seconds", "H.", {"le"});
      },
      "label named le");
}

}  // namespace
}  // namespace cachecar::metrics
