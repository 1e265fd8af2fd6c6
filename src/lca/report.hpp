#pragma once
// The study's results tables (CSV + Markdown) from the statistics of lca/analysis.hpp, for
// each error metric. Pure host C++17.
#include "lca/analysis.hpp"

#include <string>
#include <vector>

namespace lca {

/// An error measure of the denoising test. The poster does not define its "percent
/// reconstruction error", and a squared measure doubles the exponent of e*, so the study
/// reports both.
struct Metric {
  const char* key;    ///< "percent" or "mse": the CSV's metric column
  const char* suffix; ///< file-name suffix of its plots ("" or "_mse")
  const char* name;   ///< in table headings
  const char* title;  ///< short, in plot titles
  const char* axis;   ///< the plots' error axis label
};
/// 100 ||x - Phi a|| / ||x|| per image.
extern const Metric kPercentError;
/// ||x - Phi a||^2 / (pixels) per image of the normalised x (unit variance per pixel).
extern const Metric kSquaredError;

struct MetricResult {
  const Metric* metric;
  StudyResult result;
};

/// CSV: one header; rows kind=point (per curve entry: error, bootstrap sd, active, replicates,
/// flagged), kind=size (minimum: e*, p*, n* with bootstrap sd, lambda*, at_edge, refined,
/// unresolved), kind=exponent (gamma, nu and the slopes of e*, p*, n*: fit value, fit se,
/// bootstrap sd, 95 % interval, seed poster value), each with its metric. Markdown: the note,
/// then per metric the status, minima with error bars, fits, exponents beside the seed poster's,
/// a sentence on whether nu = -1 lies in nu's interval; flagged entries listed; then md_appendix.
/// Throws IoError if a file cannot be written.
void write_results_table(const std::string& csv_path, const std::string& md_path,
                         const std::vector<MetricResult>& results, const std::string& note,
                         const std::string& md_appendix = "");

/// Writes text to path all or nothing (lca::AtomicFile). `what` names the file in errors:
/// "cannot write <what> <path>: <reason>". Throws IoError.
void write_text_file(const std::string& path, const std::string& text,
                     const std::string& what = "file");

} // namespace lca
