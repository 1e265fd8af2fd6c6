#include "lca/denoise.hpp"

#include "lca/core.hpp"
#include "lca/distributed.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/h5.hpp"
#include "lca/mpi.hpp"
#include "lca/random.hpp"
#include "lca/solver.hpp"
#include "lca/train.hpp"
#include "lca/version.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace lca {
namespace {

using Scalar = float;
using Clock = std::chrono::steady_clock;

/// Standard normal from a counter (Box-Muller on two uniforms of one SplitMix64 stream).
double counter_normal(std::uint64_t seed, std::int64_t image, std::int64_t pixel) {
  SplitMix64 r(hash_combine(hash_combine(seed, std::uint64_t(image)), std::uint64_t(pixel)));
  const double u1 = 1.0 - r.uniform(), u2 = r.uniform(); // u1 in (0, 1]
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// Concatenate every rank's values in rank order, on all ranks.
template <class T> std::vector<T> all_gather(const std::vector<T>& mine, MPI_Comm comm) {
  const int ranks = mpi::size(comm);
  const int n = int(mine.size());
  std::vector<int> counts(ranks), displs(ranks, 0);
  mpi::check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm),
             "MPI_Allgather of the result counts");
  for (int r = 1; r < ranks; ++r)
    displs[r] = displs[r - 1] + counts[r - 1];
  std::vector<T> all(std::size_t(displs.back() + counts.back()));
  const MPI_Datatype type = mpi::datatype<T>();
  mpi::check(
      MPI_Allgatherv(mine.data(), n, type, all.data(), counts.data(), displs.data(), type, comm),
      "MPI_Allgatherv of the results");
  return all;
}

} // namespace

MeanSe mean_se(const std::vector<double>& v) {
  MeanSe r;
  if (v.empty())
    return r;
  for (double x : v)
    r.mean += x;
  r.mean /= double(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v)
      ss += (x - r.mean) * (x - r.mean);
    r.se = std::sqrt(ss / double(v.size() - 1) / double(v.size()));
  }
  return r;
}

double max_of(const std::vector<double>& v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, x);
  return m;
}

void add_noise(float* image, std::int64_t n_pixels, std::int64_t image_index, double sigma,
               std::uint64_t seed) {
  if (sigma == 0)
    return;
  for (std::int64_t t = 0; t < n_pixels; ++t)
    image[t] += float(sigma * counter_normal(seed, image_index, t));
}

DenoiseResult denoise(const Geometry& g, const LcaParams& p, const std::vector<float>& dictionary,
                      const ImageSet& data, const DenoiseConfig& cfg, MPI_Comm comm,
                      std::ostream* progress) {
  Region region("lca::denoise");
  if (data.channels != g.channels || data.height != g.height || data.width != g.width)
    throw InvalidArgument("test images are " + std::to_string(data.channels) + "x" +
                          std::to_string(data.height) + "x" + std::to_string(data.width) +
                          ", the dictionary was trained on " + std::to_string(g.channels) + "x" +
                          std::to_string(g.height) + "x" + std::to_string(g.width));
  if (!(cfg.sigma >= 0) || !std::isfinite(cfg.sigma))
    throw InvalidArgument("noise sigma must be >= 0 (got " + std::to_string(cfg.sigma) + ")");
  if (cfg.batch < 1)
    throw InvalidArgument("batch size must be >= 1");
  if (!(cfg.response_epsilon >= 0))
    throw InvalidArgument("response epsilon must be >= 0");
  const int rank = mpi::rank(comm), ranks = mpi::size(comm);
  const auto start = Clock::now();
  ProgressTimer timer(cfg.progress_seconds);

  Dictionary<Scalar> dict(g);
  dict.from_host(dictionary);
  LcaSolver<Scalar> solver(g, p);
  const int npix = g.pixels(), P = g.positions();
  const auto [first, mine] = mpi::slice(data.n, rank, ranks);
  const std::int64_t last = first + mine;
  // Both are filled from the host before every solve.
  typename Views<Scalar>::Images clean_dev(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "lca::denoise::clean"), cfg.batch, npix),
      noisy_dev(Kokkos::view_alloc(Kokkos::WithoutInitializing, "lca::denoise::noisy"), cfg.batch,
                npix);
  auto clean_h = Kokkos::create_mirror_view(clean_dev);
  auto noisy_h = Kokkos::create_mirror_view(noisy_dev);
  // A fixed unit-norm perturbation pattern for the response function.
  std::vector<float> eta(npix);
  if (cfg.response_epsilon > 0) {
    double nrm = 0;
    for (int t = 0; t < npix; ++t)
      nrm += std::pow(eta[t] = float(counter_normal(cfg.response_seed, -1, t)), 2);
    for (auto& v : eta)
      v = float(v / std::sqrt(nrm));
  }

  DenoiseResult res;
  std::vector<double> err, mse, base, act, en, chi, gaps, its, polish_its;
  for (std::int64_t i0 = first; i0 < last; i0 += cfg.batch) {
    const int count = int(std::min<std::int64_t>(cfg.batch, last - i0));
    std::vector<double> base_err(count);
    for (int b = 0; b < count; ++b) {
      const float* x = data.image(i0 + b);
      std::vector<float> noisy(x, x + npix);
      add_noise(noisy.data(), npix, i0 + b, cfg.sigma, cfg.noise_seed);
      double dn = 0, xn = 0;
      for (int t = 0; t < npix; ++t) {
        clean_h(b, t) = x[t], noisy_h(b, t) = noisy[t];
        dn += double(noisy[t] - x[t]) * (noisy[t] - x[t]), xn += double(x[t]) * x[t];
      }
      base_err[b] = xn > 0 ? 100.0 * std::sqrt(dn / xn) : 0.0;
    }
    Kokkos::deep_copy(clean_dev, clean_h);
    Kokkos::deep_copy(noisy_dev, noisy_h);
    const auto rows = std::make_pair(0, count);
    const typename Views<Scalar>::ConstImages clean = Kokkos::subview(clean_dev, rows, Kokkos::ALL);
    const typename Views<Scalar>::ConstImages noisy = Kokkos::subview(noisy_dev, rows, Kokkos::ALL);
    solver.reset(count);
    const SolveInfo info = solver.solve(dict, noisy);
    res.unconverged += info.unconverged;
    for (int b = 0; b < count; ++b) {
      its.push_back(info.iterations);
      polish_its.push_back(info.polish_iterations);
      if (!info.certificates.empty())
        gaps.push_back(info.certificates[b].gap);
    }
    const BatchStats at_input = solver.stats(noisy);
    solver.compute_residual(dict, clean); // score the reconstruction against the clean image
    const BatchStats at_clean = solver.stats(clean);
    for (int b = 0; b < count; ++b) {
      err.push_back(at_clean.percent_error(b));
      mse.push_back(at_clean.sq_residual[b] / double(npix));
      base.push_back(base_err[b]);
      act.push_back(100.0 * at_input.nnz[b] / double(g.neurons()));
      en.push_back(at_input.energy(b, p.transfer));
      if (!std::isfinite(err.back()) || !std::isfinite(en.back()))
        throw NumericalError("non-finite result for test image " + std::to_string(i0 + b));
    }
    if (cfg.keep_codes || cfg.response_epsilon > 0) {
      // A real copy (create_mirror, not _view): on host backends a mirror view would alias
      // the activities that the perturbed solve below overwrites.
      auto a = Kokkos::create_mirror(solver.activities());
      Kokkos::deep_copy(a, solver.activities());
      if (cfg.keep_codes)
        for (int b = 0; b < count; ++b)
          for (int m = 0; m < g.nf; ++m)
            for (int q = 0; q < P; ++q)
              if (const float v = a(std::size_t(b) * P + q, m); v != 0) {
                res.codes.image.push_back(i0 + b);
                res.codes.neuron.push_back(std::int64_t(m) * P + q);
                res.codes.value.push_back(v);
              }
      if (cfg.response_epsilon > 0) {
        for (int b = 0; b < count; ++b)
          for (int t = 0; t < npix; ++t)
            noisy_h(b, t) += float(cfg.response_epsilon) * eta[t];
        Kokkos::deep_copy(noisy_dev, noisy_h);
        solver.reset(count);
        solver.solve(dict, noisy);
        auto a2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), solver.activities());
        for (int b = 0; b < count; ++b) {
          double d2 = 0;
          for (int m = 0; m < g.nf; ++m)
            for (int q = 0; q < P; ++q) {
              const double d = double(a2(std::size_t(b) * P + q, m)) - a(std::size_t(b) * P + q, m);
              d2 += d * d;
            }
          chi.push_back(std::sqrt(d2) / cfg.response_epsilon);
        }
      }
    }
    if (progress && rank == 0 && timer.due()) {
      const double done = double(i0 + count - first), todo = double(last - first);
      *progress << "[denoise] rank 0: images " << done << "/" << todo << "  "
                << format_rate_eta(done, todo, timer.elapsed(), "img") << std::endl;
    }
    if (cfg.after_batch)
      cfg.after_batch();
  }
  res.error = all_gather(err, comm);
  res.mse = all_gather(mse, comm);
  res.noisy_error = all_gather(base, comm);
  res.active = all_gather(act, comm);
  res.energy = all_gather(en, comm);
  res.iterations = all_gather(its, comm);
  res.polish_iterations = all_gather(polish_its, comm);
  if (is_lasso(p.transfer))
    res.gap = all_gather(gaps, comm);
  std::int64_t unconverged = res.unconverged;
  mpi::check(MPI_Allreduce(&unconverged, &res.unconverged, 1, MPI_INT64_T, MPI_SUM, comm),
             "MPI_Allreduce of the unconverged count");
  if (cfg.response_epsilon > 0)
    res.response = all_gather(chi, comm);
  if (cfg.keep_codes && ranks > 1) { // codes are small next to the images
    res.codes.image = all_gather(res.codes.image, comm);
    res.codes.neuron = all_gather(res.codes.neuron, comm);
    res.codes.value = all_gather(res.codes.value, comm);
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return res;
}

void write_denoise_results(const std::string& path, const DenoiseRecord& rec,
                           const DenoiseResult& res) {
  h5::atomic_write(path, "results file", [&](h5::File& f) {
    const auto n = res.error.size();
    const auto set = [&](const char* name, auto v) { f.set_attribute("/", name, v); };
    set("format", "kokkos-lca-denoise");
    set("format_version", std::int64_t(1));
    set("software_version", version);
    set("kokkos_backend", backend_name());
    set("checkpoint", rec.checkpoint);
    set("dataset_identity", rec.dataset_identity);
    set("test_is_training", std::int64_t(rec.test_is_training));
    set("preset", to_string(rec.preset));
    set("nf", std::int64_t(rec.geometry.nf));
    set("system_size", std::int64_t(rec.geometry.neurons()));
    set("lambda", rec.lca.transfer.lambda);
    set("iterations", std::int64_t(rec.lca.iterations));
    set("iterations_mean", mean_se(res.iterations).mean);
    set("iterations_max", max_of(res.iterations));
    set("polish_iterations_mean", mean_se(res.polish_iterations).mean);
    set("tau", rec.lca.tau);
    set("dt", rec.lca.dt);
    set("solver", to_string(rec.lca.solver));
    set("timescale", to_string(rec.lca.timescale));
    set("stop_gap", rec.lca.stop_gap);
    set("polish", std::int64_t(rec.lca.polish));
    set("certificate", is_lasso(rec.lca.transfer) ? "duality gap" : "none (hard threshold)");
    if (!res.gap.empty()) {
      set("gap_mean", mean_se(res.gap).mean);
      set("gap_max", max_of(res.gap));
    }
    set("unconverged", res.unconverged);
    set("sigma", rec.config.sigma);
    set("noise_seed", std::uint64_t(rec.config.noise_seed));
    set("n_images", std::int64_t(n));
    const MeanSe e = mean_se(res.error), b = mean_se(res.noisy_error), a = mean_se(res.active),
                 en = mean_se(res.energy);
    set("error_mean", e.mean);
    set("error_se", e.se);
    set("mse_mean", mean_se(res.mse).mean);
    set("noisy_error_mean", b.mean);
    set("noisy_error_se", b.se);
    set("active_mean", a.mean);
    set("energy_mean", en.mean);
    set("seconds", res.seconds);
    f.create_group("/images");
    f.write("/images/error", res.error, {n});
    f.write("/images/mse", res.mse, {n});
    f.write("/images/noisy_error", res.noisy_error, {n});
    f.write("/images/active", res.active, {n});
    f.write("/images/energy", res.energy, {n});
    f.write("/images/iterations", res.iterations, {n});
    if (!res.gap.empty())
      f.write("/images/gap", res.gap, {n});
    if (!res.response.empty()) {
      f.write("/images/response", res.response, {n});
      set("response_epsilon", rec.config.response_epsilon);
      set("response_mean", mean_se(res.response).mean);
    }
    if (rec.config.keep_codes) {
      const auto nnz = res.codes.value.size();
      f.create_group("/codes");
      f.set_attribute("/codes", "layout", "neuron = (feature * H/s + y) * W/s + x");
      f.set_attribute("/codes", "positions_y", std::int64_t(rec.geometry.out_h()));
      f.set_attribute("/codes", "positions_x", std::int64_t(rec.geometry.out_w()));
      f.write("/codes/image", res.codes.image, {nnz});
      f.write("/codes/neuron", res.codes.neuron, {nnz});
      f.write("/codes/value", res.codes.value, {nnz});
    }
  });
}

} // namespace lca
