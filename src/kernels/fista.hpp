#pragma once
// FISTA (algorithm.md §9), private to the kernel layer: the momentum step fused with the
// active lists, the buffers it needs, and the power iteration on the operator that estimates
// its Lipschitz constant ||Phi^T Phi|| (one image slot, no second solver).
#include "conv.hpp"
#include "lca/random.hpp"
#include "lca/solver.hpp"
#include "per_image.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lca::Impl {

/// FISTA's step (algorithm.md §9), fused with the active lists like the LCA update: from
/// y = a + beta (a - a_prev) with gradient G + beta (G - G_prev) (linearity: Phi y is never
/// formed), a_new = prox(y + G_y / L). a_new goes into A_prev's storage; the caller swaps.
/// Each position also sums <y - a_new, a_new - a>, the gradient restart's test. Images with
/// open(b) == 0 (certified) keep their code: float steps would move a certified code by
/// rounding, and below ~1e-6 out of its certificate again.
template <class Scalar, class Matrix, class IndexMatrix, class IndexVector, class BetaView,
          class TurnView, class OpenView>
struct FistaStep {
  Matrix A, A_prev, G, G_prev, val;
  IndexMatrix idx;
  IndexVector cnt;
  BetaView beta;
  TurnView turn;
  OpenView open;
  Scalar inv_l, threshold;
  bool symmetric;
  int nf, npos;
  KOKKOS_INLINE_FUNCTION void operator()(int pos, std::int64_t& active) const {
    const Scalar be = beta(pos / npos);
    const bool moves = open(pos / npos) != 0;
    int n = 0;
    double t = 0;
    for (int m = 0; m < nf; ++m) {
      const Scalar a = A(pos, m), g = G(pos, m);
      const Scalar y = a + be * (a - A_prev(pos, m));
      const Scalar z = y + inv_l * (g + be * (g - G_prev(pos, m)));
      const Scalar a_new = !moves                        ? a
                           : z > threshold               ? z - threshold
                           : symmetric && z < -threshold ? z + threshold
                                                         : Scalar(0);
      A_prev(pos, m) = a_new;
      t += moves ? double(y - a_new) * double(a_new - a) : 0.0;
      if (a_new != Scalar(0)) {
        idx(pos, n) = m;
        val(pos, n) = a_new;
        ++n;
      }
    }
    cnt(pos) = n;
    turn(pos) = t;
    active += n;
  }
};

/// FISTA's per-image momentum: t_k, t_{k-1}, the last energy and beta. The momentum
/// restarts by O'Donoghue and Candes' gradient test (turned()): on real dictionaries it
/// certifies 1e-3 in half the iterations of their function-value test, which restarts
/// late, on the energy's rounding-level rises near the optimum. The energy still guards
/// the step: a rise by more than `slack` (relative: rounding is not a rise) restarts too.
struct Momentum {
  std::vector<double> t, t_prev, e_prev, beta;
  explicit Momentum(int batch)
      : t(batch, 1.0), t_prev(batch, 1.0), e_prev(batch, 0.0), beta(batch, 0.0) {}
  void restart(int b) { t[b] = t_prev[b] = 1.0, beta[b] = 0.0, e_prev[b] = 0.0; }
  /// The last step's restart sums <y - a_new, a_new - a>: a positive one means the
  /// momentum carried the code against the descent direction, so the next step starts over.
  void turned(const std::vector<double>& turn) {
    for (std::size_t b = 0; b < t.size(); ++b)
      if (turn[b] > 0)
        t[b] = t_prev[b] = 1.0;
  }
  /// The next momenta from this iteration's energies; returns whether 1/L must shrink.
  bool advance(const std::vector<double>& energy, bool first, double slack) {
    bool raise_l = false;
    for (std::size_t b = 0; b < t.size(); ++b) {
      if (!first && e_prev[b] > 0 && energy[b] > e_prev[b] * (1 + slack)) {
        // An unaccelerated step (the last beta 0) can only raise the energy if 1/L is
        // too long.
        raise_l |= beta[b] == 0.0;
        t[b] = t_prev[b] = 1.0;
      }
      beta[b] = (t_prev[b] - 1) / t[b];
      t_prev[b] = t[b];
      t[b] = 0.5 * (1 + std::sqrt(1 + 4 * t[b] * t[b]));
      e_prev[b] = energy[b];
    }
    return raise_l;
  }
};

/// FISTA's buffers for a batch of `batch` images, allocated on the instance (zeroed: the
/// first step has no previous code).
template <class Scalar, class Device, class Layout, class Exec>
void allocate(const Exec& space, const Geometry& geom, int batch,
              FistaBuffers<Scalar, Device, Layout>& f) {
  using Matrix = typename Views<Scalar, Device, Layout>::Matrix;
  const int n = batch * geom.positions();
  f.a_prev = Matrix(alloc(space, "lca::LcaSolver::A_prev"), n, geom.nf);
  f.g_prev = Matrix(alloc(space, "lca::LcaSolver::G_prev"), n, geom.nf);
  f.beta = per_image<Scalar, Device>(space, "lca::LcaSolver::beta", batch);
  f.turn_rows = Kokkos::View<double*, Device>(scratch(space, "lca::LcaSolver::turn_rows"), n);
  f.turn = per_image<double, Device>(space, "lca::LcaSolver::turn", batch);
}

/// The power iteration's one-image buffers (once per geometry) and its start, a portable
/// pseudo-random image, filled once.
template <class Scalar, class Device, class Layout, class Exec>
void allocate_power(const Exec& space, const Geometry& geom,
                    FistaBuffers<Scalar, Device, Layout>& f) {
  using V = Views<Scalar, Device, Layout>;
  const int npos = geom.positions(), npix = geom.pixels();
  f.power = typename V::Images(scratch(space, "lca::LcaSolver::power"), 1, npix);
  f.power_start = typename V::Images(scratch(space, "lca::LcaSolver::power_start"), 1, npix);
  f.power_patches =
      typename V::Matrix(scratch(space, "lca::LcaSolver::power_patches"), npos, geom.patch());
  f.power_drive = typename V::Matrix(scratch(space, "lca::LcaSolver::power_drive"), npos, geom.nf);
  f.power_norm = per_image<double, Device>(space, "lca::LcaSolver::power_norms", 1);
  auto h = Kokkos::create_mirror_view(f.power_start);
  for (int t = 0; t < npix; ++t)
    h(0, t) = Scalar(
        double(mix64(hash_combine(std::uint64_t(0), std::uint64_t(t))) >> 11) * 0x1.0p-53 - 0.5);
  Kokkos::deep_copy(space, f.power_start, h);
  space.fence(); // h is a temporary
}

/// One FISTA step with per-image momentum beta and step 1/L = inv_l; a becomes the new
/// code and a_prev the old one (swapped handles), g_prev the drive of the old code. Returns
/// the number of active neurons of the new code and each image's restart sum
/// <y - a_new, a_new - a> (summed in a fixed order: the same restarts on every run).
template <class Exec, class Scalar, class Device, class Layout, class Conv>
std::int64_t fista_update(const Exec& space, FistaBuffers<Scalar, Device, Layout>& f,
                          typename Views<Scalar, Device, Layout>::Matrix& a,
                          typename Views<Scalar, Device, Layout>::Matrix& g, const Conv& conv,
                          const Transfer& transfer, int npos, Scalar inv_l,
                          const std::vector<double>& beta, const Kokkos::View<int*, Device>& open,
                          std::vector<double>& turn) {
  Region region("lca::LcaSolver::fista_update");
  upload(space, f.beta, beta);
  using Matrix = typename Views<Scalar, Device, Layout>::Matrix;
  using Step = FistaStep<Scalar, Matrix, decltype(conv.act_idx), decltype(conv.act_cnt),
                         decltype(f.beta.d), decltype(f.turn_rows), Kokkos::View<int*, Device>>;
  const Step step{a,
                  f.a_prev,
                  g,
                  f.g_prev,
                  conv.act_val,
                  conv.act_idx,
                  conv.act_cnt,
                  f.beta.d,
                  f.turn_rows,
                  open,
                  inv_l,
                  Scalar(inv_l * transfer.lambda),
                  transfer.symmetric,
                  int(a.extent(1)),
                  npos};
  std::int64_t active = 0;
  Kokkos::parallel_reduce("lca::LcaSolver::fista_update",
                          Kokkos::RangePolicy<Exec>(space, 0, int(a.extent(0))), step, active);
  using team_policy = Kokkos::TeamPolicy<Exec>;
  const auto rows = f.turn_rows;
  const auto out = f.turn.d;
  Kokkos::parallel_for(
      "lca::LcaSolver::fista_restart_test", team_policy(space, int(out.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const typename team_policy::member_type& team) {
        const int b = team.league_rank();
        double sum = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, npos),
            [&](int q, double& s) { s += rows(std::int64_t(b) * npos + q); }, sum);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { out(b) = sum; });
      });
  turn = download(space, f.turn);
  std::swap(a, f.a_prev); // a = a_{k+1}, a_prev = a_k
  std::swap(g, f.g_prev); // g_prev = G_k; g is overwritten by the next drive
  return active;
}

/// Power iteration for ||Phi^T Phi|| on one image from the fixed start: |Phi Phi^T v| for
/// unit v converges to it from below. Returns the estimate times a safety margin.
template <class Exec, class Scalar, class Device, class Layout, class Dict>
double power_iteration(const Exec& space, const Geometry& geom, const Dict& d,
                       const FistaBuffers<Scalar, Device, Layout>& f, int iterations) {
  Region region("lca::LcaSolver::estimate_lipschitz");
  using team_policy = Kokkos::TeamPolicy<Exec>;
  using member = typename team_policy::member_type;
  using ConstImages = typename Views<Scalar, Device, Layout>::ConstImages;
  const int npix = geom.pixels();
  Kokkos::deep_copy(space, f.power, f.power_start);
  const auto w = f.power;
  const auto norms = f.power_norm.d;
  for (int it = 0;; ++it) {
    // Normalise for the next product; the norm of the last product is the estimate.
    Kokkos::parallel_for(
        "lca::LcaSolver::power_normalise", team_policy(space, 1, Kokkos::AUTO),
        KOKKOS_LAMBDA(const member& team) {
          const int b = team.league_rank();
          double ss = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, npix),
              [&](int t, double& s) { s += double(w(b, t)) * double(w(b, t)); }, ss);
          const Scalar scale = ss > 0 ? Scalar(1 / device_sqrt(ss)) : Scalar(0);
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, npix),
                               [&](int t) { w(b, t) *= scale; });
          Kokkos::single(Kokkos::PerTeam(team), [&]() { norms(b) = device_sqrt(ss); });
        });
    if (it == iterations)
      break;
    im2col(space, geom, ConstImages(w), f.power_patches);
    drive(space, f.power_patches, d, f.power_drive); // g = Phi^T v
    reconstruct_dense(space, geom, d, f.power_drive, f.power_patches, ConstImages(), w,
                      Scalar(1)); // w = Phi Phi^T v
  }
  // Power iteration approaches from below; the margin keeps 1/L a safe step (FISTA also
  // raises L if an unaccelerated step ever increases the energy).
  return 1.02 * std::max(0.0, download(space, f.power_norm)[0]);
}

} // namespace lca::Impl
