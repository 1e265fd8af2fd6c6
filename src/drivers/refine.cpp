// What the analysis makes of a sweep: its records as the analysis takes them (to_points,
// response_curves), and the lambda points that refinement adds around each size's minimum.
#include "lca/error.hpp"
#include "lca/format.hpp"
#include "lca/scaling.hpp"
#include "sweep_detail.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace lca {
namespace {

std::string fmt(double v) {
  return format_number(v);
}

} // namespace

std::vector<double> refinement_lambdas(const SizeCurve& c, double width) {
  if (!(width > 0))
    throw InvalidArgument("refinement width must be > 0, got " + fmt(width));
  std::vector<std::size_t> use; // entries in lambda order with activity and certified codes
  for (std::size_t j = 0; j < c.lambda.size(); ++j)
    if (c.active[j] > 0 && !c.flagged[j])
      use.push_back(j);
  if (use.size() < 2)
    return {};
  std::size_t m = 0;
  for (std::size_t k = 1; k < use.size(); ++k)
    if (c.error[use[k]] < c.error[use[m]])
      m = k;
  const auto lam = [&](std::size_t k) { return c.lambda[use[k]]; };
  const auto named = [](double v) { return std::stod(fmt(v)); };
  std::vector<double> add;
  if (m == 0)
    add.push_back(named(lam(0) * lam(0) / lam(1))); // one grid step beyond the edge
  else if (m + 1 == use.size())
    add.push_back(named(lam(m) * lam(m) / lam(m - 1)));
  else if (lam(m + 1) / lam(m - 1) - 1 > width)
    add = {named(std::sqrt(lam(m - 1) * lam(m))), named(std::sqrt(lam(m) * lam(m + 1)))};
  std::vector<double> fresh; // skip values that name an existing point
  for (double v : add)
    if (std::none_of(c.lambda.begin(), c.lambda.end(), [&](double l) { return fmt(l) == fmt(v); }))
      fresh.push_back(v);
  return fresh;
}

namespace Impl {

std::vector<PointId> refinement_points(const SweepConfig& cfg, const Sweep& done, int round) {
  Sweep earlier;
  for (const auto& p : done.points)
    if (p.refine_round < round)
      earlier.points.push_back(p);
  std::vector<PointId> add;
  for (const SizeCurve& c : size_curves(to_points(earlier, kPercentError)))
    if (std::find(cfg.sizes.begin(), cfg.sizes.end(), c.nf) != cfg.sizes.end())
      for (double lambda : refinement_lambdas(c, cfg.refine_width))
        for (int r = 0; r < cfg.replicates; ++r)
          add.push_back({c.nf, lambda, r, round});
  return add;
}

} // namespace Impl

std::vector<SweepPoint> to_points(const Sweep& s, const Metric& metric) {
  const bool mse = std::string(metric.key) == kSquaredError.key;
  std::vector<SweepPoint> v;
  for (const auto& p : s.points) {
    if (mse && p.image_mse.size() != p.image_error.size())
      throw InvalidArgument("this sweep file predates the squared-error metric");
    v.push_back({p.nf, p.system_size, p.lambda, p.percent_active, mse ? p.image_mse : p.image_error,
                 p.image_active, p.replicate, p.unconverged > 0 || p.train_plateau == 0});
  }
  return v;
}

std::vector<ResponseCurve> response_curves(const Sweep& s) {
  std::map<int, std::map<double, std::pair<double, int>>> sums; // nf -> lambda -> (sum, count)
  std::map<int, std::int64_t> size_of;
  for (const auto& p : s.points)
    if (!p.image_response.empty()) {
      auto& [sum, count] = sums[p.nf][p.lambda];
      sum += p.response_mean;
      ++count;
      size_of[p.nf] = p.system_size;
    }
  std::vector<ResponseCurve> curves;
  for (const auto& [nf, by_lambda] : sums) {
    ResponseCurve c{nf, size_of[nf], {}, {}};
    for (const auto& [lambda, sc] : by_lambda) {
      c.lambda.push_back(lambda);
      c.chi.push_back(sc.first / sc.second);
    }
    curves.push_back(std::move(c));
  }
  return curves;
}

} // namespace lca
