#pragma once
// Support polishing (soft presets), private to the kernel layer: one round of conjugate
// gradient on the problem restricted to each masked image's working set, signs kept, then
// scored by the certificate. Every buffer is allocated once per batch size (allocate), so a
// round allocates nothing; per-image scalars go through preallocated host mirrors.
#include "certificate.hpp"
#include "lca/solver.hpp"
#include "per_image.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace lca::Impl {

/// Polishing's buffers for a batch of `batch` images, on the instance.
template <class Scalar, class Device, class Layout, class Exec>
void allocate(const Exec& space, const Geometry& geom, int batch,
              PolishBuffers<Scalar, Device, Layout>& pb) {
  using Matrix = typename Views<Scalar, Device, Layout>::Matrix;
  const int n = batch * geom.positions(), nf = geom.nf;
  pb.support = Matrix(alloc(space, "lca::LcaSolver::A_check"), n, nf);
  pb.r = Matrix(scratch(space, "lca::LcaSolver::cg_r"), n, nf);
  pb.p = Matrix(scratch(space, "lca::LcaSolver::cg_p"), n, nf);
  pb.q = Matrix(scratch(space, "lca::LcaSolver::cg_q"), n, nf);
  pb.saved = Matrix(scratch(space, "lca::LcaSolver::A_save"), n, nf);
  pb.sign = Matrix(scratch(space, "lca::LcaSolver::cg_sign"), n, nf);
  pb.alpha = per_image<Scalar, Device>(space, "lca::LcaSolver::alpha", batch);
  pb.beta = per_image<Scalar, Device>(space, "lca::LcaSolver::cg_beta", batch);
  pb.mask = per_image<int, Device>(space, "lca::LcaSolver::mask", batch);
  pb.keep = per_image<int, Device>(space, "lca::LcaSolver::keep", batch);
  pb.dot = per_image<double, Device>(space, "lca::LcaSolver::masked_dot", batch);
}

/// The images to polish: those whose support barely moved since the last check (at most
/// `slack` of its active neurons, or one; measures m from a support-tracking measure), not
/// converged and not tried on this support (a retry would give the same result). Counts the
/// ready and the unconverged images.
template <class H>
std::vector<int> polish_mask(const H& m, const std::vector<double>& gap, double eps, double slack,
                             std::vector<int>& tried, int& ready, int& open) {
  std::vector<int> mask(gap.size(), 0);
  for (std::size_t b = 0; b < gap.size(); ++b) {
    const double moved = m(b, Measure::changes), active = m(b, Measure::nnz);
    if (moved > 0)
      tried[b] = 0;
    mask[b] = gap[b] > eps && !tried[b] && active > 0 && moved <= std::max(1.0, slack * active);
    ready += mask[b];
    open += gap[b] > eps;
  }
  return mask;
}

/// Per masked image, <X, Y> over its working set (the nonzero signs).
template <class Exec, class Scalar, class Device, class Layout, class Matrix>
std::vector<double> masked_dot(const Exec& space, const PolishBuffers<Scalar, Device, Layout>& pb,
                               int npos, const Matrix& X, const Matrix& Y) {
  using team_policy = Kokkos::TeamPolicy<Exec>;
  using member = typename team_policy::member_type;
  const int nf = int(X.extent(1));
  const auto S = pb.sign;
  const auto mask = pb.mask.d;
  const auto out = pb.dot.d;
  Kokkos::parallel_for(
      "lca::LcaSolver::masked_dot", team_policy(space, int(out.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const member& team) {
        const int b = team.league_rank();
        double d = 0;
        if (mask(b))
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, npos * nf),
              [&](int t, double& s) {
                const std::int64_t pos = std::int64_t(b) * npos + t / nf;
                const int m = t % nf;
                if (S(pos, m) != Scalar(0))
                  s += double(X(pos, m)) * double(Y(pos, m));
              },
              d);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { out(b) = d; });
      });
  return download(space, pb.dot);
}

/// The working set W of a masked image: its support, plus the neurons whose drive breaks
/// the dual constraint (|G| > lambda; G > lambda for non-negative codes) with the sign of
/// their drive, as working-set LASSO solvers do. Restricted to W with those signs, the
/// energy is least squares: Phi_W^T Phi_W a_W = Phi_W^T x - lambda sign_W; CG starts from
/// a_W (violators at 0), whose residual is G - lambda sign on W. a is saved for a rollback.
template <class Exec, class Scalar, class Device, class Layout, class Matrix>
void cg_start(const Exec& space, const PolishBuffers<Scalar, Device, Layout>& pb, int npos,
              const Matrix& A, const Matrix& G, const Transfer& transfer) {
  const Scalar lambda = Scalar(transfer.lambda);
  const bool symmetric = transfer.symmetric;
  const auto S = pb.saved, Sg = pb.sign, R = pb.r, P = pb.p;
  const auto mask = pb.mask.d;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_start",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        const Scalar a = A(pos, m), g = G(pos, m);
        S(pos, m) = a;
        Scalar sign = 0;
        if (mask(pos / npos)) {
          if (a != Scalar(0))
            sign = a > Scalar(0) ? Scalar(1) : Scalar(-1);
          else if (g > lambda)
            sign = Scalar(1);
          else if (symmetric && g < -lambda)
            sign = Scalar(-1);
        }
        Sg(pos, m) = sign;
        const Scalar r = sign != Scalar(0) ? g - sign * lambda : Scalar(0);
        R(pos, m) = r;
        P(pos, m) = r;
      });
}

/// a += alpha p, r -= alpha q on the working sets.
template <class Exec, class Scalar, class Device, class Layout, class Matrix>
void cg_step(const Exec& space, const PolishBuffers<Scalar, Device, Layout>& pb, int npos,
             const Matrix& A, const std::vector<double>& alpha) {
  upload(space, pb.alpha, alpha);
  const auto S = pb.sign, R = pb.r, P = pb.p, Q = pb.q;
  const auto al = pb.alpha.d;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_step",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        if (S(pos, m) == Scalar(0))
          return;
        const Scalar step = al(pos / npos);
        A(pos, m) += step * P(pos, m);
        R(pos, m) -= step * Q(pos, m);
      });
}

/// p = r + beta p on the working sets.
template <class Exec, class Scalar, class Device, class Layout>
void cg_direction(const Exec& space, const PolishBuffers<Scalar, Device, Layout>& pb, int npos,
                  const std::vector<double>& beta) {
  upload(space, pb.beta, beta);
  const auto S = pb.sign, R = pb.r, P = pb.p;
  const auto be = pb.beta.d;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_direction",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {S.extent(0), S.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        if (S(pos, m) != Scalar(0))
          P(pos, m) = R(pos, m) + be(pos / npos) * P(pos, m);
      });
}

/// project: keep the sign pattern of the working set (a sign change goes to 0, the LASSO's
/// own answer for a coordinate whose restricted optimum crosses zero). Else: accepted images
/// keep the polished code (LCA gets V on its threshold line when lca), rejected ones get the
/// saved code back.
template <class Exec, class Scalar, class Device, class Layout, class Matrix>
void cg_finish(const Exec& space, const PolishBuffers<Scalar, Device, Layout>& pb, int npos,
               const Matrix& A, const Matrix& Vm, Scalar lambda, bool lca,
               const std::vector<int>& accept, bool project) {
  if (!project)
    upload(space, pb.keep, accept);
  const auto S = pb.saved, Sg = pb.sign;
  const auto keep = pb.keep.d;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_finish",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        const Scalar sign = Sg(pos, m);
        if (project) {
          const Scalar a = A(pos, m);
          if (sign != Scalar(0) && (a == Scalar(0) || (sign > Scalar(0)) != (a > Scalar(0))))
            A(pos, m) = Scalar(0);
        } else if (!keep(pos / npos)) {
          A(pos, m) = S(pos, m);
        } else if (lca && sign != Scalar(0)) {
          const Scalar a = A(pos, m);
          Vm(pos, m) = a > Scalar(0) ? a + lambda : a < Scalar(0) ? a - lambda : Scalar(0);
        }
      });
}

/// One polishing round on the images with mask[b] (code A, drive G, potentials Vm): CG on
/// the restricted problem, signs kept; an image keeps the result only if its gap (updated)
/// shrank. apply(p, q) forms q = Phi^T Phi p; refresh() brings the residual, drive, active
/// lists and measures to the current code; certify(b) reads image b's certificate from the
/// last measures. Leaves them at the resulting code. Returns the CG iterations.
template <class Exec, class Scalar, class Device, class Layout, class Matrix, class Apply,
          class Refresh, class Certify>
int polish(const Exec& space, const PolishBuffers<Scalar, Device, Layout>& pb, const Geometry& geom,
           const LcaParams& params, int max_iterations, const Matrix& A, const Matrix& G,
           const Matrix& Vm, const std::vector<int>& mask, std::vector<double>& gap,
           std::vector<int>& accepted, const Apply& apply, const Refresh& refresh,
           const Certify& certify) {
  Region region("lca::LcaSolver::polish");
  const int B = int(mask.size()), npos = geom.positions();
  upload(space, pb.mask, mask);
  cg_start(space, pb, npos, A, G, params.transfer);
  std::vector<double> rs = masked_dot(space, pb, npos, pb.r, pb.r), rs0 = rs;
  const std::vector<double> aa = masked_dot(space, pb, npos, A, A);
  // CG goes as far as the certificate needs: r_S = (G - lambda sign a)_S enters the gap
  // through <a_S, r_S> and through max G - lambda (the dual rescaling), so an image is done
  // when |r_S| <= eps lambda / 4 and |a_S| |r_S| <= eps P / 4 (or at rounding level).
  const double eps = params.stop_gap, lambda = params.transfer.lambda;
  const double floor2 = std::is_same<Scalar, float>::value ? 1e-10 : 1e-20;
  const auto going = [&](int b) {
    if (!mask[b])
      return false;
    const double r = std::sqrt(rs[b]), primal = certify(b).primal;
    const bool enough = r <= 0.25 * eps * lambda && std::sqrt(aa[b]) * r <= 0.25 * eps * primal;
    return !enough && rs[b] > floor2 * rs0[b];
  };
  int it = 0;
  for (; it < max_iterations; ++it) {
    std::vector<int> run(B, 0);
    bool any = false;
    for (int b = 0; b < B; ++b)
      any |= (run[b] = going(b)) != 0;
    if (!any)
      break;
    apply(pb.p, pb.q);
    const std::vector<double> pq = masked_dot(space, pb, npos, pb.p, pb.q);
    std::vector<double> alpha(B, 0.0), beta(B, 0.0);
    for (int b = 0; b < B; ++b)
      if (run[b] && pq[b] > 0)
        alpha[b] = rs[b] / pq[b];
    cg_step(space, pb, npos, A, alpha);
    const std::vector<double> rs_new = masked_dot(space, pb, npos, pb.r, pb.r);
    for (int b = 0; b < B; ++b)
      if (alpha[b] != 0) {
        beta[b] = rs_new[b] / rs[b];
        rs[b] = rs_new[b];
      }
    cg_direction(space, pb, npos, beta);
  }
  // Keep the signs, then score: an image keeps its polished code only if its gap shrank.
  const bool lca = params.solver == "lca";
  cg_finish(space, pb, npos, A, Vm, Scalar(lambda), lca, mask, true);
  refresh();
  std::vector<int> accept(B, 0);
  bool rejected = false;
  for (int b = 0; b < B; ++b)
    if (mask[b]) {
      const double g = certify(b).gap;
      accept[b] = g < gap[b];
      rejected |= !accept[b];
      if (accept[b])
        gap[b] = g;
    }
  cg_finish(space, pb, npos, A, Vm, Scalar(lambda), lca, accept, false);
  if (rejected)
    refresh();
  accepted = accept;
  return it;
}

} // namespace lca::Impl
