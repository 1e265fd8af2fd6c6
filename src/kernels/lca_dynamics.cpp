// LCA's transfer function and adaptive time scale (OpenPV's AdaptiveTimeScaleController); the
// update kernel is in lca_dynamics.hpp.
#include "lca/solver.hpp"

namespace lca {

template <class Scalar>
DeviceTransfer<Scalar>::DeviceTransfer(const Transfer& t)
    : vthresh(Scalar(t.vthresh)), amin(Scalar(t.amin)), amax(Scalar(t.amax)),
      ashift(Scalar(t.ashift)), vwidth(Scalar(t.vwidth)), symmetric(t.symmetric) {
  validate(t);
}

AdaptiveTimeScaleController::AdaptiveTimeScaleController(const AdaptiveTimeScale& p, int batch)
    : p_(p), scale_(batch, p.base_min), scale_max_(batch, p.base_max), scale_true_(batch, -1.0) {}

const std::vector<double>&
AdaptiveTimeScaleController::update(const std::vector<double>& energies) {
  for (std::size_t b = 0; b < scale_.size(); ++b) {
    const double e_dt = energies[b], e_0 = scale_true_[b];
    scale_true_[b] = e_dt;
    if (e_dt == e_0)
      continue;
    const double de_dt_scaled = (e_0 - e_dt) / scale_[b];
    if (de_dt_scaled < 0.0 || e_0 <= 0.0 || e_dt <= 0.0) {
      scale_[b] = p_.base_min;
      scale_max_[b] = p_.base_max;
    } else {
      const double tau_eff_scaled = e_0 / de_dt_scaled;
      scale_[b] = p_.tau_factor * tau_eff_scaled;
      if (scale_[b] >= scale_max_[b]) {
        scale_[b] = scale_max_[b];
        scale_max_[b] *= 1 + p_.growth_factor;
      }
    }
  }
  return scale_;
}

template struct DeviceTransfer<float>;
template struct DeviceTransfer<double>;

} // namespace lca
