#pragma once
// Training checkpoints: everything needed to resume dictionary learning bit-for-bit.
//
// File schema (HDF5, format_version 5; readable with h5py; version 1 files, which predate the
// solver settings, still read as fixed-step LCA; version 2 files, which predate the training
// curve, as a constant learning rate and a fixed number of epochs; version 3 files, which
// predate warm starts, as cold starts; version 4 files, which predate the best validated
// dictionary, as having none):
//
//   Root attributes (scalars; strings are variable-length UTF-8, booleans int64 0/1)
//     format            string  "kokkos-lca-checkpoint"
//     format_version    int64   4
//     Geometry          nf, channels, height, width, kernel, stride          int64
//     LcaParams         tau, dt, stop_tol, stop_gap                          float64
//                       iterations, check_every                              int64
//                       solver ("lca"/"fista"), timescale ("fixed"/"adaptive") string
//                       ats_base_min, ats_base_max, ats_tau_factor,          float64
//                       ats_growth_factor (adaptive time scale)
//                       polish                                               int64 0/1
//     Transfer          transfer_vthresh, transfer_amin, transfer_amax,      float64
//                       transfer_ashift, transfer_vwidth, transfer_lambda    (amax may be +inf)
//                       transfer_symmetric, transfer_l0_penalty              int64 0/1
//     LearnParams       eta, momentum_tau, decay, eta_decay_epochs           float64
//                       seed                                                 uint64
//     run length        batch_size, epochs, max_images                       int64
//                       shuffle, epochs_auto, warm_start                     int64 0/1
//                       plateau_tol                                          float64
//                       max_epochs, validation                               int64
//                       plateau ("running"/"reached"/"cap"; "" for fixed)    string
//                       best_epoch (the validated epoch of lowest validation int64
//                       energy so far; -1: none)
//                       shuffle_seed                                         uint64
//     progress          epoch, images_seen, batches, position_in_epoch       int64
//                       (the next batch starts at position_in_epoch of epoch's order)
//     identity          dataset_identity, software_version, kokkos_backend,  string
//                       preset (transfer preset name or "custom")
//     elapsed_seconds   float64
//
//   Datasets
//     /dictionary       float32 (nf, channels, kernel, kernel)
//     /momentum         float32 (nf, channels, kernel, kernel)
//     /best_dictionary  float32 (nf, channels, kernel, kernel), best_epoch's dictionary; only
//                       when best_epoch >= 0. After a plateau reached by a rise, /dictionary
//                       is this one again (train.hpp)
//     /training_curve   float64 (epochs validated, 7), only with a validation set; columns
//                       (attribute "columns"): epoch, images_seen, validation_energy,
//                       validation_error (%), validation_active (%), seconds (training time
//                       so far), validation_seconds (of which this measurement)
//     /warm_start/train/{offsets,index,value}       with warm_start: every training image's
//     /warm_start/validation/{offsets,index,value}  (validation image's) last code, sparse
//                       rows: image i's entries are [offsets[i], offsets[i+1]) of index
//                       (int32, pos * nf + feature, ascending) and value (float32);
//                       offsets int64 (images + 1)
#include "lca/params.hpp"
#include "lca/sparse_code.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lca {

/// One row of the training curve: the validation set after `epoch` epochs (0: the initial
/// dictionary).
struct CurvePoint {
  std::int64_t epoch = 0, images_seen = 0;
  double energy = 0, percent_error = 0, percent_active = 0; ///< means over the validation images
  double seconds = 0;            ///< training time so far (all runs of a resumed training)
  double validation_seconds = 0; ///< of which this measurement took
};

struct Checkpoint {
  Geometry geometry;
  LcaParams lca;
  LearnParams learn;
  // Run length.
  int batch_size = 16;
  std::int64_t epochs = 1;
  std::int64_t max_images = 0;
  bool epochs_auto = false; ///< --epochs auto, with plateau_tol and max_epochs
  double plateau_tol = 0;
  std::int64_t max_epochs = 0;
  std::int64_t validation = 0; ///< held-out validation images (0: no training curve)
  std::string plateau;         ///< "running", "reached", "cap" ("" without --epochs auto)
  /// The validated epoch of lowest validation energy so far and its dictionary (-1, empty: none).
  std::int64_t best_epoch = -1;
  std::vector<float> best_dictionary;
  bool shuffle = true;
  std::uint64_t shuffle_seed = 1;
  /// Each epoch's solves start from the image's code of the previous epoch (train.hpp).
  bool warm_start = false;
  std::vector<SparseCode> warm_train, warm_validation; ///< indexed by image
  // Progress: the next batch starts at position_in_epoch of epoch's order.
  std::int64_t epoch = 0, images_seen = 0, batches = 0, position_in_epoch = 0;
  std::vector<float> dictionary; ///< nf*c*k*k, layout [nf][c][k][k]
  std::vector<float> momentum;   ///< same shape
  std::vector<CurvePoint> curve; ///< /training_curve: one row per validated epoch
  std::string dataset_identity, software_version, kokkos_backend;
  Preset preset = Preset::soft_nonneg;
  double elapsed_seconds = 0;
};

/// Writes atomically (h5::atomic_write): a crash never leaves a half-written checkpoint, and
/// the previous one survives any failure. Throws InvalidArgument if the arrays do not match the
/// geometry, NumericalError if they hold NaN/Inf (so a diverged run cannot clobber a good file).
void write_checkpoint(const std::string& path, const Checkpoint& ck);

/// Reads and validates a checkpoint: IoError if the file is not a kokkos-lca checkpoint of a
/// supported version, an attribute is missing or has the wrong type, the parameters are invalid
/// or a dataset's shape does not match the geometry; NumericalError if a value is NaN/Inf.
Checkpoint read_checkpoint(const std::string& path);

/// Throws InvalidArgument naming the first field that differs between the checkpoint and the
/// requested run (geometry, LCA, transfer and learning parameters, then the dataset identity),
/// e.g. "checkpoint x.h5 is incompatible: nf is 64 in the checkpoint, 128 requested".
/// `checkpoint_path` only names the file in that message.
void check_resume_compatible(const Checkpoint& ck, const Geometry& g, const LcaParams& p,
                             const LearnParams& l, const std::string& dataset_identity,
                             const std::string& checkpoint_path = "");

} // namespace lca
