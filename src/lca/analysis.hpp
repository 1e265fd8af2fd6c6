#pragma once
// Statistics of the phase-transition study, algorithm.md §5-§7: minima of error vs percent
// active, power-law fits, critical exponents with bootstrap intervals, the results tables.
// Pure host C++17.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lca {

/// One (size, lambda) grid point after the denoising test.
struct SweepPoint {
  int nf = 0;
  std::int64_t system_size = 0; ///< L = nf * positions
  double lambda = 0.0;
  double percent_active = 0.0;      ///< mean over test images (must equal mean of image_active)
  std::vector<double> image_error;  ///< per-image 100*||x - Phi a||/||x||
  std::vector<double> image_active; ///< per-image percent active
};

/// The grid points of one size, with per-point means over the test images.
struct SizeCurve {
  int nf = 0;
  std::int64_t system_size = 0;
  std::vector<double> lambda, active, error;
  std::vector<std::size_t> point; ///< index of each entry in the input points
};

/// "nf=8 (L=1568)": how warnings, tables and plot legends name a size.
std::string size_label(int nf, std::int64_t system_size);

/// Group points by nf (sorted by L, then lambda) and average over test images. Throws
/// InvalidArgument on empty input, non-finite or non-positive lambda/L, per-image vectors of
/// different lengths, percent_active != mean(image_active), one nf with two L, a repeated
/// (nf, lambda).
std::vector<SizeCurve> size_curves(const std::vector<SweepPoint>& points);

struct Minimum {
  double error = 0.0;   ///< e*: percent error at the minimum
  double active = 0.0;  ///< p*: percent active at the minimum
  double lambda = 0.0;  ///< lambda at the minimum
  bool at_edge = false; ///< the discrete minimum is the lowest or highest active point
  bool refined = false; ///< the quadratic vertex was used (else the discrete point)
  int index = -1;       ///< discrete minimum, as an index into the caller's vectors
};

/// §6: discrete minimum of error vs active (sorted by active internally; the first of equal
/// errors), refined by the quadratic in log(active) through it and its two neighbours
/// (least squares on three points = interpolation). As the middle point is the lowest (and
/// strictly below its left neighbour), the parabola always opens upward with its vertex between
/// the neighbours; only repeated activities keep the discrete point. lambda at the minimum:
/// log(lambda) interpolated linearly in log(active) on the segment holding the vertex. Throws
/// InvalidArgument on empty or unequal lengths, active <= 0, non-finite values.
Minimum find_minimum(const std::vector<double>& active, const std::vector<double>& error,
                     const std::vector<double>& lambda);

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
};

/// nu = 1/slope(p*), gamma = slope(e*)*nu = slope(e*)/slope(p*); standard errors by the delta
/// method, the two fits taken as independent. Throws InvalidArgument as fit_power_law, and
/// when slope(p*) == 0 (nu undefined).
Exponents exponents_from_minima(const std::vector<double>& L, const std::vector<double>& e_star,
                                const std::vector<double>& p_star);

struct StudyResult {
  std::vector<int> nf;         ///< sizes, sorted by L
  std::vector<double> L;       ///< system sizes
  std::vector<Minimum> minima; ///< per size; index refers to the analysed points
  Exponents exponents; ///< from the sizes whose minimum is not at an edge; NaN if < 2 of them
  bool valid = false;  ///< every size has an interior minimum and the exponents exist
  std::string warning; ///< why not valid, and bootstrap failures ("; "-separated)
  double nu_lo = 0.0, nu_hi = 0.0, gamma_lo = 0.0, gamma_hi = 0.0; ///< bootstrap 95 %, or NaN
  int bootstrap_samples = 0;                                       ///< replicates requested
  int bootstrap_failed = 0; ///< replicates skipped: a fitted size at an edge, or a fit failed
};

/// §6 for a whole sweep (see size_curves for the input checks). Grid points whose mean percent
/// active is 0 cannot sit on the log axis and are left out of their size's curve. Bootstrap:
/// each replicate draws the test-image indices with replacement once (all points were tested
/// on the same images), recomputes per-point means, minima of the fitted sizes, fits and
/// exponents; percentile intervals (linear interpolation) over the successful replicates.
/// Throws InvalidArgument for bootstrap_samples < 0 or a size with no active grid point.
StudyResult analyze_study(const std::vector<SweepPoint>& points, int bootstrap_samples,
                          std::uint64_t seed);

/// §7: chi ~ lambda^gamma_chi by fit_power_law. Points with chi <= 0 (no response) are
/// skipped: the skipped count is lambda.size() - fit.n. Throws InvalidArgument for lambda <= 0,
/// non-finite values, unequal sizes or fewer than 2 positive chi.
PowerLawFit fit_response(const std::vector<double>& lambda, const std::vector<double>& chi);

/// Seed poster's exponents (CIFAR-10, PetaVision), the reference the tables compare with.
constexpr double kSeedGamma = 0.00985;
constexpr double kSeedNu = -1.32;

/// CSV (one header, one row per size with kind=size, then kind=exponent rows for gamma, nu and
/// the two slopes) and Markdown (note on top, validity, minima, fits, exponent table with the
/// seed poster's values), then `md_appendix` (more Markdown sections). Throws IoError if a file
/// cannot be written.
void write_results_table(const std::string& csv_path, const std::string& md_path,
                         const StudyResult& r, const std::string& note,
                         const std::string& md_appendix = "");

/// Writes text to path all or nothing (lca::AtomicFile). `what` names the file in errors:
/// "cannot write <what> <path>: <reason>". Throws IoError.
void write_text_file(const std::string& path, const std::string& text,
                     const std::string& what = "file");

} // namespace lca
