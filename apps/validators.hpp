#pragma once
// CLI11 validators for numeric flags, so that a bad value is refused while the flags are
// parsed, in one line naming the flag: "lca-train: error: --progress: must be >= 0 (got -1)"
// (exit 2). CLI11's own Range prints its bounds with std::to_string (1.797693e+308...), and an
// unsigned flag given "-1" silently wraps to 2^64 - 1; these say what is wanted instead.
// Values that are not numbers at all pass through to CLI11's own conversion error.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace lca::app {
namespace detail {

inline bool as_number(const std::string& text, double& value) {
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size();
}

inline std::string show(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

/// A validator accepting finite numbers x with ok(x); `want` completes "must be ...".
template <class Ok>
CLI::Validator numeric(Ok ok, const std::string& want, const std::string& desc) {
  return CLI::Validator(
      [ok, want](std::string& text) -> std::string {
        double v = 0;
        if (!as_number(text, v))
          return ""; // not a number: CLI11's conversion reports it
        if (std::isfinite(v) && ok(v))
          return "";
        return "must be " + want + " (got " + text + ")";
      },
      desc);
}

} // namespace detail

/// A finite number >= lo (for unsigned flags at_least(0) refuses "-1" instead of wrapping).
inline CLI::Validator at_least(double lo) {
  return detail::numeric([lo](double v) { return v >= lo; }, ">= " + detail::show(lo),
                         lo == 0 ? "NONNEGATIVE" : ">= " + detail::show(lo));
}

/// A finite number > lo.
inline CLI::Validator greater_than(double lo) {
  return detail::numeric([lo](double v) { return v > lo; }, "> " + detail::show(lo),
                         lo == 0 ? "POSITIVE" : "> " + detail::show(lo));
}

/// A relative tolerance: lo <= x < 1 (a relative duality gap of 1 or more means nothing).
inline CLI::Validator relative(double lo = 0) {
  return detail::numeric([lo](double v) { return v >= lo && v < 1; },
                         "in [" + detail::show(lo) + ", 1)", "[" + detail::show(lo) + ",1)");
}

/// One of the listed integers.
inline CLI::Validator one_of(const std::vector<int>& allowed) {
  std::string list, set;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + std::to_string(allowed[i]);
    set += (i == 0 ? "" : ",") + std::to_string(allowed[i]);
  }
  return detail::numeric(
      [allowed](double v) {
        for (int a : allowed)
          if (v == a)
            return true;
        return false;
      },
      list, "{" + set + "}");
}

} // namespace lca::app
