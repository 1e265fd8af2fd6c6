#pragma once
// The duality-gap certificate (algorithm.md §9) and the per-image statistics, private to the
// kernel layer: one kernel reduces each image's sums (|r|^2, <r, x>, |x|^2, |a|_1, the active
// count, max drive, support changes) into a (B, n_measures) table that comes to the host on
// the instance; certify() turns a row into the certificate (certificate.cpp).
#include "lca/solver.hpp"

#include <type_traits>

namespace lca::Impl {

/// The columns of the measure table.
enum Measure { rr, rx, xx, l1, nnz, gmax, changes, n_measures };
/// What measure() computes beyond rr, rx, l1 and nnz (a bit set).
enum MeasureWhat {
  kDrive = 1,   ///< gmax = max |G| (max G for non-negative codes): call after the drive
  kSupport = 2, ///< changes: support changes against `support`, which then takes the code
  kInput = 4,   ///< xx = |x|^2
};

/// Per-image sums at the current state into M (B, n_measures) on the device, from the
/// residual R, the drive G, the code A and its active lists, against x; the caller copies M
/// to the host. Sums in double, in a fixed order.
template <class Exec, class X, class R, class Matrix, class Conv, class M>
void measure(const Exec& space, const Geometry& geom, bool symmetric, int what, const X& x,
             const R& r, const Matrix& a, const Matrix& g, const Matrix& support, const Conv& conv,
             const M& out) {
  Region region("lca::LcaSolver::measure");
  using Scalar = typename Matrix::value_type;
  using team_policy = Kokkos::TeamPolicy<Exec>;
  using member = typename team_policy::member_type;
  const int npix = geom.pixels(), npos = geom.positions(), nf = geom.nf;
  const bool want_drive = what & kDrive, track_support = what & kSupport,
             want_input = what & kInput;
  // Walk each image's neurons in memory order: position-major on CPUs, feature-major on GPUs.
  const bool rows = std::is_same<typename Matrix::array_layout, Kokkos::LayoutRight>::value;
  const auto val = conv.act_val;
  const auto cnt = conv.act_cnt;
  Kokkos::parallel_for(
      "lca::LcaSolver::measure", team_policy(space, int(out.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const member& team) {
        const int b = team.league_rank();
        const std::int64_t row0 = std::int64_t(b) * npos;
        const auto pos = [&](int t) { return row0 + (rows ? t / nf : t % npos); };
        const auto feat = [&](int t) { return rows ? t % nf : t / npos; };
        const auto pixels = Kokkos::TeamThreadRange(team, npix);
        const auto neurons = Kokkos::TeamThreadRange(team, npos * nf);
        // Kokkos 3.4 has no multi-value nested reductions: one pass per quantity.
        double sum_rr = 0, sum_rx = 0, sum_xx = 0, sum_l1 = 0, count = 0, max_g = 0, moved = 0;
        Kokkos::parallel_reduce(
            pixels, [&](int t, double& s) { s += double(r(b, t)) * double(r(b, t)); }, sum_rr);
        Kokkos::parallel_reduce(
            pixels, [&](int t, double& s) { s += double(r(b, t)) * double(x(b, t)); }, sum_rx);
        if (want_input)
          Kokkos::parallel_reduce(
              pixels, [&](int t, double& s) { s += double(x(b, t)) * double(x(b, t)); }, sum_xx);
        // |a| and the count from the active lists: work in proportion to the active neurons.
        const auto positions = Kokkos::TeamThreadRange(team, npos);
        Kokkos::parallel_reduce(
            positions,
            [&](int q, double& s) {
              for (int u = 0; u < cnt(row0 + q); ++u) {
                const Scalar v = val(row0 + q, u);
                s += v < Scalar(0) ? -double(v) : double(v);
              }
            },
            sum_l1);
        Kokkos::parallel_reduce(
            positions, [&](int q, double& s) { s += double(cnt(row0 + q)); }, count);
        if (want_drive)
          Kokkos::parallel_reduce(
              neurons,
              [&](int t, double& m) {
                Scalar v = g(pos(t), feat(t));
                v = symmetric && v < Scalar(0) ? -v : v;
                m = double(v) > m ? double(v) : m;
              },
              Kokkos::Max<double>(max_g));
        if (track_support) {
          Kokkos::parallel_reduce(
              neurons,
              [&](int t, double& s) {
                const bool now = a(pos(t), feat(t)) != Scalar(0);
                const bool before = support(pos(t), feat(t)) != Scalar(0);
                s += now != before ? 1.0 : 0.0;
              },
              moved);
          team.team_barrier();
          Kokkos::parallel_for(neurons,
                               [&](int t) { support(pos(t), feat(t)) = a(pos(t), feat(t)); });
        }
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          out(b, Measure::rr) = sum_rr;
          out(b, Measure::rx) = sum_rx;
          out(b, Measure::xx) = sum_xx;
          out(b, Measure::l1) = sum_l1;
          out(b, Measure::nnz) = count;
          out(b, Measure::gmax) = max_g;
          out(b, Measure::changes) = moved;
        });
      });
}

/// dst = src element by element, in dst's scalar (LcaSolver::exact_certificates: a float code
/// and images in double), between any two layouts. (A free function: CUDA's device lambdas
/// may not live in a class's private members.)
template <class Exec, class Dst, class Src>
void convert(const Exec& space, const Dst& dst, const Src& src) {
  using T = typename Dst::value_type;
  Kokkos::parallel_for(
      "lca::convert",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0},
                                                   {int(src.extent(0)), int(src.extent(1))}),
      KOKKOS_LAMBDA(int i, int j) { dst(i, j) = T(src(i, j)); });
}

/// The certificate of one image from its row of the measure table, for penalty lambda:
/// theta = r min(1, lambda / max drive) is dual-feasible; with D(theta) = <theta, x> -
/// |theta|^2 / 2 <= P(a*) <= P(a), (P - D) / P bounds the relative distance. (Also in kernels:
/// cd's stopping test.)
KOKKOS_INLINE_FUNCTION Certificate certify(double lambda, double sq_residual,
                                           double residual_dot_input, double l1, double max_drive) {
  Certificate c;
  c.primal = 0.5 * sq_residual + lambda * l1;
  const double s = max_drive > lambda ? lambda / max_drive : 1.0;
  c.dual = s * residual_dot_input - 0.5 * s * s * sq_residual;
  // Rounding can put D a hair above P at the optimum: the gap is reported as 0 then.
  const double gap = c.primal > 0 ? (c.primal - c.dual) / c.primal : 0.0;
  c.gap = gap > 0 ? gap : 0.0;
  return c;
}

/// The certificate of row b of a host measure table.
template <class H> Certificate certify(double lambda, const H& m, int b) {
  return certify(lambda, m(b, Measure::rr), m(b, Measure::rx), m(b, Measure::l1),
                 m(b, Measure::gmax));
}

/// The statistics of a host measure table's first `batch` rows (a kInput measure).
template <class H> BatchStats batch_stats(const H& m, int batch) {
  BatchStats st;
  for (int b = 0; b < batch; ++b) {
    st.sq_residual.push_back(m(b, Measure::rr));
    st.sq_input.push_back(m(b, Measure::xx));
    st.l1.push_back(m(b, Measure::l1));
    st.nnz.push_back(m(b, Measure::nnz));
  }
  return st;
}

} // namespace lca::Impl
