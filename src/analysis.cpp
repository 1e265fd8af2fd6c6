// Statistics of the phase-transition study, algorithm.md §5-§7.
#include "lca/analysis.hpp"

#include "lca/atomic_file.hpp"
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
  std::map<int, SizeCurve> by_nf;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    const std::string where = "sweep point nf=" + std::to_string(p.nf) + " lambda=" + num(p.lambda);
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
    auto [it, inserted] = by_nf.try_emplace(p.nf);
    SizeCurve& c = it->second;
    if (inserted) {
      c.nf = p.nf;
      c.system_size = p.system_size;
    } else if (c.system_size != p.system_size) {
      throw InvalidArgument(where + ": L=" + std::to_string(p.system_size) +
                            " but an earlier point of nf=" + std::to_string(p.nf) +
                            " has L=" + std::to_string(c.system_size));
    }
    c.lambda.push_back(p.lambda);
    c.active.push_back(active);
    c.error.push_back(weighted_mean(p.image_error, uniform));
    c.point.push_back(i);
  }

  std::vector<SizeCurve> curves;
  for (auto& [nf, c] : by_nf) {
    std::vector<std::size_t> order(c.lambda.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&lam = c.lambda](std::size_t a, std::size_t b) { return lam[a] < lam[b]; });
    SizeCurve sorted{c.nf, c.system_size, {}, {}, {}, {}};
    for (std::size_t k : order) {
      if (!sorted.lambda.empty() && sorted.lambda.back() == c.lambda[k])
        throw InvalidArgument("analysis: " + size_label(nf, c.system_size) +
                              " has lambda=" + num(c.lambda[k]) + " twice");
      sorted.lambda.push_back(c.lambda[k]);
      sorted.active.push_back(c.active[k]);
      sorted.error.push_back(c.error[k]);
      sorted.point.push_back(c.point[k]);
    }
    curves.push_back(std::move(sorted));
  }
  std::stable_sort(curves.begin(), curves.end(), [](const SizeCurve& a, const SizeCurve& b) {
    return a.system_size < b.system_size;
  });
  return curves;
}

Minimum find_minimum(const std::vector<double>& active, const std::vector<double>& error,
                     const std::vector<double>& lambda) {
  const std::size_t n = active.size();
  if (n == 0 || error.size() != n || lambda.size() != n)
    throw InvalidArgument("find_minimum: need equal, non-zero numbers of active, error and lambda "
                          "values (got " +
                          std::to_string(n) + ", " + std::to_string(error.size()) + ", " +
                          std::to_string(lambda.size()) + ")");
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
  r.error = e[0] + d01 * (tv - t[0]) + c2 * (tv - t[0]) * (tv - t[1]);
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
  const double a = x.val_fit.slope, b = x.loc_fit.slope;
  if (b == 0)
    throw InvalidArgument("exponents: p* does not change with L (slope 0), nu is undefined");
  x.nu = 1 / b;
  x.gamma = a / b;
  x.nu_se = x.loc_fit.slope_se / (b * b);
  x.gamma_se = std::hypot(x.val_fit.slope_se / b, a * x.loc_fit.slope_se / (b * b));
  return x;
}

StudyResult analyze_study(const std::vector<SweepPoint>& points, int bootstrap_samples,
                          std::uint64_t seed) {
  if (bootstrap_samples < 0)
    throw InvalidArgument("analyze_study: bootstrap_samples must be >= 0, got " +
                          std::to_string(bootstrap_samples));
  const std::vector<SizeCurve> curves = size_curves(points);
  StudyResult r;
  r.bootstrap_samples = bootstrap_samples;
  r.exponents.nu = r.exponents.gamma = r.exponents.nu_se = r.exponents.gamma_se = kNaN;
  r.nu_lo = r.nu_hi = r.gamma_lo = r.gamma_hi = kNaN;

  // Zero-activity points (mean 0 %) have no place on the log(active) axis.
  auto minimum_of = [&](const SizeCurve& c, const std::vector<double>& weight) {
    std::vector<double> active, error, lambda;
    std::vector<std::size_t> point;
    for (std::size_t j = 0; j < c.point.size(); ++j) {
      const SweepPoint& p = points[c.point[j]];
      const double a = weighted_mean(p.image_active, weight);
      if (a > 0) {
        active.push_back(a);
        error.push_back(weighted_mean(p.image_error, weight));
        lambda.push_back(c.lambda[j]);
        point.push_back(c.point[j]);
      }
    }
    if (active.empty())
      throw InvalidArgument(size_label(c.nf, c.system_size) +
                            ": no grid point has active neurons; lower the lambda range");
    Minimum m = find_minimum(active, error, lambda);
    m.index = int(point[std::size_t(m.index)]);
    return m;
  };

  const std::size_t n_img = points[0].image_error.size();
  std::vector<std::string> warnings;
  std::string edges;
  std::vector<std::size_t> fitted; // sizes with an interior minimum
  std::vector<double> fitted_L;
  const std::vector<double> uniform(n_img, 1.0 / double(n_img));
  for (std::size_t s = 0; s < curves.size(); ++s) {
    const SizeCurve& c = curves[s];
    const Minimum m = minimum_of(c, uniform);
    r.nf.push_back(c.nf);
    r.L.push_back(double(c.system_size));
    r.minima.push_back(m);
    if (m.at_edge) {
      edges += (edges.empty() ? "" : ", ") + size_label(c.nf, c.system_size);
    } else {
      fitted.push_back(s);
      fitted_L.push_back(r.L.back());
    }
  }
  if (!edges.empty())
    warnings.push_back("minimum at the edge of the lambda range for " + edges +
                       ": widen the lambda range (these sizes are left out of the fits)");

  bool have_exponents = false;
  if (fitted.size() < 2) {
    warnings.push_back("exponents need >= 2 sizes with an interior minimum, have " +
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

  if (have_exponents && bootstrap_samples > 0) {
    SplitMix64 rng(seed);
    std::vector<double> weight(n_img), nus, gammas;
    for (int b = 0; b < bootstrap_samples; ++b) {
      std::fill(weight.begin(), weight.end(), 0.0);
      for (std::size_t k = 0; k < n_img; ++k)
        weight[rng.bounded(n_img)] += 1.0 / double(n_img);
      try {
        std::vector<double> e_star, p_star;
        for (std::size_t s : fitted) {
          const Minimum m = minimum_of(curves[s], weight);
          if (m.at_edge)
            break;
          e_star.push_back(m.error);
          p_star.push_back(m.active);
        }
        if (e_star.size() == fitted.size()) {
          const Exponents x = exponents_from_minima(fitted_L, e_star, p_star);
          nus.push_back(x.nu);
          gammas.push_back(x.gamma);
          continue;
        }
      } catch (const InvalidArgument&) {
        // a size without activity in this draw, or a degenerate fit: counted below
      }
      ++r.bootstrap_failed;
    }
    r.nu_lo = percentile(nus, 0.025);
    r.nu_hi = percentile(nus, 0.975);
    r.gamma_lo = percentile(gammas, 0.025);
    r.gamma_hi = percentile(gammas, 0.975);
    if (r.bootstrap_failed > 0)
      warnings.push_back(std::to_string(r.bootstrap_failed) + " of " +
                         std::to_string(bootstrap_samples) +
                         " bootstrap replicates skipped (a minimum at an edge or a failed fit)");
  }

  r.valid = edges.empty() && have_exponents;
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

void write_text_file(const std::string& path, const std::string& text, const std::string& what) {
  write_file_atomically(path, what, text);
}

void write_results_table(const std::string& csv_path, const std::string& md_path,
                         const StudyResult& r, const std::string& note,
                         const std::string& md_appendix) {
  const Exponents& x = r.exponents;
  const int ok = r.bootstrap_samples - r.bootstrap_failed;
  struct Row {
    const char* csv_name;
    const char* md_name;
    double value, se, lo, hi, seed;
  };
  // The slopes' bootstrap intervals are not kept; their seed values follow from gamma and nu.
  const Row rows[] = {
      {"gamma", "γ", x.gamma, x.gamma_se, r.gamma_lo, r.gamma_hi, kSeedGamma},
      {"nu", "ν", x.nu, x.nu_se, r.nu_lo, r.nu_hi, kSeedNu},
      {"slope_e_star_vs_L", "γ/ν (slope of e*)", x.val_fit.slope, x.val_fit.slope_se, kNaN, kNaN,
       kSeedGamma / kSeedNu},
      {"slope_p_star_vs_L", "1/ν (slope of p*)", x.loc_fit.slope, x.loc_fit.slope_se, kNaN, kNaN,
       1 / kSeedNu},
  };

  std::ostringstream csv;
  csv << "kind,nf,L,e_star,p_star,lambda_star,at_edge,refined,name,value,se,ci95_lo,ci95_hi,"
         "seed_poster\n";
  for (std::size_t s = 0; s < r.minima.size(); ++s) {
    const Minimum& m = r.minima[s];
    csv << "size," << r.nf[s] << ',' << num(r.L[s], "%.0f") << ',' << num(m.error, "%.10g") << ','
        << num(m.active, "%.10g") << ',' << num(m.lambda, "%.10g") << ','
        << (m.at_edge ? "true" : "false") << ',' << (m.refined ? "true" : "false") << ",,,,,,\n";
  }
  for (const Row& row : rows)
    csv << "exponent,,,,,,,," << row.csv_name << ',' << num(row.value, "%.10g") << ','
        << num(row.se, "%.10g") << ',' << num(row.lo, "%.10g") << ',' << num(row.hi, "%.10g") << ','
        << num(row.seed, "%.10g") << '\n';
  write_text_file(csv_path, csv.str(), "table");

  auto md_num = [](double v) { return std::isnan(v) ? std::string("n/a") : num(v, "%.4g"); };
  auto pm = [&](double v, double se) {
    return std::isnan(se) ? md_num(v) : md_num(v) + " ± " + num(se, "%.2g");
  };
  std::ostringstream md;
  md << "# Phase-transition study: results\n\n" << note << "\n\n";
  md << "**Status:** " << (r.valid ? "valid" : "NOT VALID") << "\n\n";
  if (!r.warning.empty())
    md << "**Warning:** " << r.warning << "\n\n";
  md << "## Minimum of the denoising error per size\n\n"
     << "| nf | L (neurons) | e* (% error) | p* (% active) | λ* | minimum |\n"
     << "|---:|---:|---:|---:|---:|---|\n";
  for (std::size_t s = 0; s < r.minima.size(); ++s) {
    const Minimum& m = r.minima[s];
    md << "| " << r.nf[s] << " | " << num(r.L[s], "%.0f") << " | " << md_num(m.error) << " | "
       << md_num(m.active) << " | " << md_num(m.lambda) << " | "
       << (m.at_edge   ? "at the λ-range edge (not fitted)"
           : m.refined ? "refined"
                       : "discrete")
       << " |\n";
  }
  md << "\n## Scaling fits (least squares in log-log)\n\n"
     << "| fit | slope | intercept | R² | sizes |\n|---|---:|---:|---:|---:|\n";
  const std::pair<const char*, const PowerLawFit*> fits[] = {{"e* ∝ L^(γ/ν)", &x.val_fit},
                                                             {"p* ∝ L^(1/ν)", &x.loc_fit}};
  for (const auto& [name, f] : fits)
    md << "| " << name << " | " << pm(f->slope, f->slope_se) << " | "
       << pm(f->intercept, f->intercept_se) << " | " << md_num(f->r2) << " | " << f->n << " |\n";
  md << "\n## Critical exponents\n\n"
     << "| exponent | this run (fit ± se) | bootstrap 95% interval | seed poster (CIFAR-10, "
        "PetaVision) |\n|---|---:|---:|---:|\n";
  for (const Row& row : rows) {
    const std::string interval = std::isnan(row.lo)
                                     ? "n/a"
                                     : "[" + md_num(row.lo) + ", " + md_num(row.hi) + "] (" +
                                           std::to_string(ok) + " of " +
                                           std::to_string(r.bootstrap_samples) + " replicates)";
    md << "| " << row.md_name << " | " << pm(row.value, row.se) << " | " << interval << " | "
       << num(row.seed, "%.4g") << " |\n";
  }
  md << md_appendix;
  write_text_file(md_path, md.str(), "table");
}

} // namespace lca
