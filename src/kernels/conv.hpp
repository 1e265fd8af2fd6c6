#pragma once
// The operator Phi of convolutional sparse coding (algorithm.md §1), private to the kernel
// layer: Phi a by the sparse scatter over the active lists or by GEMM + col2im, im2col of a
// residual, the drive GEMM Phi^T r = patches * D, the active lists and the density choice
// between the two products. Free functions that take the execution-space instance first
// (ArborX's Details style), so that their lambdas need no public member (nvcc's rule).
#include "blas.hpp"
#include "lca/core.hpp"
#include "lca/params.hpp"

#include <cstdint>

namespace lca::Impl {

/// The kernel columns [first_column_in, end_column_in) of a patch whose left edge is image
/// column j0 = s*x - p that fall inside an image of width W (scatter and im2col).
KOKKOS_INLINE_FUNCTION int first_column_in(int j0) {
  return j0 < 0 ? -j0 : 0;
}
KOKKOS_INLINE_FUNCTION int end_column_in(int j0, int k, int W) {
  return W - j0 < k ? W - j0 : k;
}

/// The operator's batch buffers for `batch` images (the dictionary rows are per geometry):
/// the patches are overwritten before every read; the active lists start empty.
template <class Scalar, class Device, class Layout, class Exec>
void allocate(const Exec& space, const Geometry& geom, int batch,
              ConvBuffers<Scalar, Device, Layout>& c) {
  const int n = batch * geom.positions();
  c.patches = decltype(c.patches)(scratch(space, "lca::LcaSolver::patches"), n, geom.patch());
  c.act_idx = decltype(c.act_idx)(scratch(space, "lca::LcaSolver::act_idx"), n, geom.nf);
  c.act_val = decltype(c.act_val)(scratch(space, "lca::LcaSolver::act_val"), n, geom.nf);
  c.act_cnt = decltype(c.act_cnt)(alloc(space, "lca::LcaSolver::act_cnt"), n);
}

/// rows(m, e) = d(e, m): features as contiguous rows, so that a scatter reads each kernel row
/// in order.
template <class Exec, class Dict, class Rows>
void transpose_dictionary(const Exec& space, const Dict& d, const Rows& rows) {
  Kokkos::parallel_for(
      "lca::LcaSolver::transpose_dictionary",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {d.extent(0), d.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t e, std::int64_t m) { rows(m, e) = d(e, m); });
}

/// out = x + sign * Phi a over the active lists (idx, val, cnt) of a batch of out.extent(0)
/// images (x may be empty: out = sign Phi a); rows is the dictionary as rows.
template <class Exec, class Rows, class Idx, class Val, class Cnt, class X, class Out>
void scatter(const Exec& space, const Geometry& geom, const Rows& rows, const Idx& idx,
             const Val& val, const Cnt& cnt, const X& x, const Out& out,
             typename Out::value_type sign) {
  Region region("lca::LcaSolver::reconstruct");
  using Scalar = typename Out::value_type;
  const int C = geom.channels, H = geom.height, W = geom.width, k = geom.kernel, s = geom.stride,
            p = geom.pad(), Hs = geom.out_h(), Ws = geom.out_w();
  const int kk = k * k, batch = int(out.extent(0));
  const bool has_x = x.extent(0) != 0;
  // One team per (image, channel) plane scatters sign * a * phi_m for each active neuron.
  // Positions G = ceil(k/s) apart in both directions have disjoint patches, so the positions
  // are split into G*G colours and a whole colour scatters at once, with a barrier between
  // colours: no atomics, and every pixel sums its terms in the same order on every backend.
  // On CPUs a team is one thread and the kernel-column loop vectorises.
  const int G = (k + s - 1) / s;
  int vector = 1;
  while (vector * 2 <= k && vector * 2 <= 32)
    vector *= 2;
  using team_policy = Kokkos::TeamPolicy<Exec>;
  Kokkos::parallel_for(
      "lca::LcaSolver::reconstruct", team_policy(space, batch * C, Kokkos::AUTO, vector),
      KOKKOS_LAMBDA(const typename team_policy::member_type& team) {
        const int b = team.league_rank() / C, ch = team.league_rank() % C;
        const int plane = ch * H * W;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, H * W), [&](int t) {
          out(b, plane + t) = has_x ? x(b, plane + t) : Scalar(0);
        });
        team.team_barrier();
        for (int colour = 0; colour < G * G; ++colour) {
          const int cy = colour / G, cx = colour % G;
          const int ny = (Hs - cy + G - 1) / G;
          // (row of positions, kernel row) pairs over the team's threads, the row's positions
          // in turn, kernel columns over the vector lanes; one index division per row.
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, ny * k), [&](int t) {
            const int ky = t % k, y = cy + G * (t / k);
            const int i = s * y - p + ky;
            if (i < 0 || i >= H)
              return;
            const int e0 = ch * kk + ky * k;
            for (int xx = cx; xx < Ws; xx += G) {
              const int pos = (b * Hs + y) * Ws + xx;
              const int n = cnt(pos);
              const int j0 = s * xx - p;
              const int kx_lo = first_column_in(j0), kx_hi = end_column_in(j0, k, W);
              const int row = plane + i * W + j0;
              for (int u = 0; u < n; ++u) {
                const Scalar a = sign * val(pos, u);
                const int m = idx(pos, u);
                Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, kx_lo, kx_hi),
                                     [&](int kx) { out(b, row + kx) += a * rows(m, e0 + kx); });
              }
            }
          });
          team.team_barrier();
        }
      });
}

/// out = x + sign * Phi a for any a (B*positions, nf): one GEMM into patch space,
/// P = A D^T, then col2im as a gather: each pixel sums the at most ceil(k/s)^2 patches that
/// cover it, in a fixed order (deterministic, no atomics). P is (B*positions, c*k*k).
template <class Exec, class Dict, class A, class P, class X, class Out>
void reconstruct_dense(const Exec& space, const Geometry& geom, const Dict& d, const A& a,
                       const P& patches, const X& x, const Out& out,
                       typename Out::value_type sign) {
  Region region("lca::LcaSolver::reconstruct_dense");
  using Scalar = typename Out::value_type;
  blas::gemm(space, "N", "T", Scalar(1), a, d, Scalar(0), patches);
  const int C = geom.channels, H = geom.height, W = geom.width, k = geom.kernel, s = geom.stride,
            pad = geom.pad(), Hs = geom.out_h(), Ws = geom.out_w();
  const bool has_x = x.extent(0) != 0;
  const int npix = C * H * W, batch = int(out.extent(0));
  Kokkos::parallel_for(
      "lca::LcaSolver::col2im",
      Kokkos::MDRangePolicy<Exec, Kokkos::Rank<2>>(space, {0, 0}, {batch, npix}),
      KOKKOS_LAMBDA(int b, int t) {
        const int ch = t / (H * W), i = (t / W) % H, j = t % W;
        // positions y with 0 <= i + pad - s*y < k
        const int y_hi = (i + pad) / s < Hs - 1 ? (i + pad) / s : Hs - 1;
        const int y_lo = i + pad - k + 1 > 0 ? (i + pad - k + s) / s : 0;
        const int x_hi = (j + pad) / s < Ws - 1 ? (j + pad) / s : Ws - 1;
        const int x_lo = j + pad - k + 1 > 0 ? (j + pad - k + s) / s : 0;
        Scalar acc = 0;
        for (int y = y_lo; y <= y_hi; ++y)
          for (int xx = x_lo; xx <= x_hi; ++xx) {
            const int e = (ch * k + (i + pad - s * y)) * k + (j + pad - s * xx);
            acc += patches((b * Hs + y) * Ws + xx, e);
          }
        out(b, t) = (has_x ? x(b, t) : Scalar(0)) + sign * acc;
      });
}

/// patches = im2col(r), (B*positions, c*k*k).
template <class Exec, class R, class P>
void im2col(const Exec& space, const Geometry& geom, const R& r, const P& patches) {
  Region region("lca::LcaSolver::im2col");
  using Scalar = typename P::value_type;
  const int C = geom.channels, H = geom.height, W = geom.width, k = geom.kernel, s = geom.stride,
            p = geom.pad(), Hs = geom.out_h(), Ws = geom.out_w();
  // One thread per position walks its patch: no index division in the inner loops, rows of
  // P written contiguously on CPUs, coalesced across threads on GPUs. The columns inside the
  // image are found once per position, so the copy loop has no branch and vectorises.
  Kokkos::parallel_for(
      "lca::LcaSolver::im2col", Kokkos::RangePolicy<Exec>(space, 0, int(patches.extent(0))),
      KOKKOS_LAMBDA(int pos) {
        const int xx = pos % Ws, y = (pos / Ws) % Hs, b = pos / (Ws * Hs);
        const int i0 = s * y - p, j0 = s * xx - p;
        const int kx_lo = first_column_in(j0), kx_hi = end_column_in(j0, k, W);
        int e = 0;
        for (int ch = 0; ch < C; ++ch)
          for (int ky = 0; ky < k; ++ky, e += k) {
            const int i = i0 + ky;
            if (i < 0 || i >= H) {
              for (int kx = 0; kx < k; ++kx)
                patches(pos, e + kx) = Scalar(0);
              continue;
            }
            const int row = (ch * H + i) * W + j0;
            for (int kx = 0; kx < kx_lo; ++kx)
              patches(pos, e + kx) = Scalar(0);
            for (int kx = kx_lo; kx < kx_hi; ++kx)
              patches(pos, e + kx) = r(b, row + kx);
            for (int kx = kx_hi; kx < k; ++kx)
              patches(pos, e + kx) = Scalar(0);
          }
      });
}

/// g = patches * D (Phi^T r when patches = im2col(r)).
template <class Exec, class P, class Dict, class G>
void drive(const Exec& space, const P& patches, const Dict& d, const G& g) {
  Region region("lca::LcaSolver::drive");
  using Scalar = typename G::value_type;
  blas::gemm(space, "N", "N", Scalar(1), patches, d, Scalar(0), g);
}

/// The active lists of every position of a: its nonzero features in order and their values.
template <class Exec, class A, class Idx, class Val, class Cnt>
void rebuild_active_lists(const Exec& space, const A& a, const Idx& idx, const Val& val,
                          const Cnt& cnt) {
  using Scalar = typename A::value_type;
  const int nf = int(a.extent(1));
  Kokkos::parallel_for(
      "lca::LcaSolver::active_lists", Kokkos::RangePolicy<Exec>(space, 0, a.extent(0)),
      KOKKOS_LAMBDA(std::int64_t pos) {
        int n = 0;
        for (int m = 0; m < nf; ++m)
          if (a(pos, m) != Scalar(0)) {
            idx(pos, n) = m;
            val(pos, n) = a(pos, m);
            ++n;
          }
        cnt(pos) = n;
      });
}

/// Neurons on the active lists (a reduction to the host: waits for the instance).
template <class Exec, class Cnt> std::int64_t active_count(const Exec& space, const Cnt& cnt) {
  std::int64_t active = 0;
  Kokkos::parallel_reduce(
      "lca::LcaSolver::active_count", Kokkos::RangePolicy<Exec>(space, 0, cnt.extent(0)),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t & sum) { sum += cnt(pos); }, active);
  return active;
}

/// Whether Phi a is cheaper by GEMM + col2im than by the scatter, with `active` of `neurons`
/// neurons active and the crossover density `dense_density` (LcaSolver::kDenseDensity).
inline bool dense_is_cheaper(std::int64_t active, double neurons, double dense_density) {
  return double(active) > dense_density * neurons;
}

} // namespace lca::Impl
