#include "lca/params.hpp"

#include "lca/error.hpp"

#include <cmath>
#include <limits>
#include <ostream>
#include <sstream>

namespace lca {
namespace {
template <class... Parts> [[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw InvalidArgument(os.str());
}
} // namespace

const char* to_string(Preset p) {
  return name_of(kPresetNames, p);
}
std::ostream& operator<<(std::ostream& os, Preset p) {
  return os << to_string(p);
}
Preset parse_preset(const std::string& text) {
  if (const auto p = value_of(kPresetNames, text))
    return *p;
  fail("unknown threshold preset '", text, "' (soft-nonneg, hard-nonneg, soft, hard)");
}

const char* to_string(Solver s) {
  return name_of(kSolverNames, s);
}
std::ostream& operator<<(std::ostream& os, Solver s) {
  return os << to_string(s);
}
Solver parse_solver(const std::string& text) {
  if (const auto s = value_of(kSolverNames, text))
    return *s;
  fail("unknown solver '", text, "' (lca, fista, cd, auto)");
}

const char* to_string(Timescale t) {
  return name_of(kTimescaleNames, t);
}
std::ostream& operator<<(std::ostream& os, Timescale t) {
  return os << to_string(t);
}
Timescale parse_timescale(const std::string& text) {
  if (const auto t = value_of(kTimescaleNames, text))
    return *t;
  fail("unknown time scale '", text, "' (fixed, adaptive)");
}

Transfer make_transfer(Preset preset, double lambda) {
  if (!std::isfinite(lambda) || lambda < 0)
    fail("lambda must be finite and >= 0 (got ", lambda, ")");
  Transfer t;
  t.vthresh = lambda;
  t.lambda = lambda;
  switch (preset) {
  case Preset::soft_nonneg:
    t.ashift = lambda;
    return t;
  case Preset::hard_nonneg:
    t.ashift = 0;
    t.l0_penalty = true;
    return t;
  case Preset::soft:
    t.ashift = lambda;
    t.symmetric = true;
    return t;
  case Preset::hard:
    t.ashift = 0;
    t.symmetric = true;
    t.l0_penalty = true;
    return t;
  case Preset::custom:
    break;
  }
  fail("threshold preset '", to_string(preset),
       "' has no fixed shape (soft-nonneg, hard-nonneg, soft, hard)");
}

void validate(const Transfer& t) {
  if (!std::isfinite(t.vthresh) || !std::isfinite(t.amin) || !std::isfinite(t.ashift) ||
      !std::isfinite(t.vwidth) || std::isnan(t.amax))
    fail("transfer function parameters must be finite (AMax may be +inf)");
  if (!std::isfinite(t.lambda) || t.lambda < 0)
    fail("lambda must be finite and >= 0 (got ", t.lambda, ")");
  if (t.vwidth < 0)
    fail("VWidth must be >= 0 (got ", t.vwidth, ")");
  if (t.amax < t.amin)
    fail("AMax (", t.amax, ") must be >= AMin (", t.amin, ")");
  if (t.symmetric && (t.amin != 0 || t.vthresh < 0))
    fail("a symmetric transfer function needs AMin = 0 and VThresh >= 0");
}

void validate(const Geometry& g) {
  if (g.nf < 1)
    fail("nf must be >= 1 (got ", g.nf, ")");
  if (g.channels < 1 || g.height < 1 || g.width < 1)
    fail("image shape must be positive (got ", g.channels, "x", g.height, "x", g.width, ")");
  if (g.kernel < 1 || g.stride < 1)
    fail("kernel and stride must be >= 1 (got k=", g.kernel, ", s=", g.stride, ")");
  if (g.kernel < g.stride || (g.kernel - g.stride) % 2 != 0)
    fail("kernel ", g.kernel, " and stride ", g.stride,
         " are incompatible: need k >= s and k - s even (padding (k-s)/2)");
  if (g.height % g.stride != 0 || g.width % g.stride != 0)
    fail("image size ", g.height, "x", g.width, " is not divisible by the stride ", g.stride);
}

bool is_lasso(const Transfer& t) {
  return !t.l0_penalty && t.vthresh == t.lambda && t.ashift == t.lambda && t.amin == 0 &&
         t.vwidth == 0 && t.amax == std::numeric_limits<double>::infinity();
}

void validate(const LcaParams& p) {
  if (!(p.tau > 0) || !std::isfinite(p.tau))
    fail("tau must be > 0 (got ", p.tau, ")");
  if (!(p.dt > 0) || !std::isfinite(p.dt))
    fail("dt must be > 0 (got ", p.dt, ")");
  if (p.iterations < 1)
    fail("iterations must be >= 1 (got ", p.iterations, ")");
  if (!(p.stop_tol >= 0) || !std::isfinite(p.stop_tol))
    fail("stop tolerance must be >= 0 (got ", p.stop_tol, ")");
  validate(p.transfer);
  const bool lasso = is_lasso(p.transfer);
  const bool lasso_only = p.solver == Solver::fista || p.solver == Solver::cd;
  if (lasso_only && !lasso)
    fail("the ", p.solver,
         " solver needs a soft threshold (presets soft-nonneg, soft); this "
         "transfer function has no LASSO energy");
  if (lasso_only && p.timescale != Timescale::fixed)
    fail("--timescale adaptive is an LCA option; ", p.solver, " has no time step");
  const auto& a = p.adaptive;
  if (!std::isfinite(a.base_min) || !(a.base_min > 0))
    fail("adaptive time scale: baseMin must be > 0 (got ", a.base_min, ")");
  if (!std::isfinite(a.base_max) || !(a.base_max >= a.base_min))
    fail("adaptive time scale: baseMax must be finite and >= baseMin (got ", a.base_max, ")");
  if (!std::isfinite(a.tau_factor) || !(a.tau_factor > 0))
    fail("adaptive time scale: tauFactor must be > 0 (got ", a.tau_factor, ")");
  if (!std::isfinite(a.growth_factor) || !(a.growth_factor >= 0))
    fail("adaptive time scale: growthFactor must be >= 0 (got ", a.growth_factor, ")");
  if (!std::isfinite(p.stop_gap) || p.stop_gap < 0 || p.stop_gap >= 1) // a relative gap
    fail("stop gap must be in [0, 1) (got ", p.stop_gap, ")");
  if (p.stop_gap > 0 && !lasso)
    fail("--stop-gap needs a soft threshold (presets soft-nonneg, soft): hard thresholds have "
         "no duality-gap certificate");
  if (p.check_every < 1)
    fail("the gap check interval must be >= 1 (got ", p.check_every, ")");
}

LcaParams resolve_solver(const LcaParams& p, bool gpu, double cd_table_bytes) {
  LcaParams r = p;
  if (p.solver != Solver::automatic)
    return r;
  if (!is_lasso(p.transfer) || p.timescale != Timescale::fixed)
    r.solver = Solver::lca;
  else {
    r.solver = gpu || cd_table_bytes > kCdMaxTableBytes ? Solver::fista : Solver::cd;
    r.polish = true;
  }
  return r;
}

void validate(const LearnParams& p) {
  if (!(p.eta >= 0) || !std::isfinite(p.eta))
    fail("learning rate must be >= 0 (got ", p.eta, ")");
  if (!(p.momentum_tau >= 0) || !std::isfinite(p.momentum_tau))
    fail("momentum tau must be >= 0 (got ", p.momentum_tau, ")");
  if (!(p.decay >= 0) || !std::isfinite(p.decay))
    fail("decay must be >= 0 (got ", p.decay, ")");
}

} // namespace lca
