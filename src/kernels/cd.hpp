#pragma once
// Coordinate descent with a maintained drive (issue 20; --solver cd), private to the kernel
// layer: locally greedy coordinate descent (LGCD, Moreau, Oudre and Vayatis, ICML 2018) for
// the convolutional LASSO, one Kokkos team per image.
//
// An iteration visits the code positions in raster order; at each it picks the feature whose
// exact coordinate minimisation moves it most,
//   a_i <- prox(a_i + G_i / n_i, lambda / n_i),  n_i = |phi_i|^2,
// and keeps the drive G = Phi^T (x - Phi a) exact by subtracting delta <phi_j, phi_i> from the
// (2 reach + 1)^2 nf neurons j that overlap i (reach = ceil(k/s) - 1, the farthest offset at
// which two atoms overlap): 6,272 entries at W128 (nf 128, k 8, s 2) instead of the two
// convolutions a FISTA step pays for every neuron. (Choosing among the features of several
// positions, as LGCD's tiles do, saved iterations but cost more per update than it saved:
// perf/README.md.)
//
// The overlaps come from a table of every product the clipped atoms take: the image edge cuts
// the atoms at border positions, so <phi_j, phi_i> depends on the clip of atom i's rows and
// columns and on the offset. Each axis has few distinct (offset, clipped kernel range) pairs
// (23 at k 8, s 2, 32 pixels), and the table holds one nf x nf block per pair of them: 35 MB
// in float at W128, built on the host in double from the dictionary (overlap.hpp) and rebuilt
// only when the dictionary changes.
//
// The drive maintained this way drifts by rounding; the solver recomputes it from the
// residual (one GEMM) at every gap check, so the certificate never reads a drifted drive.
#include "lca/dictionary.hpp"
#include "lca/solver.hpp"

#include <cstdint>
#include <vector>

namespace lca {

/// The bytes of the overlap table for shape g at scalar_bytes per entry.
double cd_table_bytes(const Geometry& g, std::size_t scalar_bytes);

template <class Scalar, class Device = DefaultDevice,
          class Layout = typename Device::execution_space::array_layout>
class CoordinateDescent {
public:
  using V = Views<Scalar, Device, Layout>;
  using exec_space = typename V::exec_space;
  using Matrix = typename V::Matrix;
  using Dict = Dictionary<Scalar, Device, Layout>;

  explicit CoordinateDescent(const Geometry& g, const exec_space& exec = exec_space());

  /// The overlap table of dict, rebuilt only when dict differs from the one it was built from.
  void set_dictionary(const Dict& dict);
  /// Stopping on the maintained state. With gap > 0, an image stops after the first sweep
  /// whose relative duality gap, computed as Impl::certify does from the maintained drive and
  /// the squared residual kept beside it (rr: in, |x - Phi a|^2 at the call's start; out, at
  /// its end), is at most gap; sweeps(b) gets the sweeps it ran. The maintained drive drifts by
  /// rounding, so this says only when to certify: the solver certifies from a recomputed one,
  /// in place of a check every few sweeps (one full convolution pair each).
  /// bar, where given (one entry an image), carries the waiting bar from one call to the next
  /// (0 to start), so that the path does not depend on how the sweeps are split into calls.
  struct Stop {
    double gap = 0;
    Kokkos::View<double*, Device> rr;
    Kokkos::View<int*, Device> sweeps;
    Kokkos::View<double*, Device> bar;
  };
  /// `iterations` iterations on the images b with open(b) != 0: each visits every code
  /// position once and updates one neuron there (none where the code is optimal). A and
  /// G = Phi^T (x - Phi A) change in place, G by the overlaps only. nonneg: codes a >= 0.
  /// skip in [0, 1): a position whose best move is at most skip times the previous sweep's
  /// largest move waits for a later sweep (a Gauss-Southwell threshold: an update costs 25x a
  /// choice at W128); the first sweep (of the call, without stop.bar) updates every position
  /// that can move. A sweep that updates nothing sets the bar below its own largest move, so
  /// that move waits one sweep at most.
  void run(const Matrix& A, const Matrix& G, double lambda, bool nonneg,
           const Kokkos::View<int*, Device>& open, int iterations, double skip, const Stop& stop);

  std::size_t table_bytes() const { return table_.span() * sizeof(Scalar); }
  /// <phi_(y,x,f), phi_(y+dy,x+dx,g)> from the table (tests; the neighbour must exist).
  double overlap(int y, int x, int f, int dy, int dx, int g) const;

private:
  Geometry geom_;
  exec_space exec_;
  int reach_, span_;
  int slots_x_ = 0;
  std::vector<double> dict_; ///< the dictionary the table was built from, (nf, c*k*k) row-major
  /// (f, slot, g): <phi_f at a position, phi_g at an offset>, slot = slot_y * slots_x + slot_x.
  /// An update reads the rows of one f: feature-major keeps them within 270 KB at W128 (the
  /// cache), where slot-major spread them over the whole table (a 2x slower update).
  Kokkos::View<Scalar***, Kokkos::LayoutRight, Device> table_;
  typename Kokkos::View<Scalar***, Kokkos::LayoutRight, Device>::HostMirror table_h_;
  /// (slot, f): 1 / <phi_f, phi_f> of the slot's clipped atom (0 for one the edge cuts away);
  /// the offset-0 slots are read.
  Kokkos::View<Scalar**, Kokkos::LayoutRight, Device> inv_norm_;
  typename Kokkos::View<Scalar**, Kokkos::LayoutRight, Device>::HostMirror inv_norm_h_;
  /// slot_y_(y * span + dy + reach): the row slot of atom row y and offset dy (x likewise).
  Kokkos::View<int*, Device> slot_y_, slot_x_;
  std::vector<int> slot_y_h_, slot_x_h_;
  bool ready_ = false;
};

} // namespace lca
