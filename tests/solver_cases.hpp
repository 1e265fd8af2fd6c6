#pragma once
// Problems shared by the solver tests (test_solver, test_lca_dynamics, test_fista,
// test_certificate, test_support, test_cd): a small convolution, converging parameters, coordinate-
// descent LASSO on the explicit operator and a small LASSO with its optimum.
#include "device_io.hpp"
#include "lca/dictionary.hpp"
#include "lca/params.hpp"
#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace lca::test {

inline Geometry small_conv() {
  Geometry g;
  g.channels = 1, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 3;
  return g;
}

inline LcaParams converging(Preset preset, double lambda, int iterations) {
  LcaParams p;
  p.tau = 10, p.dt = 1, p.iterations = iterations;
  p.transfer = make_transfer(preset, lambda);
  return p;
}

// Coordinate-descent LASSO on a dense dictionary (k = H = W, s = H): the same optimum.
inline std::vector<double> lasso_cd(const std::vector<double>& D, int n, int m,
                                    const std::vector<double>& x, double lambda, bool nonneg) {
  std::vector<double> a(m, 0.0), r(x);
  for (int sweep = 0; sweep < 100000; ++sweep) {
    double change = 0;
    for (int j = 0; j < m; ++j) {
      double dj2 = 0, c = 0;
      for (int i = 0; i < n; ++i) {
        dj2 += D[j * n + i] * D[j * n + i];
        c += D[j * n + i] * (r[i] + D[j * n + i] * a[j]);
      }
      double aj = std::abs(c) > lambda ? (c - lambda * (c > 0 ? 1 : -1)) / dj2 : 0.0;
      if (nonneg && aj < 0)
        aj = 0;
      for (int i = 0; i < n; ++i)
        r[i] -= D[j * n + i] * (aj - a[j]);
      change = std::max(change, std::abs(aj - a[j]));
      a[j] = aj;
    }
    if (change < 1e-15)
      break;
  }
  return a;
}

/// The convolutional operator as an explicit dense matrix, column j = Phi e_j over one
/// image's neurons in map order (nf, H/s, W/s), stored as lasso_cd takes it: D[j * n + i].
inline std::vector<double> dense_operator(const Geometry& g, const std::vector<double>& dict) {
  const int n = g.pixels(), m = int(g.neurons());
  std::vector<double> D(std::size_t(m) * n), e(m, 0.0);
  for (int j = 0; j < m; ++j) {
    e[j] = 1;
    const auto col = ref_reconstruct(g, dict, e, 1);
    std::copy(col.begin(), col.end(), D.begin() + std::size_t(j) * n);
    e[j] = 0;
  }
  return D;
}

inline double lasso_energy(const std::vector<double>& D, int n, const std::vector<double>& x,
                           const std::vector<double>& a, double lambda) {
  std::vector<double> r(x);
  double l1 = 0;
  for (std::size_t j = 0; j < a.size(); ++j) {
    l1 += std::abs(a[j]);
    for (int i = 0; i < n; ++i)
      r[i] -= D[j * n + i] * a[j];
  }
  double rr = 0;
  for (double v : r)
    rr += v * v;
  return 0.5 * rr + lambda * l1;
}

/// A convolutional LASSO problem: its geometry, lambda, dictionary and images (double).
struct LassoCase {
  Geometry g;
  double lambda;
  int B = 3;
  std::vector<double> dict, x;
  /// The problem on a backend: its dictionary, exactly, and its images.
  template <class S, class Sp, class L> Dictionary<S, Sp, L> dictionary() const {
    Dictionary<S, Sp, L> d(g);
    load_dictionary_exact(d, dict);
    return d;
  }
  template <class S, class Sp> typename Views<S, Sp>::Images images() const {
    return to_images<S, Sp>(x, B, g.pixels());
  }
};

/// A small convolutional LASSO with its double-precision coordinate-descent optimum P*.
struct SmallLasso : LassoCase {
  std::vector<double> optimum; ///< P* per image
  SmallLasso(Preset preset) {
    g.channels = 2, g.height = 8, g.width = 8, g.kernel = 4, g.stride = 2, g.nf = 4;
    lambda = 0.15;
    Dictionary<double> d(g); // the default space: instantiated on every build
    d.init_random(21);
    const auto w = d.to_host();
    dict.assign(w.begin(), w.end());
    x = random_vector(std::size_t(B) * g.pixels(), 22);
    const auto D = dense_operator(g, dict);
    for (int b = 0; b < B; ++b) {
      const std::vector<double> xb(x.begin() + b * g.pixels(), x.begin() + (b + 1) * g.pixels());
      const auto a =
          lasso_cd(D, g.pixels(), int(g.neurons()), xb, lambda, preset == Preset::soft_nonneg);
      optimum.push_back(lasso_energy(D, g.pixels(), xb, a, lambda));
    }
  }
};

/// The dictionary's values exactly as the backend stores them, (nf, c, k, k).
template <class Dict> std::vector<double> stored(const Dict& d) {
  const Geometry& g = d.geometry();
  const auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), d.matrix());
  std::vector<double> v(std::size_t(g.nf) * g.patch());
  for (int m = 0; m < g.nf; ++m)
    for (int e = 0; e < g.patch(); ++e)
      v[std::size_t(m) * g.patch() + e] = double(h(e, m));
  return v;
}

/// A small convolutional LASSO whose border atoms the image edge truncates (overlap reach 2),
/// with its optimum (test_support, test_cd).
struct ClippedLasso : LassoCase {
  std::vector<double> a_opt, p_opt; ///< a_opt in map order, P* per image
  explicit ClippedLasso(bool nonneg) {
    g.channels = 2, g.height = 12, g.width = 12, g.kernel = 6, g.stride = 2, g.nf = 5;
    lambda = 0.1;
    Dictionary<double> d(g);
    d.init_random(41);
    dict = stored(d);
    x = random_vector(std::size_t(B) * g.pixels(), 42);
    const auto D = dense_operator(g, dict);
    for (int b = 0; b < B; ++b) {
      const std::vector<double> xb(x.begin() + b * g.pixels(), x.begin() + (b + 1) * g.pixels());
      const auto a = lasso_cd(D, g.pixels(), int(g.neurons()), xb, lambda, nonneg);
      a_opt.insert(a_opt.end(), a.begin(), a.end());
      p_opt.push_back(lasso_energy(D, g.pixels(), xb, a, lambda));
    }
  }
};

/// Unit atoms that share most of their pattern (a shared one plus 30 % of their own, as learned
/// atoms at small lambda do), with random images: the case where a support step overshoots and
/// where coordinate descent stalls (test_support, test_cd). Seeds seed, seed + 1, seed + 2.
struct CoherentLasso : LassoCase {
  explicit CoherentLasso(unsigned seed) {
    g.channels = 2, g.height = 12, g.width = 12, g.kernel = 6, g.stride = 2, g.nf = 6;
    lambda = 0.02, B = 4;
    const auto shared = random_vector(std::size_t(g.patch()), seed);
    dict = random_vector(std::size_t(g.nf) * g.patch(), seed + 1);
    for (int f = 0; f < g.nf; ++f) {
      double norm = 0;
      for (int t = 0; t < g.patch(); ++t) {
        double& w = dict[std::size_t(f) * g.patch() + t];
        w = shared[std::size_t(t)] + 0.3 * w;
        norm += w * w;
      }
      for (int t = 0; t < g.patch(); ++t)
        dict[std::size_t(f) * g.patch() + t] /= std::sqrt(norm);
    }
    x = random_vector(std::size_t(B) * g.pixels(), seed + 2);
  }
};

} // namespace lca::test
