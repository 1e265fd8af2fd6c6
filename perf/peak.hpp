#pragma once
// Measured machine limits, so that benchmark fractions of peak are honest.
namespace lca::perf {
struct Peak {
  double fp32_gflops = 0; ///< FMA throughput, all OpenMP threads
  double stream_gbs = 0;  ///< STREAM triad bandwidth, all OpenMP threads
};
/// Runs the two probes for about a second each.
Peak measure_peak();
} // namespace lca::perf
