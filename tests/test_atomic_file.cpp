// lca::AtomicFile, the one writer behind every output file, and every writer on a full disk.
#include "lca/atomic_file.hpp"
#include "lca/checkpoint.hpp"
#include "lca/error.hpp"
#include "lca/h5.hpp"
#include "lca/image_png.hpp"
#include "lca/report.hpp"

#include <gtest/gtest.h>

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

/// Runs f, expects an IoError whose message is one line containing every one of `parts`.
void expect_io_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown";
  } catch (const lca::IoError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& part : parts)
      EXPECT_NE(what.find(part), std::string::npos) << "'" << what << "' lacks '" << part << "'";
  }
}

class AtomicFileTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lca-atomic-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (mounted_)
      ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  /// Turns the test directory into a 256 KiB tmpfs (CI runs as root); false if not permitted.
  bool mount_small_tmpfs() {
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=256k") != 0)
      return false;
    mounted_ = true;
    return true;
  }
  /// Fills the file system with a filler file until a write fails with ENOSPC.
  void fill_disk() {
    std::FILE* f = std::fopen((dir_ / "filler").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::vector<char> block(4096, 'x');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
    }
    std::fclose(f);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
  bool mounted_ = false;
};

TEST_F(AtomicFileTest, WritesAndReplacesLeavingNoTempFile) {
  lca::write_file_atomically(path("a.txt"), "table", "first");
  lca::write_file_atomically(path("a.txt"), "table", "second");
  EXPECT_EQ(slurp(path("a.txt")), "second");
  {
    lca::AtomicFile out(path("b.bin"), "data");
    EXPECT_TRUE(fs::exists(out.temp_path()));
    EXPECT_EQ(fs::path(out.temp_path()).parent_path(), dir_);
    EXPECT_EQ(fs::path(out.temp_path()).filename().string().rfind(".b.bin.tmp.", 0), 0u);
    out.write("12");
    out.write(std::string_view("345"));
    out.commit();
  }
  EXPECT_EQ(slurp(path("b.bin")), "12345");
  EXPECT_EQ(names_in(dir_), (std::vector<std::string>{"a.txt", "b.bin"}));
}

TEST_F(AtomicFileTest, WithoutCommitTheTargetIsUntouchedAndTheTempRemoved) {
  spit(path("t.txt"), "old");
  EXPECT_THROW(
      {
        lca::AtomicFile out(path("t.txt"), "table");
        out.write("new and partial");
        throw std::runtime_error("failed midway");
      },
      std::runtime_error);
  EXPECT_EQ(slurp(path("t.txt")), "old");
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"t.txt"});
}

TEST_F(AtomicFileTest, AToolThatReplacesTheTempFileByNameIsCommittedToo) {
  lca::AtomicFile out(path("p.png"), "plot");
  fs::remove(out.temp_path());
  spit(out.temp_path(), "written by name");
  out.commit();
  EXPECT_EQ(slurp(path("p.png")), "written by name");
}

TEST_F(AtomicFileTest, ErrorsNameTheTargetAndTheReason) {
  const std::string missing = path("no/such/dir/x.csv");
  expect_io_error([&] { lca::write_file_atomically(missing, "table", "x"); },
                  {"cannot write table " + missing + ": no such file or directory"});
  fs::create_directory(path("d"));
  expect_io_error([&] { lca::write_file_atomically(path("d"), "table", "x"); },
                  {"cannot write table " + path("d") + ":"});
  EXPECT_TRUE(fs::is_directory(path("d")));
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"d"});
  EXPECT_EQ(lca::errno_reason(ENOSPC), "no space left on device");
}

/// A checkpoint of nf 128 (64 KiB of dictionary and momentum).
lca::Checkpoint big_checkpoint() {
  lca::Checkpoint ck;
  ck.geometry = {128, 1, 28, 28, 8, 2};
  const std::size_t n = std::size_t(ck.geometry.nf) * ck.geometry.patch();
  ck.dictionary.assign(n, 0.5f);
  ck.momentum.assign(n, 0.0f);
  ck.preset = lca::Preset::soft_nonneg;
  return ck;
}

// The user's report: a checkpoint write on a full disk must end in one line naming the file
// and the reason, with every HDF5 handle closed (else HDF5 closes it again at MPI_Finalize and
// crashes), the previous file intact and no temp file left. The same for every other writer.
TEST_F(AtomicFileTest, EveryWriterOnAFullDiskFailsCleanly) {
  if (!mount_small_tmpfs())
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "); needs root";
  const lca::Checkpoint ck = big_checkpoint();
  lca::Checkpoint small = ck;
  small.geometry.nf = 2;
  small.dictionary.resize(2 * 64);
  small.momentum.resize(2 * 64);
  lca::write_checkpoint(path("ck.h5"), small);
  lca::write_png(path("f.png"), 2, 2, 1, {1, 2, 3, 4});
  lca::write_text_file(path("results.csv"), "old table", "table");
  lca::h5::atomic_write(path("sweep.h5"), "sweep file",
                        [](lca::h5::File& f) { f.write<double>("v", {1}, {1}); });
  fill_disk();
  const auto before = [&] {
    std::vector<std::string> all;
    for (const auto& name : names_in(dir_))
      all.push_back(name + "=" + (name == "filler" ? "" : slurp(dir_ / name)));
    return all;
  }();

  expect_io_error([&] { lca::write_checkpoint(path("ck.h5"), ck); },
                  {"cannot write checkpoint " + path("ck.h5") + ": no space left on device"});
  expect_io_error(
      [&] {
        lca::h5::atomic_write(path("sweep.h5"), "sweep file", [](lca::h5::File& f) {
          f.write("v", std::vector<double>(20000, 2.0), {20000});
        });
      },
      {"cannot write sweep file " + path("sweep.h5") + ": no space left on device"});
  expect_io_error(
      [&] { lca::write_png(path("f.png"), 300, 300, 3, std::vector<std::uint8_t>(270000, 7)); },
      {"cannot write PNG " + path("f.png") + ": no space left on device"});
  expect_io_error(
      [&] { lca::write_text_file(path("results.csv"), std::string(100000, 'x'), "table"); },
      {"cannot write table " + path("results.csv") + ": no space left on device"});
  expect_io_error([&] { lca::write_text_file(path("new.dat"), "1 2\n", "plot data"); },
                  {"cannot write plot data " + path("new.dat") + ": no space left on device"});

  const auto after = [&] {
    std::vector<std::string> all;
    for (const auto& name : names_in(dir_))
      all.push_back(name + "=" + (name == "filler" ? "" : slurp(dir_ / name)));
    return all;
  }();
  EXPECT_EQ(after, before); // the old files intact, no temp files, nothing new
  // The old checkpoint still reads, and HDF5 holds no file open that it could trip over later.
  EXPECT_EQ(lca::read_checkpoint(path("ck.h5")).geometry.nf, 2);
}

} // namespace
