#include "support.hpp"

#include "lca/error.hpp"
#include "overlap.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

extern "C" {
void dpbtrf_(const char* uplo, const int* n, const int* kd, double* ab, const int* ldab, int* info);
void dpbtrs_(const char* uplo, const int* n, const int* kd, const int* nrhs, const double* ab,
             const int* ldab, double* b, const int* ldb, int* info);
}

namespace lca {

template <class Scalar, class Device, class Layout>
SupportSolve<Scalar, Device, Layout>::SupportSolve(const Geometry& g, double max_cost_iterations,
                                                   const exec_space& exec)
    : geom_((validate(g), g)), exec_(exec) {
  const int k = g.kernel, s = g.stride, p = g.pad();
  reach_ = (k + s - 1) / s - 1;
  // Atom rows s*y - p .. s*y - p + k - 1 inside 0 .. H - 1.
  y_lo_ = (p + s - 1) / s, y_hi_ = (g.height + p - k) / s;
  x_lo_ = y_lo_, x_hi_ = (g.width + p - k) / s;
  max_flops_ = max_cost_iterations * 4.0 * g.positions() * g.patch() * g.nf;
}

template <class Scalar, class Device, class Layout>
void SupportSolve<Scalar, Device, Layout>::set_dictionary(const Dict& dict) {
  Region region("lca::SupportSolve::set_dictionary");
  const int nf = geom_.nf, patch = geom_.patch(), span = 2 * reach_ + 1;
  exec_.fence();
  // The taps cost ~0.1 s at W128: a solver that sees the same dictionary again (denoising,
  // several solves per batch) keeps them.
  if (!Impl::refresh_dictionary(dict.matrix(), dict_) && ready_)
    return;
  taps_.assign(std::size_t(span) * span * nf * nf, 0.0);
  // The products of whole atoms, one (offset, f) row per task. <phi_f, phi_g shifted by o>
  // = <phi_g, phi_f shifted by -o>, and offset index span^2 - 1 - o is -o: half of them.
  const int offsets = span * span;
  Kokkos::parallel_for("lca::SupportSolve::taps",
                       Kokkos::RangePolicy<Impl::HostExec<Device>>(0, (offsets + 1) / 2 * nf),
                       [&](int t) {
                         const int o = t / nf, f = t % nf, mirror = offsets - 1 - o;
                         const int dy = o / span - reach_, dx = o % span - reach_;
                         for (int g = 0; g < nf; ++g) {
                           const double v = product(f, g, 0, 0, dy, dx, false);
                           taps_[(std::size_t(o) * nf + f) * nf + g] = v;
                           if (mirror != o) // (the centre's rows are each their own task's)
                             taps_[(std::size_t(mirror) * nf + g) * nf + f] = v;
                         }
                       });
  Impl::HostExec<Device>().fence();
  ready_ = true;
}

template <class Scalar, class Device, class Layout>
double SupportSolve<Scalar, Device, Layout>::product(int f, int g, int y, int x, int dy, int dx,
                                                     bool clip) const {
  return Impl::atom_product(geom_, dict_.data(), f, g, dy, dx,
                            Impl::overlap_rows(geom_, y, dy, geom_.height, clip),
                            Impl::overlap_rows(geom_, x, dx, geom_.width, clip));
}

template <class Scalar, class Device, class Layout>
double SupportSolve<Scalar, Device, Layout>::entry(int f, int y, int x, int g, int dy,
                                                   int dx) const {
  if (whole(y, x) && whole(y + dy, x + dx)) {
    const int span = 2 * reach_ + 1, nf = geom_.nf;
    const int o = (dy + reach_) * span + dx + reach_;
    return taps_[(std::size_t(o) * nf + f) * nf + g];
  }
  return product(f, g, y, x, dy, dx, true);
}

template <class Scalar, class Device, class Layout>
template <class Set>
void SupportSolve<Scalar, Device, Layout>::fill_gram(const std::vector<Neuron>& S,
                                                     const std::vector<int>& start,
                                                     const Set& set) const {
  const int n = int(S.size()), Hs = geom_.out_h(), Ws = geom_.out_w();
  // Only the neurons of the (2 reach + 1)^2 neighbouring positions overlap neuron i.
  for (int i = 0; i < n; ++i) {
    const int y = S[i].pos / Ws, x = S[i].pos % Ws;
    for (int yy = std::max(0, y - reach_); yy <= std::min(Hs - 1, y + reach_); ++yy)
      for (int xx = std::max(0, x - reach_); xx <= std::min(Ws - 1, x + reach_); ++xx) {
        const int q = yy * Ws + xx;
        for (int j = start[q]; j < start[q + 1] && j <= i; ++j)
          set(i, j, entry(S[i].feature, y, x, S[j].feature, yy - y, xx - x));
      }
  }
}

template <class Scalar, class Device, class Layout>
int SupportSolve<Scalar, Device, Layout>::bandwidth(const std::vector<Neuron>& S,
                                                    const std::vector<int>& start) const {
  const int Hs = geom_.out_h(), Ws = geom_.out_w();
  // The last position that overlaps (y, x) in raster order is (y + reach, x + reach).
  int kd = 0;
  for (int i = 0; i < int(S.size()); ++i) {
    const int y = S[i].pos / Ws, x = S[i].pos % Ws;
    const int last = std::min(Hs - 1, y + reach_) * Ws + std::min(Ws - 1, x + reach_);
    kd = std::max(kd, start[last + 1] - 1 - i);
  }
  return kd;
}

namespace {
/// start[q]: the first of the neurons (sorted by position) at position q or later.
template <class Neuron> std::vector<int> position_starts(const std::vector<Neuron>& S, int npos) {
  std::vector<int> start(npos + 1, int(S.size()));
  for (int i = int(S.size()) - 1; i >= 0; --i)
    start[S[i].pos] = i;
  for (int q = npos - 1; q >= 0; --q)
    start[q] = std::min(start[q], start[q + 1]);
  return start;
}
} // namespace

template <class Scalar, class Device, class Layout>
std::vector<double>
SupportSolve<Scalar, Device, Layout>::gram(const std::vector<Neuron>& S_in) const {
  if (!ready_)
    throw InvalidArgument("SupportSolve: set_dictionary first");
  // fill_gram wants the neurons sorted by position; the result is in the caller's order.
  std::vector<int> order(S_in.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = int(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int i, int j) { return S_in[i].pos < S_in[j].pos; });
  std::vector<Neuron> S;
  for (int i : order)
    S.push_back(S_in[i]);
  const std::size_t n = S.size();
  std::vector<double> M(n * n, 0.0), out(n * n);
  fill_gram(S, position_starts(S, geom_.positions()), [&](int i, int j, double v) {
    M[std::size_t(j) * n + i] = v;
    M[std::size_t(i) * n + j] = v;
  });
  std::vector<std::size_t> sorted_at(n); // the caller's neuron i is sorted neuron sorted_at[i]
  for (std::size_t i = 0; i < n; ++i)
    sorted_at[order[i]] = i;
  for (std::size_t j = 0; j < n; ++j) // writes in order, reads within one column
    for (std::size_t i = 0; i < n; ++i)
      out[j * n + i] = M[sorted_at[j] * n + sorted_at[i]];
  return out;
}

namespace {
/// A symmetric banded matrix: entry (i, j), j <= i <= j + kd, at v[(i - j) + j (kd + 1)]
/// (LAPACK's lower band storage), 0 farther out.
struct Band {
  int n = 0, kd = 0;
  std::vector<double> v;
  void reset(int n_, int kd_) {
    n = n_, kd = kd_;
    v.assign(std::size_t(n) * (kd + 1), 0.0);
  }
  double& lower(int i, int j) { return v[std::size_t(j) * (kd + 1) + (i - j)]; }
  double operator()(int i, int j) const {
    if (i < j)
      std::swap(i, j);
    return i - j > kd ? 0.0 : v[std::size_t(j) * (kd + 1) + (i - j)];
  }
};

/// K(T, T) for ascending T into `sub`.
void restrict_band(const Band& K, const std::vector<int>& T, Band& sub) {
  const int m = int(T.size());
  int kd = 0;
  for (int j = 0, hi = 0; j < m; ++j) {
    while (hi + 1 < m && T[hi + 1] <= T[j] + K.kd)
      ++hi;
    kd = std::max(kd, hi - j);
  }
  sub.reset(m, kd);
  for (int j = 0; j < m; ++j)
    for (int i = j; i <= std::min(m - 1, j + kd); ++i)
      sub.lower(i, j) = K(T[i], T[j]);
}

/// Whether the energy 1/2 ||x - Phi a||^2 + lambda ||a||_1 rose from (a0, g0) to (a1, g1), codes
/// and exact drives g = Phi^T (x - Phi a) on the same candidates (nothing else moved): with
/// d = a1 - a0 and g1 = g0 - Phi^T Phi d, the quadratic part is -d^T g0 + d^T Phi^T Phi d / 2
/// = -d^T (g0 + g1) / 2. A rise within the sum's rounding is none (a round at the optimum moves
/// the code by rounding only).
bool energy_rose(const std::vector<double>& a0, const std::vector<double>& g0,
                 const std::vector<double>& a1, const std::vector<double>& g1, double lambda) {
  double change = 0, size = 0;
  for (std::size_t i = 0; i < a0.size(); ++i) {
    const double quadratic = -0.5 * (a1[i] - a0[i]) * (g0[i] + g1[i]);
    const double l1 = lambda * (std::abs(a1[i]) - std::abs(a0[i]));
    change += quadratic + l1;
    size += std::abs(quadratic) + std::abs(l1);
  }
  return change > 64 * std::numeric_limits<double>::epsilon() * size;
}
} // namespace

template <class Scalar, class Device, class Layout>
template <class HostA, class HostG>
void SupportSolve<Scalar, Device, Layout>::solve_image(int b, const HostA& A, const HostG& G,
                                                       double lambda, bool nonneg, int max_add,
                                                       Round& out) const {
  const int npos = geom_.positions(), nf = geom_.nf;
  const std::int64_t row0 = std::int64_t(b) * npos;
  // A drive this far above lambda is a violation, not the drive's own rounding.
  const double limit =
      lambda * (1 + kViolatorSlack * double(std::numeric_limits<Scalar>::epsilon()));
  const auto violates = [&](double g) { return g > limit || (!nonneg && -g > limit); };
  struct Candidate {
    double excess;
    Neuron neuron;
  };
  // The candidates: the support, then the violators (the largest max_add of them).
  std::vector<Neuron> S;
  std::vector<Candidate> violators;
  for (int q = 0; q < npos; ++q)
    for (int m = 0; m < nf; ++m) {
      const double a = double(A(row0 + q, m)), g = double(G(row0 + q, m));
      if (a != 0)
        S.push_back({q, m});
      else if (violates(g))
        violators.push_back({std::abs(g) - lambda, {q, m}});
    }
  if (max_add > 0 && int(violators.size()) > max_add) {
    std::partial_sort(violators.begin(), violators.begin() + max_add, violators.end(),
                      [](const Candidate& u, const Candidate& v) { return u.excess > v.excess; });
    violators.resize(max_add);
  }
  out.violators[b] = int(violators.size());
  for (const Candidate& c : violators)
    S.push_back(c.neuron);
  std::sort(S.begin(), S.end(), [](const Neuron& u, const Neuron& v) {
    return u.pos != v.pos ? u.pos < v.pos : u.feature < v.feature;
  });
  const int n = int(S.size());
  out.support[b] = n;
  // Per candidate: code, drive (kept exact through K as the code moves), sign, whether it was
  // in the support, whether it is in the working set T.
  std::vector<double> a(n), g(n), s(n);
  std::vector<char> old(n), in(n, 1);
  for (int i = 0; i < n; ++i) {
    a[i] = double(A(row0 + S[i].pos, S[i].feature));
    g[i] = double(G(row0 + S[i].pos, S[i].feature));
    old[i] = a[i] != 0;
    s[i] = old[i] ? (a[i] > 0 ? 1.0 : -1.0) : (g[i] > 0 ? 1.0 : -1.0);
  }
  const std::vector<double> a_start = a, g_start = g;
  // The Gram of the candidates is banded in position order: check its cost before filling it.
  const std::vector<int> start = position_starts(S, npos);
  const int kd = bandwidth(S, start);
  const double budget = max_flops(), cost = double(n) * (kd + 1) * (kd + 1);
  if (cost > budget) {
    out.status[b] = Status::too_large;
    return;
  }
  // The cap bounds the round's factorisations together: a large support gets fewer.
  const int max_solves = std::min(kMaxSolves, std::max(1, int(budget / cost)));
  Band K;
  K.reset(n, kd);
  fill_gram(S, start, [&](int i, int j, double v) { K.lower(i, j) = v; });
  // Feature-sign search (Lee, Battle, Raina, Ng 2007) on the candidates: solve on T with
  // the signs s, step to the first sign change, drop what reaches 0, and once exact on T
  // let the candidates whose drive now violates rejoin. Every step lowers the energy, so
  // it cannot cycle; the cap only bounds the factorisations.
  std::vector<int> T;
  std::vector<double> delta;
  Band KT;
  bool converged = false;
  int solves = 0;
  for (;;) {
    T.clear();
    for (int i = 0; i < n; ++i)
      if (in[i])
        T.push_back(i);
    if (!T.empty()) {
      if (solves == max_solves)
        break;
      const int m = int(T.size());
      restrict_band(K, T, KT);
      delta.resize(m);
      for (int u = 0; u < m; ++u)
        delta[u] = g[T[u]] - lambda * s[T[u]];
      const char lower = 'L';
      const int one = 1, ldab = KT.kd + 1;
      int info = 0;
      dpbtrf_(&lower, &m, &KT.kd, KT.v.data(), &ldab, &info);
      if (info != 0) { // a principal submatrix of a definite K is definite: only the first
        out.status[b] = Status::singular;
        return;
      }
      dpbtrs_(&lower, &m, &KT.kd, &one, KT.v.data(), &ldab, delta.data(), &m, &info);
      ++solves;
      // A newcomer that would move against its sign leaves T (it stays 0) before any step.
      bool left = false;
      for (int u = 0; u < m; ++u)
        if (a[T[u]] == 0 && s[T[u]] * delta[u] <= 0)
          in[T[u]] = 0, left = true;
      if (left)
        continue;
      // The first kBulkSolves solves take the whole step and drop every coefficient that
      // crossed zero: from a settled FISTA or LCA support the crossings are a few dozen
      // neurons, one factorisation each would cost more than the iterations saved. Later
      // solves step only to the first crossing, which lowers the energy every time.
      const bool bulk = solves <= kBulkSolves;
      double t = 1;
      int first = -1;
      for (int u = 0; u < m; ++u) {
        const int i = T[u];
        if (s[i] * (a[i] + delta[u]) < 0 && (bulk || -a[i] / delta[u] < t))
          first = i, t = bulk ? 1.0 : -a[i] / delta[u];
      }
      for (int u = 0; u < m; ++u) {
        const int j = T[u];
        const double step = t * delta[u];
        a[j] += step;
        for (int i = std::max(0, j - kd); i <= std::min(n - 1, j + kd); ++i)
          g[i] -= step * K(i, j);
      }
      if (first >= 0) { // the (first) sign changes, and any other that rounding put at 0
        for (int i : T)
          if (i == first || s[i] * a[i] <= 0) {
            for (int k = std::max(0, i - kd); k <= std::min(n - 1, i + kd); ++k)
              g[k] += a[i] * K(k, i); // the drive of the code with a_i = 0
            a[i] = 0, in[i] = 0;
          }
        continue;
      }
    }
    // Exact on T: candidates outside it whose drive now violates rejoin with its sign.
    bool back = false;
    for (int i = 0; i < n; ++i)
      if (!in[i] && violates(g[i]))
        in[i] = 1, s[i] = g[i] > 0 ? 1.0 : -1.0, back = true;
    if (!back) {
      converged = true;
      break;
    }
  }
  out.solves[b] = solves;
  // Zeroing a bulk step's crossings can raise the energy (atoms that share most of their
  // pattern make the step on a wrong support large), and later steps need not win it back:
  // such a round leaves the code as it was.
  if (energy_rose(a_start, g_start, a, g, lambda)) {
    out.status[b] = Status::raised;
    return;
  }
  int added = 0, dropped = 0;
  for (int i = 0; i < n; ++i) {
    added += !old[i] && a[i] != 0;
    dropped += old[i] && a[i] == 0;
    A(row0 + S[i].pos, S[i].feature) = Scalar(a[i]);
  }
  out.added[b] = added;
  out.dropped[b] = dropped;
  out.status[b] = converged ? Status::solved : Status::capped;
}

template <class Scalar, class Device, class Layout>
typename SupportSolve<Scalar, Device, Layout>::Round
SupportSolve<Scalar, Device, Layout>::round(const Matrix& A, const Matrix& G, double lambda,
                                            bool nonneg, const std::vector<int>& mask,
                                            int max_add) {
  Region region("lca::SupportSolve::round");
  if (!ready_)
    throw InvalidArgument("SupportSolve: set_dictionary first");
  const int npos = geom_.positions();
  const int B = int(A.extent(0)) / npos;
  if (A.extent(0) != std::size_t(B) * npos || A.extent(1) != std::size_t(geom_.nf) ||
      G.extent(0) != A.extent(0) || G.extent(1) != A.extent(1) || int(mask.size()) != B)
    throw InvalidArgument("SupportSolve::round: codes, drive and mask do not match");
  Round out;
  out.status.assign(B, Status::idle);
  out.support.assign(B, 0);
  out.added.assign(B, 0);
  out.violators.assign(B, 0);
  out.dropped.assign(B, 0);
  out.solves.assign(B, 0);
  std::vector<int> open;
  for (int b = 0; b < B; ++b)
    if (mask[b])
      open.push_back(b);
  if (open.empty())
    return out;
  // On a host space these are A and G themselves; on a GPU, copies of the batch.
  exec_.fence();
  const auto hA = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), A);
  const auto hG = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), G);
  using Host = Impl::HostExec<Device>;
  // One image per thread, each factorisation single-threaded (OpenBLAS's OpenMP build runs
  // one thread inside a parallel region): the banded factorisation's small blocks gain
  // nothing from LAPACK's own threads.
  Kokkos::parallel_for("lca::SupportSolve::round",
                       Kokkos::RangePolicy<Host, Kokkos::Schedule<Kokkos::Dynamic>>(
                           0, int(open.size()), Kokkos::ChunkSize(1)),
                       [&](int t) { solve_image(open[t], hA, hG, lambda, nonneg, max_add, out); });
  Host().fence();
  Kokkos::deep_copy(exec_, A, hA); // (no copy on a host space)
  return out;
}

LCA_INSTANTIATE(class, SupportSolve)

} // namespace lca
