// The study's results tables, per error metric.
#include "lca/report.hpp"

#include "lca/atomic_file.hpp"
#include "lca/format.hpp"

#include <cmath>
#include <limits>
#include <sstream>

namespace lca {

const Metric kPercentError{"percent", "", "percent error 100·‖x − Φa‖/‖x‖", "percent error",
                           "reconstruction error 100·‖x − Φa‖/‖x‖ (%)"};
const Metric kSquaredError{"mse", "_mse", "mean squared error per pixel", "squared error",
                           "mean squared error per pixel of the normalised image"};

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string csv_num(double v) {
  return format_number(v, "%.10g");
}
std::string md_num(double v) {
  return std::isnan(v) ? std::string("n/a") : format_number(v, "%.4g");
}
std::string pm(double v, double se) {
  return std::isnan(se) ? md_num(v) : md_num(v) + " ± " + format_number(se, "%.2g");
}

struct Row {
  const char* csv_name;
  const char* md_name;
  double value, se, sd, lo, hi, seed;
};

std::vector<Row> exponent_rows(const StudyResult& r) {
  const Exponents& x = r.exponents;
  // The slopes of e* and p* keep no bootstrap intervals; the seed values follow from gamma and
  // nu.
  return {
      {"gamma", "γ", x.gamma, x.gamma_se, r.gamma_sd, r.gamma_lo, r.gamma_hi, kSeedGamma},
      {"nu", "ν", x.nu, x.nu_se, r.nu_sd, r.nu_lo, r.nu_hi, kSeedNu},
      {"slope_e_star_vs_L", "γ/ν (slope of e*)", x.val_fit.slope, x.val_fit.slope_se, kNaN, kNaN,
       kNaN, kSeedGamma / kSeedNu},
      {"slope_p_star_vs_L", "1/ν (slope of p*)", x.loc_fit.slope, x.loc_fit.slope_se, kNaN, kNaN,
       kNaN, 1 / kSeedNu},
      {"slope_n_star_vs_L", "1 + 1/ν (slope of n*)", x.count_fit.slope, x.count_fit.slope_se,
       r.count_sd, r.count_lo, r.count_hi, 1 + 1 / kSeedNu},
  };
}

void csv_rows(std::ostringstream& csv, const Metric& metric, const StudyResult& r) {
  for (const SizeCurve& c : r.curves)
    for (std::size_t j = 0; j < c.lambda.size(); ++j)
      csv << metric.key << ",point," << c.nf << ',' << c.system_size << ',' << csv_num(c.lambda[j])
          << ',' << c.replicates[j] << ',' << (c.flagged[j] ? "true" : "false") << ','
          << csv_num(c.error[j]) << ',' << csv_num(c.error_sd[j]) << ',' << csv_num(c.active[j])
          << ",,,,,,,,,,,,,\n";
  for (std::size_t s = 0; s < r.minima.size(); ++s) {
    const Minimum& m = r.minima[s];
    csv << metric.key << ",size," << r.nf[s] << ',' << format_number(r.L[s], "%.0f") << ','
        << csv_num(m.lambda) << ",,," << csv_num(m.error) << ',' << csv_num(m.error_sd) << ','
        << csv_num(m.active) << ',' << csv_num(m.active_sd) << ',' << csv_num(r.n_star[s]) << ','
        << csv_num(r.n_star_sd[s]) << ',' << (m.at_edge ? "true" : "false") << ','
        << (m.refined ? "true" : "false") << ',' << (m.unresolved ? "true" : "false")
        << ",,,,,,,\n";
  }
  for (const Row& row : exponent_rows(r))
    csv << metric.key << ",exponent,,,,,,,,,,,,,,," << row.csv_name << ',' << csv_num(row.value)
        << ',' << csv_num(row.se) << ',' << csv_num(row.sd) << ',' << csv_num(row.lo) << ','
        << csv_num(row.hi) << ',' << csv_num(row.seed) << '\n';
}

void md_section(std::ostringstream& md, const Metric& metric, const StudyResult& r) {
  md << "## Error metric: " << metric.name << "\n\n";
  md << "**Status:** " << (r.valid ? "valid" : "NOT VALID") << "\n\n";
  if (!r.warning.empty())
    md << "**Warning:** " << r.warning << "\n\n";
  md << "### Minimum of the denoising error per size\n\n"
     << "| nf | L (neurons) | e* | p* (% active) | n* = p*/100·L (active neurons) | λ* | minimum "
        "|\n"
     << "|---:|---:|---:|---:|---:|---:|---|\n";
  for (std::size_t s = 0; s < r.minima.size(); ++s) {
    const Minimum& m = r.minima[s];
    md << "| " << r.nf[s] << " | " << format_number(r.L[s], "%.0f") << " | "
       << pm(m.error, m.error_sd) << " | " << pm(m.active, m.active_sd) << " | "
       << pm(r.n_star[s], r.n_star_sd[s]) << " | " << md_num(m.lambda) << " | "
       << (std::isnan(m.error) ? "no usable point (not fitted)"
           : m.at_edge         ? "at the λ-range edge (not fitted)"
           : m.unresolved      ? "unresolved: the vertex " + md_num(m.vertex_error) +
                                " lies further below than this point's error bar (not fitted)"
           : m.refined ? std::string("refined")
                       : std::string("discrete"))
       << " |\n";
  }
  const Exponents& x = r.exponents;
  md << "\n### Scaling fits (least squares in log-log)\n\n"
     << "| fit | slope | intercept | R² | sizes |\n|---|---:|---:|---:|---:|\n";
  const std::pair<const char*, const PowerLawFit*> fits[] = {
      {"e* ∝ L^(γ/ν)", &x.val_fit}, {"p* ∝ L^(1/ν)", &x.loc_fit}, {"n* ∝ L^(1+1/ν)", &x.count_fit}};
  for (const auto& [name, f] : fits)
    md << "| " << name << " | " << pm(f->slope, f->slope_se) << " | "
       << pm(f->intercept, f->intercept_se) << " | " << md_num(f->r2) << " | " << f->n << " |\n";
  const int ok = r.bootstrap_samples - r.bootstrap_failed;
  md << "\n### Critical exponents\n\n"
     << "| exponent | fit ± se | bootstrap sd | bootstrap 95% interval | seed poster (CIFAR-10, "
        "PetaVision) |\n|---|---:|---:|---:|---:|\n";
  for (const Row& row : exponent_rows(r)) {
    const std::string interval = std::isnan(row.lo)
                                     ? "n/a"
                                     : "[" + md_num(row.lo) + ", " + md_num(row.hi) + "] (" +
                                           std::to_string(ok) + " of " +
                                           std::to_string(r.bootstrap_samples) + " draws)";
    md << "| " << row.md_name << " | " << pm(row.value, row.se) << " | " << md_num(row.sd) << " | "
       << interval << " | " << format_number(row.seed, "%.4g") << " |\n";
  }
  md << "\n**Null model ν = −1** (the same number of active neurons n* at every size): ";
  if (r.nu_minus_one == NullModel::untested)
    md << "not tested, ν has no bootstrap interval.\n\n";
  else
    md << "−1 lies " << (r.nu_minus_one == NullModel::inside ? "inside" : "outside")
       << " ν's bootstrap 95 % interval [" << md_num(r.nu_lo) << ", " << md_num(r.nu_hi) << "]: "
       << (r.nu_minus_one == NullModel::inside ? "the data do not tell ν from −1"
                                               : "ν differs from −1")
       << "; n* ∝ L^" << md_num(x.count_fit.slope) << ", 95 % interval [" << md_num(r.count_lo)
       << ", " << md_num(r.count_hi) << "].\n\n";
}

} // namespace

void write_text_file(const std::string& path, const std::string& text, const std::string& what) {
  write_file_atomically(path, what, text);
}

void write_results_table(const std::string& csv_path, const std::string& md_path,
                         const std::vector<MetricResult>& results, const std::string& note,
                         const std::string& md_appendix) {
  std::ostringstream csv;
  csv << "metric,kind,nf,L,lambda,replicates,flagged,error,error_sd,active,active_sd,n_star,"
         "n_star_sd,at_edge,refined,unresolved,name,value,se,bootstrap_sd,ci95_lo,ci95_hi,"
         "seed_poster\n";
  for (const MetricResult& m : results)
    csv_rows(csv, *m.metric, m.result);
  write_text_file(csv_path, csv.str(), "table");

  std::ostringstream md;
  md << "# Phase-transition study: results\n\n" << note << "\n\n";
  if (!results.empty()) {
    const StudyResult& r = results.front().result;
    md << "Error bars (±) and intervals: two-level bootstrap, " << r.bootstrap_samples
       << " draws over " << r.replicates << " dictionary replicate"
       << (r.replicates == 1 ? "" : "s") << " and " << r.images << " test images"
       << (r.replicates == 1 ? " (one replicate: they leave out the randomness of training; "
                               "use --replicates for it)"
                             : "")
       << ". Fit ± se: least-squares standard errors of the fit through the minima.\n\n";
    if (r.flagged > 0) {
      md << "**Flagged points** (codes above the stop gap at the iteration cap, or training "
            "that reached the epoch cap without a plateau; "
         << (r.include_flagged ? "INCLUDED in the minima and fits by --include-unconverged"
                               : "left out of the minima and fits")
         << "):";
      for (const SizeCurve& c : r.curves)
        for (std::size_t j = 0; j < c.lambda.size(); ++j)
          if (c.flagged[j])
            md << " nf=" << c.nf << " λ=" << format_number(c.lambda[j], "%.4g") << ";";
      md << "\n\n";
    }
  }
  for (const MetricResult& m : results)
    md_section(md, *m.metric, m.result);
  md << md_appendix;
  write_text_file(md_path, md.str(), "table");
}

} // namespace lca
