#include "lca/format.hpp"

#include <cmath>
#include <cstdio>

namespace lca {

std::string format_number(double v, const char* printf_format) {
  if (std::isnan(v))
    return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0)
    return "?";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

std::string format_rate_eta(double done, double total, double seconds, const char* unit) {
  const double rate = seconds > 0 ? done / seconds : 0.0;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.*f %s/s  ETA %s", rate < 10 ? 2 : 1, rate, unit,
                format_duration(rate > 0 ? (total - done) / rate : NAN).c_str());
  return buf;
}

} // namespace lca
