#pragma once
// Moving reference-layout host arrays in and out of the solver's device views.
#include "lca/dictionary.hpp"
#include "lca/solver.hpp"

#include <vector>

namespace lca::test {

template <class Dict> void load_dictionary(Dict& d, const std::vector<double>& nckk) {
  d.from_host(std::vector<float>(nckk.begin(), nckk.end()));
}

/// Exact double values into the dictionary (from_host goes through float).
template <class Dict> void load_dictionary_exact(Dict& d, const std::vector<double>& nckk) {
  const auto& g = d.geometry();
  auto h = Kokkos::create_mirror_view(d.matrix());
  for (int m = 0; m < g.nf; ++m)
    for (int e = 0; e < g.patch(); ++e)
      h(e, m) = typename Dict::Matrix::value_type(nckk[std::size_t(m) * g.patch() + e]);
  Kokkos::deep_copy(d.matrix(), h);
}

template <class Scalar, class Device>
typename Views<Scalar, Device>::Images to_images(const std::vector<double>& v, int B, int npix) {
  typename Views<Scalar, Device>::Images x("test::images", B, npix);
  auto h = Kokkos::create_mirror_view(x);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < npix; ++t)
      h(b, t) = Scalar(v[std::size_t(b) * npix + t]);
  Kokkos::deep_copy(x, h);
  return x;
}

template <class View> std::vector<double> from_images(const View& x) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), x);
  std::vector<double> v(h.extent(0) * h.extent(1));
  for (std::size_t b = 0; b < h.extent(0); ++b)
    for (std::size_t t = 0; t < h.extent(1); ++t)
      v[b * h.extent(1) + t] = double(h(b, t));
  return v;
}

/// (B, nf, Hs, Ws) host map <-> (B*positions, nf) solver matrix.
template <class Scalar, class Device, class Layout>
typename Views<Scalar, Device, Layout>::Matrix to_map(const Geometry& g,
                                                      const std::vector<double>& v, int B) {
  const int P = g.positions();
  typename Views<Scalar, Device, Layout>::Matrix a("test::map", std::size_t(B) * P, g.nf);
  auto h = Kokkos::create_mirror_view(a);
  for (int b = 0; b < B; ++b)
    for (int m = 0; m < g.nf; ++m)
      for (int q = 0; q < P; ++q)
        h(std::size_t(b) * P + q, m) = Scalar(v[(std::size_t(b) * g.nf + m) * P + q]);
  Kokkos::deep_copy(a, h);
  return a;
}

template <class Matrix> std::vector<double> from_map(const Geometry& g, const Matrix& a) {
  const int P = g.positions();
  const int B = int(a.extent(0) / P);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  std::vector<double> v(std::size_t(B) * g.nf * P);
  for (int b = 0; b < B; ++b)
    for (int m = 0; m < g.nf; ++m)
      for (int q = 0; q < P; ++q)
        v[(std::size_t(b) * g.nf + m) * P + q] = double(h(std::size_t(b) * P + q, m));
  return v;
}

} // namespace lca::test
