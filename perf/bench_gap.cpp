// Time to a certified code (algorithm.md §9): for each solver, the iterations and wall time
// until every image of every batch is certified at each gap level, images per second at that
// level, the iterations until the energy is truly within 1e-3 of the optimum (a long double-
// precision reference), and the percent active at the stop against the optimum's. Run on a
// dictionary trained by lca-train (random dictionaries are far easier). A benchmark, not a
// test; perf/run_benchmarks.sh runs it, perf/README.md has the numbers.
#include "kokkos_args.hpp"
#include "lca/checkpoint.hpp"
#include "lca/core.hpp"
#include "lca/dataset.hpp"
#include "lca/error.hpp"
#include "lca/solver.hpp"
#include "lca/version.hpp"
#include "options.hpp"

#include <CLI/CLI.hpp>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;

struct Method {
  std::string name;
  lca::Solver solver;
  lca::Timescale timescale;
  double tau;
};

template <class Scalar>
typename lca::Views<Scalar>::Images upload(const lca::ImageSet& data, std::int64_t first, int B,
                                           int npix) {
  typename lca::Views<Scalar>::Images x("bench_gap::x", B, npix);
  auto h = Kokkos::create_mirror_view(x);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < npix; ++t)
      h(b, t) = Scalar(data.image(first + b)[t]);
  Kokkos::deep_copy(x, h);
  return x;
}

/// One sample of a traced solve: wall time, iterations (+ support rounds), worst gap and
/// worst true distance to the optimum over the batch.
struct Sample {
  double seconds;
  int iterations, cg;
  double gap, distance;
};

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    // Kokkos sees only its own flags (Kokkos 3.4 answers a plain --help with its banner).
    lca::app::SplitArgs args(argc, argv, true);
    int kokkos_argc = args.kokkos_argc();
    Kokkos::ScopeGuard kokkos(kokkos_argc, args.kokkos.data());
    CLI::App app{"kokkos-lca time-to-certified-gap benchmark"};
    std::string checkpoint, json = "perf/results/gap.json", trace_file;
    lca::DatasetSpec spec;
    spec.split = lca::Split::test;
    int images = 64, batch = 16, cap = 4000;
    std::vector<double> levels{1e-2, 1e-3};
    std::vector<std::string> methods{"lca-tau100", "lca-tau50", "lca-adaptive", "fista"};
    bool no_polish = false;
    int check_every = lca::LcaParams().check_every;
    double reference_gap = 1e-6;
    int reference_cap = 5000;
    app.add_option("--checkpoint,-c", checkpoint, "trained dictionary (lca-train)")->required();
    lca::app::add_enum_option(app, "--data", spec.format, lca::kDataFormatNames, "");
    app.add_option("--data-path", spec.path);
    lca::app::add_enum_option(app, "--split", spec.split, lca::kSplitNames, "");
    app.add_option("--png-channels", spec.channels);
    app.add_option("--png-height", spec.height);
    app.add_option("--png-width", spec.width);
    app.add_option("--images", images, "test images (the first N)")->capture_default_str();
    app.add_option("--batch", batch)->capture_default_str();
    app.add_option("--cap", cap, "iteration cap")->capture_default_str();
    app.add_option("--levels", levels, "certified gap levels")->delimiter(',');
    app.add_option("--methods", methods, "lca-tau100, lca-tau50, lca-adaptive, fista, cd")
        ->delimiter(',');
    app.add_flag("--no-polish", no_polish, "without the exact support solve");
    app.add_option("--check-every", check_every, "iterations between gap checks")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--reference-gap", reference_gap, "gap of the double-precision reference")
        ->capture_default_str();
    app.add_option("--reference-cap", reference_cap, "its iteration cap")->capture_default_str();
    app.add_option("--json", json)->capture_default_str();
    app.add_option("--trace", trace_file, "energy gap against time, for perf/plot_gap.gp");
    try {
      app.parse(args.app_argc(), args.app.data());
    } catch (const CLI::ParseError& e) {
      rc = app.exit(e);
    }
    if (rc == 0 && !app.get_help_ptr()->count()) {
      spec.subset = images;
      lca::ImageSet data = lca::load_dataset(spec);
      lca::normalize_images(data);
      const lca::Checkpoint ck = lca::read_checkpoint(checkpoint);
      const lca::Geometry g = ck.geometry;
      const int npix = g.pixels(), nbatches = int(data.n / batch);
      if (nbatches < 1)
        throw lca::InvalidArgument("need at least one full batch of images");
      const lca::Transfer transfer = ck.lca.transfer;
      std::printf("bench_gap: %s, nf %d, %dx%dx%d, lambda %g, %d images in batches of %d, "
                  "backend %s\n",
                  checkpoint.c_str(), g.nf, g.channels, g.height, g.width, transfer.lambda,
                  nbatches * batch, batch, lca::backend_name().c_str());

      // The reference optimum: double-precision FISTA to a tiny gap per image.
      std::vector<double> pstar, active_star;
      {
        const auto t0 = Clock::now();
        lca::Dictionary<double> d(g);
        d.from_host(ck.dictionary);
        lca::LcaParams p = ck.lca;
        p.solver = lca::Solver::fista, p.timescale = lca::Timescale::fixed;
        p.stop_gap = reference_gap;
        p.iterations = reference_cap;
        lca::LcaSolver<double> s(g, p);
        int unconverged = 0;
        for (int k = 0; k < nbatches; ++k) {
          s.reset(batch);
          const auto x = upload<double>(data, std::int64_t(k) * batch, batch, npix);
          const auto info = s.solve(d, x);
          const auto st = s.stats(x);
          unconverged += info.unconverged;
          for (int b = 0; b < batch; ++b) {
            pstar.push_back(info.certificates[b].primal);
            active_star.push_back(100.0 * st.nnz[b] / double(g.neurons()));
          }
        }
        const auto mean = [](const std::vector<double>& v) {
          double m = 0;
          for (double e : v)
            m += e;
          return m / double(v.size());
        };
        std::printf("reference: double FISTA + support solve to gap %g in %.1f s (%d images "
                    "above), mean energy %.6g, mean %% active %.4f\n",
                    reference_gap, std::chrono::duration<double>(Clock::now() - t0).count(),
                    unconverged, mean(pstar), mean(active_star));
      }

      lca::Dictionary<float> d(g);
      d.from_host(ck.dictionary);
      std::vector<std::vector<float>> batches_h;
      std::vector<lca::Views<float>::Images> xs;
      for (int k = 0; k < nbatches; ++k)
        xs.push_back(upload<float>(data, std::int64_t(k) * batch, batch, npix));
      const std::map<std::string, Method> known{
          {"lca-tau100", {"LCA tau 100", lca::Solver::lca, lca::Timescale::fixed, 100}},
          {"lca-tau50", {"LCA tau 50", lca::Solver::lca, lca::Timescale::fixed, 50}},
          {"lca-adaptive",
           {"LCA adaptive (tau 100)", lca::Solver::lca, lca::Timescale::adaptive, 100}},
          {"fista", {"FISTA", lca::Solver::fista, lca::Timescale::fixed, 100}},
          {"cd", {"CD", lca::Solver::cd, lca::Timescale::fixed, 100}}};
      std::ostringstream js, tr;
      js << "{\"software_version\": \"" << lca::version << "\", \"backend\": \""
         << lca::backend_name() << "\", \"checkpoint\": \"" << checkpoint << "\", \"nf\": " << g.nf
         << ", \"shape\": \"" << g.channels << "x" << g.height << "x" << g.width
         << "\", \"lambda\": " << transfer.lambda << ", \"images\": " << nbatches * batch
         << ", \"batch\": " << batch << ", \"check_every\": " << check_every
         << ", \"polish\": " << (no_polish ? "false" : "true") << ", \"results\": [";
      std::printf(
          "\n| method | level | iterations (+ support rounds) per batch, mean / max | seconds | "
          "images/s | images above | it to true 1e-3 | %% active / optimum |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|\n");
      bool first_row = true;
      for (const auto& key : methods) {
        const auto m = known.find(key);
        if (m == known.end())
          throw lca::InvalidArgument("unknown method '" + key + "'");
        for (const double level : levels) {
          lca::LcaParams p = ck.lca;
          p.solver = m->second.solver, p.timescale = m->second.timescale, p.tau = m->second.tau;
          p.stop_gap = level, p.iterations = cap, p.polish = !no_polish;
          p.check_every = check_every;
          lca::LcaSolver<float> s(g, p);
          double seconds = 0, active = 0, active_opt = 0;
          int it_sum = 0, it_max = 0, cg_sum = 0, above = 0, true_it = 0;
          for (int k = 0; k < nbatches; ++k) {
            std::vector<Sample> samples;
            Clock::time_point t0;
            s.set_trace([&](int it, int cg, const std::vector<lca::Certificate>& c) {
              Kokkos::fence();
              Sample smp{std::chrono::duration<double>(Clock::now() - t0).count(), it, cg, 0, 0};
              for (int b = 0; b < batch; ++b) {
                smp.gap = std::max(smp.gap, c[b].gap);
                const double ps = pstar[std::size_t(k) * batch + b];
                smp.distance = std::max(smp.distance, (c[b].primal - ps) / ps);
              }
              samples.push_back(smp);
            });
            s.reset(batch);
            Kokkos::fence();
            t0 = Clock::now();
            const auto info = s.solve(d, xs[k]);
            Kokkos::fence();
            seconds += std::chrono::duration<double>(Clock::now() - t0).count();
            it_sum += info.iterations, cg_sum += info.polish_iterations;
            it_max = std::max(it_max, info.iterations + info.polish_iterations);
            above += info.unconverged;
            int first_true = -1;
            for (const auto& smp : samples)
              if (smp.distance <= 1e-3) {
                first_true = smp.iterations + smp.cg;
                break;
              }
            true_it = first_true < 0 || true_it < 0 ? -1 : std::max(true_it, first_true);
            const auto st = s.stats(xs[k]);
            for (int b = 0; b < batch; ++b) {
              active += 100.0 * st.nnz[b] / double(g.neurons());
              active_opt += active_star[std::size_t(k) * batch + b];
            }
            if (k == 0 && !trace_file.empty())
              for (const auto& smp : samples)
                tr << key << " " << level << " " << smp.seconds << " " << smp.iterations << " "
                   << smp.cg << " " << smp.gap << " " << smp.distance << "\n";
          }
          const int n = nbatches * batch;
          const double rate = n / seconds;
          char cell[64];
          std::snprintf(cell, sizeof cell, true_it < 0 ? "> cap" : "%d", true_it);
          std::printf("| %s | %g | %.0f (+ %.0f) / %d | %.2f | %.1f | %d | %s | %.3f / %.3f |\n",
                      m->second.name.c_str(), level, double(it_sum) / nbatches,
                      double(cg_sum) / nbatches, it_max, seconds, rate, above, cell, active / n,
                      active_opt / n);
          std::fflush(stdout);
          js << (first_row ? "" : ",") << "\n  {\"method\": \"" << key << "\", \"level\": " << level
             << ", \"iterations_mean\": " << double(it_sum) / nbatches
             << ", \"cg_mean\": " << double(cg_sum) / nbatches << ", \"iterations_max\": " << it_max
             << ", \"seconds\": " << seconds << ", \"images_per_second\": " << rate
             << ", \"above\": " << above << ", \"iterations_to_true_1e-3\": " << true_it
             << ", \"percent_active\": " << active / n
             << ", \"percent_active_optimum\": " << active_opt / n << "}";
          first_row = false;
        }
      }
      js << "\n]}\n";
      std::ofstream(json) << js.str();
      if (!trace_file.empty())
        std::ofstream(trace_file) << "# method level seconds iterations cg max_gap max_distance\n"
                                  << tr.str();
    }
  }
  MPI_Finalize();
  return rc;
}
