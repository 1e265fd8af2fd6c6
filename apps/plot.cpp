// Poster plots through gnuplot: data files + script in out_dir, then one gnuplot run.
#include "plot.hpp"

#include "lca/atomic_file.hpp"
#include "lca/error.hpp"
#include "lca/format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

namespace lca {
namespace {

namespace fs = std::filesystem;

std::string num(double v, const char* format = "%.10g") {
  return format_number(v, format);
}

/// Single-quoted for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// gnuplot expression of a fitted power law, for a "plot f(x)" element.
std::string power_law(const PowerLawFit& f) {
  return "exp(" + num(f.intercept) + ")*x**(" + num(f.slope) + ")";
}

std::string pm(double v, double se) {
  return num(v, "%.3g") + (std::isnan(se) ? "" : " ± " + num(se, "%.2g"));
}

/// The minima file's columns 6 (at_edge) and 10 (unresolved) pick the rows of a series.
enum class MinimaKind { fitted, edge, unresolved };

/// Rows of the minima file of one kind (others undefined, hence skipped), with error bars from
/// column errcol.
std::string minima_series(const std::string& file, MinimaKind kind, int xcol, int ycol,
                          int errcol) {
  const char* cond = kind == MinimaKind::fitted ? "$6 == 0 && $10 == 0"
                     : kind == MinimaKind::edge ? "$6 == 1"
                                                : "$10 == 1";
  return "'" + file + "' using " + std::to_string(xcol) + ":(" + cond + " ? $" +
         std::to_string(ycol) + " : 1/0):" + std::to_string(errcol);
}

std::string plot_command(const std::vector<std::string>& elements) {
  if (elements.empty()) // nothing usable (e.g. every point flagged): an empty, labelled frame
    return "set label 'no usable minimum' at graph 0.5, 0.5 center\nunset logscale\n"
           "set xrange [0:1]\nset yrange [0:1]\nplot 1/0 notitle\n";
  std::string cmd = "plot ";
  for (std::size_t i = 0; i < elements.size(); ++i)
    cmd += (i ? ", \\\n     " : "") + elements[i];
  return cmd + "\n";
}

/// Terminal choice at plot time, so that a re-plot works where only the gd png terminal exists.
/// `prefix` and `suffix` let the library write to AtomicFile's temporary names; a user's re-plot
/// writes the final ones.
const char* kPreamble = R"(if (!exists("prefix")) prefix = ''
if (!exists("suffix")) suffix = ''
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
  set terminal pngcairo enhanced size 1100,750 font 'sans,13'
} else {
  set terminal png enhanced size 1100,750 font 'sans,13'
}
)";

// Keys outside the data; extra spacing leaves room for superscripts in the fit titles.
const char* kKeyRight = "outside right top Left reverse spacing 1.3";
const char* kKeyBelow = "below left Left reverse maxcols 1 spacing 1.3";

/// Common settings of one plot; reset clears the previous plot's axes but keeps the terminal.
std::string begin_plot(const std::string& png, const std::string& title, const std::string& xlabel,
                       const std::string& ylabel, const std::string& key) {
  return "\nreset\nset encoding utf8\nset output prefix.'" + png + "'.suffix\nset title '" + title +
         "'\nset xlabel '" + xlabel + "'\nset ylabel '" + ylabel +
         "'\nset grid xtics ytics mxtics mytics\nset key " + key + "\n";
}

/// Range of the positive values on a log axis.
struct LogRange {
  double lo = HUGE_VAL, hi = 0;
  void add(double v) {
    if (v > 0) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
};

/// A log axis over the data range with a margin. gnuplot labels only the decades, which leaves
/// a short axis (e* typically changes by a few percent) unlabelled: up to three decades get
/// 1-2-5 tics, and an axis holding fewer than three of those gets tics at a linear 1-2-5 step.
std::string log_axis(char axis, const LogRange& r) {
  const std::string name(1, axis);
  if (!(r.hi > 0))
    return "set logscale " + name + "\n";
  const double pad = std::pow(std::max(r.hi / r.lo, 1.2), 0.05);
  const double lo = r.lo / pad, hi = r.hi * pad;
  std::string cmd =
      "set logscale " + name + "\nset " + name + "range [" + num(lo) + ":" + num(hi) + "]\n";
  if (hi / lo > 1000)
    return cmd;
  std::vector<double> tics;
  for (double decade = std::pow(10.0, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (m * decade >= lo && m * decade <= hi)
        tics.push_back(m * decade);
  if (tics.size() < 3) {
    const double raw = (hi - lo) / 4, mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = mag * (raw / mag < 1.5   ? 1
                               : raw / mag < 3.5 ? 2
                               : raw / mag < 7.5 ? 5
                                                 : 10);
    tics.clear();
    for (double k = std::ceil(lo / step); k * step <= hi; ++k)
      tics.push_back(k * step);
  }
  cmd += "set " + name + "tics (";
  for (std::size_t i = 0; i < tics.size(); ++i)
    cmd += (i ? ", " : "") + num(tics[i], "%.6g");
  return cmd + ")\n";
}

/// True if `path` holds a whole PNG: the signature, and the IEND chunk at the end.
bool complete_png(const std::string& path) {
  static const char signature[] = "\x89PNG\r\n\x1a\n", iend[] = "IEND\xae\x42\x60\x82";
  std::ifstream in(path, std::ios::binary);
  char head[8] = {}, tail[8] = {};
  if (!in.read(head, 8) || !in.seekg(-8, std::ios::end) || !in.read(tail, 8))
    return false;
  return std::equal(head, head + 8, signature) && std::equal(tail, tail + 8, iend);
}

/// Run `gnuplot script` in dir, writing each png to its AtomicFile's temp file, then commit them.
void run_gnuplot(const std::string& dir, const std::string& script,
                 const std::vector<std::string>& pngs) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    throw IoError("gnuplot not found; install gnuplot-nox");
  const fs::path d(dir);
  std::vector<std::unique_ptr<AtomicFile>> out; // removed unless committed
  for (const std::string& png : pngs)
    out.push_back(std::make_unique<AtomicFile>((d / png).string(), "plot"));
  // AtomicFile's temp names are ".<name>.tmp.<pid>".
  const std::string prefix = ".", suffix = ".tmp." + std::to_string(::getpid());
  for (std::size_t i = 0; i < pngs.size(); ++i)
    if (fs::path(out[i]->temp_path()).filename() != prefix + pngs[i] + suffix)
      throw Error("run_gnuplot: unexpected temp name " + out[i]->temp_path());
  const std::string log = script + ".log";
  const std::string cmd = "cd " + shell_quote(dir) + " && gnuplot -e \"prefix='" + prefix +
                          "'; suffix='" + suffix + "'\" " + shell_quote(script) + " >" +
                          shell_quote(log) + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::error_code ec; // cleanup failures must not hide the real error
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // One line: gnuplot's messages without the blank and caret-only lines of its echo.
    std::ifstream in(d / log);
    std::string output, line;
    while (std::getline(in, line) && output.size() < 600)
      if (line.find_first_not_of(" \t^") != std::string::npos)
        output += (output.empty() ? "" : " | ") + line;
    throw IoError("gnuplot failed (status " + std::to_string(status) + ") on " +
                  (d / script).string() + ": " + output);
  }
  for (const auto& png : out)
    if (!complete_png(png->temp_path()))
      png->fail("gnuplot wrote no complete image (is the disk full?)");
  for (const auto& png : out)
    png->commit();
  fs::remove(d / log, ec);
}

void make_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw IoError("cannot create directory " + dir + ": " + ec.message());
}

} // namespace

std::vector<std::string> plot_files(const std::string& out_dir) {
  std::vector<std::string> files;
  for (const Metric* m : {&kPercentError, &kSquaredError})
    for (const char* stem : {"study_curves", "study_minima", "study", "error_vs_active",
                             "min_error_vs_L", "min_location_vs_L", "min_count_vs_L"}) {
      const std::string base = std::string(stem) + m->suffix;
      if (std::string(stem) == "study")
        files.insert(files.end(), {base + ".gp", base + ".gp.log"});
      else
        files.push_back(base + (std::string(stem).rfind("study_", 0) == 0 ? ".dat" : ".png"));
    }
  for (const char* name : {"response.dat", "response.gp", "response.gp.log", "response.png"})
    files.push_back(name);
  for (auto& f : files)
    f = (fs::path(out_dir) / f).string();
  return files;
}

void plot_study(const std::string& out_dir, const StudyResult& r, const Metric& metric) {
  if (r.curves.size() != r.minima.size() || r.nf.size() != r.minima.size() ||
      r.n_star.size() != r.minima.size() || r.n_star_sd.size() != r.minima.size())
    throw InvalidArgument("plot_study: incomplete study result");
  make_dir(out_dir);
  const fs::path d(out_dir);
  const std::string sfx = metric.suffix, curves_dat = "study_curves" + sfx + ".dat",
                    minima_dat = "study_minima" + sfx + ".dat";

  // Only entries with activity can sit on the log axis (as in analyze_study). Error bars: the
  // bootstrap sd of each entry (0 when not measured).
  const auto sd = [](double v) { return std::isnan(v) ? 0.0 : v; };
  std::ostringstream dat;
  LogRange active;
  bool any_flagged = false;
  for (const SizeCurve& c : r.curves) {
    dat << "# " << size_label(c.nf, c.system_size)
        << ": percent_active error error_sd lambda flagged replicates\n";
    for (std::size_t j = 0; j < c.lambda.size(); ++j)
      if (c.active[j] > 0) {
        active.add(c.active[j]);
        any_flagged = any_flagged || c.flagged[j];
        dat << num(c.active[j]) << ' ' << num(c.error[j]) << ' ' << num(sd(c.error_sd[j])) << ' '
            << num(c.lambda[j]) << ' ' << int(c.flagged[j]) << ' ' << c.replicates[j] << '\n';
      }
    dat << "\n\n";
  }
  write_text_file((d / curves_dat).string(), dat.str(), "plot data");

  std::ostringstream mins;
  bool any_edge = false, any_interior = false, any_unresolved = false;
  LogRange L, e_star, p_star, n_star;
  double log_n_sum = 0; // geometric mean of the fitted n*: the null model's level
  int fitted = 0;
  mins << "# nf L e_star p_star lambda_star at_edge refined e_star_sd p_star_sd unresolved n_star "
          "n_star_sd\n";
  for (std::size_t s = 0; s < r.minima.size(); ++s) {
    const Minimum& m = r.minima[s];
    if (std::isnan(m.error))
      continue; // no usable entry
    (m.at_edge ? any_edge : m.unresolved ? any_unresolved : any_interior) = true;
    if (!m.at_edge && !m.unresolved) {
      log_n_sum += std::log(r.n_star[s]);
      ++fitted;
    }
    L.add(r.L[s]);
    e_star.add(m.error - sd(m.error_sd));
    e_star.add(m.error + sd(m.error_sd));
    p_star.add(m.active - sd(m.active_sd));
    p_star.add(m.active + sd(m.active_sd));
    n_star.add(r.n_star[s] - sd(r.n_star_sd[s]));
    n_star.add(r.n_star[s] + sd(r.n_star_sd[s]));
    mins << r.nf[s] << ' ' << num(r.L[s]) << ' ' << num(m.error) << ' ' << num(m.active) << ' '
         << num(m.lambda) << ' ' << int(m.at_edge) << ' ' << int(m.refined) << ' '
         << num(sd(m.error_sd)) << ' ' << num(sd(m.active_sd)) << ' ' << int(m.unresolved) << ' '
         << num(r.n_star[s]) << ' ' << num(sd(r.n_star_sd[s])) << '\n';
  }
  write_text_file((d / minima_dat).string(), mins.str(), "plot data");

  std::ostringstream gp;
  gp << "# Poster plots of the phase-transition study (" << metric.name
     << "). Re-plot: cd into this folder, gnuplot study" << sfx << ".gp\n"
     << kPreamble;

  std::vector<std::string> el;
  for (std::size_t s = 0; s < r.curves.size(); ++s)
    el.push_back("'" + curves_dat + "' index " + std::to_string(s) +
                 " using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.2 lc " + std::to_string(s + 1) +
                 " title '" + size_label(r.curves[s].nf, r.curves[s].system_size) + "'");
  if (any_flagged)
    el.push_back("'" + curves_dat +
                 "' using 1:($5 == 1 ? $2 : 1/0) with points pt 2 ps 2.5 lw 2 lc rgb 'red' "
                 "title 'codes above the stop gap (not fitted)'");
  if (any_interior)
    el.push_back(minima_series(minima_dat, MinimaKind::fitted, 4, 3, 8) +
                 " with points pt 6 ps 3.5 lw 2.5 lc rgb 'black' title 'minimum'");
  if (any_edge)
    el.push_back(minima_series(minima_dat, MinimaKind::edge, 4, 3, 8) +
                 " with points pt 2 ps 3.5 lw 2.5 lc rgb 'red' title 'minimum at λ-range edge'");
  if (any_unresolved)
    el.push_back(minima_series(minima_dat, MinimaKind::unresolved, 4, 3, 8) +
                 " with points pt 4 ps 3.5 lw 2.5 lc rgb 'red' title 'minimum unresolved "
                 "(lowest point shown)'");
  const std::string title =
      std::string("Denoising error vs sparsity, per system size (") + metric.name + ")";
  gp << begin_plot("error_vs_active" + sfx + ".png", title, "active neurons (%)", metric.axis,
                   kKeyRight)
     << log_axis('x', active) << plot_command(el);

  const Exponents& x = r.exponents;
  struct ScalingPlot {
    std::string png;
    const char* title;
    std::string ylabel;
    const LogRange& y;
    int ycol, errcol;
    const char* name; // quantity in the key
    const PowerLawFit& fit;
    std::string law;   // fitted law and its exponent
    std::string extra; // another plot element, or empty
  };
  // The null model nu = -1: n* the same at every size, drawn at the fitted sizes' geometric mean.
  const std::string null_model =
      fitted > 0 ? num(std::exp(log_n_sum / fitted)) +
                       " with lines lw 2 dt 2 lc rgb 'gray40' title 'null model ν = −1: n* "
                       "independent of L'"
                 : "";
  const ScalingPlot scaling[] = {
      {"min_error_vs_L" + sfx + ".png", "Value of the minimum vs system size",
       std::string("minimum error e* (") + metric.title + ")", e_star, 3, 8, "e*", x.val_fit,
       "e* ∝ L^{γ/ν}: γ/ν = " + pm(x.val_fit.slope, x.val_fit.slope_se) +
           ", γ = " + pm(x.gamma, x.gamma_se),
       ""},
      {"min_location_vs_L" + sfx + ".png", "Location of the minimum vs system size",
       "active neurons at the minimum p* (%)", p_star, 4, 9, "p*", x.loc_fit,
       "p* ∝ L^{1/ν}: 1/ν = " + pm(x.loc_fit.slope, x.loc_fit.slope_se) +
           ", ν = " + pm(x.nu, x.nu_se),
       ""},
      {"min_count_vs_L" + sfx + ".png", "Active neurons at the minimum vs system size",
       "active neurons at the minimum n* = p*/100·L", n_star, 11, 12, "n*", x.count_fit,
       "n* ∝ L^{1+1/ν}: 1 + 1/ν = " + pm(x.count_fit.slope, x.count_fit.slope_se) +
           (std::isnan(r.count_lo)
                ? ""
                : ", 95 % [" + num(r.count_lo, "%.3g") + ", " + num(r.count_hi, "%.3g") + "]"),
       null_model},
  };
  for (const ScalingPlot& p : scaling) {
    el.clear();
    if (any_interior)
      el.push_back(minima_series(minima_dat, MinimaKind::fitted, 2, p.ycol, p.errcol) +
                   " with yerrorbars pt 7 ps 2 lc rgb 'blue' title '" + p.name +
                   " per size (bootstrap sd)'");
    if (any_edge)
      el.push_back(minima_series(minima_dat, MinimaKind::edge, 2, p.ycol, p.errcol) +
                   " with yerrorbars pt 6 ps 2 lw 2 lc rgb 'red' title '" + p.name +
                   " at λ-range edge (not fitted)'");
    if (any_unresolved)
      el.push_back(minima_series(minima_dat, MinimaKind::unresolved, 2, p.ycol, p.errcol) +
                   " with yerrorbars pt 4 ps 2 lw 2 lc rgb 'red' title '" + p.name +
                   " unresolved, lowest point (not fitted)'");
    if (p.fit.n >= 2)
      el.push_back(power_law(p.fit) + " with lines lw 2 lc rgb 'black' title 'fit " + p.law +
                   ", R^2 = " + num(p.fit.r2, "%.3g") + "'");
    if (!p.extra.empty())
      el.push_back(p.extra);
    gp << begin_plot(p.png, p.title, "system size L (neurons)", p.ylabel, kKeyBelow)
       << log_axis('x', L) << log_axis('y', p.y) << plot_command(el);
  }
  write_text_file((d / ("study" + sfx + ".gp")).string(), gp.str(), "plot script");
  run_gnuplot(out_dir, "study" + sfx + ".gp",
              {"error_vs_active" + sfx + ".png", "min_error_vs_L" + sfx + ".png",
               "min_location_vs_L" + sfx + ".png", "min_count_vs_L" + sfx + ".png"});
}

void plot_response(const std::string& out_dir, const std::vector<ResponseCurve>& curves,
                   const std::vector<PowerLawFit>& fits) {
  if (curves.size() != fits.size())
    throw InvalidArgument("plot_response: " + std::to_string(curves.size()) + " curves but " +
                          std::to_string(fits.size()) + " fits");
  std::ostringstream dat;
  std::vector<std::string> el;
  int block = 0;
  LogRange lambda, chi;
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const ResponseCurve& c = curves[i];
    if (c.lambda.size() != c.chi.size())
      throw InvalidArgument("plot_response: " + size_label(c.nf, c.system_size) + " has " +
                            std::to_string(c.lambda.size()) + " lambda but " +
                            std::to_string(c.chi.size()) + " chi values");
    std::ostringstream rows;
    for (std::size_t j = 0; j < c.lambda.size(); ++j)
      if (c.chi[j] > 0 && c.lambda[j] > 0) {
        lambda.add(c.lambda[j]);
        chi.add(c.chi[j]);
        rows << num(c.lambda[j]) << ' ' << num(c.chi[j]) << '\n';
      }
    if (rows.str().empty())
      continue;
    dat << "# " << size_label(c.nf, c.system_size) << ": lambda chi\n" << rows.str() << "\n\n";
    const std::string color = " lc " + std::to_string(block + 1);
    el.push_back("'response.dat' index " + std::to_string(block++) +
                 " using 1:2 with points pt 7 ps 1.5" + color + " title '" +
                 size_label(c.nf, c.system_size) + "'");
    if (fits[i].n >= 2)
      el.push_back(power_law(fits[i]) + " with lines lw 2" + color + " title 'fit χ ∝ λ^{" +
                   pm(fits[i].slope, fits[i].slope_se) + "}'");
  }
  if (block == 0)
    throw InvalidArgument("plot_response: no positive chi to plot");
  make_dir(out_dir);
  const fs::path d(out_dir);
  write_text_file((d / "response.dat").string(), dat.str(), "plot data");
  write_text_file((d / "response.gp").string(),
                  "# Response function chi(lambda). Re-plot: cd into this folder, gnuplot "
                  "response.gp\n" +
                      std::string(kPreamble) +
                      begin_plot("response.png", "Response to a small input perturbation",
                                 "sparsity λ", "response χ = ⟨‖a(x+εη) − a(x)‖⟩/ε", kKeyRight) +
                      log_axis('x', lambda) + log_axis('y', chi) + plot_command(el),
                  "plot script");
  run_gnuplot(out_dir, "response.gp", {"response.png"});
}

} // namespace lca
