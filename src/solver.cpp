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
    : geom_(g), params_(p), transfer_(p.transfer) {
  validate(g);
  validate(p);
}

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::set_lambda_transfer(const Transfer& t) {
  transfer_ = DeviceTransfer<Scalar>(t);
  params_.transfer = t;
}

template <class Scalar, class Space> void LcaSolver<Scalar, Space>::reset(int batch) {
  if (batch < 1) throw InvalidArgument("batch size must be >= 1 (got " + std::to_string(batch) + ")");
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
  const bool has_x = x.extent(0) != 0;
  const auto d = dict.matrix();
  const auto idx = act_idx_;
  const auto val = act_val_;
  const auto cnt = act_cnt_;
  const std::int64_t total = std::int64_t(batch_) * C * H * W;
  // One thread per output pixel: gather from the <= ceil(k/s)^2 positions covering it.
  Kokkos::parallel_for(
      "lca::LcaSolver::reconstruct", Kokkos::RangePolicy<exec_space>(0, total),
      KOKKOS_LAMBDA(std::int64_t t) {
        const int j = int(t % W), i = int((t / W) % H), ch = int((t / (W * H)) % C);
        const int b = int(t / (std::int64_t(W) * H * C));
        // positions y with 0 <= i + p - s*y < k
        const int ylo_num = i + p - k + 1;
        const int ylo = ylo_num > 0 ? (ylo_num + s - 1) / s : 0;
        const int yhi = (i + p) / s < Hs - 1 ? (i + p) / s : Hs - 1;
        const int xlo_num = j + p - k + 1;
        const int xlo = xlo_num > 0 ? (xlo_num + s - 1) / s : 0;
        const int xhi = (j + p) / s < Ws - 1 ? (j + p) / s : Ws - 1;
        Scalar acc = 0;
        for (int y = ylo; y <= yhi; ++y)
          for (int xx = xlo; xx <= xhi; ++xx) {
            const int pos = (b * Hs + y) * Ws + xx;
            const int e = (ch * k + (i + p - s * y)) * k + (j + p - s * xx);
            const int n = cnt(pos);
            for (int q = 0; q < n; ++q) acc += val(pos, q) * d(e, idx(pos, q));
          }
        const std::int64_t pix = t - std::int64_t(b) * C * H * W;
        out(b, pix) = (has_x ? x(b, pix) : Scalar(0)) + sign * acc;
      });
}

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::im2col(const ConstImages& r) {
  Region region("lca::LcaSolver::im2col");
  const int H = geom_.height, W = geom_.width, k = geom_.kernel,
            s = geom_.stride, p = geom_.pad(), Hs = geom_.out_h(), Ws = geom_.out_w();
  const auto P = p_;
  Kokkos::parallel_for(
      "lca::LcaSolver::im2col",
      Kokkos::MDRangePolicy<exec_space, Kokkos::Rank<2>>({0, 0}, {P.extent(0), P.extent(1)}),
      KOKKOS_LAMBDA(std::int64_t pos, std::int64_t e) {
        const int xx = int(pos % Ws), y = int((pos / Ws) % Hs), b = int(pos / (Ws * Hs));
        const int kx = int(e % k), ky = int((e / k) % k), ch = int(e / (k * k));
        const int i = s * y + ky - p, j = s * xx + kx - p;
        P(pos, e) = (i >= 0 && i < H && j >= 0 && j < W) ? r(b, (ch * H + i) * W + j) : Scalar(0);
      });
}

template <class Scalar, class Space>
void LcaSolver<Scalar, Space>::apply_drive(const Dictionary<Scalar, Space>& dict) {
  Region region("lca::LcaSolver::drive");
  KokkosBlas::gemm("N", "N", Scalar(1), p_, dict.matrix(), Scalar(0), g_);
}

template <class Scalar, class Space> Scalar LcaSolver<Scalar, Space>::update(bool track_dv) {
  Region region("lca::LcaSolver::update");
  const Scalar decay = Scalar(std::exp(-params_.dt / params_.tau));
  const Scalar gain = Scalar(1) - decay;
  const int nf = geom_.nf;
  const auto V = v_, A = a_, G = g_, val = act_val_;
  const auto idx = act_idx_;
  const auto cnt = act_cnt_;
  const auto T = transfer_;
  Scalar dv_max = 0;
  // Exponential update (PetaVision, selfInteract on), threshold and active list in one pass.
  Kokkos::parallel_reduce(
      "lca::LcaSolver::update", Kokkos::RangePolicy<exec_space>(0, V.extent(0)),
      KOKKOS_LAMBDA(std::int64_t pos, Scalar & dmax) {
        int n = 0;
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
          if (track_dv && dv > dmax) dmax = dv;
        }
        cnt(pos) = n;
      },
      Kokkos::Max<Scalar>(dv_max));
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

template <class Scalar, class Space> void LcaSolver<Scalar, Space>::set_activities(const Matrix& a) {
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
    if (track && dv < Scalar(params_.stop_tol)) break;
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
            neurons, [&](int t, double& s) { s += act(t) < Scalar(0) ? -double(act(t)) : double(act(t)); },
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
