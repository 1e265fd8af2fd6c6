#pragma once
// Exact support solve (issue 20), private to the kernel layer: once FISTA or LCA has found
// (nearly) the right support, solve the LASSO restricted to it directly, so that the
// duality-gap certificate closes instead of creeping down with the iterations.
//
// One round per open image, on the host in double precision whatever Scalar is. Candidates:
// the support {a != 0} and the violators of the dual constraint (|G| > lambda; G > lambda for
// non-negative codes), newcomers signed by their drive. On them, feature-sign search: solve
// Phi_T^T Phi_T delta = G_T - lambda s_T on the working set T (since G = Phi^T x - Phi^T Phi a
// this is the restricted optimality condition Phi_T^T (x - Phi a) = lambda s_T), step to the
// first sign change, drop what reaches 0 and solve again; once exact on T, candidates whose
// drive (kept exact through the Gram) violates rejoin. A round whose code ends with a higher
// energy than it started (bulk steps can, see support.cpp) leaves the code as it was.
// Neurons outside the candidates may violate once the code moved, so only the certificate
// tells whether an image is done: the caller recomputes r = x - Phi a, G = Phi^T r (the
// solver's full convolutions) and the certificate, and runs another round on the images still
// open. On the right support a round leaves Phi_i^T r = lambda s_i on S exactly (to rounding)
// and the gap at the code's true distance.
// The right-hand side is the new residual's each round, so rounds also refine a float code.
//
// The Gram is built from the dictionary's correlation taps: atoms at positions more than
// ceil(k/s) - 1 apart do not overlap, so <phi_(p,f), phi_(q,g)> is taps(q - p, f, g) for two
// untruncated atoms. Atoms at border positions are truncated by the image edge: their entries
// are the products of the clipped atoms, computed directly (44 % of the positions at 3x32x32,
// k 8, s 2: about 0.7 ms per image of 800 neurons, as much as the lookups).
// With the neurons in position order the Gram is banded (bandwidth ~ the neurons of
// ceil(k/s) - 1 rows of positions), so the factorisation is LAPACK's banded Cholesky,
// dpbtrf/dpbtrs: |S| kd^2 flops instead of |S|^3 / 3.
//
// Backends: LAPACK (OpenBLAS ships it) on the host, one image per thread of the host execution
// space (Device's own when it is a host space, so a Serial object runs serially). On a device
// space (CUDA) the codes and drives of the batch are copied to the host through Kokkos mirrors
// and the codes back: a few hundred KB per image, small next to the factorisations. Kokkos
// Kernels 3.4 has no batched Cholesky.
#include "certificate.hpp"
#include "lca/dictionary.hpp"
#include "per_image.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lca {

template <class Scalar, class Device = DefaultDevice,
          class Layout = typename Device::execution_space::array_layout>
class SupportSolve {
public:
  using V = Views<Scalar, Device, Layout>;
  using exec_space = typename V::exec_space;
  using Matrix = typename V::Matrix;
  using Dict = Dictionary<Scalar, Device, Layout>;

  /// What a round did to one image.
  enum class Status {
    idle,      ///< not in the mask
    solved,    ///< exact on its final support, no candidate violates (a = 0 without any)
    capped,    ///< stopped at the factorisations cap: a better code, not exact on S
    raised,    ///< the round's code had a higher energy: the code is left as it was
    too_large, ///< skipped: a factorisation would cost more than max_flops()
    singular   ///< skipped: the candidates' atoms are linearly dependent (Cholesky failed)
  };
  struct Round {
    std::vector<Status> status; ///< per image of the batch
    std::vector<int> support;   ///< candidates: the old support plus the violators
    std::vector<int> violators; ///< candidates outside the old support
    std::vector<int> added;     ///< violators that ended non-zero
    std::vector<int> dropped;   ///< coefficients of the old support that ended at 0
    std::vector<int> solves;    ///< factorisations
  };
  /// A neuron of one image: position (y * out_w + x) and feature.
  struct Neuron {
    int pos, feature;
  };

  /// Factorisations per image and round: each lowers the energy, one or two suffice near
  /// the optimum, and a capped round still returns the better code. A round also stops once
  /// its factorisations together would pass max_flops().
  static constexpr int kMaxSolves = 10;
  /// Solves that drop every sign change at once before the one-at-a-time search (support.cpp).
  static constexpr int kBulkSolves = 2;
  /// A drive counts as a violation above lambda (1 + kViolatorSlack epsilon): not rounding.
  static constexpr double kViolatorSlack = 64;

  /// A banded factorisation costs |S| kd^2 flops, one FISTA or LCA iteration about
  /// 4 * positions * c*k*k * nf per image (the drive GEMM and Phi a): an image whose
  /// factorisation would cost more than max_cost_iterations iterations is skipped.
  explicit SupportSolve(const Geometry& g, double max_cost_iterations = 10,
                        const exec_space& exec = exec_space());

  const Geometry& geometry() const { return geom_; }
  /// The most flops one factorisation may cost (the cap above).
  double max_flops() const { return max_flops_; }

  /// Correlation taps of dict (copied to the host in double), rebuilt only when dict differs
  /// from the one they were built from: call it before every round.
  void set_dictionary(const Dict& dict);

  /// One active-set round on the images b with mask[b] != 0: updates A (B*positions, nf) in
  /// place from the drive G = Phi^T (x - Phi A) of the current A. nonneg: codes a >= 0
  /// (soft-nonneg), else soft. max_add > 0 lets at most that many violators join per image,
  /// those with the largest excess over lambda first (0: all).
  Round round(const Matrix& A, const Matrix& G, double lambda, bool nonneg,
              const std::vector<int>& mask, int max_add = 0);

  /// The Gram Phi_S^T Phi_S of one image's neurons, column-major |S| x |S|, both triangles:
  /// the entries round() factorises (tests).
  std::vector<double> gram(const std::vector<Neuron>& S) const;

private:
  /// The round of one image on host copies of A and G.
  template <class HostA, class HostG>
  void solve_image(int b, const HostA& A, const HostG& G, double lambda, bool nonneg, int max_add,
                   Round& out) const;
  /// <phi_(y,x,f), phi_(y+dy,x+dx,g)>, from the taps for two untruncated atoms.
  double entry(int f, int y, int x, int g, int dy, int dx) const;
  /// The same product summed over the overlap's pixels, inside the image when clip.
  double product(int f, int g, int y, int x, int dy, int dx, bool clip) const;
  bool whole(int y, int x) const { return y >= y_lo_ && y <= y_hi_ && x >= x_lo_ && x <= x_hi_; }
  /// The Gram of neurons sorted by position: set(i, j, entry) for the overlapping pairs
  /// j <= i; start[q] indexes the first neuron at position q or later.
  template <class Set>
  void fill_gram(const std::vector<Neuron>& S, const std::vector<int>& start, const Set& set) const;
  /// The Gram's bandwidth by the positions alone (no products).
  int bandwidth(const std::vector<Neuron>& S, const std::vector<int>& start) const;

  Geometry geom_;
  exec_space exec_;
  int reach_;                     ///< ceil(k/s) - 1: the farthest overlapping offset
  int y_lo_, y_hi_, x_lo_, x_hi_; ///< positions whose atoms lie wholly inside the image
  double max_flops_;
  std::vector<double> dict_; ///< (nf, c*k*k) row-major, double
  std::vector<double> taps_; ///< ((dy, dx), f, g), offsets -reach..reach
  bool ready_ = false;
};

namespace Impl {
/// The support solve's buffers for `batch` images: the code at the last support check (zero:
/// no support yet) and the images whose code the last round set.
template <class Scalar, class Device, class Layout, class Exec>
void allocate(const Exec& space, const Geometry& geom, int batch,
              SupportBuffers<Scalar, Device, Layout>& s) {
  s.support = decltype(s.support)(alloc(space, "lca::LcaSolver::support"), batch * geom.positions(),
                                  geom.nf);
  s.changed = per_image<int, Device>(space, "lca::LcaSolver::support_changed", batch);
}

/// When the support solve runs within one solve. An attempt of up to `max_rounds` rounds
/// starts on the images to solve on their support: not converged, support barely moved since
/// the last check (at most `slack` of its active neurons, or one; measures from a
/// support-tracking measure) and not tried on this support (a retry would give the same
/// result). Each later round takes the images of the attempt still open whose last round
/// solved its candidates exactly (new violators then remain); an image whose round was capped
/// (support far from right: the iterations are the cheaper way on) leaves the attempt. When
/// none is left the attempt ends and its images count as tried. (Coordinate descent moves a
/// support by a neuron or two between checks, so its early, dense supports pass the settling
/// test: training W128 from a random dictionary spent 46 capped rounds per batch, 10x the
/// time, while capped images stayed in their attempts.)
class SupportAttempts {
public:
  SupportAttempts(int batch, int max_rounds, double slack)
      : tried_(batch, 0), attempt_(batch, 0), solved_(batch, 0), max_rounds_(max_rounds),
        slack_(slack) {}

  /// The images of this check's round (none: all zero), from the measures m and the gaps.
  template <class H> std::vector<int> next(const H& m, const std::vector<double>& gap, double eps) {
    const std::size_t B = gap.size();
    std::vector<int> mask(B, 0);
    int ready = 0;
    for (std::size_t b = 0; b < B; ++b) {
      if (rounds_ == 0) {
        const double moved = m(b, Measure::changes), active = m(b, Measure::nnz);
        if (moved > 0)
          tried_[b] = 0;
        mask[b] =
            gap[b] > eps && !tried_[b] && active > 0 && moved <= std::max(1.0, slack_ * active);
      } else if (rounds_ < max_rounds_) {
        mask[b] = attempt_[b] && solved_[b] && gap[b] > eps;
      }
      ready += mask[b];
    }
    if (rounds_ == 0)
      attempt_ = mask;
    else if (ready == 0) { // the attempt ends: no retry on the same support
      for (std::size_t b = 0; b < B; ++b)
        tried_[b] |= attempt_[b];
      rounds_ = 0;
    }
    return mask;
  }
  /// A round ran and solved the images of `solved` exactly on their candidates; true when it
  /// began an attempt.
  bool record(const std::vector<int>& solved) {
    solved_ = solved;
    return rounds_++ == 0;
  }

private:
  std::vector<int> tried_, attempt_, solved_;
  int rounds_ = 0, max_rounds_;
  double slack_;
};
} // namespace Impl

} // namespace lca
