#pragma once
// The poster's plots (algorithm.md §6) and the response function (§7) as PNG through gnuplot.
// Each call leaves its data files and gnuplot script in out_dir so that users can re-plot
// (`cd out_dir && gnuplot study.gp`); PNGs appear atomically (temporary name, then rename).
#include "lca/analysis.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lca {

/// error_vs_active.png (percent error vs percent active per size, log x, minima marked),
/// min_error_vs_L.png (log-log e* vs L with fit), min_location_vs_L.png (log-log p* vs L with
/// fit). Files: study_curves.dat, study_minima.dat, study.gp. Creates out_dir. Throws
/// InvalidArgument if r was not computed from points, IoError("gnuplot not found; install
/// gnuplot-nox") or IoError("gnuplot failed ...: <its output>").
void plot_study(const std::string& out_dir, const std::vector<SweepPoint>& points,
                const StudyResult& r);

/// Every file plot_study and plot_response write in out_dir (data, scripts, gnuplot logs, PNGs).
std::vector<std::string> plot_files(const std::string& out_dir);

/// chi(lambda) of one size, algorithm.md §7.
struct ResponseCurve {
  int nf = 0;
  std::int64_t system_size = 0;
  std::vector<double> lambda;
  std::vector<double> chi; ///< values <= 0 (no response) are not plotted
};

/// response.png: log-log chi vs lambda per size, each with its fit (fits[i] belongs to
/// curves[i], e.g. from fit_response; a fit with n < 2 is not drawn). Files: response.dat,
/// response.gp. Throws InvalidArgument on mismatched sizes or nothing to plot, IoError as
/// plot_study.
void plot_response(const std::string& out_dir, const std::vector<ResponseCurve>& curves,
                   const std::vector<PowerLawFit>& fits);

} // namespace lca
