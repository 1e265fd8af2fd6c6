// LcaSolver: the orchestration of one batch's solve (algorithm.md §3, §9) over the
// algorithms of this folder: conv.hpp (the operator Phi), lca_dynamics.hpp (LCA's update and
// time scale), fista.hpp (FISTA and its Lipschitz estimate), cd.hpp (coordinate descent),
// certificate.hpp (the per-image sums, the certificate and the statistics) and support.hpp
// (the exact support solve). It owns their buffers, allocated once per batch size on its
// instance.
#include "lca/solver.hpp"

#include "cd.hpp"
#include "certificate.hpp"
#include "codes.hpp"
#include "conv.hpp"
#include "fista.hpp"
#include "lca/error.hpp"
#include "lca_dynamics.hpp"
#include "per_image.hpp"
#include "support.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

namespace lca {

namespace {
/// Whether every image above eps, at the rate its gap fell from `before` to `gap` over
/// `sweeps` sweeps, reaches eps within `left` more (a linear rate: cd's gap falls about
/// geometrically once the support has settled).
bool reaches(const std::vector<double>& gap, const std::vector<double>& before, int sweeps,
             int left, double eps) {
  for (std::size_t b = 0; b < gap.size(); ++b) {
    if (gap[b] <= eps)
      continue;
    if (!(gap[b] < before[b]))
      return false;
    const double rate = std::log(before[b] / gap[b]) / sweeps; // per sweep
    if (std::log(gap[b] / eps) / rate > left)
      return false;
  }
  return true;
}
} // namespace

template <class Scalar, class Device, class Layout>
LcaSolver<Scalar, Device, Layout>::LcaSolver(const Geometry& g, const LcaParams& p,
                                             const exec_space& exec)
    : geom_((validate(g), g)), params_((validate(p), p)), exec_(exec), transfer_(p.transfer) {
  params_ = resolve_solver(
      p, !Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Device::memory_space>::accessible,
      cd_table_bytes(g, sizeof(Scalar)));
  fallback_ = p.solver == Solver::automatic && params_.solver == Solver::cd;
  conv_.rows =
      decltype(conv_.rows)(scratch(exec, "lca::LcaSolver::dictionary_rows"), g.nf, g.patch());
}

LcaParams resolve_solver(const LcaParams& p, const Geometry& g) {
  using Memory = DefaultDevice::memory_space;
  return resolve_solver(p, !Kokkos::SpaceAccessibility<Kokkos::HostSpace, Memory>::accessible,
                        cd_table_bytes(g, sizeof(float)));
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::set_lambda_transfer(const Transfer& t) {
  transfer_ = DeviceTransfer<Scalar>(t);
  params_.transfer = t;
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::reset(int batch) {
  if (batch < 1)
    throw InvalidArgument("batch size must be >= 1 (got " + std::to_string(batch) + ")");
  // auto's fallback (solve) needs fista's and the support solve's buffers beside cd's.
  const bool fista = params_.solver == Solver::fista || fallback_,
             polishing = params_.stop_gap > 0 && (params_.polish || fallback_);
  if (batch != batch_) {
    const int n = batch * geom_.positions(), nf = geom_.nf;
    // Buffers that every iteration overwrites before reading skip the zero fill.
    v_ = Matrix(alloc(exec_, "lca::LcaSolver::V"), n, nf);
    a_ = Matrix(alloc(exec_, "lca::LcaSolver::A"), n, nf);
    g_ = Matrix(scratch(exec_, "lca::LcaSolver::G"), n, nf);
    r_ = Images(scratch(exec_, "lca::LcaSolver::R"), batch, geom_.pixels());
    Impl::allocate(exec_, geom_, batch, conv_);
    a_h_ = Kokkos::create_mirror_view(a_);
    decay_ = Impl::per_image<Scalar, Device>(exec_, "lca::LcaSolver::decay", batch);
    all_images_ = Impl::per_image<int, Device>(exec_, "lca::LcaSolver::all_images", batch);
    Impl::upload(exec_, all_images_, std::vector<int>(batch, 1));
    if (fista)
      Impl::allocate(exec_, geom_, batch, fista_);
    if (fista && fista_.power.extent(0) == 0)
      Impl::allocate_power(exec_, geom_, fista_);
    if (polishing)
      Impl::allocate(exec_, geom_, batch, support_buffers_);
    if (params_.solver == Solver::cd || fista)
      open_ = Impl::per_image<int, Device>(exec_, "lca::LcaSolver::open", batch);
    if (params_.solver == Solver::cd) {
      cd_rr_ = Impl::per_image<double, Device>(exec_, "lca::LcaSolver::cd_rr", batch);
      cd_sweeps_ = Impl::per_image<int, Device>(exec_, "lca::LcaSolver::cd_sweeps", batch);
      cd_bar_ = Impl::per_image<double, Device>(exec_, "lca::LcaSolver::cd_bar", batch);
    }
    if (params_.solver == Solver::cd && !cd_)
      cd_ = std::make_shared<CoordinateDescent<Scalar, Device, Layout>>(geom_, exec_);
    if (polishing && !support_)
      support_ = std::make_shared<SupportSolve<Scalar, Device, Layout>>(
          geom_, kSupportCostIterations, exec_);
    measures_ =
        decltype(measures_)(scratch(exec_, "lca::LcaSolver::measures"), batch, Impl::n_measures);
    measures_h_ = Kokkos::create_mirror_view(measures_);
    batch_ = batch;
  } else {
    Kokkos::deep_copy(exec_, v_, Scalar(0));
    Kokkos::deep_copy(exec_, a_, Scalar(0));
    Kokkos::deep_copy(exec_, conv_.act_cnt, 0);
    if (fista) {
      Kokkos::deep_copy(exec_, fista_.a_prev, Scalar(0));
      Kokkos::deep_copy(exec_, fista_.g_prev, Scalar(0));
    }
    if (polishing)
      Kokkos::deep_copy(exec_, support_buffers_.support, Scalar(0));
  }
  set_decay(std::vector<double>(batch, 1.0));
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::set_decay(const std::vector<double>& time_steps) {
  Impl::upload(exec_, decay_, Impl::decay_factors<Scalar>(params_, time_steps));
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::reconstruct(const Dict& dict, const ConstImages& x,
                                                    const Images& out, Scalar sign) {
  if (out.extent(0) != std::size_t(batch_) || out.extent(1) != std::size_t(geom_.pixels()) ||
      (x.extent(0) != 0 && (x.extent(0) != out.extent(0) || x.extent(1) != out.extent(1))))
    throw InvalidArgument("reconstruct: image views do not match the batch");
  Impl::transpose_dictionary(exec_, dict.matrix(), conv_.rows);
  Impl::scatter(exec_, geom_, conv_.rows, conv_.act_idx, conv_.act_val, conv_.act_cnt, x, out,
                sign);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::reconstruct_dense(const Dict& dict, const Matrix& a,
                                                          const ConstImages& x, const Images& out,
                                                          Scalar sign) {
  Impl::reconstruct_dense(exec_, geom_, dict.matrix(), a, conv_.patches, x, out, sign);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::im2col(const ConstImages& r) {
  Impl::im2col(exec_, geom_, r, conv_.patches);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::apply_drive(const Dict& dict) {
  Impl::drive(exec_, conv_.patches, dict.matrix(), g_);
}

template <class Scalar, class Device, class Layout>
Scalar LcaSolver<Scalar, Device, Layout>::update(bool track_dv) {
  return Impl::lca_update(exec_, v_, a_, g_, conv_, transfer_, decay_.d, geom_.positions(),
                          track_dv);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::rebuild_active_lists(const Matrix& from) {
  Impl::rebuild_active_lists(exec_, from, conv_.act_idx, conv_.act_val, conv_.act_cnt);
}

template <class Scalar, class Device, class Layout>
std::int64_t LcaSolver<Scalar, Device, Layout>::active_count() const {
  return Impl::active_count(exec_, conv_.act_cnt);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::choose_reconstruction(std::int64_t active) {
  use_dense(Impl::dense_is_cheaper(active, double(batch_) * geom_.neurons(), kDenseDensity));
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::set_activities(const Matrix& a) {
  if (a.extent(0) != a_.extent(0) || a.extent(1) != a_.extent(1))
    throw InvalidArgument("set_activities: shape does not match the batch");
  Kokkos::deep_copy(exec_, a_, a);
  rebuild_active_lists(a_);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::warm_start(const std::vector<const SparseCode*>& codes) {
  if (!is_lasso(params_.transfer))
    throw InvalidArgument("warm starts need a soft threshold (soft-nonneg, soft)");
  if (codes.size() != std::size_t(batch_))
    throw InvalidArgument("warm_start: " + std::to_string(codes.size()) + " codes for a batch of " +
                          std::to_string(batch_));
  exec_.fence(); // on a host space a_h_ is a_ itself, which earlier kernels may still use
  Impl::load_codes(codes, geom_.positions(), geom_.nf, a_h_);
  Kokkos::deep_copy(exec_, a_, a_h_);
  rebuild_active_lists(a_);
  if (params_.solver == Solver::lca)
    Impl::potentials_from_codes(exec_, v_, a_, Scalar(params_.transfer.lambda), all_images_.d,
                                geom_.positions());
}

template <class Scalar, class Device, class Layout>
std::vector<SparseCode> LcaSolver<Scalar, Device, Layout>::codes() {
  Kokkos::deep_copy(exec_, a_h_, a_);
  exec_.fence();
  return Impl::sparse_codes(a_h_, batch_, geom_.positions(), geom_.nf);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::compute_residual(const Dict& dict, const ConstImages& x) {
  if (conv_.dense)
    reconstruct_dense(dict, a_, x, r_, Scalar(-1));
  else
    reconstruct(dict, x, r_, Scalar(-1));
  im2col(r_);
}

template <class Scalar, class Device, class Layout>
Scalar LcaSolver<Scalar, Device, Layout>::step(const Dict& dict, const ConstImages& x_in,
                                               bool track_dv) {
  compute_residual(dict, x_in);
  apply_drive(dict);
  return update(track_dv);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::measure(const ConstImages& x, int what) {
  Impl::measure(exec_, geom_, params_.transfer.symmetric, what, x, r_, a_, g_,
                support_buffers_.support, conv_, measures_);
  Kokkos::deep_copy(exec_, measures_h_, measures_);
  exec_.fence();
}

template <class Scalar, class Device, class Layout>
Certificate LcaSolver<Scalar, Device, Layout>::certify(int b) const {
  return Impl::certify(params_.transfer.lambda, measures_h_, b);
}

template <class Scalar, class Device, class Layout>
std::vector<Certificate>
LcaSolver<Scalar, Device, Layout>::exact_certificates(const Dict& dict, const ConstImages& x) {
  Region region("lca::LcaSolver::exact_certificates");
  using Exact = LcaSolver<double, Device>;
  if (!exact_) {
    LcaParams p = params_; // a plain solver: only its residual, drive and certificate are used
    p.solver = Solver::lca, p.timescale = Timescale::fixed, p.stop_gap = 0, p.polish = false;
    exact_ = std::make_shared<Exact>(geom_, p, exec_);
    exact_dict_ = std::make_shared<Dictionary<double, Device>>(geom_);
  }
  if (exact_->batch() != batch_) {
    exact_->reset(batch_);
    exact_x_ =
        decltype(exact_x_)(scratch(exec_, "lca::LcaSolver::exact_x"), batch_, geom_.pixels());
    exact_a_ =
        decltype(exact_a_)(scratch(exec_, "lca::LcaSolver::exact_a"), a_.extent(0), geom_.nf);
  }
  exec_.fence();
  exact_dict_->from_host(dict.to_host()); // float values, exactly
  Impl::convert(exec_, exact_x_, x);
  Impl::convert(exec_, exact_a_, a_);
  exec_.fence();
  exact_->set_activities(exact_a_);
  exact_->compute_residual(*exact_dict_, exact_x_);
  exact_->apply_drive(*exact_dict_);
  return exact_->certificate(exact_x_);
}

template <class Scalar, class Device, class Layout>
std::vector<Certificate> LcaSolver<Scalar, Device, Layout>::certificate(const ConstImages& x) {
  if (!is_lasso(params_.transfer))
    throw InvalidArgument("the duality-gap certificate needs a soft threshold (soft-nonneg, soft)");
  measure(x, Impl::kDrive);
  std::vector<Certificate> c;
  for (int b = 0; b < batch_; ++b)
    c.push_back(certify(b));
  return c;
}

template <class Scalar, class Device, class Layout>
BatchStats LcaSolver<Scalar, Device, Layout>::stats(const ConstImages& x_ref) {
  Region region("lca::LcaSolver::stats");
  measure(x_ref, Impl::kInput);
  return Impl::batch_stats(measures_h_, batch_);
}

template <class Scalar, class Device, class Layout>
double LcaSolver<Scalar, Device, Layout>::estimate_lipschitz(const Dict& dict, int iterations) {
  if (fista_.power.extent(0) == 0)
    Impl::allocate_power(exec_, geom_, fista_);
  lipschitz_ = Impl::power_iteration(exec_, geom_, dict.matrix(), fista_, iterations);
  return lipschitz_;
}

template <class Scalar, class Device, class Layout>
std::vector<int> LcaSolver<Scalar, Device, Layout>::support_round(const Dict& dict,
                                                                  const std::vector<int>& mask) {
  Region region("lca::LcaSolver::support_round");
  using Status = typename SupportSolve<Scalar, Device, Layout>::Status;
  const Transfer& tf = params_.transfer;
  support_->set_dictionary(dict);
  const auto r = support_->round(a_, g_, tf.lambda, !tf.symmetric, mask);
  std::vector<int> changed(batch_, 0);
  bool any = false;
  for (int b = 0; b < batch_; ++b) {
    changed[b] = r.status[b] == Status::solved ? 2 : r.status[b] == Status::capped ? 1 : 0;
    any |= changed[b] != 0;
  }
  if (any && params_.solver == Solver::lca) {
    Impl::upload(exec_, support_buffers_.changed, changed);
    Impl::potentials_from_codes(exec_, v_, a_, Scalar(tf.lambda), support_buffers_.changed.d,
                                geom_.positions());
  }
  rebuild_active_lists(a_);
  return changed;
}

template <class Scalar, class Device, class Layout>
SolveInfo LcaSolver<Scalar, Device, Layout>::solve(const Dict& dict, const ConstImages& x_in) {
  const LcaParams asked = params_;
  // One phase: solve_once under p, from the codes a_ holds, after the phases `before` sums
  // (its iterations and rounds counted on from theirs, in the trace too).
  const auto phase = [&](const LcaParams& p, const SolveInfo& before) {
    params_ = p, trace_offset_ = before.iterations;
    try {
      SolveInfo i = solve_once(dict, x_in);
      params_ = asked, trace_offset_ = 0;
      i.iterations += before.iterations, i.polish_iterations += before.polish_iterations;
      i.polishes += before.polishes;
      return i;
    } catch (...) {
      params_ = asked, trace_offset_ = 0;
      throw;
    }
  };
  SolveInfo info;
  const double eps = asked.stop_gap;
  if (asked.solver == Solver::cd && asked.polish && eps > 0) {
    // cd's sweeps are cheapest without the support solve (small moves wait, the maintained
    // gap stops): it approaches without it, and the support solve closes from there.
    LcaParams p = asked;
    p.polish = false, p.stop_gap = std::max(eps, kCdApproachGap);
    info = phase(p, {});
    const bool done = info.unconverged == 0 && eps >= kCdApproachGap;
    const bool stalled = info.unconverged > 0 && fallback_; // fista takes over (below)
    if (!done && !stalled && info.iterations < asked.iterations) {
      p = asked;
      p.iterations = asked.iterations - info.iterations;
      info = phase(p, info);
    }
  } else {
    info = solve_once(dict, x_in);
  }
  if (!fallback_ || info.unconverged == 0)
    return info;
  LcaParams p = asked;
  p.solver = Solver::fista, p.polish = true;
  SolveInfo more = phase(p, info); // from cd's codes, which a_ holds
  more.cd_iterations_before_fista = info.iterations;
  return more;
}

template <class Scalar, class Device, class Layout>
SolveInfo LcaSolver<Scalar, Device, Layout>::solve_once(const Dict& dict, const ConstImages& x_in) {
  Region region("lca::LcaSolver::solve");
  if (x_in.extent(0) != std::size_t(batch_) || x_in.extent(1) != std::size_t(geom_.pixels()))
    throw InvalidArgument("solve: input batch is " + std::to_string(x_in.extent(0)) + "x" +
                          std::to_string(x_in.extent(1)) + ", solver expects " +
                          std::to_string(batch_) + "x" + std::to_string(geom_.pixels()));
  const int B = batch_;
  const Transfer& tf = params_.transfer;
  const bool lasso = is_lasso(tf), fista = params_.solver == Solver::fista,
             cd = params_.solver == Solver::cd;
  const bool adaptive = params_.solver == Solver::lca && params_.timescale == Timescale::adaptive;
  const double eps = params_.stop_gap;
  const bool polishing = eps > 0 && params_.polish;
  const bool track_dv = params_.solver == Solver::lca && params_.stop_tol > 0;
  if (fista)
    estimate_lipschitz(dict, kPowerIterations);
  if (cd) {
    cd_->set_dictionary(dict);
    Impl::upload(exec_, cd_bar_, std::vector<double>(B, 0.0));
  }
  std::optional<AdaptiveTimeScaleController> ats;
  if (adaptive)
    ats.emplace(params_.adaptive, B);
  Impl::Momentum momentum(B);
  std::vector<double> energy(B), gap(B, std::numeric_limits<double>::infinity()), turn(B);
  Impl::SupportAttempts attempts(B, kMaxSupportRounds, kSupportSlack);
  SolveInfo info;
  use_dense(false);
  int cap = params_.iterations, it = 0;
  bool after_polish = false, after_cd = false;
  // Float certificates have a floor near 1e-6 (kExactCertificateBelow).
  const bool exact = std::is_same<Scalar, float>::value && eps > 0 && eps < kExactCertificateBelow;
  std::vector<Certificate> certs; // the last check's
  bool certified = false;         // certs are of the current code
  // auto's early hand-over from cd: the gaps at an earlier check (not the first, at a = 0:
  // the first sweeps fall fastest), and its iteration.
  std::vector<double> judged;
  int judged_at = 0;
  std::vector<int> open(B, 1); // the images above the stop gap at the last check
  bool open_stale = true;      // open_ (the device's) is to be uploaded
  // cd without the support solve stops on its maintained gap, and is checked only then.
  const bool cd_stops = cd && eps > 0 && !polishing;
  for (;;) {
    const bool last = it >= cap;
    const bool check = (eps > 0 || (trace_ && lasso)) &&
                       (last || after_polish || after_cd || it % params_.check_every == 0);
    after_cd = false;
    if (!cd || check || last || it == 0) { // cd keeps its own drive between checks
      compute_residual(dict, x_in);
      apply_drive(dict);
    }
    if (fista || adaptive || check || (last && lasso)) {
      // The energy needs no pass over the drive; only a certificate reads max |G|.
      measure(x_in, (check || last ? Impl::kDrive : 0) |
                        (check && polishing && !after_polish ? Impl::kSupport : 0));
      for (int b = 0; b < B; ++b)
        energy[b] = lca::energy(tf, measures_h_(b, Impl::rr), measures_h_(b, Impl::l1),
                                measures_h_(b, Impl::nnz));
    }
    certified = check;
    if (check) {
      bool all = eps > 0, near = false;
      certs.clear();
      for (int b = 0; b < B; ++b) {
        certs.push_back(certify(b));
        near |= certs[b].gap <= kExactCertificateBelow;
      }
      if (exact && near)
        certs = exact_certificates(dict, x_in);
      for (int b = 0; b < B; ++b) {
        gap[b] = certs[b].gap;
        all &= gap[b] <= eps;
      }
      open_stale = true;
      if (trace_)
        trace_(trace_offset_ + it, info.polish_iterations, certs);
      if (all)
        break;
      if (cd_stops && fallback_ && !last) { // auto: fista takes over where cd stalls
        const bool spans = it - judged_at >= kCdMaxSweeps / 2;
        if (spans && judged_at > 0 && !reaches(gap, judged, it - judged_at, cap - it, eps))
          break;
        if (judged_at == 0 || spans)
          judged = gap, judged_at = it;
      }
      if (polishing && !last) {
        const std::vector<int> mask = attempts.next(measures_h_, gap, eps);
        if (std::any_of(mask.begin(), mask.end(), [](int m) { return m != 0; })) {
          const std::vector<int> changed = support_round(dict, mask);
          for (int b = 0; b < B; ++b)
            if (changed[b]) // restart the momentum from the new code
              momentum.restart(b);
          std::vector<int> solved(B);
          for (int b = 0; b < B; ++b)
            solved[b] = changed[b] == 2;
          info.polishes += attempts.record(solved);
          ++info.polish_iterations;
          after_polish = true; // the top of the loop refreshes and certifies
          continue;
        }
      }
    }
    after_polish = false;
    if (last)
      break;
    if ((cd || fista) && open_stale) { // the images above the stop gap move; certified ones stay
      for (int b = 0; b < B; ++b)
        open[b] = !(gap[b] <= eps);
      Impl::upload(exec_, open_, open);
      open_stale = false;
    }
    if (cd) { // to the next check in one kernel, on the images still open
      std::vector<double> rr(B);
      for (int b = 0; b < B; ++b)
        rr[b] = measures_h_(b, Impl::rr);
      typename CoordinateDescent<Scalar, Device, Layout>::Stop stop;
      stop.bar = cd_bar_.d;
      int n = std::min(cap - it, params_.check_every - it % params_.check_every);
      if (cd_stops) {
        n = std::min(cap - it, kCdMaxSweeps);
        Impl::upload(exec_, cd_rr_, rr);
        stop.gap = eps, stop.rr = cd_rr_.d, stop.sweeps = cd_sweeps_.d;
      }
      cd_->run(a_, g_, tf.lambda, !tf.symmetric, open_.d, n, polishing ? 0.0 : kCdSkip, stop);
      if (cd_stops) { // the slowest open image's sweeps
        const std::vector<double> swept = Impl::download(exec_, cd_sweeps_);
        int most = 0;
        for (int b = 0; b < B; ++b)
          most = open[b] ? std::max(most, int(swept[b])) : most;
        n = most;
        after_cd = true;
      }
      rebuild_active_lists(a_);
      choose_reconstruction(active_count());
      it += n;
      continue;
    }
    if (fista) {
      const bool raise_l = momentum.advance(energy, it == 0, kRestartSlack);
      if (raise_l)
        lipschitz_ *= 1.5;
      // FISTA's early codes are dense, and small lambdas keep them so.
      choose_reconstruction(Impl::fista_update(exec_, fista_, a_, g_, conv_, tf, geom_.positions(),
                                               Scalar(1 / lipschitz_), momentum.beta, open_.d,
                                               turn));
      momentum.turned(turn);
    } else {
      if (adaptive)
        set_decay(ats->update(energy));
      const Scalar dv = update(track_dv);
      if (track_dv && dv < Scalar(params_.stop_tol))
        cap = it + 1; // one more pass at the top computes the final residual
      if ((it + 1) % kDensityEvery == 0)
        choose_reconstruction(active_count());
    }
    ++it;
  }
  info.iterations = it;
  use_dense(false);
  if (lasso) {
    if (!certified) {
      certs.clear();
      for (int b = 0; b < B; ++b)
        certs.push_back(certify(b));
    }
    info.certificates = certs;
    for (const Certificate& c : certs)
      info.unconverged += eps > 0 && c.gap > eps;
  }
  return info;
}

LCA_INSTANTIATE(class, LcaSolver)

} // namespace lca
