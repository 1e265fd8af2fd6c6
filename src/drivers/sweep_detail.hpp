#pragma once
// What the sweep's sources (sweep_file, refine, work_queue, scaling) share, private to
// src/drivers: how points are named and compared, where their checkpoints go, a record as one
// flat message, and the points a refinement round adds.
#include "lca/format.hpp"
#include "lca/scaling.hpp"

#include <string>
#include <vector>

namespace lca::Impl {

/// Points (SweepRecord, PointId) are named by nf, lambda's 6 significant digits and the
/// replicate.
template <class Point> bool same_point(const Point& p, int nf, double lambda, int replicate) {
  return p.nf == nf && p.replicate == replicate && format_number(p.lambda) == format_number(lambda);
}
bool has_point(const Sweep& s, int nf, double lambda, int replicate);

/// The training checkpoint of a point; in reference mode one per (nf, replicate), shared by
/// every lambda.
std::string checkpoint_of(const SweepConfig& cfg, int nf, double lambda, int replicate);

/// A record as one MPI message: nf, L, replicate, round, the scalars, then each per-image vector
/// (and the training curve) after its length (integers below 2^53 are exact in a double).
std::vector<double> pack(const SweepRecord& r);
SweepRecord unpack(const std::vector<double>& m);

/// The points refinement round `round` (1, 2, ...) adds to `done` (which must hold every point
/// of the earlier rounds), for every replicate; empty when no size needs more.
std::vector<PointId> refinement_points(const SweepConfig& cfg, const Sweep& done, int round);

} // namespace lca::Impl
