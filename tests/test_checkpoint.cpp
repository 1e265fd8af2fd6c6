// HDF5 layer (lca::h5) and training checkpoints.
#include "lca/checkpoint.hpp"
#include "lca/error.hpp"
#include "lca/h5.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using lca::h5::Dims;
using lca::h5::File;

/// A fresh directory per test (and per MPI rank: mkdtemp names are unique per process).
class H5Test : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lca-h5-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs f, expects an exception of type E whose message contains every one of `parts`.
template <class E, class F> void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown";
  } catch (const E& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << e.what() << "' does not mention '" << part << "'";
  }
}

template <class T>
void round_trip(File& file, const std::string& name, const std::vector<T>& data, const Dims& dims) {
  file.write(name, data, dims);
  const auto a = file.read<T>(name);
  EXPECT_EQ(a.data, data) << name;
  EXPECT_EQ(a.dims, dims) << name;
  EXPECT_EQ(file.read<T>(name, dims), data) << name;
}

TEST_F(H5Test, DatasetsRoundTripEveryType) {
  {
    File file = File::create(path("a.h5"));
    round_trip<float>(file, "f32", {1.5f, -2.f, 3.25f, 0.f, 1e-30f, 7.f}, {2, 3});
    round_trip<double>(file, "f64", {1.0 / 3, -1e300, std::numeric_limits<double>::infinity()},
                       {3});
    round_trip<std::int64_t>(file, "i64", {-(std::int64_t(1) << 62), 0, 42, 7}, {1, 2, 2});
    round_trip<std::uint8_t>(file, "u8", {0, 255, 128, 1}, {4, 1});
    round_trip<float>(file, "empty", {}, {0, 3});
  }
  // And again after reopening, with the file closed in between.
  const File file = File::open_read(path("a.h5"));
  EXPECT_EQ(file.read<std::uint8_t>("u8").data, (std::vector<std::uint8_t>{0, 255, 128, 1}));
  EXPECT_EQ(file.shape("i64"), (Dims{1, 2, 2}));
}

TEST_F(H5Test, ReadWithWrongShapeOrTypeNamesTheDataset) {
  File file = File::create(path("a.h5"));
  file.write<float>("x", {1, 2, 3, 4, 5, 6}, {2, 3});
  expect_error<lca::IoError>(
      [&] {
        file.read<float>("x", {3, 2});
      },
      {path("a.h5"), "'x'", "(2, 3)", "(3, 2)"});
  expect_error<lca::IoError>([&] { file.read<double>("x"); }, {path("a.h5"), "'x'", "float32"});
  expect_error<lca::IoError>([&] { file.read<float>("missing"); }, {path("a.h5"), "'missing'"});
  expect_error<lca::InvalidArgument>(
      [&] {
        file.write<float>("y", {1, 2, 3}, {2, 2});
      },
      {path("a.h5"), "'y'"});
}

TEST_F(H5Test, GroupsAndOverwrite) {
  File file = File::create(path("a.h5"));
  EXPECT_TRUE(file.exists("/"));
  EXPECT_FALSE(file.exists("results"));
  file.create_group("results/points");
  file.create_group("results/points"); // already there: no-op
  EXPECT_TRUE(file.exists("results"));
  EXPECT_TRUE(file.exists("/results/points"));
  EXPECT_FALSE(file.exists("results/nope"));

  file.write<double>("results/points/energy", {1, 2}, {2});
  file.write<double>("deep/parents/made", {3}, {1});
  EXPECT_TRUE(file.exists("deep/parents"));
  EXPECT_FALSE(file.exists("results/points/energy/child"));
  expect_error<lca::IoError>([&] { file.create_group("results/points/energy"); },
                             {"results/points/energy"});
  expect_error<lca::IoError>(
      [&] {
        file.write<double>("results/points/energy", {1, 2}, {2});
      },
      {"results/points/energy"});

  file.overwrite<double>("results/points/energy", {5, 6}, {2});
  EXPECT_EQ(file.read<double>("results/points/energy", {2}), (std::vector<double>{5, 6}));
  expect_error<lca::IoError>([&] { file.overwrite<double>("results/points/energy", {1}, {1}); },
                             {"results/points/energy", "(2)"});
}

TEST_F(H5Test, AttributesOnFileGroupAndDataset) {
  const double inf = std::numeric_limits<double>::infinity();
  {
    File file = File::create(path("a.h5"));
    file.create_group("g");
    file.write<float>("g/d", {1}, {1});
    for (const std::string object : {"/", "g", "g/d"}) {
      file.set_attribute(object, "s", "hello " + object);
      file.set_attribute(object, "empty", "");
      file.set_attribute(object, "x", 0.1);
      file.set_attribute(object, "inf", inf);
      file.set_attribute(object, "i", std::int64_t{-7});
      file.set_attribute(object, "u", std::numeric_limits<std::uint64_t>::max());
    }
    file.set_attribute("/", "x", 2.5); // replaces
  }
  const File file = File::open_read(path("a.h5"));
  for (const std::string object : {"/", "g", "g/d"}) {
    EXPECT_TRUE(file.has_attribute(object, "s"));
    EXPECT_FALSE(file.has_attribute(object, "nope"));
    EXPECT_EQ(file.attribute<std::string>(object, "s"), "hello " + object);
    EXPECT_EQ(file.attribute<std::string>(object, "empty"), "");
    EXPECT_EQ(file.attribute<double>(object, "x"), object == "/" ? 2.5 : 0.1);
    EXPECT_EQ(file.attribute<double>(object, "inf"), inf);
    EXPECT_EQ(file.attribute<std::int64_t>(object, "i"), -7);
    EXPECT_EQ(file.attribute<std::uint64_t>(object, "u"),
              std::numeric_limits<std::uint64_t>::max());
  }
  expect_error<lca::IoError>([&] { file.attribute<double>("g", "s"); }, {"'s'", "'g'", "string"});
  expect_error<lca::IoError>([&] { file.attribute<std::string>("/", "x"); }, {"'x'", "float64"});
  expect_error<lca::IoError>([&] { file.attribute<std::uint64_t>("/", "i"); }, {"'i'", "range"});
  expect_error<lca::IoError>([&] { file.attribute<std::int64_t>("/", "u"); }, {"'u'", "range"});
  expect_error<lca::IoError>([&] { file.attribute<std::int64_t>("/", "nope"); },
                             {path("a.h5"), "'nope'", "missing"});
}

TEST_F(H5Test, AppendRowsToExtendibleDatasets) {
  {
    File file = File::create(path("sweep.h5"));
    file.create_extendible<double>("results/energy");
    file.create_extendible<std::int64_t>("results/points", {3});
    EXPECT_EQ(file.shape("results/points"), (Dims{0, 3}));
    EXPECT_EQ(file.append<double>("results/energy", {1.5}), 1u);
    EXPECT_EQ(file.append<std::int64_t>("results/points", {1, 2, 3, 4, 5, 6}), 2u);
    expect_error<lca::InvalidArgument>(
        [&] {
          file.append<std::int64_t>("results/points", {1, 2});
        },
        {"'results/points'"});
    expect_error<lca::IoError>([&] { file.append<float>("results/energy", {1.f}); },
                               {"'results/energy'", "float64"});
  }
  { // a sweep resumes by reopening the file and appending
    File file = File::open_rw(path("sweep.h5"));
    EXPECT_EQ(file.append<double>("results/energy", {2.5, 3.5}), 3u);
    EXPECT_EQ(file.append<std::int64_t>("results/points", {7, 8, 9}), 3u);
    file.flush();
  }
  const File file = File::open_read(path("sweep.h5"));
  EXPECT_EQ(file.read<double>("results/energy", {3}), (std::vector<double>{1.5, 2.5, 3.5}));
  const auto points = file.read<std::int64_t>("results/points");
  EXPECT_EQ(points.dims, (Dims{3, 3}));
  EXPECT_EQ(points.data, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(H5Test, BadFilesGiveOneLineErrorsNamingThePath) {
  expect_error<lca::IoError>([&] { File::open_read(path("missing.h5")); },
                             {path("missing.h5"), "No such file"});
  expect_error<lca::IoError>([&] { File::open_rw(path("missing.h5")); }, {path("missing.h5")});

  std::ofstream(path("text.h5")) << "this is not HDF5\n";
  expect_error<lca::IoError>([&] { File::open_read(path("text.h5")); },
                             {path("text.h5"), "not an HDF5 file"});

  {
    File file = File::create(path("full.h5"));
    file.write<float>("x", std::vector<float>(4096, 1.f), {4096});
  }
  const std::string bytes = slurp(path("full.h5"));
  std::ofstream(path("half.h5"), std::ios::binary).write(bytes.data(), bytes.size() / 2);
  for (const auto& open : {&File::open_read, &File::open_rw})
    try {
      open(path("half.h5"));
      ADD_FAILURE() << "opened a truncated file";
    } catch (const lca::IoError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path("half.h5")), std::string::npos) << what;
      EXPECT_NE(what.find("truncated"), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
}

TEST_F(H5Test, AtomicWriteReplacesOrLeavesTheOldFileIntact) {
  const std::string target = path("out.h5");
  lca::h5::atomic_write(target, [](File& f) { f.write<double>("v", {1}, {1}); });
  lca::h5::atomic_write(target, [](File& f) { f.write<double>("v", {2}, {1}); });
  EXPECT_EQ(File::open_read(target).read<double>("v", {1}), std::vector<double>{2});

  const std::string before = slurp(target);
  EXPECT_THROW(lca::h5::atomic_write(target,
                                     [](File& f) {
                                       f.write<double>("v", std::vector<double>(1000, 3), {1000});
                                       throw std::runtime_error("fill failed midway");
                                     }),
               std::runtime_error);
  EXPECT_EQ(slurp(target), before);
  // An HDF5 failure inside fill is cleaned up the same way.
  EXPECT_THROW(lca::h5::atomic_write(target, [](File& f) { f.read<double>("nope"); }),
               lca::IoError);
  EXPECT_EQ(slurp(target), before);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_))
    names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"out.h5"});
}

TEST_F(H5Test, UnwritableDirectory) {
  const std::string missing_dir = path("no/such/dir/out.h5");
  expect_error<lca::IoError>(
      [&] { lca::h5::atomic_write(missing_dir, [](File&) {}); },
      {"cannot write HDF5 file " + missing_dir, "no such file or directory"});
  expect_error<lca::IoError>([&] { File::create(missing_dir); }, {missing_dir, "cannot create"});
  if (::geteuid() == 0)
    return; // root writes anywhere; the missing directory case covers it
  fs::create_directory(path("ro"));
  fs::permissions(path("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  const std::string target = path("ro/out.h5");
  expect_error<lca::IoError>([&] { lca::h5::atomic_write(target, [](File&) {}); },
                             {"cannot write HDF5 file " + target, "permission denied"});
}

/// A checkpoint with every field away from its default (amax keeps its +inf default).
lca::Checkpoint sample_checkpoint() {
  lca::Checkpoint ck;
  ck.geometry = {4, 2, 6, 10, 4, 2};
  ck.lca.tau = 50.5;
  ck.lca.dt = 0.5;
  ck.lca.iterations = 123;
  ck.lca.stop_tol = 1e-4;
  ck.lca.transfer = lca::make_transfer(lca::Preset::hard, 0.25);
  ck.lca.transfer.amin = 0.0;
  ck.lca.transfer.vwidth = 0.125;
  ck.learn = {0.02, 12.5, 1e-3, 0xFFFFFFFFFFFFFFF1ull};
  ck.batch_size = 7;
  ck.epochs = 3;
  ck.max_images = 1000;
  ck.shuffle = false;
  ck.shuffle_seed = 0x8000000000000001ull;
  ck.epoch = 2;
  ck.images_seen = 777;
  ck.batches = 111;
  ck.position_in_epoch = 56;
  const std::size_t n = std::size_t(ck.geometry.nf) * ck.geometry.patch();
  for (std::size_t i = 0; i < n; ++i) {
    ck.dictionary.push_back(0.01f * float(i) - 0.3f);
    ck.momentum.push_back(-1e-6f * float(i));
  }
  ck.dataset_identity = "cifar10:data_batch_1..5:sha256=abc";
  ck.software_version = "0.1.0-test";
  ck.kokkos_backend = "Serial";
  ck.preset = lca::Preset::hard;
  ck.elapsed_seconds = 3600.25;
  return ck;
}

TEST_F(H5Test, CheckpointRoundTripsEveryField) {
  const lca::Checkpoint in = sample_checkpoint();
  ASSERT_EQ(in.lca.transfer.amax, std::numeric_limits<double>::infinity());
  lca::write_checkpoint(path("ck.h5"), in);
  const lca::Checkpoint out = lca::read_checkpoint(path("ck.h5"));

  const auto &g = out.geometry, &gi = in.geometry;
  EXPECT_EQ(g.nf, gi.nf);
  EXPECT_EQ(g.channels, gi.channels);
  EXPECT_EQ(g.height, gi.height);
  EXPECT_EQ(g.width, gi.width);
  EXPECT_EQ(g.kernel, gi.kernel);
  EXPECT_EQ(g.stride, gi.stride);
  EXPECT_EQ(out.lca.tau, in.lca.tau);
  EXPECT_EQ(out.lca.dt, in.lca.dt);
  EXPECT_EQ(out.lca.iterations, in.lca.iterations);
  EXPECT_EQ(out.lca.stop_tol, in.lca.stop_tol);
  const auto &t = out.lca.transfer, &ti = in.lca.transfer;
  EXPECT_EQ(t.vthresh, ti.vthresh);
  EXPECT_EQ(t.amin, ti.amin);
  EXPECT_EQ(t.amax, ti.amax);
  EXPECT_EQ(t.ashift, ti.ashift);
  EXPECT_EQ(t.vwidth, ti.vwidth);
  EXPECT_EQ(t.symmetric, ti.symmetric);
  EXPECT_EQ(t.l0_penalty, ti.l0_penalty);
  EXPECT_EQ(t.lambda, ti.lambda);
  EXPECT_EQ(out.learn.eta, in.learn.eta);
  EXPECT_EQ(out.learn.momentum_tau, in.learn.momentum_tau);
  EXPECT_EQ(out.learn.decay, in.learn.decay);
  EXPECT_EQ(out.learn.seed, in.learn.seed);
  EXPECT_EQ(out.batch_size, in.batch_size);
  EXPECT_EQ(out.epochs, in.epochs);
  EXPECT_EQ(out.max_images, in.max_images);
  EXPECT_EQ(out.shuffle, in.shuffle);
  EXPECT_EQ(out.shuffle_seed, in.shuffle_seed);
  EXPECT_EQ(out.epoch, in.epoch);
  EXPECT_EQ(out.images_seen, in.images_seen);
  EXPECT_EQ(out.batches, in.batches);
  EXPECT_EQ(out.position_in_epoch, in.position_in_epoch);
  EXPECT_EQ(out.dictionary, in.dictionary);
  EXPECT_EQ(out.momentum, in.momentum);
  EXPECT_EQ(out.dataset_identity, in.dataset_identity);
  EXPECT_EQ(out.software_version, in.software_version);
  EXPECT_EQ(out.kokkos_backend, in.kokkos_backend);
  EXPECT_EQ(out.preset, in.preset);
  EXPECT_EQ(out.elapsed_seconds, in.elapsed_seconds);

  // The schema as other tools see it.
  const File file = File::open_read(path("ck.h5"));
  EXPECT_EQ(file.attribute<std::string>("/", "format"), "kokkos-lca-checkpoint");
  EXPECT_EQ(file.attribute<std::int64_t>("/", "format_version"), 5);
  EXPECT_FALSE(file.exists("warm_start"));
  EXPECT_EQ(file.attribute<std::int64_t>("/", "best_epoch"), -1);
  EXPECT_FALSE(file.exists("best_dictionary"));
  EXPECT_EQ(file.attribute<std::int64_t>("/", "nf"), 4);
  EXPECT_EQ(file.attribute<double>("/", "transfer_amax"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(file.shape("momentum"), (Dims{4, 2, 4, 4}));
}

TEST_F(H5Test, CheckpointRoundTripsThePlateauRunAndItsCurve) {
  lca::Checkpoint in = sample_checkpoint();
  in.learn.eta_decay_epochs = 2.5;
  in.epochs_auto = true, in.plateau_tol = 1e-3, in.max_epochs = 17, in.validation = 40;
  in.plateau = "cap";
  in.curve = {{0, 0, 12.5, 80.25, 0, 0.5, 0.5}, {1, 777, 10.125, 60.5, 1.25, 9.75, 0.25}};
  lca::write_checkpoint(path("ck.h5"), in);
  const lca::Checkpoint out = lca::read_checkpoint(path("ck.h5"));
  EXPECT_EQ(out.learn.eta_decay_epochs, 2.5);
  EXPECT_TRUE(out.epochs_auto);
  EXPECT_EQ(out.plateau_tol, 1e-3);
  EXPECT_EQ(out.max_epochs, 17);
  EXPECT_EQ(out.validation, 40);
  EXPECT_EQ(out.plateau, "cap");
  ASSERT_EQ(out.curve.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto &a = in.curve[i], &b = out.curve[i];
    EXPECT_EQ(b.epoch, a.epoch);
    EXPECT_EQ(b.images_seen, a.images_seen);
    EXPECT_EQ(b.energy, a.energy);
    EXPECT_EQ(b.percent_error, a.percent_error);
    EXPECT_EQ(b.percent_active, a.percent_active);
    EXPECT_EQ(b.seconds, a.seconds);
    EXPECT_EQ(b.validation_seconds, a.validation_seconds);
  }
  EXPECT_EQ(out.best_epoch, -1);
  EXPECT_TRUE(out.best_dictionary.empty());
  const File file = File::open_read(path("ck.h5"));
  EXPECT_EQ(file.shape("training_curve"), (Dims{2, 7}));
  EXPECT_EQ(file.attribute<std::string>("training_curve", "columns"),
            "epoch images_seen validation_energy validation_error validation_active seconds "
            "validation_seconds");

  // A schedule is part of the run: resuming it with another one is refused.
  lca::LearnParams l = in.learn;
  l.eta_decay_epochs = 0;
  expect_error<lca::InvalidArgument>(
      [&] { lca::check_resume_compatible(out, out.geometry, out.lca, l, out.dataset_identity); },
      {"eta_decay_epochs is 2.5 in the checkpoint, 0 requested"});
  in.learn.eta_decay_epochs = -1;
  EXPECT_THROW(lca::write_checkpoint(path("bad.h5"), in), lca::InvalidArgument);
}

// The best validated epoch's dictionary goes with it; a wrong shape or a NaN in it is refused,
// and a version 4 file (before it) reads as having none.
TEST_F(H5Test, CheckpointRoundTripsTheBestDictionary) {
  lca::Checkpoint in = sample_checkpoint();
  in.epochs_auto = true, in.plateau_tol = 1e-3, in.max_epochs = 5, in.validation = 4;
  in.plateau = "reached";
  in.curve = {
      {0, 0, 12.5, 80, 0, 0.5, 0.5}, {1, 8, 10, 60, 1, 1, 0.25}, {2, 16, 11, 61, 1, 2, 0.25}};
  in.best_epoch = 1;
  in.best_dictionary = in.dictionary;
  in.best_dictionary[3] = -0.75f;
  lca::write_checkpoint(path("ck.h5"), in);
  const lca::Checkpoint out = lca::read_checkpoint(path("ck.h5"));
  EXPECT_EQ(out.best_epoch, 1);
  EXPECT_EQ(out.best_dictionary, in.best_dictionary);
  EXPECT_EQ(out.dictionary, in.dictionary);
  EXPECT_EQ(File::open_read(path("ck.h5")).shape("best_dictionary"), (Dims{4, 2, 4, 4}));

  const std::string before = slurp(path("ck.h5"));
  lca::Checkpoint bad = in;
  bad.best_dictionary.pop_back();
  expect_error<lca::InvalidArgument>([&] { lca::write_checkpoint(path("ck.h5"), bad); },
                                     {"best_dictionary has 127 values, the geometry needs 128"});
  bad = in;
  bad.best_dictionary[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(lca::write_checkpoint(path("ck.h5"), bad), lca::NumericalError);
  bad = in;
  bad.best_epoch = -2;
  EXPECT_THROW(lca::write_checkpoint(path("ck.h5"), bad), lca::InvalidArgument);
  EXPECT_EQ(slurp(path("ck.h5")), before);

  // Version 4 as it was written: no best_dictionary (nor best_epoch, which it would ignore).
  lca::Checkpoint v4 = in;
  v4.best_epoch = -1;
  lca::write_checkpoint(path("v4.h5"), v4);
  {
    File file = File::open_rw(path("v4.h5"));
    file.set_attribute("/", "format_version", std::int64_t{4});
    file.set_attribute("/", "best_epoch", std::int64_t{3}); // ignored: not in version 4
  }
  const lca::Checkpoint old = lca::read_checkpoint(path("v4.h5"));
  EXPECT_EQ(old.best_epoch, -1);
  EXPECT_TRUE(old.best_dictionary.empty());
  EXPECT_EQ(old.curve.size(), 3u);
}

// Version 2 files (before the schedule and the curve) read as a constant rate and fixed epochs.
TEST_F(H5Test, VersionTwoCheckpointsStillRead) {
  const lca::Checkpoint in = sample_checkpoint();
  lca::write_checkpoint(path("v3.h5"), in);
  { // version 2 as it was written: the same attributes and datasets less the new ones
    const File v3 = File::open_read(path("v3.h5"));
    File file = File::create(path("v2.h5"));
    const std::string doubles = " tau dt stop_tol ats_base_min ats_base_max ats_tau_factor "
                                "ats_growth_factor stop_gap transfer_vthresh transfer_amin "
                                "transfer_amax transfer_ashift transfer_vwidth transfer_lambda eta "
                                "momentum_tau decay elapsed_seconds ";
    const std::string strings = " format solver timescale dataset_identity software_version "
                                "kokkos_backend preset ";
    for (const char* name : {"format",
                             "nf",
                             "channels",
                             "height",
                             "width",
                             "kernel",
                             "stride",
                             "tau",
                             "dt",
                             "iterations",
                             "stop_tol",
                             "solver",
                             "timescale",
                             "ats_base_min",
                             "ats_base_max",
                             "ats_tau_factor",
                             "ats_growth_factor",
                             "stop_gap",
                             "check_every",
                             "polish",
                             "transfer_vthresh",
                             "transfer_amin",
                             "transfer_amax",
                             "transfer_ashift",
                             "transfer_vwidth",
                             "transfer_symmetric",
                             "transfer_l0_penalty",
                             "transfer_lambda",
                             "eta",
                             "momentum_tau",
                             "decay",
                             "batch_size",
                             "epochs",
                             "max_images",
                             "shuffle",
                             "epoch",
                             "images_seen",
                             "batches",
                             "position_in_epoch",
                             "dataset_identity",
                             "software_version",
                             "kokkos_backend",
                             "preset",
                             "elapsed_seconds"}) {
      const std::string key = " " + std::string(name) + " ";
      if (doubles.find(key) != std::string::npos)
        file.set_attribute("/", name, v3.attribute<double>("/", name));
      else if (strings.find(key) != std::string::npos)
        file.set_attribute("/", name, v3.attribute<std::string>("/", name));
      else
        file.set_attribute("/", name, v3.attribute<std::int64_t>("/", name));
    }
    for (const char* name : {"seed", "shuffle_seed"})
      file.set_attribute("/", name, v3.attribute<std::uint64_t>("/", name));
    file.set_attribute("/", "format_version", std::int64_t{2});
    file.write<float>("dictionary", in.dictionary, {4, 2, 4, 4});
    file.write<float>("momentum", in.momentum, {4, 2, 4, 4});
  }
  const lca::Checkpoint out = lca::read_checkpoint(path("v2.h5"));
  EXPECT_EQ(out.learn.eta_decay_epochs, 0);
  EXPECT_FALSE(out.epochs_auto);
  EXPECT_EQ(out.validation, 0);
  EXPECT_TRUE(out.curve.empty());
  EXPECT_EQ(out.dictionary, in.dictionary);
  EXPECT_EQ(out.images_seen, in.images_seen);
}

TEST_F(H5Test, CheckpointRoundTripsWarmStartCodes) {
  lca::Checkpoint in = sample_checkpoint();
  in.lca.transfer = lca::make_transfer(lca::Preset::soft, 0.25);
  in.preset = lca::Preset::soft;
  in.warm_start = true;
  const auto neurons = std::int32_t(in.geometry.neurons());
  in.warm_train.resize(3);
  in.warm_train[0] = {{0, 5, neurons - 1}, {0.5f, -1e-30f, 3.0f}};
  in.warm_train[2] = {{7}, {1e30f}};
  in.warm_validation.resize(1);
  lca::write_checkpoint(path("ck.h5"), in);
  const lca::Checkpoint out = lca::read_checkpoint(path("ck.h5"));
  EXPECT_TRUE(out.warm_start);
  ASSERT_EQ(out.warm_train.size(), 3u);
  ASSERT_EQ(out.warm_validation.size(), 1u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out.warm_train[i].index, in.warm_train[i].index);
    EXPECT_EQ(out.warm_train[i].value, in.warm_train[i].value);
  }
  EXPECT_TRUE(out.warm_validation[0].index.empty());
  {
    const File file = File::open_read(path("ck.h5"));
    EXPECT_EQ(file.read<std::int64_t>("warm_start/train/offsets").data,
              (std::vector<std::int64_t>{0, 3, 3, 4}));
  }

  // Codes a solve cannot leave are refused on writing (the old file stays) and on reading.
  const std::string before = slurp(path("ck.h5"));
  for (const lca::SparseCode& bad :
       {lca::SparseCode{{5, 5}, {1, 2}}, lca::SparseCode{{neurons}, {1}}, lca::SparseCode{{1}, {0}},
        lca::SparseCode{{1}, {std::numeric_limits<float>::quiet_NaN()}},
        lca::SparseCode{{1, 2}, {1}}}) {
    lca::Checkpoint ck = in;
    ck.warm_train[1] = bad;
    EXPECT_THROW(lca::write_checkpoint(path("ck.h5"), ck), lca::InvalidArgument);
  }
  EXPECT_EQ(slurp(path("ck.h5")), before);
  File::open_rw(path("ck.h5"))
      .overwrite("warm_start/train/index", std::vector<std::int32_t>{0, 5, -1, 7}, Dims{4});
  expect_error<lca::IoError>([&] { lca::read_checkpoint(path("ck.h5")); },
                             {path("ck.h5"), "warm_start/train", "image 0", "-1"});
  File::open_rw(path("ck.h5"))
      .overwrite("warm_start/train/offsets", std::vector<std::int64_t>{0, 3, 2, 4}, Dims{4});
  expect_error<lca::IoError>([&] { lca::read_checkpoint(path("ck.h5")); },
                             {path("ck.h5"), "offsets are not ascending at image 1"});
}

TEST_F(H5Test, ReadCheckpointRejectsBadContent) {
  const lca::Checkpoint ck = sample_checkpoint();
  const Dims dims{4, 2, 4, 4};

  { // HDF5, but not a checkpoint
    File file = File::create(path("other.h5"));
    file.write<float>("dictionary", ck.dictionary, dims);
  }
  expect_error<lca::IoError>([&] { lca::read_checkpoint(path("other.h5")); },
                             {path("other.h5"), "not a kokkos-lca checkpoint"});
  { // right format, missing fields
    File file = File::create(path("partial.h5"));
    file.set_attribute("/", "format", "kokkos-lca-checkpoint");
    file.set_attribute("/", "format_version", std::int64_t{1});
  }
  expect_error<lca::IoError>([&] { lca::read_checkpoint(path("partial.h5")); },
                             {path("partial.h5"), "'nf'", "missing"});

  lca::write_checkpoint(path("nan.h5"), ck);
  {
    auto dictionary = ck.dictionary;
    dictionary[5] = std::numeric_limits<float>::quiet_NaN();
    File::open_rw(path("nan.h5")).overwrite("dictionary", dictionary, dims);
  }
  expect_error<lca::NumericalError>([&] { lca::read_checkpoint(path("nan.h5")); },
                                    {path("nan.h5"), "dictionary", "nan"});

  lca::write_checkpoint(path("shape.h5"), ck);
  File::open_rw(path("shape.h5")).set_attribute("/", "nf", std::int64_t{5});
  expect_error<lca::IoError>([&] { lca::read_checkpoint(path("shape.h5")); },
                             {path("shape.h5"), "'dictionary'", "(4, 2, 4, 4)", "(5, 2, 4, 4)"});

  lca::write_checkpoint(path("geometry.h5"), ck);
  File::open_rw(path("geometry.h5")).set_attribute("/", "stride", std::int64_t{3});
  expect_error<lca::IoError>([&] { lca::read_checkpoint(path("geometry.h5")); },
                             {path("geometry.h5"), "invalid checkpoint"});
}

TEST_F(H5Test, WriteCheckpointRefusesBadStateAndKeepsTheOldFile) {
  lca::Checkpoint ck = sample_checkpoint();
  lca::write_checkpoint(path("ck.h5"), ck);
  const std::string before = slurp(path("ck.h5"));
  ck.momentum[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(lca::write_checkpoint(path("ck.h5"), ck), lca::NumericalError);
  ck.momentum.pop_back();
  EXPECT_THROW(lca::write_checkpoint(path("ck.h5"), ck), lca::InvalidArgument);
  EXPECT_EQ(slurp(path("ck.h5")), before);
}

TEST(Checkpoint, ResumeCompatibility) {
  const lca::Checkpoint ck = sample_checkpoint();
  lca::check_resume_compatible(ck, ck.geometry, ck.lca, ck.learn, ck.dataset_identity);

  lca::Geometry g = ck.geometry;
  g.nf = 8;
  expect_error<lca::InvalidArgument>(
      [&] { lca::check_resume_compatible(ck, g, ck.lca, ck.learn, ck.dataset_identity, "x.h5"); },
      {"checkpoint x.h5 is incompatible: nf is 4 in the checkpoint, 8 requested"});
  lca::LcaParams p = ck.lca;
  p.transfer.lambda = 0.1;
  expect_error<lca::InvalidArgument>(
      [&] { lca::check_resume_compatible(ck, ck.geometry, p, ck.learn, ck.dataset_identity); },
      {"transfer_lambda is 0.25 in the checkpoint, 0.1 requested"});
  expect_error<lca::InvalidArgument>(
      [&] { lca::check_resume_compatible(ck, ck.geometry, ck.lca, ck.learn, "mnist", "x.h5"); },
      {"x.h5", "dataset_identity", "'mnist' requested"});
}

/// h5py (if installed) sees the documented schema: strings as str, +inf amax.
TEST_F(H5Test, ReadableWithH5py) {
  const std::string python = LCA_PYTHON; // the interpreter ci/setup-deps.sh gives h5py
  if (std::system((python + " -c 'import h5py' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python << " with h5py not available";
  lca::write_checkpoint(path("ck.h5"), sample_checkpoint());
  const std::string script =
      "import h5py, math, sys\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "a = f.attrs\n"
      "assert isinstance(a['format'], str) and a['format'] == 'kokkos-lca-checkpoint'\n"
      "assert a['preset'] == 'hard' and a['nf'] == 4 and math.isinf(a['transfer_amax'])\n"
      "assert f['dictionary'].shape == (4, 2, 4, 4) and f['dictionary'].dtype == 'float32'\n";
  std::ofstream(path("check.py")) << script;
  EXPECT_EQ(std::system((python + " " + path("check.py") + " " + path("ck.h5")).c_str()), 0);
}

} // namespace
