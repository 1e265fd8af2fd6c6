// Compiled with -O3 -march=native: the FMA probe must use the widest vectors the CPU has.
#include "peak.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace lca::perf {
namespace {
using Clock = std::chrono::steady_clock;
typedef float v8 __attribute__((vector_size(32)));

/// 12 independent FMA chains per thread hide the FMA latency; the result is kept alive.
double fma_gflops() {
  const long iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    float sink = 0;
    const auto t0 = Clock::now();
#pragma omp parallel reduction(+ : sink)
    {
      v8 acc[12];
      const v8 mul = {1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f,
                      1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f};
      const v8 add = {1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f};
      for (int i = 0; i < 12; ++i)
        acc[i] = add * float(i + omp_get_thread_num());
      for (long it = 0; it < iters; ++it)
        for (int i = 0; i < 12; ++i)
          acc[i] = acc[i] * mul + add;
      for (int i = 0; i < 12; ++i)
        for (int l = 0; l < 8; ++l)
          sink += acc[i][l];
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    volatile float keep = sink;
    (void)keep;
    best = std::max(best, 2.0 * 8 * 12 * iters * omp_get_max_threads() / s / 1e9);
  }
  return best;
}

double triad_gbs() {
  const std::size_t n = 1 << 25; // 3 x 128 MiB: far beyond the caches
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < n; ++i)
      a[i] = b[i] + 3.0f * c[i];
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 3.0 * n * sizeof(float) / s / 1e9);
  }
  return best;
}
} // namespace

Peak measure_peak() {
  return {fma_gflops(), triad_gbs()};
}

} // namespace lca::perf
