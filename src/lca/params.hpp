#pragma once
// Run parameters of algorithm.md §1, §3, §4: one struct each, shared by the solver, the
// learner, the apps (CLI11 flags) and the HDF5 checkpoints (attributes).
#include "lca/enum_names.hpp"

#include <cstdint>
#include <iosfwd>
#include <limits>
#include <string>

namespace lca {

/// Transfer function T(V) (PetaVision ANNActivityBuffer vertices), algorithm.md §3.
/// a = amin for V < vthresh; a = V - ashift for V >= vthresh + vwidth, linear in between;
/// clipped to amax. symmetric: applied to |V| with the sign of V (presets soft / hard).
struct Transfer {
  double vthresh = 0.1;
  double amin = 0.0;
  double amax = std::numeric_limits<double>::infinity();
  double ashift = 0.1;
  double vwidth = 0.0;
  bool symmetric = false;
  /// Energy penalty kind: L1 (lambda*sum|a|) for soft shrinkage, L0 (lambda^2/2 * ||a||_0) for
  /// hard.
  bool l0_penalty = false;
  double lambda = 0.1; ///< the sparsity parameter the penalty uses
};

/// Transfer presets; custom: PetaVision vertices given by hand (a checkpoint records which).
enum class Preset { soft_nonneg, hard_nonneg, soft, hard, custom };
inline constexpr EnumName<Preset> kPresetNames[] = {{"soft-nonneg", Preset::soft_nonneg},
                                                    {"hard-nonneg", Preset::hard_nonneg},
                                                    {"soft", Preset::soft},
                                                    {"hard", Preset::hard},
                                                    {"custom", Preset::custom}};
const char* to_string(Preset p);
std::ostream& operator<<(std::ostream& os, Preset p);
/// Any name of kPresetNames, custom included. Throws InvalidArgument for other text.
Preset parse_preset(const std::string& text);

/// Build a named preset: soft-nonneg, hard-nonneg, soft, hard (not custom). Throws
/// InvalidArgument.
Transfer make_transfer(Preset preset, double lambda);
/// Check a user-built transfer function (finite thresholds, amax >= amin, vwidth >= 0, ...).
void validate(const Transfer& t);

/// Convolutional geometry of algorithm.md §1.
struct Geometry {
  int nf = 128; ///< number of features
  int channels = 3;
  int height = 32;
  int width = 32;
  int kernel = 8; ///< k
  int stride = 2; ///< s
  int pad() const { return (kernel - stride) / 2; }
  int out_h() const { return height / stride; }
  int out_w() const { return width / stride; }
  int positions() const { return out_h() * out_w(); }
  int patch() const { return channels * kernel * kernel; }                ///< c*k*k
  std::int64_t neurons() const { return std::int64_t(nf) * positions(); } ///< system size L
  int pixels() const { return channels * height * width; }
};
/// Throws InvalidArgument unless k >= s, (k - s) even, H and W divisible by s, all positive.
void validate(const Geometry& g);

/// True when the transfer function is a soft threshold at lambda (VThresh = AShift = lambda,
/// AMin 0, AMax inf, VWidth 0): the energy is then a LASSO, with a duality-gap certificate
/// (algorithm.md §9) and FISTA as an alternative solver.
bool is_lasso(const Transfer& t);

/// PetaVision's adaptive time scale (OpenPV AdaptiveTimeScaleController), algorithm.md §9;
/// the defaults are the poster authors' run-file values.
struct AdaptiveTimeScale {
  double base_min = 0.06;
  double base_max = 0.0615;
  double tau_factor = 0.03;
  double growth_factor = 0.025;
};

/// Inference solver, algorithm.md §3 and §9; fista and cd (coordinate descent) for soft
/// presets only; automatic ("auto") is the one measured fastest to a certified code for the
/// backend and shape (resolve_solver).
enum class Solver { lca, fista, cd, automatic };
inline constexpr EnumName<Solver> kSolverNames[] = {{"lca", Solver::lca},
                                                    {"fista", Solver::fista},
                                                    {"cd", Solver::cd},
                                                    {"auto", Solver::automatic}};
const char* to_string(Solver s);
std::ostream& operator<<(std::ostream& os, Solver s);
Solver parse_solver(const std::string& text); ///< throws InvalidArgument for other text

/// LCA time step: fixed (dt) or adaptive (PetaVision's adaptive time scale).
enum class Timescale { fixed, adaptive };
inline constexpr EnumName<Timescale> kTimescaleNames[] = {{"fixed", Timescale::fixed},
                                                          {"adaptive", Timescale::adaptive}};
const char* to_string(Timescale t);
std::ostream& operator<<(std::ostream& os, Timescale t);
Timescale parse_timescale(const std::string& text); ///< throws InvalidArgument for other text

/// Inference, algorithm.md §3 and §9.
struct LcaParams {
  double tau = 100.0;
  double dt = 1.0;
  int iterations = 400;  ///< the cap when stop_gap > 0
  double stop_tol = 0.0; ///< LCA: stop early once max|dV| < stop_tol (0: never)
  Transfer transfer;
  Solver solver = Solver::lca;
  Timescale timescale = Timescale::fixed; ///< LCA only
  AdaptiveTimeScale adaptive;
  /// Stop a batch once every image's relative duality gap is <= stop_gap (0: never; soft
  /// presets only), checked every check_every iterations.
  double stop_gap = 0.0;
  int check_every = 10;
  /// With stop_gap: solve the problem restricted to a settled support exactly (the support
  /// solve, src/kernels/support.hpp), so the certificate closes at the code's true distance.
  bool polish = true;
};
void validate(const LcaParams& p);
/// The parameters that run for p on this shape: p itself unless its solver is automatic, which
/// picks the solver and the support solve (polish) by the measurements in README "Which
/// solver when": lca where the energy is not a LASSO or the adaptive time scale is asked for;
/// on a GPU backend (gpu) fista with the support solve (cd's team per image and sequential
/// sweep have not been measured there); on CPUs cd with the support solve (which approaches
/// without it to a gap of 1e-3: LcaSolver::kCdApproachGap), the fastest to a certified gap on
/// every shape and level measured, in training and in the denoising test; fista with it where
/// cd's overlap table (cd_table_bytes, kernels/cd.hpp) would pass kCdMaxTableBytes.
/// Kokkos-free: the input parsers' fuzzers link this file alone; lca/solver.hpp has the form
/// for a shape on the apps' backend.
LcaParams resolve_solver(const LcaParams& p, bool gpu, double cd_table_bytes);
/// cd's overlap table may take at most this much memory (a clear error beyond).
inline constexpr double kCdMaxTableBytes = 1u << 30;

/// Dictionary learning, algorithm.md §4.
struct LearnParams {
  double eta = 0.01;           ///< learning rate per batch
  double momentum_tau = 100.0; ///< tau_m in batches; mu = exp(-1/tau_m)
  double decay = 0.0;
  std::uint64_t seed = 1; ///< dictionary initialisation
  /// Learning-rate schedule: epoch e (from 0) learns at eta / (1 + e / eta_decay_epochs), so the
  /// rate has halved after eta_decay_epochs epochs; 0 keeps eta constant. A constant rate leaves
  /// the dictionary moving with SGD's noise, so a plateau rule needs the decay.
  double eta_decay_epochs = 0.0;
};
/// The learning rate of epoch e (from 0) under p's schedule (exactly p.eta when it is constant).
inline double eta_at(const LearnParams& p, std::int64_t epoch) {
  return p.eta_decay_epochs > 0 ? p.eta / (1.0 + double(epoch) / p.eta_decay_epochs) : p.eta;
}
void validate(const LearnParams& p);

} // namespace lca
