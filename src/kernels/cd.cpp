#include "cd.hpp"

#include "blas.hpp"
#include "certificate.hpp"
#include "lca/error.hpp"
#include "overlap.hpp"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <type_traits>

namespace lca {

namespace {
/// The distinct (offset, clipped kernel range) pairs of one axis and, per atom row y and
/// offset d, which of them it takes: slot[y * span + d + reach]. Empty overlaps share a slot.
struct AxisSlots {
  std::vector<int> slot;
  std::vector<int> offset;
  std::vector<Impl::KernelRange> range;
};
AxisSlots axis_slots(const Geometry& g, int n_out, int extent, int reach) {
  AxisSlots a;
  const int span = 2 * reach + 1;
  a.slot.assign(std::size_t(n_out) * span, 0);
  for (int y = 0; y < n_out; ++y)
    for (int d = -reach; d <= reach; ++d) {
      Impl::KernelRange r = Impl::overlap_rows(g, y, d, extent, true);
      const int off = r.lo < r.hi ? d : 0;
      if (r.lo >= r.hi)
        r = {0, 0};
      int s = 0;
      while (s < int(a.offset.size()) &&
             !(a.offset[s] == off && a.range[s].lo == r.lo && a.range[s].hi == r.hi))
        ++s;
      if (s == int(a.offset.size()))
        a.offset.push_back(off), a.range.push_back(r);
      a.slot[std::size_t(y) * span + d + reach] = s;
    }
  return a;
}

/// The exact minimisation over one coordinate moves a to prox(a + g / n, lambda / n), n the
/// atom's squared norm (inv = 1 / n; 0 for an atom that the image edge cuts away): returns the
/// step. neg is 1 for soft codes, 0 for non-negative ones. Branch-free, so that the host
/// compiler vectorises the choice.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar step(Scalar a, Scalar g, Scalar inv, Scalar lambda, Scalar neg) {
  const Scalar z = a + g * inv, t = lambda * inv;
  const Scalar up = z - t > Scalar(0) ? z - t : Scalar(0);
  const Scalar down = z + t < Scalar(0) ? z + t : Scalar(0);
  return up + neg * down - a; // t >= 0: at most one of up and down is not 0
}
/// The size of that step.
template <class Scalar>
KOKKOS_INLINE_FUNCTION Scalar move(Scalar a, Scalar g, Scalar inv, Scalar lambda, Scalar neg) {
  const Scalar d = step(a, g, inv, lambda, neg);
  return d > -d ? d : -d;
}
/// A non-negative float's bits, as a signed integer, order as the floats do: the largest move
/// is then an integer max, which the host compiler vectorises (a float max it does not, since
/// it must keep NaN's and -0's order). A -0 move maps below 0 and loses to the start, +0.
template <class Scalar>
using BitsOf = std::conditional_t<sizeof(Scalar) == 4, std::int32_t, std::int64_t>;
template <class Scalar> KOKKOS_INLINE_FUNCTION BitsOf<Scalar> bits(Scalar v) {
  BitsOf<Scalar> b;
  memcpy(&b, &v, sizeof b);
  return b;
}
template <class Scalar> KOKKOS_INLINE_FUNCTION Scalar scalar(BitsOf<Scalar> b) {
  Scalar v;
  memcpy(&v, &b, sizeof v);
  return v;
}
/// Stopping on the maintained state tests the gap every this many sweeps: the test reads the
/// whole code and drive (a fifth of the kernel's time when it came every sweep at W128).
constexpr int kGapEvery = 4;
} // namespace

double cd_table_bytes(const Geometry& g, std::size_t scalar_bytes) {
  validate(g);
  const int reach = (g.kernel + g.stride - 1) / g.stride - 1;
  return double(axis_slots(g, g.out_h(), g.height, reach).offset.size()) *
         double(axis_slots(g, g.out_w(), g.width, reach).offset.size()) * g.nf * g.nf *
         double(scalar_bytes);
}

template <class Scalar, class Device, class Layout>
CoordinateDescent<Scalar, Device, Layout>::CoordinateDescent(const Geometry& g,
                                                             const exec_space& exec)
    : geom_((validate(g), g)), exec_(exec) {
  reach_ = (g.kernel + g.stride - 1) / g.stride - 1;
  span_ = 2 * reach_ + 1;
  const AxisSlots ys = axis_slots(g, g.out_h(), g.height, reach_);
  const AxisSlots xs = axis_slots(g, g.out_w(), g.width, reach_);
  slots_x_ = int(xs.offset.size());
  const double bytes = cd_table_bytes(g, sizeof(Scalar));
  if (bytes > kCdMaxTableBytes) {
    std::ostringstream os;
    os << "the cd solver's overlap table would take " << bytes / (1 << 20) << " MiB at nf " << g.nf
       << ", kernel " << g.kernel << ", stride " << g.stride
       << " (limit 1024 MiB): use --solver fista";
    throw InvalidArgument(os.str());
  }
  slot_y_h_ = ys.slot, slot_x_h_ = xs.slot;
  const auto upload = [&](const std::vector<int>& h, const char* label) {
    Kokkos::View<int*, Device> d(scratch(exec, label), h.size());
    const auto m = Kokkos::create_mirror_view(d);
    std::copy(h.begin(), h.end(), m.data());
    Kokkos::deep_copy(exec, d, m);
    exec.fence(); // m is a temporary
    return d;
  };
  slot_y_ = upload(ys.slot, "lca::CoordinateDescent::slot_y");
  slot_x_ = upload(xs.slot, "lca::CoordinateDescent::slot_x");
  table_ = decltype(table_)(scratch(exec, "lca::CoordinateDescent::overlaps"), g.nf,
                            ys.offset.size() * slots_x_, g.nf);
  table_h_ = Kokkos::create_mirror_view(table_);
  inv_norm_ = decltype(inv_norm_)(scratch(exec, "lca::CoordinateDescent::inverse_norms"),
                                  table_.extent(1), g.nf);
  inv_norm_h_ = Kokkos::create_mirror_view(inv_norm_);
}

template <class Scalar, class Device, class Layout>
void CoordinateDescent<Scalar, Device, Layout>::set_dictionary(const Dict& dict) {
  Region region("lca::CoordinateDescent::set_dictionary");
  const int nf = geom_.nf, patch = geom_.patch();
  exec_.fence();
  if (!Impl::refresh_dictionary(dict.matrix(), dict_) && ready_)
    return;
  const AxisSlots ys = axis_slots(geom_, geom_.out_h(), geom_.height, reach_);
  const AxisSlots xs = axis_slots(geom_, geom_.out_w(), geom_.width, reach_);
  // Each slot's block is one GEMM: the atoms' pixels inside the slot's overlap (A), times the
  // same pixels of the shifted atoms (B), in double through the host BLAS (a 128 x 128 x 192
  // product at W128, 529 of them: ~20 ms where products one pair at a time took ~0.3 s).
  using Host = Impl::HostExec<Device>;
  using HostMatrix = Kokkos::View<double**, Kokkos::LayoutRight, Host>;
  const Host host;
  const int k = geom_.kernel, s = geom_.stride, C = geom_.channels;
  HostMatrix T("lca::CoordinateDescent::block", nf, nf);
  std::vector<double> a_buf(std::size_t(nf) * patch), b_buf(a_buf.size());
  for (int slot = 0; slot < int(table_h_.extent(1)); ++slot) {
    const int sy = slot / slots_x_, sx = slot % slots_x_;
    const Impl::KernelRange ry = ys.range[sy], rx = xs.range[sx];
    const int w = rx.hi - rx.lo, m = C * (ry.hi - ry.lo) * w;
    const int shift = s * ys.offset[sy] * k + s * xs.offset[sx];
    if (m > 0) {
      const HostMatrix A(a_buf.data(), nf, m), B(b_buf.data(), nf, m); // (no allocation)
      Kokkos::parallel_for(
          "lca::CoordinateDescent::gather", Kokkos::RangePolicy<Host>(host, 0, nf * m), [&](int t) {
            const int f = t / m, e = t % m, kx = rx.lo + e % w, rest = e / w;
            const int ky = ry.lo + rest % (ry.hi - ry.lo), ch = rest / (ry.hi - ry.lo);
            const std::size_t at = std::size_t(f) * patch + (ch * k + ky) * k + kx;
            A(f, e) = dict_[at];
            B(f, e) = dict_[at - shift];
          });
      blas::gemm(host, "N", "T", 1.0, A, B, 0.0, T);
    } else {
      Kokkos::deep_copy(host, T, 0.0);
    }
    host.fence();
    for (int f = 0; f < nf; ++f) {
      for (int g = 0; g < nf; ++g)
        table_h_(f, slot, g) = Scalar(T(f, g));
      inv_norm_h_(slot, f) = T(f, f) > 0 ? Scalar(1 / T(f, f)) : Scalar(0);
    }
  }
  Kokkos::deep_copy(exec_, table_, table_h_);
  Kokkos::deep_copy(exec_, inv_norm_, inv_norm_h_);
  exec_.fence();
  ready_ = true;
}

template <class Scalar, class Device, class Layout>
double CoordinateDescent<Scalar, Device, Layout>::overlap(int y, int x, int f, int dy, int dx,
                                                          int g) const {
  if (!ready_)
    throw InvalidArgument("CoordinateDescent: set_dictionary first");
  const int sy = slot_y_h_[std::size_t(y) * span_ + dy + reach_];
  const int sx = slot_x_h_[std::size_t(x) * span_ + dx + reach_];
  return double(table_h_(f, sy * slots_x_ + sx, g));
}

template <class Scalar, class Device, class Layout>
void CoordinateDescent<Scalar, Device, Layout>::run(const Matrix& A, const Matrix& G, double lambda,
                                                    bool nonneg,
                                                    const Kokkos::View<int*, Device>& open,
                                                    int iterations, double skip, const Stop& stop) {
  Region region("lca::CoordinateDescent::run");
  if (!ready_)
    throw InvalidArgument("CoordinateDescent: set_dictionary first");
  if (!(skip >= 0 && skip < 1))
    throw InvalidArgument("CoordinateDescent: skip must be in [0, 1)");
  const bool stopping = stop.gap > 0;
  if (stopping && (stop.rr.extent(0) != open.extent(0) || stop.sweeps.extent(0) != open.extent(0)))
    throw InvalidArgument("CoordinateDescent: the stop's rr and sweeps need one entry an image");
  const bool carry = stop.bar.extent(0) > 0;
  if (carry && stop.bar.extent(0) != open.extent(0))
    throw InvalidArgument("CoordinateDescent: the stop's bar needs one entry an image");
  const auto rr0 = stop.rr;
  const auto swept = stop.sweeps;
  const auto bar0 = stop.bar;
  const double eps = stop.gap;
  // Images converge at different speeds (and closed ones return at once): dynamic scheduling
  // keeps every host thread busy (measured: a third of the threads' time waited otherwise).
  using team_policy = Kokkos::TeamPolicy<exec_space, Kokkos::Schedule<Kokkos::Dynamic>>;
  using member = typename team_policy::member_type;
  const auto table = table_;
  const auto inv_norm = inv_norm_;
  const auto slot_y = slot_y_, slot_x = slot_x_;
  const int nf = geom_.nf, Ws = geom_.out_w(), Hs = geom_.out_h(), npos = geom_.positions();
  const int reach = reach_, span = span_, nsx = slots_x_;
  const Scalar lam = Scalar(lambda);
  // The features' stride: a compile-time 1 in LayoutRight, so that the host loops vectorise.
  constexpr bool rows = std::is_same<Layout, Kokkos::LayoutRight>::value;
  const std::size_t gs = rows ? 1 : G.stride(1), as = rows ? 1 : A.stride(1);
  const Scalar neg = nonneg ? Scalar(0) : Scalar(1), wait = Scalar(skip);
  using Bits = BitsOf<Scalar>;
  Kokkos::parallel_for(
      "lca::CoordinateDescent::run", team_policy(exec_, int(open.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const member& team) {
        const int b = team.league_rank();
        if (!open(b))
          return;
        // Moves up to this wait for a later sweep (none in the first, unless carried).
        Scalar bar = carry ? Scalar(bar0(b)) : Scalar(0);
        double rr = stopping ? rr0(b) : 0.0; // |x - Phi a|^2, kept beside the drive
        int it = 0;
        while (it < iterations) {
          Scalar sweep = 0;                // the largest move of this sweep, waiting ones included
          for (int q = 0; q < npos; ++q) { // the positions in raster order
            const int y = q / Ws, x = q % Ws;
            const std::int64_t row = std::int64_t(b) * npos + q;
            const int centre = slot_y(y * span + reach) * nsx + slot_x(x * span + reach);
            const Scalar* KOKKOS_RESTRICT ap = &A(row, 0);
            const Scalar* KOKKOS_RESTRICT gp = &G(row, 0);
            const Scalar* KOKKOS_RESTRICT inv = &inv_norm(centre, 0);
            // The largest move (a max reduction that vectorises), then the first feature that
            // makes it: the same choice on every backend and thread count. Every thread of the
            // team computes both.
            Bits most_bits = 0;
            Kokkos::parallel_reduce(
                Kokkos::ThreadVectorRange(team, nf),
                [=](int f, Bits& v) {
                  const Bits d = bits(
                      move(ap[f * (rows ? 1 : as)], gp[f * (rows ? 1 : gs)], inv[f], lam, neg));
                  v = d > v ? d : v;
                },
                Kokkos::Max<Bits>(most_bits));
            const Scalar most = scalar<Scalar>(most_bits);
            sweep = most > sweep ? most : sweep;
            if (!(most > bar))
              continue; // the position is at its optimum, or its move waits
            int f = nf;
            Kokkos::parallel_reduce(
                Kokkos::ThreadVectorRange(team, nf),
                [=](int h, int& v) {
                  const Bits d = bits(
                      move(ap[h * (rows ? 1 : as)], gp[h * (rows ? 1 : gs)], inv[h], lam, neg));
                  const int c = d >= most_bits ? h : nf;
                  v = c < v ? c : v;
                },
                Kokkos::Min<int>(f));
            if (f == nf) // cannot happen (the same arithmetic twice); never a wrong index
              continue;
            const Scalar a = A(row, f), gi = G(row, f), inv_i = inv_norm(centre, f);
            const Scalar d = step(a, gi, inv_i, lam, neg);
            // |r - d phi_i|^2 = |r|^2 - 2 d <phi_i, r> + d^2 |phi_i|^2 (d is 0 where inv_i is 0).
            if (inv_i > Scalar(0))
              rr += double(d) * (double(d) / double(inv_i) - 2 * double(gi));
            team.team_barrier(); // every thread has read A(row, .) and G(row, .)
            Kokkos::single(Kokkos::PerTeam(team), [&]() { A(row, f) = a + d; });
            // G_j -= d <phi_j, phi_i> over the neighbours j (i's own drive included).
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, span * span), [&](int o) {
              const int oy = o / span, ox = o % span;
              const int yy = y + oy - reach, xx = x + ox - reach;
              if (yy < 0 || yy >= Hs || xx < 0 || xx >= Ws)
                return;
              const int slot = slot_y(y * span + oy) * nsx + slot_x(x * span + ox);
              // Raw pointers with restrict, captured by value: the host compiler vectorises.
              Scalar* KOKKOS_RESTRICT out = &G(std::int64_t(b) * npos + yy * Ws + xx, 0);
              const Scalar* KOKKOS_RESTRICT in = &table(f, slot, 0);
              Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, nf),
                                   [=](int g) { out[g * (rows ? 1 : gs)] -= d * in[g]; });
            });
            team.team_barrier();
          }
          bar = wait * sweep;
          ++it;
          if (!stopping || (it % kGapEvery != 0 && it != iterations))
            continue;
          // The certificate of the maintained state: every thread of the team sums every
          // position (vectorised over the features), so all of them agree on stopping.
          double l1 = 0, ag = 0;
          Scalar most_g = 0;
          for (int q = 0; q < npos; ++q) {
            const std::int64_t row = std::int64_t(b) * npos + q;
            const Scalar* KOKKOS_RESTRICT ap = &A(row, 0);
            const Scalar* KOKKOS_RESTRICT gp = &G(row, 0);
            double s1 = 0, s2 = 0;
            Scalar m = 0;
            Kokkos::parallel_reduce(
                Kokkos::ThreadVectorRange(team, nf),
                [=](int f, double& v) {
                  const Scalar av = ap[f * (rows ? 1 : as)];
                  v += double(av > -av ? av : -av);
                },
                s1);
            Kokkos::parallel_reduce(
                Kokkos::ThreadVectorRange(team, nf),
                [=](int f, double& v) {
                  v += double(ap[f * (rows ? 1 : as)]) * double(gp[f * (rows ? 1 : gs)]);
                },
                s2);
            Kokkos::parallel_reduce(
                Kokkos::ThreadVectorRange(team, nf),
                [=](int f, Scalar& v) {
                  const Scalar gv = gp[f * (rows ? 1 : gs)];
                  const Scalar c = gv > neg * -gv ? gv : neg * -gv; // |g|, or g for a >= 0
                  v = c > v ? c : v;
                },
                Kokkos::Max<Scalar>(m));
            l1 += s1, ag += s2, most_g = m > most_g ? m : most_g;
          }
          if (Impl::certify(lambda, rr, rr + ag, l1, double(most_g)).gap <= eps)
            break;
        }
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          if (stopping)
            rr0(b) = rr, swept(b) = it;
          if (carry)
            bar0(b) = double(bar);
        });
      });
}

LCA_INSTANTIATE(class, CoordinateDescent)

} // namespace lca
