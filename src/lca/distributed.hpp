#pragma once
// The drivers' collective calls: training, the denoising test and the sweep, each over an MPI
// communicator. Their configurations and results are in lca/train.hpp, lca/denoise.hpp and
// lca/scaling.hpp, which need no MPI; this is the public header that does.
#include "lca/checkpoint.hpp"
#include "lca/dataset.hpp"
#include "lca/denoise.hpp"
#include "lca/params.hpp"
#include "lca/scaling.hpp"
#include "lca/train.hpp"

#include <mpi.h>

#include <iosfwd>
#include <optional>
#include <vector>

namespace lca {

/// Train on `data` (already normalised, identical on every rank). With `resume`, continues
/// exactly where that checkpoint left off (same dictionary, momentum, epoch order and next
/// batch); it must have been checked with check_resume_compatible. Collective over comm.
/// Writes the final checkpoint and a feature montage (<checkpoint stem>_features.png).
TrainSummary train(const TrainConfig& cfg, const ImageSet& data,
                   const std::optional<Checkpoint>& resume, MPI_Comm comm, std::ostream* progress);

/// Runs the test on `data` (normalised) with dictionary (nf, c, k, k) `dictionary`.
/// Collective over comm: each rank takes a contiguous share of the images.
DenoiseResult denoise(const Geometry& g, const LcaParams& p, const std::vector<float>& dictionary,
                      const ImageSet& data, const DenoiseConfig& cfg, MPI_Comm comm,
                      std::ostream* progress);

/// Runs the grid, skipping finished points and resuming half-trained ones from their
/// checkpoints, then the refinement rounds. Collective over comm, split into cfg.groups groups
/// of consecutive ranks; rank 0 leads group 0 and keeps the work queue: it hands the next point
/// to each group that asks (between the batches of its own point), records every finished
/// point and rewrites the sweep file (or writes the point file). A refinement round is decided
/// once every point of the earlier rounds has finished. SIGINT/SIGTERM: each group checkpoints
/// its training and the call returns with interrupted = true. With one rank per group the
/// results equal a one-rank run's bit for bit, whatever the number of groups.
SweepRun run_sweep(const SweepConfig& cfg, const ImageSet& train, const ImageSet& test,
                   MPI_Comm comm, std::ostream* progress);

} // namespace lca
