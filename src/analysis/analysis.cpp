// Statistics of the phase-transition study, algorithm.md §5-§7.
#include "lca/analysis.hpp"

#include "lca/error.hpp"
#include "lca/random.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>

namespace lca {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string num(double v, const char* format = "%.6g") {
  if (std::isnan(v))
    return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

/// Mean over test images with per-image weights summing to 1 (a bootstrap draw, or uniform).
double weighted_mean(const std::vector<double>& values, const std::vector<double>& weight) {
  return std::inner_product(values.begin(), values.end(), weight.begin(), 0.0);
}

bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

/// Percentile with linear interpolation between order statistics (NumPy's default).
double percentile(std::vector<double> v, double q) {
  if (v.empty())
    return kNaN;
  std::sort(v.begin(), v.end());
  const double h = q * double(v.size() - 1);
  const std::size_t lo = std::size_t(h);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - double(lo)) * (v[hi] - v[lo]);
}

} // namespace

std::string size_label(int nf, std::int64_t system_size) {
  return "nf=" + std::to_string(nf) + " (L=" + std::to_string(system_size) + ")";
}

std::vector<SizeCurve> size_curves(const std::vector<SweepPoint>& points) {
  if (points.empty())
    throw InvalidArgument("analysis: no sweep points");
  const std::size_t n_img = points[0].image_error.size();
  if (n_img == 0)
    throw InvalidArgument("analysis: sweep points carry no per-image values");
  const std::vector<double> uniform(n_img, 1.0 / double(n_img));
  std::map<int, std::int64_t> size_of;
  // (nf, lambda) -> replicate -> point
  std::map<std::pair<int, double>, std::map<int, std::size_t>> entries;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    const std::string where = "sweep point nf=" + std::to_string(p.nf) +
                              " lambda=" + num(p.lambda) +
                              (p.replicate ? " replicate " + std::to_string(p.replicate) : "");
    if (p.nf <= 0 || p.system_size <= 0 || !(std::isfinite(p.lambda) && p.lambda > 0))
      throw InvalidArgument(where + ": nf, L and lambda must be positive");
    if (p.image_error.size() != n_img || p.image_active.size() != n_img)
      throw InvalidArgument(where + ": " + std::to_string(p.image_error.size()) + " errors and " +
                            std::to_string(p.image_active.size()) +
                            " activities per image, expected " + std::to_string(n_img) +
                            " (every point uses the same test images)");
    if (!all_finite(p.image_error) || !all_finite(p.image_active))
      throw InvalidArgument(where + ": non-finite per-image value");
    const double active = weighted_mean(p.image_active, uniform);
    // Loose tolerance: callers may accumulate percent_active in float.
    if (!(std::abs(active - p.percent_active) <= 1e-4 * std::max(1.0, active)))
      throw InvalidArgument(where + ": percent_active " + num(p.percent_active) +
                            " differs from the mean of image_active " + num(active));
    const auto [it, inserted] = size_of.try_emplace(p.nf, p.system_size);
    if (!inserted && it->second != p.system_size)
      throw InvalidArgument(where + ": L=" + std::to_string(p.system_size) +
                            " but an earlier point of nf=" + std::to_string(p.nf) +
                            " has L=" + std::to_string(it->second));
    if (!entries[{p.nf, p.lambda}].try_emplace(p.replicate, i).second)
      throw InvalidArgument(where + " appears twice");
  }

  std::map<int, SizeCurve> by_nf;
  for (const auto& [key, reps] : entries) { // sorted by nf, then lambda
    SizeCurve& c = by_nf[key.first];
    c.nf = key.first;
    c.system_size = size_of[key.first];
    double active = 0, error = 0;
    bool flagged = false;
    std::vector<std::size_t> idx;
    for (const auto& [r, i] : reps) {
      active += weighted_mean(points[i].image_active, uniform);
      error += weighted_mean(points[i].image_error, uniform);
      flagged = flagged || points[i].flagged;
      idx.push_back(i);
    }
    c.lambda.push_back(key.second);
    c.active.push_back(active / double(reps.size()));
    c.error.push_back(error / double(reps.size()));
    c.error_sd.push_back(kNaN);
    c.replicates.push_back(int(reps.size()));
    c.flagged.push_back(flagged);
    c.points.push_back(std::move(idx));
  }
  std::vector<SizeCurve> curves;
  for (auto& [nf, c] : by_nf)
    curves.push_back(std::move(c));
  std::stable_sort(curves.begin(), curves.end(), [](const SizeCurve& a, const SizeCurve& b) {
    return a.system_size < b.system_size;
  });
  return curves;
}

Minimum find_minimum(const std::vector<double>& active, const std::vector<double>& error,
                     const std::vector<double>& lambda, const std::vector<double>& error_bar) {
  const std::size_t n = active.size();
  if (n == 0 || error.size() != n || lambda.size() != n ||
      !(error_bar.empty() || error_bar.size() == n))
    throw InvalidArgument("find_minimum: need equal, non-zero numbers of active, error and lambda "
                          "values and none or as many error bars (got " +
                          std::to_string(n) + ", " + std::to_string(error.size()) + ", " +
                          std::to_string(lambda.size()) + ", " + std::to_string(error_bar.size()) +
                          ")");
  for (double bar : error_bar)
    if (!std::isnan(bar) && !(std::isfinite(bar) && bar >= 0)) // NaN is allowed, never compared
      throw InvalidArgument("find_minimum: error bars must be finite and >= 0 or NaN (got " +
                            num(bar) + ")");
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = 0; i < n; ++i)
    if (!(std::isfinite(active[i]) && active[i] > 0 && std::isfinite(error[i]) &&
          std::isfinite(lambda[i]) && lambda[i] > 0))
      throw InvalidArgument("find_minimum: point " + std::to_string(i) +
                            " needs finite error and active, lambda > 0 (active=" + num(active[i]) +
                            ", error=" + num(error[i]) + ", lambda=" + num(lambda[i]) + ")");
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return active[a] < active[b]; });
  std::size_t m = 0;
  for (std::size_t k = 1; k < n; ++k)
    if (error[order[k]] < error[order[m]])
      m = k;

  Minimum r;
  r.error = error[order[m]];
  r.active = active[order[m]];
  r.lambda = lambda[order[m]];
  r.at_edge = m == 0 || m + 1 == n;
  r.index = int(order[m]);
  if (r.at_edge)
    return r;

  const double t[3] = {std::log(active[order[m - 1]]), std::log(r.active),
                       std::log(active[order[m + 1]])};
  const double e[3] = {error[order[m - 1]], r.error, error[order[m + 1]]};
  if (!(t[0] < t[1] && t[1] < t[2]))
    return r; // repeated activities: no parabola through the three points
  // Newton form e(t) = e0 + d01 (t - t0) + c2 (t - t0)(t - t1).
  const double d01 = (e[1] - e[0]) / (t[1] - t[0]);
  const double c2 = ((e[2] - e[1]) / (t[2] - t[1]) - d01) / (t[2] - t[0]);
  // e0 > e1 <= e2 gives c2 > 0 and the vertex inside [t0, t2]; the clamp only absorbs rounding.
  const double tv = std::clamp(0.5 * (t[0] + t[1]) - d01 / (2 * c2), t[0], t[2]);
  const std::size_t a = tv < t[1] ? m - 1 : m; // segment [a, a+1] in sorted order holds tv
  const double ta = std::log(active[order[a]]), tb = std::log(active[order[a + 1]]);
  const double la = std::log(lambda[order[a]]), lb = std::log(lambda[order[a + 1]]);
  const double vertex = e[0] + d01 * (tv - t[0]) + c2 * (tv - t[0]) * (tv - t[1]);
  // On an even grid the vertex lies at most max(e0, e2) - e1 over 4 below the middle point; far
  // below that, uneven spacing (e.g. replicate-averaged activities that nearly coincide) makes
  // the parabola meaningless: keep the discrete point.
  if (r.error - vertex > 0.5 * (std::max(e[0], e[2]) - r.error))
    return r;
  if (!error_bar.empty()) {
    const double bar = error_bar[order[m]];
    if (std::isnan(bar))
      return r; // nothing to judge the vertex by
    if (r.error - vertex > bar) {
      r.unresolved = true;
      r.vertex_error = vertex;
      return r;
    }
  }
  r.error = vertex;
  r.active = std::exp(tv);
  r.lambda = std::exp(la + (lb - la) * (tv - ta) / (tb - ta));
  r.refined = true;
  return r;
}

PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = x.size();
  if (n < 2 || y.size() != n)
    throw InvalidArgument("fit_power_law: need >= 2 (x, y) pairs of equal count, got " +
                          std::to_string(n) + " x and " + std::to_string(y.size()) + " y");
  std::vector<double> u(n), v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!(std::isfinite(x[i]) && x[i] > 0 && std::isfinite(y[i]) && y[i] > 0))
      throw InvalidArgument("fit_power_law: x and y must be finite and > 0 (x[" +
                            std::to_string(i) + "]=" + num(x[i]) + ", y=" + num(y[i]) + ")");
    u[i] = std::log(x[i]);
    v[i] = std::log(y[i]);
  }
  const double ubar = std::accumulate(u.begin(), u.end(), 0.0) / double(n);
  const double vbar = std::accumulate(v.begin(), v.end(), 0.0) / double(n);
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxx += (u[i] - ubar) * (u[i] - ubar);
    sxy += (u[i] - ubar) * (v[i] - vbar);
    syy += (v[i] - vbar) * (v[i] - vbar);
  }
  if (!(sxx > 0))
    throw InvalidArgument("fit_power_law: all x are equal, the slope is undefined");
  PowerLawFit f;
  f.n = int(n);
  f.slope = sxy / sxx;
  f.intercept = vbar - f.slope * ubar;
  double ssr = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double res = v[i] - f.intercept - f.slope * u[i];
    ssr += res * res;
  }
  f.r2 = ssr == 0 ? 1.0 : 1.0 - ssr / syy;
  if (n > 2) {
    const double s2 = ssr / double(n - 2);
    f.slope_se = std::sqrt(s2 / sxx);
    f.intercept_se = std::sqrt(s2 * (1.0 / double(n) + ubar * ubar / sxx));
  } else {
    f.slope_se = f.intercept_se = kNaN;
  }
  return f;
}

Exponents exponents_from_minima(const std::vector<double>& L, const std::vector<double>& e_star,
                                const std::vector<double>& p_star) {
  Exponents x;
  x.loc_fit = fit_power_law(L, p_star);
  x.val_fit = fit_power_law(L, e_star);
  std::vector<double> n_star(L.size());
  for (std::size_t i = 0; i < L.size(); ++i)
    n_star[i] = p_star[i] / 100 * L[i];
  x.count_fit = fit_power_law(L, n_star);
  const double a = x.val_fit.slope, b = x.loc_fit.slope;
  if (b == 0)
    throw InvalidArgument("exponents: p* does not change with L (slope 0), nu is undefined");
  x.nu = 1 / b;
  x.gamma = a / b;
  x.nu_se = x.loc_fit.slope_se / (b * b);
  x.gamma_se = std::hypot(x.val_fit.slope_se / b, a * x.loc_fit.slope_se / (b * b));
  return x;
}

namespace {

/// Standard deviation of the collected values (NaN for fewer than 2).
double sample_sd(const std::vector<double>& v) {
  if (v.size() < 2)
    return kNaN;
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  double ss = 0;
  for (double x : v)
    ss += (x - mean) * (x - mean);
  return std::sqrt(ss / double(v.size() - 1));
}

/// One bootstrap draw (or the data itself): a weight per replicate slot and per test image.
struct Draw {
  std::vector<double> replicate; ///< multiplicity of each replicate slot
  std::vector<double> image;     ///< weights summing to 1
};

/// The curve entry's (active, error) under a draw: the draw-weighted mean over its replicates of
/// the image-weighted means; NaN when the draw picked none of its replicates.
std::pair<double, double> entry_value(const std::vector<SweepPoint>& points,
                                      const std::vector<std::size_t>& reps,
                                      const std::vector<int>& slot, const Draw& d) {
  double w = 0, active = 0, error = 0;
  for (std::size_t i : reps) {
    const double wr = d.replicate[std::size_t(slot[i])];
    if (wr == 0)
      continue;
    w += wr;
    active += wr * weighted_mean(points[i].image_active, d.image);
    error += wr * weighted_mean(points[i].image_error, d.image);
  }
  return w > 0 ? std::make_pair(active / w, error / w) : std::make_pair(kNaN, kNaN);
}

/// Standard error over the test images of the entry's mean error (its replicates averaged per
/// image): the error bar when there is no bootstrap. NaN for one image.
double image_standard_error(const std::vector<SweepPoint>& points,
                            const std::vector<std::size_t>& reps) {
  const std::size_t n = points[reps.front()].image_error.size();
  std::vector<double> per_image(n, 0.0);
  for (std::size_t i : reps)
    for (std::size_t k = 0; k < n; ++k)
      per_image[k] += points[i].image_error[k] / double(reps.size());
  return sample_sd(per_image) / std::sqrt(double(n));
}

/// Per size, per curve entry: (active, error) under the data or one bootstrap draw.
using EntryValues = std::vector<std::vector<std::pair<double, double>>>;

} // namespace

StudyResult analyze_study(const std::vector<SweepPoint>& points, int bootstrap_samples,
                          std::uint64_t seed, bool include_flagged) {
  if (bootstrap_samples < 0)
    throw InvalidArgument("analyze_study: bootstrap_samples must be >= 0, got " +
                          std::to_string(bootstrap_samples));
  StudyResult r;
  r.curves = size_curves(points);
  r.bootstrap_samples = bootstrap_samples;
  r.include_flagged = include_flagged;
  r.exponents.nu = r.exponents.gamma = r.exponents.nu_se = r.exponents.gamma_se = kNaN;
  r.nu_lo = r.nu_hi = r.gamma_lo = r.gamma_hi = r.nu_sd = r.gamma_sd = kNaN;
  r.count_lo = r.count_hi = r.count_sd = kNaN;

  // Replicate ids -> dense slots, resampled as a whole (one study run per replicate).
  std::map<int, int> slot_of;
  for (const SweepPoint& p : points)
    slot_of.emplace(p.replicate, 0);
  int next = 0;
  for (auto& [id, slot] : slot_of)
    slot = next++;
  std::vector<int> slot(points.size());
  for (std::size_t i = 0; i < points.size(); ++i)
    slot[i] = slot_of[points[i].replicate];
  const std::size_t n_img = points[0].image_error.size();
  r.replicates = next;
  r.images = int(n_img);
  for (const SizeCurve& c : r.curves)
    r.flagged += int(std::count(c.flagged.begin(), c.flagged.end(), char(1)));

  const auto values_under = [&](const Draw& d) {
    EntryValues v(r.curves.size());
    for (std::size_t s = 0; s < r.curves.size(); ++s)
      for (const auto& reps : r.curves[s].points)
        v[s].push_back(entry_value(points, reps, slot, d));
    return v;
  };
  const EntryValues data = values_under({std::vector<double>(std::size_t(next), 1.0),
                                         std::vector<double>(n_img, 1.0 / double(n_img))});
  // The draws come first: their sd of each entry is the error bar that decides whether a
  // minimum is resolved, in the data and in every draw.
  std::vector<EntryValues> draws;
  if (bootstrap_samples > 0) {
    SplitMix64 rng(seed);
    Draw d{std::vector<double>(std::size_t(next)), std::vector<double>(n_img)};
    for (int b = 0; b < bootstrap_samples; ++b) {
      std::fill(d.replicate.begin(), d.replicate.end(), 0.0);
      for (int k = 0; k < next; ++k)
        d.replicate[rng.bounded(std::uint64_t(next))] += 1.0;
      std::fill(d.image.begin(), d.image.end(), 0.0);
      for (std::size_t k = 0; k < n_img; ++k)
        d.image[rng.bounded(n_img)] += 1.0 / double(n_img);
      draws.push_back(values_under(d));
    }
    for (std::size_t s = 0; s < r.curves.size(); ++s)
      for (std::size_t j = 0; j < r.curves[s].points.size(); ++j) {
        std::vector<double> errors;
        for (const EntryValues& v : draws)
          if (!std::isnan(v[s][j].second))
            errors.push_back(v[s][j].second);
        r.curves[s].error_sd[j] = sample_sd(errors);
      }
  }
  std::vector<std::vector<double>> bars(r.curves.size());
  for (std::size_t s = 0; s < r.curves.size(); ++s)
    for (std::size_t j = 0; j < r.curves[s].points.size(); ++j) {
      const double sd = r.curves[s].error_sd[j];
      bars[s].push_back(std::isnan(sd) ? image_standard_error(points, r.curves[s].points[j]) : sd);
    }

  // Zero-activity entries (mean 0 %) have no place on the log(active) axis; flagged ones are
  // left out unless included. Returns the minimum, or at_edge with NaN values when no entry is
  // usable; entry: the curve entry of the discrete minimum.
  const auto minimum_of = [&](std::size_t s, const std::vector<std::pair<double, double>>& v,
                              std::size_t* entry = nullptr) {
    const SizeCurve& c = r.curves[s];
    std::vector<double> active, error, lambda, bar;
    std::vector<std::size_t> used;
    for (std::size_t j = 0; j < v.size(); ++j)
      // isgreater: NaN (a draw without the entry's replicates) must not trap FE_INVALID.
      if (std::isgreater(v[j].first, 0.0) && (include_flagged || !c.flagged[j])) {
        active.push_back(v[j].first);
        error.push_back(v[j].second);
        lambda.push_back(c.lambda[j]);
        bar.push_back(bars[s][j]);
        used.push_back(j);
      }
    if (active.empty()) {
      Minimum none;
      none.error = none.active = none.lambda = none.error_sd = none.active_sd = kNaN;
      none.at_edge = true;
      return none;
    }
    Minimum m = find_minimum(active, error, lambda, bar);
    const std::size_t j = used[std::size_t(m.index)];
    m.index = int(c.points[j].front());
    if (entry)
      *entry = j;
    return m;
  };

  std::vector<std::string> warnings;
  std::string edges, unusable, unresolved;
  std::vector<std::size_t> fitted; // sizes with an interior, resolved minimum
  std::vector<double> fitted_L;
  for (std::size_t s = 0; s < r.curves.size(); ++s) {
    const SizeCurve& c = r.curves[s];
    if (std::none_of(c.active.begin(), c.active.end(), [](double a) { return a > 0; }))
      throw InvalidArgument(size_label(c.nf, c.system_size) +
                            ": no grid point has active neurons; lower the lambda range");
    std::size_t j = 0;
    Minimum m = minimum_of(s, data[s], &j);
    m.error_sd = m.active_sd = kNaN;
    r.nf.push_back(c.nf);
    r.L.push_back(double(c.system_size));
    r.minima.push_back(m);
    if (m.at_edge) {
      std::string& list = std::isnan(m.error) ? unusable : edges;
      list += (list.empty() ? "" : ", ") + size_label(c.nf, c.system_size);
    } else if (m.unresolved) {
      unresolved += (unresolved.empty() ? "" : ", ") + size_label(c.nf, c.system_size) +
                    " (vertex " + num(m.vertex_error, "%.4g") + ", lowest point " +
                    num(m.error, "%.4g") + " ± " + num(bars[s][j], "%.2g") + ")";
    } else {
      fitted.push_back(s);
      fitted_L.push_back(r.L.back());
    }
  }
  if (!edges.empty())
    warnings.push_back("minimum at the edge of the lambda range for " + edges +
                       ": widen the lambda range (these sizes are left out of the fits)");
  if (!unresolved.empty())
    warnings.push_back("minimum unresolved for " + unresolved +
                       ": the parabola's vertex lies further below the lowest measured point "
                       "than its error bar; refine the lambda grid around it (these sizes are "
                       "left out of the fits)");
  if (!unusable.empty())
    warnings.push_back("every active point of " + unusable +
                       " is flagged (codes above the stop gap, or training at the epoch cap): "
                       "not fitted");

  bool have_exponents = false;
  if (fitted.size() < 2) {
    warnings.push_back("exponents need >= 2 sizes with an interior, resolved minimum, have " +
                       std::to_string(fitted.size()));
  } else {
    std::vector<double> e_star, p_star;
    for (std::size_t s : fitted) {
      e_star.push_back(r.minima[s].error);
      p_star.push_back(r.minima[s].active);
    }
    try {
      r.exponents = exponents_from_minima(fitted_L, e_star, p_star);
      have_exponents = true;
    } catch (const InvalidArgument& e) {
      warnings.push_back(std::string("scaling fit failed: ") + e.what());
    }
  }

  if (bootstrap_samples > 0) {
    std::vector<double> nus, gammas, counts;
    // Per fitted size: e*, p* per draw.
    std::vector<std::vector<double>> e_draws(r.curves.size()), p_draws(r.curves.size());
    for (const EntryValues& v : draws) {
      std::vector<double> e_star, p_star;
      bool ok = true;
      for (std::size_t s : fitted) {
        try {
          const Minimum m = minimum_of(s, v[s]);
          if (m.at_edge || m.unresolved) {
            ok = false;
            continue;
          }
          e_star.push_back(m.error);
          p_star.push_back(m.active);
          e_draws[s].push_back(m.error);
          p_draws[s].push_back(m.active);
        } catch (const InvalidArgument&) {
          ok = false; // a degenerate draw (e.g. no activity)
        }
      }
      if (!have_exponents)
        continue;
      try {
        if (ok) {
          const Exponents x = exponents_from_minima(fitted_L, e_star, p_star);
          nus.push_back(x.nu);
          gammas.push_back(x.gamma);
          counts.push_back(x.count_fit.slope);
          continue;
        }
      } catch (const InvalidArgument&) {
        // a degenerate fit: counted below
      }
      ++r.bootstrap_failed;
    }
    for (std::size_t s = 0; s < r.curves.size(); ++s) {
      r.minima[s].error_sd = sample_sd(e_draws[s]);
      r.minima[s].active_sd = sample_sd(p_draws[s]);
    }
    if (have_exponents) {
      r.nu_lo = percentile(nus, 0.025);
      r.nu_hi = percentile(nus, 0.975);
      r.gamma_lo = percentile(gammas, 0.025);
      r.gamma_hi = percentile(gammas, 0.975);
      r.count_lo = percentile(counts, 0.025);
      r.count_hi = percentile(counts, 0.975);
      r.nu_sd = sample_sd(nus);
      r.gamma_sd = sample_sd(gammas);
      r.count_sd = sample_sd(counts);
      if (!std::isnan(r.nu_lo))
        r.nu_minus_one = r.nu_lo <= -1 && -1 <= r.nu_hi ? NullModel::inside : NullModel::outside;
      if (r.bootstrap_failed > 0)
        warnings.push_back(std::to_string(r.bootstrap_failed) + " of " +
                           std::to_string(bootstrap_samples) +
                           " bootstrap draws skipped (a minimum at an edge or unresolved, or a "
                           "failed fit)");
    }
  }
  for (std::size_t s = 0; s < r.minima.size(); ++s) {
    r.n_star.push_back(r.minima[s].active / 100 * r.L[s]);
    r.n_star_sd.push_back(r.minima[s].active_sd / 100 * r.L[s]);
  }

  r.valid = edges.empty() && unresolved.empty() && unusable.empty() && have_exponents;
  for (const std::string& w : warnings)
    r.warning += (r.warning.empty() ? "" : "; ") + w;
  return r;
}

PowerLawFit fit_response(const std::vector<double>& lambda, const std::vector<double>& chi) {
  if (lambda.size() != chi.size())
    throw InvalidArgument("fit_response: " + std::to_string(lambda.size()) + " lambda but " +
                          std::to_string(chi.size()) + " chi values");
  std::vector<double> x, y;
  for (std::size_t i = 0; i < lambda.size(); ++i) {
    if (!(std::isfinite(lambda[i]) && lambda[i] > 0 && std::isfinite(chi[i])))
      throw InvalidArgument("fit_response: need finite chi and lambda > 0 (lambda=" +
                            num(lambda[i]) + ", chi=" + num(chi[i]) + ")");
    if (chi[i] > 0) {
      x.push_back(lambda[i]);
      y.push_back(chi[i]);
    }
  }
  if (x.size() < 2)
    throw InvalidArgument("fit_response: " + std::to_string(x.size()) + " of " +
                          std::to_string(chi.size()) + " chi values are > 0, need >= 2");
  return fit_power_law(x, y);
}

} // namespace lca
