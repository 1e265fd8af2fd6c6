#pragma once
// Statistics of the phase-transition study, algorithm.md §5-§7: minima of error vs percent
// active, power-law fits, critical exponents with a two-level bootstrap (dictionary replicates,
// test images). Pure host C++17; the tables are written by lca/report.hpp.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace lca {

/// One (size, lambda) grid point after the denoising test.
struct SweepPoint {
  int nf = 0;
  std::int64_t system_size = 0; ///< L = nf * positions
  double lambda = 0.0;
  double percent_active = 0.0;      ///< mean over test images (must equal mean of image_active)
  std::vector<double> image_error;  ///< per-image error in the analysed metric (see Metric)
  std::vector<double> image_active; ///< per-image percent active
  int replicate = 0; ///< dictionary replicate: points of one (nf, lambda) are averaged
  /// Its codes missed the stop gap, or its training hit the epoch cap without a plateau: left
  /// out unless included.
  bool flagged = false;
};

/// The grid points of one size: per (lambda) entry the mean over its replicates of the mean
/// over test images, and the bootstrap standard deviation of that mean (NaN without bootstrap).
struct SizeCurve {
  int nf = 0;
  std::int64_t system_size = 0;
  std::vector<double> lambda, active, error, error_sd;
  std::vector<int> replicates;                  ///< replicate count per entry
  std::vector<char> flagged;                    ///< some replicate of the entry is flagged
  std::vector<std::vector<std::size_t>> points; ///< the entry's replicates in the input points
};

/// "nf=8 (L=1568)": how warnings, tables and plot legends name a size.
std::string size_label(int nf, std::int64_t system_size);

/// Group points by nf (sorted by L, then lambda) and average over replicates and test images.
/// Throws InvalidArgument on empty input, non-finite or non-positive lambda/L, per-image
/// vectors of different lengths, percent_active != mean(image_active), one nf with two L, a
/// repeated (nf, lambda, replicate).
std::vector<SizeCurve> size_curves(const std::vector<SweepPoint>& points);

struct Minimum {
  double error = 0.0;   ///< e*: percent error at the minimum
  double active = 0.0;  ///< p*: percent active at the minimum
  double lambda = 0.0;  ///< lambda at the minimum
  bool at_edge = false; ///< the discrete minimum is the lowest or highest active point
  bool refined = false; ///< the quadratic vertex was used (else the discrete point)
  /// The vertex lies below the discrete minimum by more than that point's error bar: the grid
  /// does not resolve the minimum. error, active and lambda stay the discrete point's.
  bool unresolved = false;
  double vertex_error = std::numeric_limits<double>::quiet_NaN(); ///< rejected vertex, or NaN
  int index = -1; ///< discrete minimum, as an index into the caller's vectors
  /// Bootstrap standard deviations of error and active over the draws where this size's
  /// minimum stayed interior (NaN without bootstrap or for an unfitted size).
  double error_sd = 0.0, active_sd = 0.0;
};

/// §6: discrete minimum of error vs active (sorted by active internally; the first of equal
/// errors), refined by the quadratic in log(active) through it and its two neighbours
/// (least squares on three points = interpolation). As the middle point is the lowest (and
/// strictly below its left neighbour), the parabola always opens upward with its vertex between
/// the neighbours; repeated activities keep the discrete point, and so does a vertex more than
/// half of max(e_left, e_right) - e_min below the discrete minimum (twice what an even grid
/// allows: uneven spacing has made the parabola meaningless). lambda at the minimum:
/// log(lambda) interpolated linearly in log(active) on the segment holding the vertex.
/// error_bar (per point, optional): a vertex more than the discrete minimum's bar below it is
/// an extrapolation the data do not support: the minimum is unresolved (discrete values kept);
/// with a NaN bar the vertex cannot be judged and the discrete point is kept. Without
/// error_bar every vertex is accepted. Throws InvalidArgument on empty or unequal lengths,
/// active <= 0, non-finite values (NaN bars excepted), negative bars.
Minimum find_minimum(const std::vector<double>& active, const std::vector<double>& error,
                     const std::vector<double>& lambda, const std::vector<double>& error_bar = {});

/// y = exp(intercept) * x^slope, ordinary least squares of log y on log x. Standard errors
/// from the residual variance with n-2 degrees of freedom; with n == 2 the line is exact and
/// its uncertainty unknown, so both se are NaN. r2 = 1 when the residuals vanish.
struct PowerLawFit {
  double slope = 0.0, intercept = 0.0, slope_se = 0.0, intercept_se = 0.0, r2 = 0.0;
  int n = 0; ///< points used
};

/// Throws InvalidArgument unless n >= 2, sizes match, x, y finite and > 0, x not all equal.
PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y);

/// Critical exponents from p* ∝ L^{1/nu}, e* ∝ L^{gamma/nu}.
struct Exponents {
  double nu = 0.0, gamma = 0.0, nu_se = 0.0, gamma_se = 0.0;
  PowerLawFit loc_fit; ///< p* vs L
  PowerLawFit val_fit; ///< e* vs L
  /// n* = p*/100 · L (active neurons at the minimum) vs L: slope 1 + 1/nu. The null model of a
  /// size-independent code budget (n* constant) is slope 0, nu = -1.
  PowerLawFit count_fit;
};

/// nu = 1/slope(p*), gamma = slope(e*)*nu = slope(e*)/slope(p*); standard errors by the delta
/// method, the two fits taken as independent; count_fit through (L, p*/100 · L). Throws
/// InvalidArgument as fit_power_law, and when slope(p*) == 0 (nu undefined).
Exponents exponents_from_minima(const std::vector<double>& L, const std::vector<double>& e_star,
                                const std::vector<double>& p_star);

/// Whether nu = -1 (n* independent of L) lies in nu's bootstrap 95 % interval.
enum class NullModel { untested, inside, outside };

struct StudyResult {
  std::vector<int> nf;           ///< sizes, sorted by L
  std::vector<double> L;         ///< system sizes
  std::vector<Minimum> minima;   ///< per size; index refers to the analysed points
  std::vector<SizeCurve> curves; ///< per size, with the bootstrap error bars of every entry
  /// Per size: n* = p*/100 · L, active neurons at the minimum, and its bootstrap sd (NaN without).
  std::vector<double> n_star, n_star_sd;
  /// From the sizes whose minimum is interior and resolved; NaN if < 2 of them.
  Exponents exponents;
  bool valid = false;  ///< every size has an interior, resolved minimum and the exponents exist
  std::string warning; ///< why not valid, and bootstrap failures ("; "-separated)
  double nu_lo = 0.0, nu_hi = 0.0, gamma_lo = 0.0, gamma_hi = 0.0; ///< bootstrap 95 %, or NaN
  double nu_sd = 0.0, gamma_sd = 0.0;           ///< bootstrap standard deviations, or NaN
  double count_lo = 0.0, count_hi = 0.0;        ///< slope of n* (1 + 1/nu): bootstrap 95 %, or NaN
  double count_sd = 0.0;                        ///< and its bootstrap sd, or NaN
  NullModel nu_minus_one = NullModel::untested; ///< untested without a bootstrap interval
  int bootstrap_samples = 0;                    ///< draws requested
  /// Draws skipped: a fitted size at an edge or unresolved, or a fit failed.
  int bootstrap_failed = 0;
  int replicates = 0;           ///< distinct dictionary replicates (resampled when > 1)
  int images = 0;               ///< test images per point (resampled)
  int flagged = 0;              ///< entries with a flagged point
  bool include_flagged = false; ///< flagged entries were used in the minima and fits
};

/// §6 for a whole sweep (see size_curves for the input checks). Grid points whose mean percent
/// active is 0 cannot sit on the log axis and are left out of their size's curve; flagged
/// entries are left out of the minima and fits unless include_flagged (a size left with no
/// usable entry is not fitted, with a warning). The minima's error bars (find_minimum): each
/// entry's bootstrap sd, without bootstrap its standard error over the test images; a size
/// whose minimum is unresolved is named and left out of the fits. Two-level bootstrap: each draw
/// picks the replicate indices with replacement (one pick for all points: replicate r of every
/// point is one run of the whole study with its own seeds) and the test-image indices with
/// replacement (all points were tested on the same images), recomputes the entries' means, the
/// minima of the fitted sizes, the fits and the exponents; percentile intervals (linear
/// interpolation) and standard deviations over the successful draws. With one replicate the
/// replicate level is the identity and the intervals leave out the training randomness (the tables
/// say so). A draw where a fitted size's minimum is at an edge or unresolved (same error bars) is
/// skipped. Throws InvalidArgument for bootstrap_samples < 0 or a size with no active grid point.
StudyResult analyze_study(const std::vector<SweepPoint>& points, int bootstrap_samples,
                          std::uint64_t seed, bool include_flagged = false);

/// §7: chi ~ lambda^gamma_chi by fit_power_law. Points with chi <= 0 (no response) are
/// skipped: the skipped count is lambda.size() - fit.n. Throws InvalidArgument for lambda <= 0,
/// non-finite values, unequal sizes or fewer than 2 positive chi.
PowerLawFit fit_response(const std::vector<double>& lambda, const std::vector<double>& chi);

/// Seed poster's exponents (CIFAR-10, PetaVision), the reference the tables compare with.
constexpr double kSeedGamma = 0.00985;
constexpr double kSeedNu = -1.32;

/// chi(lambda) of one size, algorithm.md §7.
struct ResponseCurve {
  int nf = 0;
  std::int64_t system_size = 0;
  std::vector<double> lambda;
  std::vector<double> chi; ///< values <= 0 (no response) are not fitted or plotted
};

} // namespace lca
