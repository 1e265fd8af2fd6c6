#include "lca/solver.hpp"

#include "blas.hpp"
#include "lca/error.hpp"
#include "lca/random.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

namespace lca {

double energy(const Transfer& t, double sq_residual, double l1, double nnz) {
  const double penalty = t.l0_penalty ? 0.5 * t.lambda * t.lambda * nnz : t.lambda * l1;
  return 0.5 * sq_residual + penalty;
}

double BatchStats::energy(std::size_t b, const Transfer& t) const {
  return lca::energy(t, sq_residual[b], l1[b], nnz[b]);
}

double BatchStats::percent_error(std::size_t b) const {
  return sq_input[b] > 0 ? 100.0 * std::sqrt(sq_residual[b] / sq_input[b]) : 0.0;
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

namespace {
/// The kernel columns [first_column_in, end_column_in) of a patch whose left edge is image
/// column j0 = s*x - p that fall inside an image of width W (reconstruct and im2col).
KOKKOS_INLINE_FUNCTION int first_column_in(int j0) {
  return j0 < 0 ? -j0 : 0;
}
KOKKOS_INLINE_FUNCTION int end_column_in(int j0, int k, int W) {
  return W - j0 < k ? W - j0 : k;
}

/// Per-image host values into a device vector of the batch (one small copy).
template <class View, class T> void upload(const View& v, const std::vector<T>& host) {
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t b = 0; b < v.extent(0); ++b)
    h(b) = typename View::value_type(host[b]);
  Kokkos::deep_copy(v, h);
}
} // namespace

template <class Scalar>
DeviceTransfer<Scalar>::DeviceTransfer(const Transfer& t)
    : vthresh(Scalar(t.vthresh)), amin(Scalar(t.amin)), amax(Scalar(t.amax)),
      ashift(Scalar(t.ashift)), vwidth(Scalar(t.vwidth)), symmetric(t.symmetric) {
  validate(t);
}

template <class Scalar, class Device, class Layout>
LcaSolver<Scalar, Device, Layout>::LcaSolver(const Geometry& g, const LcaParams& p,
                                             const exec_space& exec)
    : geom_((validate(g), g)), params_((validate(p), p)), exec_(exec), transfer_(p.transfer),
      dt_(scratch(exec, "lca::LcaSolver::dictionary_rows"), g.nf, g.patch()) {}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::set_lambda_transfer(const Transfer& t) {
  transfer_ = DeviceTransfer<Scalar>(t);
  params_.transfer = t;
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::reset(int batch) {
  if (batch < 1)
    throw InvalidArgument("batch size must be >= 1 (got " + std::to_string(batch) + ")");
  const bool fista = params_.solver == "fista", polishing = params_.stop_gap > 0 && params_.polish;
  if (batch != batch_) {
    const int n = batch * geom_.positions(), nf = geom_.nf;
    // Buffers that every iteration overwrites before reading skip the zero fill.
    const auto zeroed = [&](const char* label) { return alloc(exec_, label); };
    const auto written = [&](const char* label) { return scratch(exec_, label); };
    v_ = Matrix(zeroed("lca::LcaSolver::V"), n, nf);
    a_ = Matrix(zeroed("lca::LcaSolver::A"), n, nf);
    g_ = Matrix(written("lca::LcaSolver::G"), n, nf);
    p_ = Matrix(written("lca::LcaSolver::patches"), n, geom_.patch());
    r_ = Images(written("lca::LcaSolver::R"), batch, geom_.pixels());
    act_idx_ = typename V::IndexMatrix(written("lca::LcaSolver::act_idx"), n, nf);
    act_val_ = Matrix(written("lca::LcaSolver::act_val"), n, nf);
    act_cnt_ = typename V::IndexVector(zeroed("lca::LcaSolver::act_cnt"), n);
    if (fista) {
      a_prev_ = Matrix(zeroed("lca::LcaSolver::A_prev"), n, nf);
      g_prev_ = Matrix(zeroed("lca::LcaSolver::G_prev"), n, nf);
    }
    if (polishing) {
      a_check_ = Matrix(zeroed("lca::LcaSolver::A_check"), n, nf);
      cg_r_ = Matrix(written("lca::LcaSolver::cg_r"), n, nf);
      cg_p_ = Matrix(written("lca::LcaSolver::cg_p"), n, nf);
      cg_q_ = Matrix(written("lca::LcaSolver::cg_q"), n, nf);
      a_save_ = Matrix(written("lca::LcaSolver::A_save"), n, nf);
      cg_sign_ = Matrix(written("lca::LcaSolver::cg_sign"), n, nf);
    }
    decay_ = decltype(decay_)(written("lca::LcaSolver::decay"), batch);
    beta_ = decltype(beta_)(written("lca::LcaSolver::beta"), batch);
    alpha_ = decltype(alpha_)(written("lca::LcaSolver::alpha"), batch);
    mask_ = decltype(mask_)(written("lca::LcaSolver::mask"), batch);
    measures_ = decltype(measures_)(written("lca::LcaSolver::measures"), batch, n_measures);
    measures_h_ = Kokkos::create_mirror_view(measures_);
    batch_ = batch;
  } else {
    Kokkos::deep_copy(exec_, v_, Scalar(0));
    Kokkos::deep_copy(exec_, a_, Scalar(0));
    Kokkos::deep_copy(exec_, act_cnt_, 0);
    if (fista) {
      Kokkos::deep_copy(exec_, a_prev_, Scalar(0));
      Kokkos::deep_copy(exec_, g_prev_, Scalar(0));
    }
    if (polishing)
      Kokkos::deep_copy(exec_, a_check_, Scalar(0));
  }
  set_decay(std::vector<double>(batch, 1.0));
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::set_decay(const std::vector<double>& time_steps) {
  std::vector<double> decay(batch_);
  for (int b = 0; b < batch_; ++b)
    decay[b] = double(Scalar(std::exp(-time_steps[b] * params_.dt / params_.tau)));
  upload(decay_, decay);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::reconstruct(const Dict& dict, const ConstImages& x,
                                                    const Images& out, Scalar sign) const {
  Region region("lca::LcaSolver::reconstruct");
  if (out.extent(0) != std::size_t(batch_) || out.extent(1) != std::size_t(geom_.pixels()) ||
      (x.extent(0) != 0 && (x.extent(0) != out.extent(0) || x.extent(1) != out.extent(1))))
    throw InvalidArgument("reconstruct: image views do not match the batch");
  const int C = geom_.channels, H = geom_.height, W = geom_.width, k = geom_.kernel,
            s = geom_.stride, p = geom_.pad(), Hs = geom_.out_h(), Ws = geom_.out_w();
  const int kk = k * k;
  const bool has_x = x.extent(0) != 0;
  // Features as contiguous rows (nf, c*k*k) so that a scatter reads each kernel row in order.
  const auto d = dict.matrix();
  const auto dt = dt_;
  Kokkos::parallel_for(
      "lca::LcaSolver::transpose_dictionary",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {d.extent(0), d.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t e, std::int64_t m) { dt(m, e) = d(e, m); });
  const auto idx = act_idx_;
  const auto val = act_val_;
  const auto cnt = act_cnt_;
  // One team per (image, channel) plane scatters sign * a * phi_m for each active neuron.
  // Positions G = ceil(k/s) apart in both directions have disjoint patches, so the positions
  // are split into G*G colours and a whole colour scatters at once, with a barrier between
  // colours: no atomics, and every pixel sums its terms in the same order on every backend.
  // On CPUs a team is one thread and the kernel-column loop vectorises.
  const int G = (k + s - 1) / s;
  int vector = 1;
  while (vector * 2 <= k && vector * 2 <= 32)
    vector *= 2;
  using team_policy = Kokkos::TeamPolicy<exec_space>;
  Kokkos::parallel_for(
      "lca::LcaSolver::reconstruct", team_policy(exec_, batch_ * C, Kokkos::AUTO, vector),
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
                                     [&](int kx) { out(b, row + kx) += a * dt(m, e0 + kx); });
              }
            }
          });
          team.team_barrier();
        }
      });
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::reconstruct_dense(const Dict& dict, const Matrix& a,
                                                          const ConstImages& x, const Images& out,
                                                          Scalar sign) {
  Region region("lca::LcaSolver::reconstruct_dense");
  // Phi a for dense codes (FISTA's first steps, the power iteration): one GEMM into patch
  // space, P = A D^T, then col2im as a gather: each pixel sums the at most ceil(k/s)^2
  // patches that cover it, in a fixed order (deterministic, no atomics).
  blas::gemm(exec_, "N", "T", Scalar(1), a, dict.matrix(), Scalar(0), p_);
  const int C = geom_.channels, H = geom_.height, W = geom_.width, k = geom_.kernel,
            s = geom_.stride, pad = geom_.pad(), Hs = geom_.out_h(), Ws = geom_.out_w();
  const bool has_x = x.extent(0) != 0;
  const auto P = p_;
  const int npix = C * H * W;
  Kokkos::parallel_for(
      "lca::LcaSolver::col2im",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {batch_, npix}),
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
            acc += P((b * Hs + y) * Ws + xx, e);
          }
        out(b, t) = (has_x ? x(b, t) : Scalar(0)) + sign * acc;
      });
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::im2col(const ConstImages& r) {
  Region region("lca::LcaSolver::im2col");
  const int C = geom_.channels, H = geom_.height, W = geom_.width, k = geom_.kernel,
            s = geom_.stride, p = geom_.pad(), Hs = geom_.out_h(), Ws = geom_.out_w();
  const auto P = p_;
  // One thread per position walks its patch: no index division in the inner loops, rows of
  // P written contiguously on CPUs, coalesced across threads on GPUs. The columns inside the
  // image are found once per position, so the copy loop has no branch and vectorises.
  Kokkos::parallel_for(
      "lca::LcaSolver::im2col", Kokkos::RangePolicy<exec_space>(exec_, 0, int(P.extent(0))),
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
                P(pos, e + kx) = Scalar(0);
              continue;
            }
            const int row = (ch * H + i) * W + j0;
            for (int kx = 0; kx < kx_lo; ++kx)
              P(pos, e + kx) = Scalar(0);
            for (int kx = kx_lo; kx < kx_hi; ++kx)
              P(pos, e + kx) = r(b, row + kx);
            for (int kx = kx_hi; kx < k; ++kx)
              P(pos, e + kx) = Scalar(0);
          }
      });
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::apply_drive(const Dict& dict) {
  Region region("lca::LcaSolver::drive");
  blas::gemm(exec_, "N", "N", Scalar(1), p_, dict.matrix(), Scalar(0), g_);
}

namespace {
/// Exponential update (PetaVision, selfInteract on), threshold and active list of one
/// position, fused; the second operator also tracks max |dV| for the early stop.
template <class Scalar, class Matrix, class IndexMatrix, class IndexVector, class DecayView>
struct UpdateStep {
  Matrix V, A, G, val;
  IndexMatrix idx;
  IndexVector cnt;
  DeviceTransfer<Scalar> T;
  DecayView decay_of_image;
  int nf, npos;
  KOKKOS_INLINE_FUNCTION Scalar run(int pos) const {
    const Scalar decay = decay_of_image(pos / npos), gain = Scalar(1) - decay;
    int n = 0;
    Scalar dmax = 0;
    for (int m = 0; m < nf; ++m) {
      const Scalar v_old = V(pos, m);
      const Scalar v = decay * v_old + gain * (G(pos, m) + A(pos, m));
      const Scalar a = T(v);
      V(pos, m) = v;
      A(pos, m) = a;
      if (a != Scalar(0)) {
        idx(pos, n) = m;
        val(pos, n) = a;
        ++n;
      }
      const Scalar dv = v > v_old ? v - v_old : v_old - v;
      dmax = dv > dmax ? dv : dmax;
    }
    cnt(pos) = n;
    return dmax;
  }
  KOKKOS_INLINE_FUNCTION void operator()(int pos) const { run(pos); }
  KOKKOS_INLINE_FUNCTION void operator()(int pos, Scalar& dmax) const {
    const Scalar d = run(pos);
    dmax = d > dmax ? d : dmax;
  }
};
} // namespace

template <class Scalar, class Device, class Layout>
Scalar LcaSolver<Scalar, Device, Layout>::update(bool track_dv) {
  Region region("lca::LcaSolver::update");
  using Step = UpdateStep<Scalar, Matrix, typename V::IndexMatrix, typename V::IndexVector,
                          decltype(decay_)>;
  const Step f{v_,       a_,        g_,     act_val_, act_idx_,
               act_cnt_, transfer_, decay_, geom_.nf, geom_.positions()};
  const Kokkos::RangePolicy<exec_space> policy(exec_, 0, int(v_.extent(0)));
  Scalar dv_max = 0;
  if (track_dv)
    Kokkos::parallel_reduce("lca::LcaSolver::update", policy, f, Kokkos::Max<Scalar>(dv_max));
  else
    Kokkos::parallel_for("lca::LcaSolver::update", policy, f);
  return dv_max;
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::rebuild_active_lists(const Matrix& from) {
  const int nf = geom_.nf;
  const auto A = from, val = act_val_;
  const auto idx = act_idx_;
  const auto cnt = act_cnt_;
  Kokkos::parallel_for(
      "lca::LcaSolver::active_lists", Kokkos::RangePolicy<exec_space>(exec_, 0, A.extent(0)),
      KOKKOS_LAMBDA(std::int64_t pos) {
        int n = 0;
        for (int m = 0; m < nf; ++m)
          if (A(pos, m) != Scalar(0)) {
            idx(pos, n) = m;
            val(pos, n) = A(pos, m);
            ++n;
          }
        cnt(pos) = n;
      });
}

template <class Scalar, class Device, class Layout>
std::int64_t LcaSolver<Scalar, Device, Layout>::active_count() const {
  const auto cnt = act_cnt_;
  std::int64_t active = 0;
  Kokkos::parallel_reduce(
      "lca::LcaSolver::active_count", Kokkos::RangePolicy<exec_space>(exec_, 0, cnt.extent(0)),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t & sum) { sum += cnt(pos); }, active);
  return active;
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::set_activities(const Matrix& a) {
  if (a.extent(0) != a_.extent(0) || a.extent(1) != a_.extent(1))
    throw InvalidArgument("set_activities: shape does not match the batch");
  Kokkos::deep_copy(exec_, a_, a);
  rebuild_active_lists();
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::compute_residual(const Dict& dict, const ConstImages& x) {
  if (dense_)
    reconstruct_dense(dict, a_, x, r_, Scalar(-1));
  else
    reconstruct(dict, x, r_, Scalar(-1));
  im2col(r_);
}

template <class Scalar, class Device, class Layout>
Scalar LcaSolver<Scalar, Device, Layout>::step(const Dict& dict, const ConstImages& x_in,
                                               bool track_dv) {
  compute_residual(dict, x_in);
  apply_drive(dict);
  return update(track_dv);
}

namespace {
/// FISTA's step (algorithm.md §9), fused with the active lists like the LCA update: from
/// y = a + beta (a - a_prev) with gradient G + beta (G - G_prev) (linearity: Phi y is never
/// formed), a_new = prox(y + G_y / L). a_new goes into A_prev's storage; the caller swaps.
template <class Scalar, class Matrix, class IndexMatrix, class IndexVector, class BetaView>
struct FistaStep {
  Matrix A, A_prev, G, G_prev, val;
  IndexMatrix idx;
  IndexVector cnt;
  BetaView beta;
  Scalar inv_l, threshold;
  bool symmetric;
  int nf, npos;
  KOKKOS_INLINE_FUNCTION void operator()(int pos, std::int64_t& active) const {
    const Scalar be = beta(pos / npos);
    int n = 0;
    for (int m = 0; m < nf; ++m) {
      const Scalar a = A(pos, m), g = G(pos, m);
      const Scalar y = a + be * (a - A_prev(pos, m));
      const Scalar z = y + inv_l * (g + be * (g - G_prev(pos, m)));
      const Scalar a_new = z > threshold                 ? z - threshold
                           : symmetric && z < -threshold ? z + threshold
                                                         : Scalar(0);
      A_prev(pos, m) = a_new;
      if (a_new != Scalar(0)) {
        idx(pos, n) = m;
        val(pos, n) = a_new;
        ++n;
      }
    }
    cnt(pos) = n;
    active += n;
  }
};
} // namespace

template <class Scalar, class Device, class Layout>
std::int64_t LcaSolver<Scalar, Device, Layout>::fista_update(Scalar inv_l,
                                                             const std::vector<double>& beta) {
  Region region("lca::LcaSolver::fista_update");
  upload(beta_, beta);
  using Step =
      FistaStep<Scalar, Matrix, typename V::IndexMatrix, typename V::IndexVector, decltype(beta_)>;
  const Step f{a_,
               a_prev_,
               g_,
               g_prev_,
               act_val_,
               act_idx_,
               act_cnt_,
               beta_,
               inv_l,
               Scalar(inv_l * params_.transfer.lambda),
               params_.transfer.symmetric,
               geom_.nf,
               geom_.positions()};
  std::int64_t active = 0;
  Kokkos::parallel_reduce("lca::LcaSolver::fista_update",
                          Kokkos::RangePolicy<exec_space>(exec_, 0, int(a_.extent(0))), f, active);
  std::swap(a_, a_prev_); // a_ = a_{k+1}, a_prev_ = a_k
  std::swap(g_, g_prev_); // g_prev_ = G_k; g_ is overwritten by the next drive
  return active;
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::measure(const ConstImages& x, bool track_support) {
  Region region("lca::LcaSolver::measure");
  using team_policy = Kokkos::TeamPolicy<exec_space>;
  using member = typename team_policy::member_type;
  const int npix = geom_.pixels(), npos = geom_.positions(), nf = geom_.nf;
  const bool symmetric = params_.transfer.symmetric;
  // Walk each image's neurons in memory order: position-major on CPUs, feature-major on GPUs.
  const bool rows = std::is_same<typename V::layout, Kokkos::LayoutRight>::value;
  const auto R = r_;
  const auto A = a_, G = g_, C = a_check_, val = act_val_;
  const auto cnt = act_cnt_;
  const auto M = measures_;
  Kokkos::parallel_for(
      "lca::LcaSolver::measure", team_policy(exec_, batch_, Kokkos::AUTO),
      KOKKOS_LAMBDA(const member& team) {
        const int b = team.league_rank();
        const std::int64_t row0 = std::int64_t(b) * npos;
        const auto pos = [&](int t) { return row0 + (rows ? t / nf : t % npos); };
        const auto feat = [&](int t) { return rows ? t % nf : t / npos; };
        const auto pixels = Kokkos::TeamThreadRange(team, npix);
        const auto neurons = Kokkos::TeamThreadRange(team, npos * nf);
        double rr = 0, rx = 0, l1 = 0, nnz = 0, gmax = 0, changes = 0;
        Kokkos::parallel_reduce(
            pixels, [&](int t, double& s) { s += double(R(b, t)) * double(R(b, t)); }, rr);
        Kokkos::parallel_reduce(
            pixels, [&](int t, double& s) { s += double(R(b, t)) * double(x(b, t)); }, rx);
        // |a| and the count from the active lists: work in proportion to the active neurons.
        const auto positions = Kokkos::TeamThreadRange(team, npos);
        Kokkos::parallel_reduce(
            positions,
            [&](int q, double& s) {
              for (int u = 0; u < cnt(row0 + q); ++u) {
                const Scalar a = val(row0 + q, u);
                s += a < Scalar(0) ? -double(a) : double(a);
              }
            },
            l1);
        Kokkos::parallel_reduce(
            positions, [&](int q, double& s) { s += double(cnt(row0 + q)); }, nnz);
        Kokkos::parallel_reduce(
            neurons,
            [&](int t, double& m) {
              Scalar g = G(pos(t), feat(t));
              g = symmetric && g < Scalar(0) ? -g : g;
              m = double(g) > m ? double(g) : m;
            },
            Kokkos::Max<double>(gmax));
        if (track_support) {
          Kokkos::parallel_reduce(
              neurons,
              [&](int t, double& s) {
                const bool now = A(pos(t), feat(t)) != Scalar(0);
                const bool before = C(pos(t), feat(t)) != Scalar(0);
                s += now != before ? 1.0 : 0.0;
              },
              changes);
          team.team_barrier();
          Kokkos::parallel_for(neurons, [&](int t) { C(pos(t), feat(t)) = A(pos(t), feat(t)); });
        }
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          M(b, Measure::rr) = rr;
          M(b, Measure::rx) = rx;
          M(b, Measure::l1) = l1;
          M(b, Measure::nnz) = nnz;
          M(b, Measure::gmax) = gmax;
          M(b, Measure::changes) = changes;
        });
      });
  Kokkos::deep_copy(measures_h_, measures_);
}

template <class Scalar, class Device, class Layout>
Certificate LcaSolver<Scalar, Device, Layout>::certify(int b) const {
  // algorithm.md §9: theta = r min(1, lambda / max drive) is dual-feasible; with D(theta) =
  // <theta, x> - |theta|^2 / 2 <= P(a*) <= P(a), (P - D) / P bounds the relative distance.
  const double lambda = params_.transfer.lambda;
  const double rr = measures_h_(b, Measure::rr), rx = measures_h_(b, Measure::rx);
  const double m = measures_h_(b, Measure::gmax);
  Certificate c;
  c.primal = 0.5 * rr + lambda * measures_h_(b, Measure::l1);
  const double s = m > lambda ? lambda / m : 1.0;
  c.dual = s * rx - 0.5 * s * s * rr;
  // Rounding can put D a hair above P at the optimum: the gap is reported as 0 then.
  c.gap = c.primal > 0 ? std::max(0.0, (c.primal - c.dual) / c.primal) : 0.0;
  return c;
}

template <class Scalar, class Device, class Layout>
std::vector<Certificate> LcaSolver<Scalar, Device, Layout>::certificate(const ConstImages& x) {
  if (!is_lasso(params_.transfer))
    throw InvalidArgument("the duality-gap certificate needs a soft threshold (soft-nonneg, soft)");
  measure(x, false);
  std::vector<Certificate> c;
  for (int b = 0; b < batch_; ++b)
    c.push_back(certify(b));
  return c;
}

template <class Scalar, class Device, class Layout>
double LcaSolver<Scalar, Device, Layout>::estimate_lipschitz(const Dict& dict, int iterations) {
  Region region("lca::LcaSolver::estimate_lipschitz");
  // ||Phi^T Phi|| does not depend on the image: one image slot of a helper solver does. Its
  // start is the same every call (no warm start), so the step depends on the dictionary only.
  if (!power_solver_) {
    LcaParams p = params_;
    p.solver = "lca", p.timescale = "fixed", p.stop_gap = 0;
    power_solver_ = std::make_shared<LcaSolver>(geom_, p, exec_);
    power_solver_->reset(1);
  }
  lipschitz_ = power_solver_->power_iteration(dict, iterations);
  return lipschitz_;
}

template <class Scalar, class Device, class Layout>
double LcaSolver<Scalar, Device, Layout>::power_iteration(const Dict& dict, int iterations) {
  const int npix = geom_.pixels();
  { // the start: a portable pseudo-random image
    if (power_.extent(0) != std::size_t(batch_))
      power_ = Images(scratch(exec_, "lca::LcaSolver::power"), batch_, npix);
    auto h = Kokkos::create_mirror_view(power_);
    for (int b = 0; b < batch_; ++b)
      for (int t = 0; t < npix; ++t)
        h(b, t) = Scalar(double(mix64(hash_combine(std::uint64_t(b), std::uint64_t(t))) >> 11) *
                             0x1.0p-53 -
                         0.5);
    Kokkos::deep_copy(power_, h);
  }
  using team_policy = Kokkos::TeamPolicy<exec_space>;
  using member = typename team_policy::member_type;
  const typename V::template Vector<double> norms(scratch(exec_, "lca::LcaSolver::power_norms"),
                                                  batch_);
  const auto w = power_;
  double estimate = 0;
  for (int it = 0; it <= iterations; ++it) {
    // |Phi Phi^T v| for unit v converges to ||Phi^T Phi|| from below; normalise for the next.
    Kokkos::parallel_for(
        "lca::LcaSolver::power_normalise", team_policy(exec_, batch_, Kokkos::AUTO),
        KOKKOS_LAMBDA(const member& team) {
          const int b = team.league_rank();
          double ss = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, npix),
              [&](int t, double& s) { s += double(w(b, t)) * double(w(b, t)); }, ss);
          const Scalar scale = ss > 0 ? Scalar(1 / device_sqrt(ss)) : Scalar(0);
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, npix),
                               [&](int t) { w(b, t) *= scale; });
          Kokkos::single(Kokkos::PerTeam(team), [&]() { norms(b) = device_sqrt(ss); });
        });
    if (it == iterations) {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), norms);
      for (int b = 0; b < batch_; ++b)
        estimate = std::max(estimate, h(b));
      break;
    }
    im2col(power_);
    apply_drive(dict);                                             // g = Phi^T v
    reconstruct_dense(dict, g_, ConstImages(), power_, Scalar(1)); // w = Phi Phi^T v
  }
  // Power iteration approaches from below; the margin keeps 1/L a safe step (FISTA also
  // raises L if an unaccelerated step ever increases the energy).
  return 1.02 * estimate;
}

template <class Scalar, class Device, class Layout>
std::vector<double> LcaSolver<Scalar, Device, Layout>::masked_dot(const Matrix& X,
                                                                  const Matrix& Y) {
  using team_policy = Kokkos::TeamPolicy<exec_space>;
  using member = typename team_policy::member_type;
  const int npos = geom_.positions(), nf = geom_.nf;
  const auto S = cg_sign_;
  const auto mask = mask_;
  const typename V::template Vector<double> out(scratch(exec_, "lca::LcaSolver::masked_dot"),
                                                batch_);
  Kokkos::parallel_for(
      "lca::LcaSolver::masked_dot", team_policy(exec_, batch_, Kokkos::AUTO),
      KOKKOS_LAMBDA(const member& team) {
        const int b = team.league_rank();
        double d = 0;
        if (mask(b))
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, npos * nf),
              [&](int t, double& s) {
                const std::int64_t pos = std::int64_t(b) * npos + t / nf;
                const int m = t % nf;
                if (S(pos, m) != Scalar(0))
                  s += double(X(pos, m)) * double(Y(pos, m));
              },
              d);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { out(b) = d; });
      });
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  return std::vector<double>(h.data(), h.data() + batch_);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::cg_start() {
  // The working set W of a masked image: its support, plus the neurons whose drive breaks
  // the dual constraint (|G| > lambda; G > lambda for non-negative codes) with the sign of
  // their drive, as working-set LASSO solvers do. Restricted to W with those signs, the
  // energy is least squares: Phi_W^T Phi_W a_W = Phi_W^T x - lambda sign_W; CG starts from
  // a_W (violators at 0), whose residual is G - lambda sign on W. a is saved for a rollback.
  const int npos = geom_.positions();
  const Scalar lambda = Scalar(params_.transfer.lambda);
  const bool symmetric = params_.transfer.symmetric;
  const auto A = a_, G = g_, S = a_save_, Sg = cg_sign_, R = cg_r_, P = cg_p_;
  const auto mask = mask_;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_start",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        const Scalar a = A(pos, m), g = G(pos, m);
        S(pos, m) = a;
        Scalar sign = 0;
        if (mask(pos / npos)) {
          if (a != Scalar(0))
            sign = a > Scalar(0) ? Scalar(1) : Scalar(-1);
          else if (g > lambda)
            sign = Scalar(1);
          else if (symmetric && g < -lambda)
            sign = Scalar(-1);
        }
        Sg(pos, m) = sign;
        const Scalar r = sign != Scalar(0) ? g - sign * lambda : Scalar(0);
        R(pos, m) = r;
        P(pos, m) = r;
      });
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::cg_apply(const Dict& dict) {
  // q = Phi^T Phi p for p supported on S: sparse scatter into r_ (scratch here), im2col, GEMM.
  rebuild_active_lists(cg_p_);
  reconstruct(dict, ConstImages(), r_, Scalar(1));
  im2col(r_);
  Region region("lca::LcaSolver::drive");
  blas::gemm(exec_, "N", "N", Scalar(1), p_, dict.matrix(), Scalar(0), cg_q_);
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::cg_step(const std::vector<double>& alpha) {
  upload(alpha_, alpha);
  const int npos = geom_.positions();
  const auto A = a_, S = cg_sign_, R = cg_r_, P = cg_p_, Q = cg_q_;
  const auto al = alpha_;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_step",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        if (S(pos, m) == Scalar(0))
          return;
        const Scalar step = al(pos / npos);
        A(pos, m) += step * P(pos, m);
        R(pos, m) -= step * Q(pos, m);
      });
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::cg_direction(const std::vector<double>& beta) {
  upload(beta_, beta);
  const int npos = geom_.positions();
  const auto S = cg_sign_, R = cg_r_, P = cg_p_;
  const auto be = beta_;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_direction",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {S.extent(0), S.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        if (S(pos, m) != Scalar(0))
          P(pos, m) = R(pos, m) + be(pos / npos) * P(pos, m);
      });
}

template <class Scalar, class Device, class Layout>
void LcaSolver<Scalar, Device, Layout>::cg_finish(const std::vector<int>& accept, bool project) {
  // project: keep the sign pattern of S (a sign change goes to 0, the LASSO's own answer for
  // a coordinate whose restricted optimum crosses zero). Else: accepted images keep the
  // polished code (LCA gets V on its threshold line), rejected ones get a_S back.
  const decltype(mask_) keep(scratch(exec_, "lca::LcaSolver::keep"), batch_);
  upload(keep, accept);
  const int npos = geom_.positions();
  const Scalar lambda = Scalar(params_.transfer.lambda);
  const bool lca = params_.solver == "lca";
  const auto A = a_, S = a_save_, Sg = cg_sign_, Vm = v_;
  Kokkos::parallel_for(
      "lca::LcaSolver::cg_finish",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>(exec_, {0, 0}, {A.extent(0), A.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t m) {
        const Scalar sign = Sg(pos, m);
        if (project) {
          const Scalar a = A(pos, m);
          if (sign != Scalar(0) && (a == Scalar(0) || (sign > Scalar(0)) != (a > Scalar(0))))
            A(pos, m) = Scalar(0);
        } else if (!keep(pos / npos)) {
          A(pos, m) = S(pos, m);
        } else if (lca && sign != Scalar(0)) {
          const Scalar a = A(pos, m);
          Vm(pos, m) = a > Scalar(0) ? a + lambda : a < Scalar(0) ? a - lambda : Scalar(0);
        }
      });
}

template <class Scalar, class Device, class Layout>
int LcaSolver<Scalar, Device, Layout>::polish(const Dict& dict, const ConstImages& x,
                                              const std::vector<int>& mask,
                                              std::vector<double>& gap,
                                              std::vector<int>& accepted) {
  Region region("lca::LcaSolver::polish");
  const int B = batch_;
  upload(mask_, mask);
  cg_start();
  std::vector<double> rs = masked_dot(cg_r_, cg_r_), rs0 = rs;
  const std::vector<double> aa = masked_dot(a_, a_);
  // CG goes as far as the certificate needs: r_S = (G - lambda sign a)_S enters the gap
  // through <a_S, r_S> and through max G - lambda (the dual rescaling), so an image is done
  // when |r_S| <= eps lambda / 4 and |a_S| |r_S| <= eps P / 4 (or at rounding level).
  const double eps = params_.stop_gap, lambda = params_.transfer.lambda;
  const double floor2 = std::is_same<Scalar, float>::value ? 1e-10 : 1e-20;
  const auto going = [&](int b) {
    if (!mask[b])
      return false;
    const double r = std::sqrt(rs[b]), primal = certify(b).primal;
    const bool enough = r <= 0.25 * eps * lambda && std::sqrt(aa[b]) * r <= 0.25 * eps * primal;
    return !enough && rs[b] > floor2 * rs0[b];
  };
  int it = 0;
  for (; it < kMaxCgIterations; ++it) {
    std::vector<int> run(B, 0);
    bool any = false;
    for (int b = 0; b < B; ++b)
      any |= (run[b] = going(b)) != 0;
    if (!any)
      break;
    cg_apply(dict);
    const std::vector<double> pq = masked_dot(cg_p_, cg_q_);
    std::vector<double> alpha(B, 0.0), beta(B, 0.0);
    for (int b = 0; b < B; ++b)
      if (run[b] && pq[b] > 0)
        alpha[b] = rs[b] / pq[b];
    cg_step(alpha);
    const std::vector<double> rs_new = masked_dot(cg_r_, cg_r_);
    for (int b = 0; b < B; ++b)
      if (alpha[b] != 0) {
        beta[b] = rs_new[b] / rs[b];
        rs[b] = rs_new[b];
      }
    cg_direction(beta);
  }
  // Keep the signs, then score: an image keeps its polished code only if its gap shrank.
  cg_finish(mask, true);
  rebuild_active_lists();
  compute_residual(dict, x);
  apply_drive(dict);
  measure(x, false);
  std::vector<int> accept(B, 0);
  bool rejected = false;
  for (int b = 0; b < B; ++b)
    if (mask[b]) {
      const double g = certify(b).gap;
      accept[b] = g < gap[b];
      rejected |= !accept[b];
      if (accept[b])
        gap[b] = g;
    }
  cg_finish(accept, false);
  if (rejected) {
    rebuild_active_lists();
    compute_residual(dict, x);
    apply_drive(dict);
    measure(x, false);
  }
  accepted = accept;
  return it;
}

template <class Scalar, class Device, class Layout>
SolveInfo LcaSolver<Scalar, Device, Layout>::solve(const Dict& dict, const ConstImages& x_in) {
  Region region("lca::LcaSolver::solve");
  if (x_in.extent(0) != std::size_t(batch_) || x_in.extent(1) != std::size_t(geom_.pixels()))
    throw InvalidArgument("solve: input batch is " + std::to_string(x_in.extent(0)) + "x" +
                          std::to_string(x_in.extent(1)) + ", solver expects " +
                          std::to_string(batch_) + "x" + std::to_string(geom_.pixels()));
  const int B = batch_;
  const Transfer& tf = params_.transfer;
  const bool lasso = is_lasso(tf), fista = params_.solver == "fista";
  const bool adaptive = !fista && params_.timescale == "adaptive";
  const double eps = params_.stop_gap;
  const bool polishing = eps > 0 && params_.polish;
  const bool track_dv = !fista && params_.stop_tol > 0;
  if (fista)
    estimate_lipschitz(dict, kPowerIterations);
  std::optional<AdaptiveTimeScaleController> ats;
  if (adaptive)
    ats.emplace(params_.adaptive, B);
  // FISTA per image: t_k, t_{k-1}, the last energy and momentum (O'Donoghue-Candes restart).
  std::vector<double> t(B, 1.0), t_prev(B, 1.0), e_prev(B, 0.0), beta(B, 0.0);
  std::vector<double> energy(B), gap(B, std::numeric_limits<double>::infinity());
  std::vector<int> tried(B, 0), accepted(B, 0);
  SolveInfo info;
  use_dense(false);
  int cap = params_.iterations, it = 0;
  bool after_polish = false;
  int next_polish = 0, cooldown = 2 * params_.check_every;
  for (;;) {
    compute_residual(dict, x_in);
    apply_drive(dict);
    const bool last = it >= cap;
    const bool check =
        (eps > 0 || (trace_ && lasso)) && (last || after_polish || it % params_.check_every == 0);
    if (fista || adaptive || check || (last && lasso)) {
      measure(x_in, check && polishing && !after_polish);
      for (int b = 0; b < B; ++b)
        energy[b] = lca::energy(tf, measures_h_(b, rr), measures_h_(b, l1), measures_h_(b, nnz));
    }
    if (check) {
      bool all = eps > 0;
      std::vector<Certificate> certs;
      for (int b = 0; b < B; ++b) {
        certs.push_back(certify(b));
        gap[b] = certs.back().gap;
        all &= gap[b] <= eps;
      }
      if (trace_)
        trace_(it, info.polish_iterations, certs);
      if (all)
        break;
      if (polishing && !last && !after_polish) {
        // Polish the images whose support barely moved since the last check (a retry on an
        // unchanged support would give the same result). A round costs whole-batch
        // products, so it waits until at least half of the unconverged images are ready.
        std::vector<int> mask(B, 0);
        int ready = 0, open = 0;
        for (int b = 0; b < B; ++b) {
          const double moved = measures_h_(b, changes), active = measures_h_(b, nnz);
          if (moved > 0)
            tried[b] = 0;
          mask[b] = gap[b] > eps && !tried[b] && active > 0 &&
                    moved <= std::max(1.0, kSupportSlack * active);
          ready += mask[b];
          open += gap[b] > eps;
        }
        // CG may cost at most half of the iterations so far (plus one round): polishing
        // must pay for itself (on coherent learned dictionaries it rarely does).
        const bool affordable = 2 * info.polish_iterations <= it;
        if (affordable && it >= next_polish && ready > 0 && 2 * ready >= open) {
          next_polish = it + cooldown;
          info.polish_iterations += polish(dict, x_in, mask, gap, accepted);
          ++info.polishes;
          bool any_accepted = false;
          for (int b = 0; b < B; ++b)
            if (mask[b]) {
              tried[b] = 1;
              any_accepted |= accepted[b] != 0;
              if (accepted[b]) // restart the momentum from the polished code
                t[b] = t_prev[b] = 1.0, beta[b] = 0.0, e_prev[b] = 0.0;
            }
          // Rounds that help nobody (supports still wrong) back off exponentially.
          cooldown = any_accepted ? 2 * params_.check_every : 2 * cooldown;
          after_polish = true;
          continue;
        }
      }
    }
    after_polish = false;
    if (last)
      break;
    if (fista) {
      bool raise_l = false;
      for (int b = 0; b < B; ++b) {
        if (it > 0 && e_prev[b] > 0 && energy[b] > e_prev[b] * (1 + kRestartSlack)) {
          // An unaccelerated step (the last beta 0) can only raise the energy if 1/L is
          // too long.
          raise_l |= beta[b] == 0.0;
          t[b] = t_prev[b] = 1.0;
        }
        beta[b] = (t_prev[b] - 1) / t[b];
        t_prev[b] = t[b];
        t[b] = 0.5 * (1 + std::sqrt(1 + 4 * t[b] * t[b]));
        e_prev[b] = energy[b];
      }
      if (raise_l)
        lipschitz_ *= 1.5;
      // FISTA's early codes are dense, and small lambdas keep them so.
      choose_reconstruction(fista_update(Scalar(1 / lipschitz_), beta));
    } else {
      if (adaptive)
        set_decay(ats->update(energy));
      const Scalar dv = update(track_dv);
      if (track_dv && dv < Scalar(params_.stop_tol))
        cap = it + 1; // one more pass at the top computes the final residual
      if ((it + 1) % kDensityEvery == 0)
        choose_reconstruction(active_count());
    }
    ++it;
  }
  info.iterations = it;
  use_dense(false);
  if (lasso) {
    for (int b = 0; b < B; ++b) {
      info.certificates.push_back(certify(b));
      info.unconverged += eps > 0 && info.certificates.back().gap > eps;
    }
  }
  return info;
}

template <class Scalar, class Device, class Layout>
BatchStats LcaSolver<Scalar, Device, Layout>::stats(const ConstImages& x_ref) const {
  Region region("lca::LcaSolver::stats");
  using team_policy = Kokkos::TeamPolicy<exec_space>;
  using member = typename team_policy::member_type;
  const int B = batch_, npix = geom_.pixels(), npos = geom_.positions(), nf = geom_.nf;
  const Kokkos::View<double* [4], Device> out(scratch(exec_, "lca::LcaSolver::stats"), B);
  const auto R = r_;
  const auto A = a_;
  Kokkos::parallel_for(
      "lca::LcaSolver::stats", team_policy(exec_, B, Kokkos::AUTO),
      KOKKOS_LAMBDA(const member& team) {
        const int b = team.league_rank();
        // Kokkos 3.4 has no multi-value nested reductions: one pass per quantity.
        double rr = 0, xx = 0, l1 = 0, nnz = 0;
        const auto pixels = Kokkos::TeamThreadRange(team, npix);
        const auto neurons = Kokkos::TeamThreadRange(team, npos * nf);
        const auto act = [&](int t) { return A(std::int64_t(b) * npos + t % npos, t / npos); };
        Kokkos::parallel_reduce(
            pixels, [&](int t, double& s) { s += double(R(b, t)) * double(R(b, t)); }, rr);
        Kokkos::parallel_reduce(
            pixels, [&](int t, double& s) { s += double(x_ref(b, t)) * double(x_ref(b, t)); }, xx);
        Kokkos::parallel_reduce(
            neurons,
            [&](int t, double& s) { s += act(t) < Scalar(0) ? -double(act(t)) : double(act(t)); },
            l1);
        Kokkos::parallel_reduce(
            neurons, [&](int t, double& s) { s += act(t) != Scalar(0) ? 1.0 : 0.0; }, nnz);
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          out(b, 0) = rr;
          out(b, 1) = xx;
          out(b, 2) = l1;
          out(b, 3) = nnz;
        });
      });
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
  BatchStats st;
  for (int b = 0; b < B; ++b) {
    st.sq_residual.push_back(h(b, 0));
    st.sq_input.push_back(h(b, 1));
    st.l1.push_back(h(b, 2));
    st.nnz.push_back(h(b, 3));
  }
  return st;
}

template struct DeviceTransfer<float>;
template struct DeviceTransfer<double>;
LCA_INSTANTIATE(class, LcaSolver)

} // namespace lca
