#pragma once
// The poster's plots (algorithm.md §6) and the response function (§7) as PNG through gnuplot,
// for lca-scaling (kept out of the library: it runs an external program). Each call leaves its
// data files and gnuplot script in out_dir so that users can re-plot (`cd out_dir && gnuplot
// study.gp`); PNGs appear atomically (temporary name, then rename).
#include "lca/analysis.hpp"
#include "lca/report.hpp"

#include <string>
#include <vector>

namespace lca {

/// error_vs_active<suffix>.png (error vs percent active per size, log x, bootstrap error bars,
/// flagged entries and minima marked), min_error_vs_L<suffix>.png and
/// min_location_vs_L<suffix>.png (log-log e* and p* vs L with error bars and the fits),
/// min_count_vs_L<suffix>.png (n* = p*/100 · L vs L with its fit and the null model nu = -1, n*
/// constant), suffix from the metric; unresolved and edge minima are marked, not fitted. Files:
/// study_curves<suffix>.dat, study_minima<suffix>.dat, study<suffix>.gp. Creates out_dir. Throws
/// InvalidArgument for an incomplete result, IoError("gnuplot not found; install gnuplot-nox") or
/// IoError("gnuplot failed ...: <its output>").
void plot_study(const std::string& out_dir, const StudyResult& r, const Metric& metric);

/// Every file plot_study (both metrics) and plot_response write in out_dir.
std::vector<std::string> plot_files(const std::string& out_dir);

/// response.png: log-log chi vs lambda per size, each with its fit (fits[i] belongs to
/// curves[i], e.g. from fit_response; a fit with n < 2 is not drawn). Files: response.dat,
/// response.gp. Throws InvalidArgument on mismatched sizes or nothing to plot, IoError as
/// plot_study.
void plot_response(const std::string& out_dir, const std::vector<ResponseCurve>& curves,
                   const std::vector<PowerLawFit>& fits);

} // namespace lca
