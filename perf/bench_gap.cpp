// Time to a certified code (algorithm.md §9): for each solver, the iterations and wall time
// until every image of every batch is certified at each gap level, images per second at that
// level, the iterations until every image is truly within the level of the optimum (a long
// double-precision reference), and the percent active at the stop against the optimum's. Run
// on a dictionary trained by lca-train (random dictionaries are far easier). A benchmark, not a
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

/// The iterations (+ support rounds) of the first sample at which every image of the batch is
/// truly within level of the optimum; -1 if none is.
int first_within(const std::vector<Sample>& samples, double level) {
  for (const auto& smp : samples)
    if (smp.distance <= level)
      return smp.iterations + smp.cg;
  return -1;
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
          "images/s | images above | truth's iterations, mean / max | certified / truth | "
          "%% active / optimum |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
      bool first_row = true;
      for (const auto& key : methods) {
        const auto m = known.find(key);
        if (m == known.end())
          throw lca::InvalidArgument("unknown method '" + key + "'");
        struct Row {
          double level, seconds = 0, active = 0, active_opt = 0;
          int it_sum = 0, it_max = 0, cg_sum = 0, above = 0;
          std::vector<int> certified, truth; ///< per batch: iterations (+ rounds)
        };
        std::vector<Row> rows;
        const auto params = [&](double level, int iterations) {
          lca::LcaParams p = ck.lca;
          p.solver = m->second.solver, p.timescale = m->second.timescale, p.tau = m->second.tau;
          p.stop_gap = level, p.iterations = iterations, p.polish = !no_polish;
          p.check_every = check_every;
          return p;
        };
        // A solve of batch k, traced at every certificate the solver computes.
        const auto traced = [&](lca::LcaSolver<float>& s, int k, double& seconds) {
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
          seconds = std::chrono::duration<double>(Clock::now() - t0).count();
          s.set_trace({}); // it holds references to this call's locals
          return std::make_pair(info, samples);
        };
        for (const double level : levels) {
          Row row;
          row.level = level;
          lca::LcaSolver<float> s(g, params(level, cap));
          for (int k = 0; k < nbatches; ++k) {
            double seconds = 0;
            const auto [info, samples] = traced(s, k, seconds);
            row.seconds += seconds;
            row.it_sum += info.iterations, row.cg_sum += info.polish_iterations;
            row.it_max = std::max(row.it_max, info.iterations + info.polish_iterations);
            row.above += info.unconverged;
            row.certified.push_back(info.iterations + info.polish_iterations);
            row.truth.push_back(first_within(samples, level));
            const auto st = s.stats(xs[k]);
            for (int b = 0; b < batch; ++b) {
              row.active += 100.0 * st.nnz[b] / double(g.neurons());
              row.active_opt += active_star[std::size_t(k) * batch + b];
            }
            if (k == 0 && !trace_file.empty())
              for (const auto& smp : samples)
                tr << key << " " << level << " " << smp.seconds << " " << smp.iterations << " "
                   << smp.cg << " " << smp.gap << " " << smp.distance << "\n";
          }
          rows.push_back(row);
        }
        // cd without the support solve (and cd with it, in its approach: LcaSolver::solve)
        // certifies only where its maintained gap says so, so its own trace has few samples
        // there: the truth also comes from a run without a stop (cd without the support solve,
        // the approach's path), certified every check_every sweeps, to the certified
        // iterations of the tightest level (a gap is never below the true distance); the
        // earlier of the two counts. Its small moves wait as in the approach (the bar carries
        // between kernel calls).
        if (m->second.solver == lca::Solver::cd && !rows.empty()) {
          const auto tightest =
              std::min_element(rows.begin(), rows.end(),
                               [](const Row& a, const Row& b) { return a.level < b.level; });
          for (int k = 0; k < nbatches; ++k) {
            lca::LcaSolver<float> s(g, params(0, std::max(1, tightest->certified[k])));
            double seconds = 0;
            const auto samples = traced(s, k, seconds).second;
            for (Row& row : rows) {
              const int t = first_within(samples, row.level);
              if (t >= 0 && (row.truth[k] < 0 || t < row.truth[k]))
                row.truth[k] = t;
            }
          }
        }
        for (const Row& row : rows) {
          const int n = nbatches * batch;
          const double rate = n / row.seconds;
          int truth_sum = 0, truth_max = 0, certified_sum = 0;
          bool reached = true;
          for (int k = 0; k < nbatches; ++k) {
            reached &= row.truth[k] >= 0;
            truth_sum += row.truth[k], truth_max = std::max(truth_max, row.truth[k]);
            certified_sum += row.certified[k];
          }
          char truth[64], ratio[32];
          if (reached) {
            std::snprintf(truth, sizeof truth, "%.0f / %d", double(truth_sum) / nbatches,
                          truth_max);
            std::snprintf(ratio, sizeof ratio, "%.2f",
                          double(certified_sum) / std::max(1, truth_sum));
          } else {
            std::snprintf(truth, sizeof truth, "not reached");
            std::snprintf(ratio, sizeof ratio, "-");
          }
          std::printf(
              "| %s | %g | %.0f (+ %.0f) / %d | %.2f | %.1f | %d | %s | %s | %.3f / %.3f |\n",
              m->second.name.c_str(), row.level, double(row.it_sum) / nbatches,
              double(row.cg_sum) / nbatches, row.it_max, row.seconds, rate, row.above, truth, ratio,
              row.active / n, row.active_opt / n);
          std::fflush(stdout);
          js << (first_row ? "" : ",") << "\n  {\"method\": \"" << key
             << "\", \"level\": " << row.level
             << ", \"iterations_mean\": " << double(row.it_sum) / nbatches
             << ", \"cg_mean\": " << double(row.cg_sum) / nbatches
             << ", \"iterations_max\": " << row.it_max << ", \"seconds\": " << row.seconds
             << ", \"images_per_second\": " << rate << ", \"above\": " << row.above
             << ", \"truth_iterations_mean\": " << (reached ? double(truth_sum) / nbatches : -1.0)
             << ", \"certified_over_truth\": "
             << (reached ? double(certified_sum) / std::max(1, truth_sum) : -1.0)
             << ", \"percent_active\": " << row.active / n
             << ", \"percent_active_optimum\": " << row.active_opt / n << "}";
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
