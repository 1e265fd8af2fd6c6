#include "lca/dictionary.hpp"

#include "blas.hpp"
#include "lca/error.hpp"
#include "lca/random.hpp"

#include <cmath>
#include <string>

namespace lca {

template <class Scalar, class Device, class Layout>
Dictionary<Scalar, Device, Layout>::Dictionary(const Geometry& g, const exec_space& exec)
    : geom_((validate(g), g)), exec_(exec), d_(alloc(exec, "lca::Dictionary::D"), g.patch(), g.nf) {
}

template <class Scalar, class Device, class Layout>
void Dictionary<Scalar, Device, Layout>::init_random(std::uint64_t seed) {
  SplitMix64 rng(hash_combine(seed, 0x6469637469ULL)); // "dicti": a stream of its own
  std::vector<float> w(std::size_t(geom_.nf) * geom_.patch());
  for (auto& x : w)
    x = float(2.0 * rng.uniform() - 1.0);
  from_host(w);
  normalize();
}

template <class Scalar, class Device, class Layout>
void Dictionary<Scalar, Device, Layout>::normalize(const exec_space& exec) {
  Region r("lca::Dictionary::normalize");
  const typename V::template Vector<Scalar> norms(scratch(exec, "lca::Dictionary::norms"),
                                                  geom_.nf);
  blas::nrm2(exec, norms, d_);
  Kokkos::parallel_for(
      "lca::Dictionary::invert_norms", Kokkos::RangePolicy<exec_space>(exec, 0, geom_.nf),
      KOKKOS_LAMBDA(int m) { norms(m) = norms(m) > Scalar(0) ? Scalar(1) / norms(m) : Scalar(1); });
  blas::scal(exec, d_, norms, d_);
}

template <class Scalar, class Device, class Layout>
std::vector<float> Dictionary<Scalar, Device, Layout>::to_host() const {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d_);
  const int nf = geom_.nf, ckk = geom_.patch();
  std::vector<float> out(std::size_t(nf) * ckk);
  for (int m = 0; m < nf; ++m)
    for (int e = 0; e < ckk; ++e)
      out[std::size_t(m) * ckk + e] = float(h(e, m));
  return out;
}

template <class Scalar, class Device, class Layout>
void Dictionary<Scalar, Device, Layout>::from_host(const std::vector<float>& w) {
  const int nf = geom_.nf, ckk = geom_.patch();
  if (w.size() != std::size_t(nf) * ckk)
    throw InvalidArgument("dictionary has " + std::to_string(w.size()) + " values, expected " +
                          std::to_string(std::size_t(nf) * ckk) + " (nf*c*k*k)");
  auto h = Kokkos::create_mirror_view(d_);
  for (int m = 0; m < nf; ++m)
    for (int e = 0; e < ckk; ++e) {
      const float x = w[std::size_t(m) * ckk + e];
      if (!std::isfinite(x))
        throw NumericalError("dictionary value of feature " + std::to_string(m) + " is not finite");
      h(e, m) = Scalar(x);
    }
  Kokkos::deep_copy(d_, h);
}

LCA_INSTANTIATE(class, Dictionary)

} // namespace lca
