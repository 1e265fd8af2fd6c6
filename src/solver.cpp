#include "lca/solver.hpp"

#include "lca/error.hpp"

#include <KokkosBlas3_gemm.hpp>

#include <cmath>
#include <string>

namespace lca {

double BatchStats::energy(std::size_t b, const Transfer& t) const {
  const double penalty = t.l0_penalty ? 0.5 * t.lambda * t.lambda * nnz[b] : t.lambda * l1[b];
  return 0.5 * sq_residual[b] + penalty;
}

double BatchStats::percent_error(std::size_t b) const {
  return sq_input[b] > 0 ? 100.0 * std::sqrt(sq_residual[b] / sq_input[b]) : 0.0;
}

template <class Scalar>
DeviceTransfer<Scalar>::DeviceTransfer(const Transfer& t)
    : vthresh(Scalar(t.vthresh)), amin(Scalar(t.amin)), amax(Scalar(t.amax)),
      ashift(Scalar(t.ashift)), vwidth(Scalar(t.vwidth)), symmetric(t.symmetric) {
  validate(t);
}

template <class Scalar, class Space>
LcaSolver<Scalar, Space>::LcaSolver(const Geometry& g, const LcaParams& p)
    : geom_((validate(g), g)), params_((validate(p), p)), transfer_(p.transfer),
      dt_("lca::LcaSolver::dictionary_rows", g.nf, g.patch()) {}

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::set_lambda_transfer(const Transfer& t) {
  transfer_ = DeviceTransfer<Scalar>(t);
  params_.transfer = t;
}

template <class Scalar, class Space> void LcaSolver<Scalar, Space>::reset(int batch) {
  if (batch < 1)
    throw InvalidArgument("batch size must be >= 1 (got " + std::to_string(batch) + ")");
  if (batch != batch_) {
    const int n = batch * geom_.positions(), nf = geom_.nf;
    v_ = Matrix("lca::LcaSolver::V", n, nf);
    a_ = Matrix("lca::LcaSolver::A", n, nf);
    g_ = Matrix("lca::LcaSolver::G", n, nf);
    p_ = Matrix("lca::LcaSolver::patches", n, geom_.patch());
    r_ = Images("lca::LcaSolver::R", batch, geom_.pixels());
    act_idx_ = typename V::IndexMatrix("lca::LcaSolver::act_idx", n, nf);
    act_val_ = Matrix("lca::LcaSolver::act_val", n, nf);
    act_cnt_ = typename V::IndexVector("lca::LcaSolver::act_cnt", n);
    batch_ = batch;
  } else {
    Kokkos::deep_copy(v_, Scalar(0));
    Kokkos::deep_copy(a_, Scalar(0));
    Kokkos::deep_copy(act_cnt_, 0);
  }
}

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::reconstruct(const Dictionary<Scalar, Space>& dict,
                                           const ConstImages& x, const Images& out,
                                           Scalar sign) const {
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
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>({0, 0}, {d.extent(0), d.extent(1)}),
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
      "lca::LcaSolver::reconstruct", team_policy(batch_ * C, Kokkos::AUTO, vector),
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
              const int kx_lo = j0 < 0 ? -j0 : 0, kx_hi = W - j0 < k ? W - j0 : k;
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

template <class Scalar, class Space> void LcaSolver<Scalar, Space>::im2col(const ConstImages& r) {
  Region region("lca::LcaSolver::im2col");
  const int C = geom_.channels, H = geom_.height, W = geom_.width, k = geom_.kernel,
            s = geom_.stride, p = geom_.pad(), Hs = geom_.out_h(), Ws = geom_.out_w();
  const auto P = p_;
  // One thread per position walks its patch: no index division in the inner loops, rows of
  // P written contiguously on CPUs, coalesced across threads on GPUs. The columns inside the
  // image are found once per position, so the copy loop has no branch and vectorises.
  Kokkos::parallel_for(
      "lca::LcaSolver::im2col", Kokkos::RangePolicy<exec_space>(0, int(P.extent(0))),
      KOKKOS_LAMBDA(int pos) {
        const int xx = pos % Ws, y = (pos / Ws) % Hs, b = pos / (Ws * Hs);
        const int i0 = s * y - p, j0 = s * xx - p;
        const int kx_lo = j0 < 0 ? -j0 : 0, kx_hi = W - j0 < k ? W - j0 : k;
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

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::apply_drive(const Dictionary<Scalar, Space>& dict) {
  Region region("lca::LcaSolver::drive");
  KokkosBlas::gemm("N", "N", Scalar(1), p_, dict.matrix(), Scalar(0), g_);
}

namespace {
/// Exponential update (PetaVision, selfInteract on), threshold and active list of one
/// position, fused; the second operator also tracks max |dV| for the early stop.
template <class Scalar, class Matrix, class IndexMatrix, class IndexVector> struct UpdateStep {
  Matrix V, A, G, val;
  IndexMatrix idx;
  IndexVector cnt;
  DeviceTransfer<Scalar> T;
  Scalar decay, gain;
  int nf;
  KOKKOS_INLINE_FUNCTION Scalar run(int pos) const {
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

template <class Scalar, class Space> Scalar LcaSolver<Scalar, Space>::update(bool track_dv) {
  Region region("lca::LcaSolver::update");
  const Scalar decay = Scalar(std::exp(-params_.dt / params_.tau));
  using Step = UpdateStep<Scalar, Matrix, typename V::IndexMatrix, typename V::IndexVector>;
  const Step f{v_,       a_,        g_,    act_val_,          act_idx_,
               act_cnt_, transfer_, decay, Scalar(1) - decay, geom_.nf};
  const Kokkos::RangePolicy<exec_space> policy(0, int(v_.extent(0)));
  Scalar dv_max = 0;
  if (track_dv)
    Kokkos::parallel_reduce("lca::LcaSolver::update", policy, f, Kokkos::Max<Scalar>(dv_max));
  else
    Kokkos::parallel_for("lca::LcaSolver::update", policy, f);
  return dv_max;
}

template <class Scalar, class Space> void LcaSolver<Scalar, Space>::rebuild_active_lists() {
  const int nf = geom_.nf;
  const auto A = a_, val = act_val_;
  const auto idx = act_idx_;
  const auto cnt = act_cnt_;
  Kokkos::parallel_for(
      "lca::LcaSolver::active_lists", Kokkos::RangePolicy<exec_space>(0, A.extent(0)),
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

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::set_activities(const Matrix& a) {
  if (a.extent(0) != a_.extent(0) || a.extent(1) != a_.extent(1))
    throw InvalidArgument("set_activities: shape does not match the batch");
  Kokkos::deep_copy(a_, a);
  rebuild_active_lists();
}

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::compute_residual(const Dictionary<Scalar, Space>& dict,
                                                const ConstImages& x) {
  reconstruct(dict, x, r_, Scalar(-1));
  im2col(r_);
}

template <class Scalar, class Space>
Scalar LcaSolver<Scalar, Space>::step(const Dictionary<Scalar, Space>& dict,
                                      const ConstImages& x_in, bool track_dv) {
  compute_residual(dict, x_in);
  apply_drive(dict);
  return update(track_dv);
}

template <class Scalar, class Space>
int LcaSolver<Scalar, Space>::solve(const Dictionary<Scalar, Space>& dict,
                                    const ConstImages& x_in) {
  Region region("lca::LcaSolver::solve");
  if (x_in.extent(0) != std::size_t(batch_) || x_in.extent(1) != std::size_t(geom_.pixels()))
    throw InvalidArgument("solve: input batch is " + std::to_string(x_in.extent(0)) + "x" +
                          std::to_string(x_in.extent(1)) + ", solver expects " +
                          std::to_string(batch_) + "x" + std::to_string(geom_.pixels()));
  const bool track = params_.stop_tol > 0;
  int it = 0;
  while (it < params_.iterations) {
    const Scalar dv = step(dict, x_in, track);
    ++it;
    if (track && dv < Scalar(params_.stop_tol))
      break;
  }
  compute_residual(dict, x_in);
  return it;
}

template <class Scalar, class Space>
BatchStats LcaSolver<Scalar, Space>::stats(const ConstImages& x_ref) const {
  Region region("lca::LcaSolver::stats");
  using team_policy = Kokkos::TeamPolicy<exec_space>;
  using member = typename team_policy::member_type;
  const int B = batch_, npix = geom_.pixels(), npos = geom_.positions(), nf = geom_.nf;
  Kokkos::View<double* [4], typename V::memory_space> out("lca::LcaSolver::stats", B);
  const auto R = r_;
  const auto A = a_;
  Kokkos::parallel_for(
      "lca::LcaSolver::stats", team_policy(B, Kokkos::AUTO), KOKKOS_LAMBDA(const member& team) {
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
