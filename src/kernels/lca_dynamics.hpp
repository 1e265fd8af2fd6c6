#pragma once
// LCA's dynamics (algorithm.md §3), private to the kernel layer: the exponential update of
// the potentials fused with the threshold and the active lists, and the per-image decay
// factors of the fixed or adaptive time scale (AdaptiveTimeScaleController, in
// lca_dynamics.cpp).
#include "lca/solver.hpp"

#include <cmath>
#include <vector>

namespace lca::Impl {

/// Exponential update (PetaVision, selfInteract on), threshold and active list of one
/// position, fused; the second operator also tracks max |dV| for the early stop.
template <class Scalar, class Matrix, class IndexMatrix, class IndexVector, class DecayView>
struct UpdateStep {
  Matrix V, A, G, val;
  IndexMatrix idx;
  IndexVector cnt;
  DeviceTransfer<Scalar> T;
  DecayView decay_of_image;
  int nf, npos;
  KOKKOS_INLINE_FUNCTION Scalar run(int pos) const {
    const Scalar decay = decay_of_image(pos / npos), gain = Scalar(1) - decay;
    int n = 0;
    Scalar dmax = 0;
    for (int m = 0; m < nf; ++m) {
      const Scalar v_old = V(pos, m);
      const Scalar v = decay * v_old + gain * (G(pos, m) + A(pos, m));
      const Scalar a = T(v);
      V(pos, m) = v;
      A(pos, m) = a;
      if (a != Scalar(0)) {
        idx(pos, n) = m;
        val(pos, n) = a;
        ++n;
      }
      const Scalar dv = v > v_old ? v - v_old : v_old - v;
      dmax = dv > dmax ? dv : dmax;
    }
    cnt(pos) = n;
    return dmax;
  }
  KOKKOS_INLINE_FUNCTION void operator()(int pos) const { run(pos); }
  KOKKOS_INLINE_FUNCTION void operator()(int pos, Scalar& dmax) const {
    const Scalar d = run(pos);
    dmax = d > dmax ? d : dmax;
  }
};

/// One LCA update of V and a = T(V) from the drive g, with the decay of each image; rebuilds
/// the active lists. Returns max |dV| when track_dv (a reduction: waits for the instance),
/// else 0.
template <class Exec, class Scalar, class Matrix, class Conv, class Decay>
Scalar lca_update(const Exec& space, const Matrix& v, const Matrix& a, const Matrix& g,
                  const Conv& conv, const DeviceTransfer<Scalar>& transfer, const Decay& decay,
                  int npos, bool track_dv) {
  Region region("lca::LcaSolver::update");
  using Step = UpdateStep<Scalar, Matrix, decltype(conv.act_idx), decltype(conv.act_cnt), Decay>;
  const Step f{
      v, a, g, conv.act_val, conv.act_idx, conv.act_cnt, transfer, decay, int(v.extent(1)), npos};
  const Kokkos::RangePolicy<Exec> policy(space, 0, int(v.extent(0)));
  Scalar dv_max = 0;
  if (track_dv)
    Kokkos::parallel_reduce("lca::LcaSolver::update", policy, f, Kokkos::Max<Scalar>(dv_max));
  else
    Kokkos::parallel_for("lca::LcaSolver::update", policy, f);
  return dv_max;
}

/// LCA's potentials after the support solve set the codes of the images with changed(b):
/// V = a + lambda sign(a) on the support (the soft threshold's inverse), and 0 where a
/// potential above threshold would bring back a neuron the solve dropped.
template <class Exec, class Matrix, class Scalar, class Changed>
void potentials_from_codes(const Exec& space, const Matrix& V, const Matrix& A, Scalar lambda,
                           const Changed& changed, int npos) {
  Kokkos::parallel_for(
      "lca::LcaSolver::potentials_from_codes",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        if (!changed(pos / npos))
          return;
        const Scalar a = A(pos, m), v = V(pos, m);
        if (a != Scalar(0))
          V(pos, m) = a > Scalar(0) ? a + lambda : a - lambda;
        else if (v > lambda || v < -lambda)
          V(pos, m) = Scalar(0);
      });
}

/// The decay exp(-time_step dt / tau) of each image, rounded to the solver's precision.
template <class Scalar>
std::vector<double> decay_factors(const LcaParams& p, const std::vector<double>& time_steps) {
  std::vector<double> decay(time_steps.size());
  for (std::size_t b = 0; b < decay.size(); ++b)
    decay[b] = double(Scalar(std::exp(-time_steps[b] * p.dt / p.tau)));
  return decay;
}

} // namespace lca::Impl
