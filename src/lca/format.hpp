#pragma once
// How numbers and durations appear in progress lines, tables, file names and settings text:
// one formatter for the whole project.
#include <chrono>
#include <string>

namespace lca {

/// printf-formatted number ("%.6g" by default); "nan" for NaN whatever the format.
std::string format_number(double v, const char* printf_format = "%.6g");

/// "1h02m03s" style durations for progress lines and summaries ("?" if not finite or < 0).
std::string format_duration(double seconds);

/// Rate and remaining time of a long run: "12.3 img/s  ETA 4m05s" for `done` of `total` units
/// after `seconds`.
std::string format_rate_eta(double done, double total, double seconds, const char* unit);

/// When a long run prints its next progress line (train, denoise and the sweep share it).
class ProgressTimer {
public:
  /// A line every `every_seconds` (0: never, unless forced).
  explicit ProgressTimer(double every_seconds)
      : every_(every_seconds), start_(Clock::now()), last_(start_) {}
  /// True, and the interval restarts, when a line is due (or `force` and lines are on).
  bool due(bool force = false) {
    const auto now = Clock::now();
    if (every_ <= 0 || !(force || std::chrono::duration<double>(now - last_).count() >= every_))
      return false;
    last_ = now;
    return true;
  }
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

private:
  using Clock = std::chrono::steady_clock;
  double every_;
  Clock::time_point start_, last_;
};

} // namespace lca
