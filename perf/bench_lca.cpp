// LCA throughput benchmark (issue workloads W64/W128/W256 and Fashion-MNIST): image-iterations
// per second end to end, and per kernel time, GFLOP/s and fraction of the measured peak.
// Writes a JSON record with the run's context. A benchmark, not a test: run it by hand,
//   OMP_NUM_THREADS=2 OMP_PROC_BIND=spread OMP_PLACES=threads build/openmp/perf/bench_lca
#include "kokkos_args.hpp"
#include "lca/core.hpp"
#include "lca/learner.hpp"
#include "lca/solver.hpp"
#include "lca/version.hpp"
#include "peak.hpp"

#include <CLI/CLI.hpp>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;
using Scalar = float;
using Views = lca::Views<Scalar>;

template <class F> double median_seconds(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    Kokkos::fence();
    const auto t0 = Clock::now();
    f();
    Kokkos::fence();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// Smooth random images (noise blurred over 3x3, then normalised): closer to natural
/// images than white noise, deterministic.
Views::Images make_images(const lca::Geometry& g, int B) {
  Views::Images x("bench::x", B, g.pixels());
  auto h = Kokkos::create_mirror_view(x);
  std::mt19937 gen(42);
  std::normal_distribution<float> n;
  std::vector<float> noise(g.pixels());
  for (int b = 0; b < B; ++b) {
    for (auto& v : noise)
      v = n(gen);
    double mean = 0, sq = 0;
    for (int c = 0; c < g.channels; ++c)
      for (int i = 0; i < g.height; ++i)
        for (int j = 0; j < g.width; ++j) {
          float s = 0;
          for (int di = -1; di <= 1; ++di)
            for (int dj = -1; dj <= 1; ++dj) {
              const int ii = std::clamp(i + di, 0, g.height - 1),
                        jj = std::clamp(j + dj, 0, g.width - 1);
              s += noise[(c * g.height + ii) * g.width + jj];
            }
          h(b, (c * g.height + i) * g.width + j) = s;
          mean += s, sq += double(s) * s;
        }
    mean /= g.pixels();
    const double sd = std::sqrt(sq / g.pixels() - mean * mean);
    for (int t = 0; t < g.pixels(); ++t)
      h(b, t) = float((h(b, t) - mean) / sd);
  }
  Kokkos::deep_copy(x, h);
  return x;
}

double percent_active(lca::LcaSolver<Scalar>& s, const Views::Images& x, const lca::Geometry& g) {
  const auto st = s.stats(x);
  double nnz = 0;
  for (double v : st.nnz)
    nnz += v;
  return 100.0 * nnz / (double(s.batch()) * g.neurons());
}

/// Whether the default execution space is a device (CUDA) rather than the host CPU.
constexpr bool on_device =
    !Kokkos::SpaceAccessibility<Kokkos::HostSpace,
                                Kokkos::DefaultExecutionSpace::memory_space>::accessible;

// The device's FP32 peak and copy bandwidth, measured by Kokkos kernels on the default space
// (peak.cpp probes the CPU). Named functions: CUDA forbids a device lambda inside a lambda.

/// 8 independent FMA chains per thread hide the FMA latency; the sum is stored.
void fma_probe(const Kokkos::View<float*>& out, int iters) {
  Kokkos::parallel_for(
      "peak::fma", out.extent(0), KOKKOS_LAMBDA(const int i) {
        float a[8];
        for (int k = 0; k < 8; ++k)
          a[k] = 1e-9f * float(i + k);
        const float m = 1.0000001f - 1e-12f * float(i & 1), c = 1e-7f;
        for (int it = 0; it < iters; ++it)
          for (int k = 0; k < 8; ++k)
            a[k] = a[k] * m + c;
        out(i) = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
      });
}

void triad_probe(const Kokkos::View<float*>& a, const Kokkos::View<float*>& b,
                 const Kokkos::View<float*>& c) {
  Kokkos::parallel_for(
      "peak::triad", a.extent(0),
      KOKKOS_LAMBDA(const std::size_t i) { a(i) = b(i) + 3.0f * c(i); });
}

/// A million threads x 2^14 x 8 FMAs, and a triad over three 512 MiB arrays; medians of 3.
lca::perf::Peak measure_device_peak() {
  const int iters = 1 << 14;
  Kokkos::View<float*> out("peak::out", 1 << 20);
  const double t_fma = median_seconds(3, [&] { fma_probe(out, iters); });
  const std::size_t n = std::size_t(1) << 27;
  Kokkos::View<float*> a("peak::a", n), b("peak::b", n), c("peak::c", n);
  Kokkos::deep_copy(b, 1.0f);
  Kokkos::deep_copy(c, 2.0f);
  const double t_triad = median_seconds(3, [&] { triad_probe(a, b, c); });
  return {2.0 * 8 * double(iters) * out.extent(0) / t_fma / 1e9,
          3.0 * n * sizeof(float) / t_triad / 1e9};
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0)
      return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    // Kokkos sees only its own flags (Kokkos 3.4 answers a plain --help with its banner).
    lca::app::SplitArgs args(argc, argv, true);
    int kokkos_argc = args.kokkos_argc();
    Kokkos::ScopeGuard kokkos(kokkos_argc, args.kokkos.data());
    CLI::App app{"kokkos-lca LCA throughput benchmark"};
    std::vector<int> nfs{64, 128, 256};
    std::string shape = "3x32x32", json = "perf/results.json";
    int batch = 16, iterations = 400, reps = 3, kernel = 8, stride = 2;
    double target_active = 3.0;
    bool no_peak = false;
    app.add_option("--nf", nfs, "feature counts, e.g. 64,128,256")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--shape", shape, "image shape CxHxW (3x32x32: CIFAR, 1x28x28: Fashion-MNIST)")
        ->capture_default_str();
    app.add_option("--batch", batch)->capture_default_str();
    app.add_option("--kernel", kernel)->capture_default_str();
    app.add_option("--stride", stride)->capture_default_str();
    app.add_option("--iterations", iterations, "LCA iterations per solve")->capture_default_str();
    app.add_option("--reps", reps, "repetitions (the median is reported)")->capture_default_str();
    app.add_option("--active", target_active, "percent active to calibrate lambda to")
        ->capture_default_str();
    app.add_option("--json", json, "output file")->capture_default_str();
    app.add_flag("--no-peak", no_peak, "skip the peak probes");
    try {
      app.parse(args.app_argc(), args.app.data());
    } catch (const CLI::ParseError& e) {
      rc = app.exit(e);
      MPI_Finalize();
      return rc;
    }
    lca::Geometry g;
    if (std::sscanf(shape.c_str(), "%dx%dx%d", &g.channels, &g.height, &g.width) != 3) {
      std::fprintf(stderr, "bench_lca: error: --shape must be CxHxW\n");
      MPI_Finalize();
      return 2;
    }
    g.kernel = kernel, g.stride = stride;
    const lca::perf::Peak peak = no_peak     ? lca::perf::Peak{}
                                 : on_device ? measure_device_peak()
                                             : lca::perf::measure_peak();
    std::printf("backend %s, threads %d, CPU %s\n", lca::backend_name().c_str(),
                Kokkos::DefaultExecutionSpace().concurrency(), cpu_model().c_str());
    if (!no_peak)
      std::printf("measured %s peak: FP32 %.1f GFLOP/s, triad %.1f GB/s\n",
                  on_device ? "device" : "CPU", peak.fp32_gflops, peak.stream_gbs);
    std::ostringstream js;
    js << "{\n  \"context\": {\"version\": \"" << lca::version << "\", \"git\": \"" << LCA_GIT_HASH
       << "\", \"kokkos\": " << KOKKOS_VERSION << ", \"backend\": \"" << lca::backend_name()
       << "\", \"threads\": " << Kokkos::DefaultExecutionSpace().concurrency()
       << ", \"OMP_NUM_THREADS\": \"" << env("OMP_NUM_THREADS") << "\", \"OMP_PROC_BIND\": \""
       << env("OMP_PROC_BIND") << "\", \"cpu\": \"" << cpu_model() << "\", \"peak_of\": \""
       << (on_device ? "device" : "cpu") << "\", \"peak_fp32_gflops\": " << peak.fp32_gflops
       << ", \"stream_triad_gbs\": " << peak.stream_gbs << "},\n  \"workloads\": [";
    const auto x = make_images(g, batch);
    for (std::size_t w = 0; w < nfs.size(); ++w) {
      g.nf = nfs[w];
      lca::validate(g);
      lca::Dictionary<Scalar> d(g);
      d.init_random(1);
      lca::LcaParams p;
      p.iterations = iterations;
      // Calibrate lambda (bisection in log lambda) to the target sparsity.
      double lo = 1e-3, hi = 10, lambda = 1, active = 0;
      lca::LcaSolver<Scalar> s(g, p);
      for (int it = 0; it < 14; ++it) {
        lambda = std::sqrt(lo * hi);
        s.set_lambda_transfer(lca::make_transfer(lca::Preset::soft_nonneg, lambda));
        s.reset(batch);
        s.solve(d, x);
        active = percent_active(s, x, g);
        (active > target_active ? lo : hi) = lambda;
      }
      s.reset(batch);
      const double t_solve = median_seconds(reps, [&] {
        s.reset(batch);
        s.solve(d, x);
      });
      active = percent_active(s, x, g);
      const double img_it = double(batch) * iterations / t_solve;
      const int kreps = 50;
      const double t_rec = median_seconds(kreps, [&] { s.reconstruct(d, x, s.residual(), -1.0f); });
      // The same product through GEMM + col2im (what FISTA uses for dense codes).
      const double t_rec_dense = median_seconds(
          kreps, [&] { s.reconstruct_dense(d, s.activities(), x, s.residual(), -1.0f); });
      const double t_im2col = median_seconds(kreps, [&] { s.im2col(s.residual()); });
      const double t_drive = median_seconds(kreps, [&] { s.apply_drive(d); });
      // update() would move the state on; time it on a copy-free re-run of the same step.
      const double t_update = median_seconds(kreps, [&] { s.update(false); });
      lca::Learner<Scalar> learner(g, lca::LearnParams{});
      s.reset(batch);
      s.solve(d, x);
      const double t_learn = median_seconds(kreps, [&] { learner.update(d, &s, batch); });
      const double npos = double(batch) * g.positions(), ckk = g.patch();
      const double nnz = active / 100.0 * batch * g.neurons();
      const double fl_drive = 2 * npos * g.nf * ckk, fl_rec = 2 * nnz * ckk;
      const double fl_learn = 2 * npos * g.nf * ckk;
      auto frac = [&](double flops, double t) {
        return peak.fp32_gflops > 0 ? flops / t / 1e9 / peak.fp32_gflops : 0.0;
      };
      const double per_iter = t_rec + t_im2col + t_drive + t_update;
      std::printf("\n%s nf=%d batch=%d: lambda %.4g -> %.2f%% active\n", shape.c_str(), g.nf, batch,
                  lambda, active);
      std::printf("  end to end: %.0f image-iterations/s (solve %.1f ms for %d iterations)\n",
                  img_it, t_solve * 1e3, iterations);
      std::printf("  %-12s %9s %9s %8s %9s\n", "kernel", "ms/iter", "GFLOP/s", "of peak", "share");
      auto row = [&](const char* name, double t, double flops) {
        std::printf("  %-12s %9.3f %9.1f %7.1f%% %8.1f%%\n", name, t * 1e3, flops / t / 1e9,
                    100 * frac(flops, t), 100 * t / per_iter);
      };
      row("reconstruct", t_rec, fl_rec);
      std::printf("  %-12s %9.3f %9.1f %7.1f%%  (not in the solve at this density)\n", "  dense",
                  t_rec_dense * 1e3, fl_drive / t_rec_dense / 1e9,
                  100 * frac(fl_drive, t_rec_dense));
      row("im2col", t_im2col, 0);
      row("drive GEMM", t_drive, fl_drive);
      row("update", t_update, 0);
      std::printf("  learning step: %.3f ms per batch = %.2f%% of the batch's inference\n",
                  t_learn * 1e3, 100 * t_learn / t_solve);
      js << (w ? "," : "") << "\n    {\"shape\": \"" << shape << "\", \"nf\": " << g.nf
         << ", \"kernel\": " << g.kernel << ", \"stride\": " << g.stride << ", \"batch\": " << batch
         << ", \"iterations\": " << iterations << ", \"lambda\": " << lambda
         << ", \"percent_active\": " << active << ", \"image_iterations_per_s\": " << img_it
         << ", \"ms_per_iteration\": {\"reconstruct\": " << t_rec * 1e3
         << ", \"im2col\": " << t_im2col * 1e3 << ", \"drive\": " << t_drive * 1e3
         << ", \"update\": " << t_update * 1e3
         << "}, \"drive_gflops\": " << fl_drive / t_drive / 1e9
         << ", \"drive_fraction_of_peak\": " << frac(fl_drive, t_drive)
         << ", \"end_to_end_gflops\": " << (fl_drive + fl_rec) * iterations / t_solve / 1e9
         << ", \"learning_ms\": " << t_learn * 1e3
         << ", \"learning_fraction_of_inference\": " << t_learn / t_solve << "}";
    }
    js << "\n  ]\n}\n";
    std::ofstream(json) << js.str();
    std::printf("\nwrote %s\n", json.c_str());
  }
  MPI_Finalize();
  return rc;
}
