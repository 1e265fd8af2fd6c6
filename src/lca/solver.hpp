#pragma once
// Convolutional LCA inference (algorithm.md §1, §3), written once for every Kokkos backend.
//
// One iteration on a batch of B images (x_in is (B, c*H*W)):
//   1. residual:  R = x_in - Phi a      sparse gather over the active list of each position
//   2. im2col:    P(pos, e) = R patch   (B*positions, c*k*k)
//   3. drive:     G = P D               one GEMM through Kokkos Kernels (OpenBLAS / cuBLAS)
//   4. update:    V <- e V + (1-e)(G + a), a = T(V), and the new active lists, fused
// Dense Phi^T r is a GEMM because that is where the flops are; Phi a only touches active
// neurons (~3 % at the study's sparsities), as PetaVision does.
#include "lca/core.hpp"
#include "lca/dictionary.hpp"
#include "lca/params.hpp"

#include <vector>

namespace lca {

/// Per-image quantities at the current state (host).
struct BatchStats {
  std::vector<double> sq_residual; ///< ||x_ref - Phi a||^2
  std::vector<double> sq_input;    ///< ||x_ref||^2
  std::vector<double> l1;          ///< sum |a|
  std::vector<double> nnz;         ///< number of a != 0
  /// Energy of algorithm.md §3 for image b with penalty of transfer t.
  double energy(std::size_t b, const Transfer& t) const;
  /// 100 * ||x_ref - Phi a|| / ||x_ref||  (0 for an all-zero image)
  double percent_error(std::size_t b) const;
};

/// Transfer function on the device, in the solver's precision.
template <class Scalar> struct DeviceTransfer {
  Scalar vthresh, amin, amax, ashift, vwidth;
  bool symmetric;
  explicit DeviceTransfer(const Transfer& t);
  KOKKOS_INLINE_FUNCTION Scalar operator()(Scalar v) const {
    const bool neg = symmetric && v < Scalar(0);
    const Scalar u = neg ? -v : v;
    Scalar a;
    if (u < vthresh) {
      a = amin;
    } else if (u < vthresh + vwidth) { // linear ramp from (VThresh, AMin) to the shifted line
      const Scalar top = vthresh + vwidth - ashift;
      a = amin + (top - amin) * (u - vthresh) / vwidth;
    } else {
      a = u - ashift;
    }
    if (a > amax)
      a = amax; // amax may be +inf
    return neg ? -a : a;
  }
};

template <class Scalar, class Space = Kokkos::DefaultExecutionSpace> class LcaSolver {
public:
  using V = Views<Scalar, Space>;
  using exec_space = typename V::exec_space;
  using Matrix = typename V::Matrix;
  using Images = typename V::Images;
  using ConstImages = typename V::ConstImages;

  LcaSolver(const Geometry& g, const LcaParams& p);

  const Geometry& geometry() const { return geom_; }
  const LcaParams& params() const { return params_; }
  void set_lambda_transfer(const Transfer& t); ///< e.g. lca-denoise's lambda override

  /// Start a batch of `batch` images: V = 0, a = 0 (algorithm.md §3). Allocates only when
  /// the batch size changes.
  void reset(int batch);
  int batch() const { return batch_; }

  /// Run params().iterations steps (or fewer with early stop) on x_in and finish with the
  /// residual of the final activity, so residual(), patches() and activities() are
  /// consistent for learning. Returns the number of iterations run.
  int solve(const Dictionary<Scalar, Space>& dict, const ConstImages& x_in);
  /// One LCA iteration (steps 1-4); returns max |dV| when track_dv, else 0.
  Scalar step(const Dictionary<Scalar, Space>& dict, const ConstImages& x_in, bool track_dv);
  /// R = x - Phi a for the current activity (also refreshes patches()).
  void compute_residual(const Dictionary<Scalar, Space>& dict, const ConstImages& x);
  /// Per-image statistics of residual() against x_ref (call compute_residual(x_ref) first).
  BatchStats stats(const ConstImages& x_ref) const;

  const Matrix& potentials() const { return v_; } ///< (B*positions, nf)
  const Matrix& activities() const { return a_; } ///< (B*positions, nf)
  const Images& residual() const { return r_; }   ///< (B, c*H*W)
  const Matrix& patches() const { return p_; }    ///< (B*positions, c*k*k), im2col of residual()
  const Matrix& drive() const { return g_; }      ///< (B*positions, nf), Phi^T r of the last step

  /// Overwrite the activity (tests, warm starts); rebuilds the active lists.
  void set_activities(const Matrix& a);

  // Building blocks, public for the tests and benchmarks (and because CUDA lambdas cannot
  // live in private member functions).
  void
  reconstruct(const Dictionary<Scalar, Space>& dict, const ConstImages& x, const Images& out,
              Scalar sign) const; ///< out = x + sign * Phi a (x may be empty: out = sign Phi a)
  void im2col(const ConstImages& r);
  void apply_drive(const Dictionary<Scalar, Space>& dict); ///< g = patches * D
  Scalar update(bool track_dv);
  void rebuild_active_lists();

private:
  Geometry geom_;
  LcaParams params_;
  DeviceTransfer<Scalar> transfer_;
  int batch_ = 0;
  Matrix v_, a_, g_, p_;
  Images r_;
  typename V::IndexMatrix act_idx_; ///< (B*positions, nf): active features of each position
  Matrix act_val_;                  ///< their activities
  typename V::IndexVector act_cnt_; ///< (B*positions)
  /// The dictionary as rows (nf, c*k*k), refreshed by reconstruct().
  Kokkos::View<Scalar**, Kokkos::LayoutRight, typename V::memory_space> dt_;
};

} // namespace lca
