#pragma once
// Convolutional sparse-coding inference (algorithm.md §1, §3, §9), written once for every
// Kokkos backend.
//
// One LCA iteration on a batch of B images (x_in is (B, c*H*W)):
//   1. residual:  R = x_in - Phi a      sparse gather over the active list of each position
//   2. im2col:    P(pos, e) = R patch   (B*positions, c*k*k)
//   3. drive:     G = P D               one GEMM through Kokkos Kernels (OpenBLAS / cuBLAS)
//   4. update:    V <- e V + (1-e)(G + a), a = T(V), and the new active lists, fused
// Dense Phi^T r is a GEMM because that is where the flops are; Phi a only touches active
// neurons (~3 % at the study's sparsities), as PetaVision does.
//
// Coordinate descent (soft presets, src/kernels/cd.hpp) keeps the drive G up to date through
// the atoms' overlaps and recomputes it by steps 1-3 only at the gap checks.
//
// FISTA (soft presets) reuses steps 1-3 at the code a_k itself, never at the momentum point
// y_k = a_k + beta (a_k - a_{k-1}): by linearity its gradient is G_k + beta (G_k - G_{k-1}),
// so the scatter stays sparse and the certificate of a_k comes with every iteration.
//
// The certificate (soft presets): per image a dual-feasible point from the residual, its
// dual objective and the relative duality gap (P - D) / P, an upper bound on how far the
// energy is from the optimum. Once an image's support is stable, the exact support solve
// (src/kernels/support.hpp) solves the problem restricted to it directly, so the certificate
// closes at the code's true distance instead of creeping down with the iterations.
#include "lca/core.hpp"
#include "lca/dictionary.hpp"
#include "lca/params.hpp"
#include "lca/sparse_code.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace lca {

/// Energy of algorithm.md §3 for penalty of transfer t: 1/2 |r|^2 + lambda sum|a| (soft) or
/// 1/2 |r|^2 + lambda^2 / 2 ||a||_0 (hard).
double energy(const Transfer& t, double sq_residual, double l1, double nnz);

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

/// --solver auto resolved (params.hpp) for shape g as the apps run it: float on the default
/// device.
LcaParams resolve_solver(const LcaParams& p, const Geometry& g);

/// The duality-gap certificate of one image (soft presets, algorithm.md §9).
struct Certificate {
  double primal = 0; ///< P(a), the energy
  double dual = 0;   ///< D(theta) <= P(a*) for the rescaled residual theta
  double gap = 0;    ///< (P - D) / P >= 0 (0 for an all-zero image)
};

/// What one solve() did.
struct SolveInfo {
  /// Solver iterations: LCA or FISTA steps; for cd, as many coordinate updates per image as
  /// it has code positions.
  int iterations = 0;
  /// Support-solve rounds (each costs about one iteration: a residual, a drive and the
  /// certificate, plus the open images' factorisations).
  int polish_iterations = 0;
  int polishes = 0; ///< support-solve attempts (of up to kMaxSupportRounds rounds)
  /// --solver auto: the cd iterations after which fista took over (0 where it did not).
  int cd_iterations_before_fista = 0;
  /// Per image at the end: the certificate (empty for hard thresholds: no bound exists).
  std::vector<Certificate> certificates;
  int unconverged = 0; ///< images whose gap is above stop_gap at the end (0 without stop_gap)
};

/// OpenPV's AdaptiveTimeScaleController::calcTimesteps (src/components/
/// AdaptiveTimeScaleController.cpp, PetaVision/OpenPV), line for line, per image: the time
/// step is tauFactor * E / (-dE/dt), capped by a maximum that grows by (1 + growthFactor)
/// each time it is hit; both reset to baseMin / baseMax when the energy rises.
class AdaptiveTimeScaleController {
public:
  AdaptiveTimeScaleController(const AdaptiveTimeScale& p, int batch);
  /// Feeds this iteration's energies; returns the time steps to use now.
  const std::vector<double>& update(const std::vector<double>& energies);
  const std::vector<double>& time_scales() const { return scale_; }

private:
  AdaptiveTimeScale p_;
  std::vector<double> scale_, scale_max_, scale_true_;
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

namespace Impl {
// The solver's buffers, one struct per algorithm (src/kernels/<algorithm>.hpp holds the
// kernels, free functions that take the execution-space instance first). Each is allocated
// once per batch size, on the solver's instance; the host mirrors of the small per-image
// vectors are allocated beside them, so no iteration allocates.

/// The operator Phi (conv.hpp): patches, the active lists of the scatter, the dictionary rows.
template <class Scalar, class Device, class Layout> struct ConvBuffers {
  using V = Views<Scalar, Device, Layout>;
  typename V::Matrix patches;      ///< (B*positions, c*k*k), im2col of the residual
  typename V::IndexMatrix act_idx; ///< (B*positions, nf): active features of each position
  typename V::Matrix act_val;      ///< their activities
  typename V::IndexVector act_cnt; ///< (B*positions)
  /// The dictionary as rows (nf, c*k*k), refreshed by every scatter.
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Device> rows;
  bool dense = false; ///< Phi a through GEMM + col2im (dense codes) instead of the scatter
};

/// A per-image vector on the device with its host mirror (uploads and downloads).
template <class T, class Device> struct PerImage {
  Kokkos::View<T*, Device> d;
  typename Kokkos::View<T*, Device>::HostMirror h;
};

/// FISTA (fista.hpp): the previous code and drive, the momentum, and the power iteration's
/// one-image buffers (the operator on its own patches and drive: no second solver).
template <class Scalar, class Device, class Layout> struct FistaBuffers {
  using V = Views<Scalar, Device, Layout>;
  typename V::Matrix a_prev, g_prev; ///< a_{k-1}, G_{k-1}
  PerImage<Scalar, Device> beta;
  Kokkos::View<double*, Device> turn_rows; ///< (B*positions): each position's restart sum
  PerImage<double, Device> turn;           ///< <y - a_new, a_new - a> per image
  typename V::Images power, power_start;   ///< (1, c*H*W): the iterate and its fixed start
  typename V::Matrix power_patches, power_drive;
  PerImage<double, Device> power_norm; ///< extent 1
};

/// The exact support solve's companion: the code at the last support check (certificate.hpp).
template <class Scalar, class Device, class Layout> struct SupportBuffers {
  using V = Views<Scalar, Device, Layout>;
  typename V::Matrix support;
  PerImage<int, Device> changed; ///< images whose code the last round set (LCA's potentials)
};
} // namespace Impl

template <class Scalar, class Device, class Layout> class SupportSolve;
template <class Scalar, class Device, class Layout> class CoordinateDescent;

/// The solver of one batch on Device (a Kokkos::Device), matrices in Layout. Its kernels and
/// BLAS calls run on the execution-space instance it is built with; the dictionary it is given
/// must be ready on that instance (the default instances of one space always are). It
/// orchestrates the algorithms of src/kernels/ (conv, lca_dynamics, fista, certificate,
/// support) and owns their buffers.
template <class Scalar, class Device = DefaultDevice,
          class Layout = typename Device::execution_space::array_layout>
class LcaSolver {
public:
  using V = Views<Scalar, Device, Layout>;
  using exec_space = typename V::exec_space;
  using Dict = Dictionary<Scalar, Device, Layout>;
  using Matrix = typename V::Matrix;
  using Images = typename V::Images;
  using ConstImages = typename V::ConstImages;

  LcaSolver(const Geometry& g, const LcaParams& p, const exec_space& exec = exec_space());

  const exec_space& execution_space() const { return exec_; }
  const Geometry& geometry() const { return geom_; }
  /// The parameters, with --solver auto resolved for this backend and shape (resolve_solver).
  const LcaParams& params() const { return params_; }
  void set_lambda_transfer(const Transfer& t); ///< e.g. lca-denoise's lambda override

  /// Start a batch of `batch` images: V = 0, a = 0 (algorithm.md §3). Allocates only when
  /// the batch size changes.
  void reset(int batch);
  int batch() const { return batch_; }

  /// Run params().iterations steps of params().solver (fewer with stop_tol or stop_gap) on
  /// x_in and finish with the residual and drive of the final activity, so residual(),
  /// patches(), drive() and activities() are consistent for learning and the certificate.
  /// cd with the support solve runs without it to kCdApproachGap (or stop_gap, if larger),
  /// then with it to stop_gap, in the iterations left. With --solver auto resolved to cd,
  /// where cd would leave images above stop_gap at the cap (it can stall on dense codes, ~50 %
  /// active, where fista certifies), fista with the support solve goes on from cd's codes for
  /// as many iterations again; info adds both. cd hands over at the cap, or earlier where an
  /// image's gap, at the rate it fell over the last kCdMaxSweeps sweeps or more, would not
  /// reach stop_gap by the cap.
  SolveInfo solve(const Dict& dict, const ConstImages& x_in);
  /// One LCA iteration (steps 1-4); returns max |dV| when track_dv, else 0.
  Scalar step(const Dict& dict, const ConstImages& x_in, bool track_dv);
  /// R = x - Phi a for the current activity (also refreshes patches()).
  void compute_residual(const Dict& dict, const ConstImages& x);
  /// Per-image statistics of residual() against x_ref (call compute_residual(x_ref) first).
  BatchStats stats(const ConstImages& x_ref);
  /// The certificate of every image at the current state, from residual(), drive() and
  /// activities() against x (call compute_residual(x) and apply_drive first). Soft presets.
  std::vector<Certificate> certificate(const ConstImages& x);
  /// An upper estimate of ||Phi^T Phi|| (FISTA's step is its inverse): power iteration on
  /// one image from a fixed pseudo-random start, times a safety factor. A function of the
  /// dictionary alone, so codes do not depend on earlier solves (exact resume, any rank
  /// count).
  double estimate_lipschitz(const Dict& dict, int iterations);
  double lipschitz() const { return lipschitz_; }
  /// Benchmarks: called at every gap check (every check_every iterations, also without
  /// stop_gap; for cd without the support solve, when its maintained gap says so) with the
  /// iterations and support-solve rounds so far and every image's certificate.
  using Trace = std::function<void(int, int, const std::vector<Certificate>&)>;
  void set_trace(Trace trace) { trace_ = std::move(trace); }

  const Matrix& potentials() const { return v_; }         ///< (B*positions, nf)
  const Matrix& activities() const { return a_; }         ///< (B*positions, nf)
  const Images& residual() const { return r_; }           ///< (B, c*H*W)
  const Matrix& patches() const { return conv_.patches; } ///< im2col of residual()
  const Matrix& drive() const { return g_; } ///< (B*positions, nf), Phi^T r of the last step

  /// Overwrite the activity (tests); rebuilds the active lists.
  void set_activities(const Matrix& a);
  /// Start the next solve from earlier codes (after reset; soft presets): image b's code is
  /// *codes[b], or zero where codes[b] is null. LCA's potentials are put on the threshold
  /// line (V = a + lambda sign a), so its first step keeps the code. Any code is a sound
  /// start: the certificate judges the final code, not the path to it.
  void warm_start(const std::vector<const SparseCode*>& codes);
  /// Every image's current code, sparse.
  std::vector<SparseCode> codes();

  // Building blocks for the tests and benchmarks (conv.hpp, lca_dynamics.hpp).
  /// out = x + sign * Phi a through the scatter over the active lists (x may be empty).
  void reconstruct(const Dict& dict, const ConstImages& x, const Images& out, Scalar sign);
  /// out = x + sign * Phi a for any a (not the active lists): GEMM into patch space + col2im.
  /// compute_residual uses it instead of the scatter while use_dense(true).
  void reconstruct_dense(const Dict& dict, const Matrix& a, const ConstImages& x, const Images& out,
                         Scalar sign);
  void use_dense(bool dense) { conv_.dense = dense; }
  /// Neurons active in the batch (the sum of the active lists).
  std::int64_t active_count() const;
  void im2col(const ConstImages& r);  ///< patches() = im2col(r)
  void apply_drive(const Dict& dict); ///< g = patches * D
  Scalar update(bool track_dv);       ///< step 4 of LCA; max |dV| when track_dv

  /// Rounds of one support-solve attempt: each recomputes the residual, the drive and the
  /// certificate (about one iteration) and solves the open images' supports exactly.
  static constexpr int kMaxSupportRounds = 8;
  /// An image whose support factorisation would cost more than this many iterations is left
  /// to the iterations, and one round's factorisations together stay within it (support.hpp).
  static constexpr double kSupportCostIterations = 60;
  /// Power iterations per Lipschitz estimate (from a fixed start; one image, so cheap next to
  /// a batch's solve).
  static constexpr int kPowerIterations = 30;
  /// The support solve starts once an image's support changed by at most this fraction (or
  /// one neuron) between two gap checks.
  static constexpr double kSupportSlack = 0.05;
  /// Fraction of active neurons above which Phi a goes through GEMM + col2im: the scatter's
  /// cost grows with the active neurons, the GEMM's does not. Measured with bench_lca's
  /// "dense" row (3x32x32, batch 16, 2 threads): the crossover is near 8 % at nf 64, 6-7 % at
  /// nf 128 and 5 % at nf 256 (perf/README.md).
  static constexpr double kDenseDensity = 0.07;
  /// LCA's activity moves slowly: it re-chooses the reconstruction every this many steps.
  static constexpr int kDensityEvery = 10;
  /// Without the support solve, cd leaves a move of at most this fraction of the previous
  /// sweep's largest for a later sweep (cd.hpp): 1.4-1.9x the certified images/s on W128,
  /// CIFAR-10 nf 16 and Fashion-MNIST (perf/README.md). With it, small moves are what settles
  /// the support, and waiting halved the speed on all three: there cd updates every move.
  static constexpr double kCdSkip = 0.5;
  /// cd with the support solve approaches without it to this gap: its sweeps are cheapest
  /// there, and the support solve closes from a settled support in a few rounds. Measured
  /// against cd with the support solve throughout (W128, Fashion-MNIST; perf/README.md):
  /// 1.7-2.2x the certified images/s on W128 from 1e-3 to 1e-6, the same on Fashion-MNIST.
  static constexpr double kCdApproachGap = 1e-3;
  /// Without the support solve, cd checks (recomputes the drive and
  /// certifies) when an image's gap from its maintained state reaches the stop gap, or after
  /// this many sweeps, not every check_every: a check costs two full convolutions, about a
  /// quarter of the run at W128 when it came every 10 sweeps.
  static constexpr int kCdMaxSweeps = 100;
  /// FISTA restarts when the energy rises by more than this (relative): rounding is not a rise.
  static constexpr double kRestartSlack = 1e-6;
  /// A float solve whose stop gap is below this certifies in double once an image's float gap
  /// is within it: the float residual and drive put a floor near 1e-6 under the gap
  /// (W128: 3 of 32 images stuck above 1e-6 at the cap), not the codes, which the support
  /// solve makes exact in double. The code stays float; only its certificate is recomputed.
  static constexpr double kExactCertificateBelow = 1e-5;

private:
  /// Per-image sums at the current state (certificate.hpp), copied to measures_h_.
  void measure(const ConstImages& x, int what);
  Certificate certify(int b) const; ///< from measures_h_
  /// Every image's certificate of the current code, computed in double precision.
  std::vector<Certificate> exact_certificates(const Dict& dict, const ConstImages& x);
  void set_decay(const std::vector<double>& time_steps);
  void choose_reconstruction(std::int64_t active);
  void rebuild_active_lists(const Matrix& from);
  /// One support-solve round on the masked images (support.hpp); returns per image 2 where it
  /// solved the candidates exactly, 1 where it set a better code (capped), 0 where it left
  /// the code. The caller recomputes the residual, drive and certificate.
  std::vector<int> support_round(const Dict& dict, const std::vector<int>& mask);

  Geometry geom_;
  LcaParams params_;
  exec_space exec_;
  DeviceTransfer<Scalar> transfer_;
  int batch_ = 0;
  Matrix v_, a_, g_;
  Images r_;
  typename Matrix::HostMirror a_h_;        ///< warm starts' host side of a_
  Impl::PerImage<int, Device> all_images_; ///< 1 for every image (potentials_from_codes)
  Impl::ConvBuffers<Scalar, Device, Layout> conv_;
  Impl::PerImage<Scalar, Device> decay_; ///< LCA: exp(-dt / tau) per image (lca_dynamics.hpp)
  Impl::FistaBuffers<Scalar, Device, Layout> fista_;
  Impl::SupportBuffers<Scalar, Device, Layout> support_buffers_;
  std::shared_ptr<SupportSolve<Scalar, Device, Layout>> support_;
  std::shared_ptr<CoordinateDescent<Scalar, Device, Layout>> cd_;
  Impl::PerImage<int, Device> open_; ///< cd and fista: the images still above the stop gap
  /// cd stopping on its maintained gap: |r|^2 at the last check, and the sweeps each image ran;
  /// the waiting bar carried from one kernel call to the next.
  Impl::PerImage<double, Device> cd_rr_, cd_bar_;
  Impl::PerImage<int, Device> cd_sweeps_;
  Kokkos::View<double**, Kokkos::LayoutRight, Device> measures_;
  typename Kokkos::View<double**, Kokkos::LayoutRight, Device>::HostMirror measures_h_;
  double lipschitz_ = 0;
  bool fallback_ = false; ///< auto resolved to cd: fista + support solve after cd's cap
  int trace_offset_ = 0;  ///< solve's phases: the iterations before this one, for the trace
  /// exact_certificates: a double solver, dictionary, images and code (made on first use; in
  /// the device's own layout, which every build instantiates in double).
  std::shared_ptr<LcaSolver<double, Device>> exact_;
  std::shared_ptr<Dictionary<double, Device>> exact_dict_;
  typename Views<double, Device>::Images exact_x_;
  typename Views<double, Device>::Matrix exact_a_;
  SolveInfo solve_once(const Dict& dict, const ConstImages& x_in);
  Trace trace_;
};

} // namespace lca
