#pragma once
// Plain-loop double-precision references, written from algorithm.md §1 without any of the
// library's tricks (no active lists, no im2col, no GEMM). PyTorch equivalents:
//   reconstruct: conv_transpose2d(a, Phi, stride=s, padding=p)
//   drive:       conv2d(r, Phi, stride=s, padding=p)
#include "lca/params.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace lca::test {

/// Host activity / drive maps are (B, nf, H/s, W/s); images (B, c, H, W); dict (nf, c, k, k).
inline std::vector<double> ref_reconstruct(const Geometry& g, const std::vector<double>& dict,
                                           const std::vector<double>& a, int B) {
  const int C = g.channels, H = g.height, W = g.width, k = g.kernel, s = g.stride, p = g.pad();
  const int Hs = g.out_h(), Ws = g.out_w();
  std::vector<double> out(std::size_t(B) * C * H * W, 0.0);
  for (int b = 0; b < B; ++b)
    for (int ch = 0; ch < C; ++ch)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j) {
          double acc = 0;
          for (int m = 0; m < g.nf; ++m)
            for (int y = 0; y < Hs; ++y)
              for (int x = 0; x < Ws; ++x) {
                const int ky = i - s * y + p, kx = j - s * x + p;
                if (ky < 0 || ky >= k || kx < 0 || kx >= k)
                  continue;
                acc += a[((std::size_t(b) * g.nf + m) * Hs + y) * Ws + x] *
                       dict[((std::size_t(m) * C + ch) * k + ky) * k + kx];
              }
          out[((std::size_t(b) * C + ch) * H + i) * W + j] = acc;
        }
  return out;
}

inline std::vector<double> ref_drive(const Geometry& g, const std::vector<double>& dict,
                                     const std::vector<double>& r, int B) {
  const int C = g.channels, H = g.height, W = g.width, k = g.kernel, s = g.stride, p = g.pad();
  const int Hs = g.out_h(), Ws = g.out_w();
  std::vector<double> out(std::size_t(B) * g.nf * Hs * Ws, 0.0);
  for (int b = 0; b < B; ++b)
    for (int m = 0; m < g.nf; ++m)
      for (int y = 0; y < Hs; ++y)
        for (int x = 0; x < Ws; ++x) {
          double acc = 0;
          for (int ch = 0; ch < C; ++ch)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int i = s * y + ky - p, j = s * x + kx - p;
                if (i < 0 || i >= H || j < 0 || j >= W)
                  continue;
                acc += dict[((std::size_t(m) * C + ch) * k + ky) * k + kx] *
                       r[((std::size_t(b) * C + ch) * H + i) * W + j];
              }
          out[((std::size_t(b) * g.nf + m) * Hs + y) * Ws + x] = acc;
        }
  return out;
}

/// How far a Scalar kernel may be from the double reference for an output that sums n_terms
/// products, the absolute values of the products summing to at most `scale`: rounding the
/// inputs to Scalar and summing in any order (blocked GEMM, scatter, tree reductions) is off by
/// at most about n_terms * epsilon * scale (Higham's gamma_n bound; the factor 4 covers its
/// lower-order terms).
template <class Scalar> double tol(double n_terms, double scale) {
  return 4 * double(std::numeric_limits<Scalar>::epsilon()) * n_terms * scale;
}

/// Terms of one pixel of Phi a: nf features times the ceil(k/s)^2 positions whose patches
/// cover it.
inline double reconstruct_terms(const Geometry& g) {
  const int cover = (g.kernel + g.stride - 1) / g.stride;
  return double(g.nf) * cover * cover;
}

inline std::vector<double> random_vector(std::size_t n, unsigned seed, double zero_fraction = 0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0), z(0.0, 1.0);
  std::vector<double> v(n);
  for (auto& x : v)
    x = z(gen) < zero_fraction ? 0.0 : u(gen);
  return v;
}

inline std::vector<double> abs_values(std::vector<double> v) {
  for (double& x : v)
    x = std::abs(x);
  return v;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, std::abs(x));
  return m;
}

} // namespace lca::test
