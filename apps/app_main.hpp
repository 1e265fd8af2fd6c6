#pragma once
// What every app's main does (style.md): stop handlers -> MPI init -> Kokkos -> run -> catch at
// the top, print one clear line, and end all ranks (MPI_Abort when there is more than one, so a
// failing rank never leaves the others hanging).
#include "binding.hpp"
#include "kokkos_args.hpp"
#include "lca/error.hpp"
#include "lca/mpi.hpp"
#include "lca/train.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>
#if defined(KOKKOS_ENABLE_CUDA)
#include <cuda_runtime_api.h>
#elif defined(KOKKOS_ENABLE_HIP)
#include <hip/hip_runtime_api.h>
#endif

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace lca::app {

inline int rank() {
  return mpi::rank(MPI_COMM_WORLD);
}

/// A combination of flags found wrong after parsing (an output that is also an input): exit 2
/// like a parse error. Thrown on every rank alike (see collective_check).
struct UsageError : Error {
  using Error::Error;
};

/// SIGINT/SIGTERM before the work started: every rank ends with exit 128 + signal, and nothing
/// was written.
struct Interrupted : Error {
  Interrupted(int sig, const std::string& what) : Error(what), signal(sig) {}
  int signal;
};

inline const char* signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

/// Collective: if any rank got SIGINT/SIGTERM (lca::install_stop_handlers, installed by run()
/// first thing), every rank throws Interrupted("interrupted by SIGTERM <when>; nothing written").
inline void stop_point(const std::string& when) {
  int sig = lca::stop_signal(), any = 0;
  mpi::check(MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
             "MPI_Allreduce of the stop signal");
  if (any != 0)
    throw Interrupted(any, std::string("interrupted by ") + signal_name(any) + " " + when +
                               "; nothing was written");
}

/// For work that does not look at the stop flag (denoising, the analysis): SIGINT/SIGTERM get
/// their default action again (end the process), and a signal that came before ends the run
/// here, cleanly. Collective.
inline void default_stop_signals(const std::string& when) {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  stop_point(when);
}

/// Rank 0 runs `check` (a problem, or ""); every rank throws UsageError if it found one, so all
/// ranks agree even where their views of the file system could differ.
inline void collective_check(const std::function<std::string()>& check) {
  const std::string problem = mpi::from_rank0(MPI_COMM_WORLD, check);
  if (!problem.empty())
    throw UsageError(problem);
}

/// Kokkos' own flags, mentioned at the end of every --help.
constexpr const char* kKokkosFooter =
    "Kokkos flags (--kokkos-num-threads=N or --kokkos-threads=N, --kokkos-device-id=N (GPU "
    "builds: by default the node-local rank mod the visible GPUs), --kokkos-disable-warnings, "
    "...) are passed to Kokkos; --kokkos-help lists them.";

/// Parses the flags (every rank sees the same ones, so all agree). Returns -1 to go on, or
/// the exit code: 0 after --help, 2 after a bad flag (one line on stderr from rank 0).
inline int parse(CLI::App& app, const char* name, int argc, char** argv) {
  app.footer(kKokkosFooter);
  for (CLI::App* sub : app.get_subcommands({}))
    sub->footer(kKokkosFooter);
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return rank() == 0 ? app.exit(e) : 0;
  } catch (const CLI::CallForAllHelp& e) {
    return rank() == 0 ? app.exit(e) : 0;
  } catch (const CLI::ParseError& e) {
    if (rank() == 0)
      std::cerr << name << ": error: " << e.what() << std::endl;
    return e.get_exit_code() == 0 ? 0 : 2;
  }
}

/// One GPU per rank on GPU builds: unless the user chose (--kokkos-device-id,
/// --kokkos-num-devices, --kokkos-map-device-id-by, their KOKKOS_* variables, or CTest's resource
/// allocation), node-local rank r gets device r mod (visible devices), passed to
/// Kokkos as --kokkos-device-id (Kokkos 3.4 and 4.x alike). The node-local rank comes from MPI
/// itself: Kokkos 3.4 finds it only in OpenMPI's, MVAPICH2's or Slurm's variables and puts every
/// rank of other launchers (MPICH, Intel MPI) on device 0. Collective; returns the flag and a
/// line saying what it chose for rank 0 to print, or nothing on host-only builds.
inline std::pair<std::string, std::string> gpu_device_flag(int argc, char** argv) {
  MPI_Comm node;
  mpi::check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
             "MPI_Comm_split_type");
  const int local = mpi::rank(node), local_ranks = mpi::size(node);
  mpi::check(MPI_Comm_free(&node), "MPI_Comm_free");
  int devices = 0;
#if defined(KOKKOS_ENABLE_CUDA)
  if (cudaGetDeviceCount(&devices) != cudaSuccess)
    devices = 0;
#elif defined(KOKKOS_ENABLE_HIP)
  if (hipGetDeviceCount(&devices) != hipSuccess)
    devices = 0;
#endif
  for (int i = 1; i < argc; ++i)
    for (const char* chosen : {"--kokkos-device", "--kokkos-num-devices", "--kokkos-ndevices",
                               "--kokkos-map-device-id-by"})
      if (std::strncmp(argv[i], chosen, std::strlen(chosen)) == 0)
        devices = 0;
  for (const char* chosen : {"KOKKOS_DEVICE_ID", "KOKKOS_NUM_DEVICES", "KOKKOS_RAND_DEVICES",
                             "KOKKOS_MAP_DEVICE_ID_BY", "CTEST_KOKKOS_DEVICE_TYPE"})
    if (std::getenv(chosen))
      devices = 0;
  if (devices < 1) // host-only, the user's choice, or no GPU (Kokkos says so itself)
    return {};
  return {"--kokkos-device-id=" + std::to_string(local % devices),
          "GPU of each rank = its node-local rank mod " + std::to_string(devices) +
              " visible device(s) (" + std::to_string(local_ranks) + " rank(s) on rank 0's node" +
              (local_ranks > devices ? ", sharing GPUs" : "") + ")"};
}

namespace detail {
inline std::string& threads_line() {
  static std::string line;
  return line;
}
} // namespace detail

/// For each app's start line: the host threads and CPUs this job got, e.g. "OpenMP 2 threads
/// on CPUs 0-1, pinned 0 | 1"; with several ranks rank 0's and every rank's CPUs (the first
/// 16), so a binding that narrows or overlaps shows at once.
inline const std::string& threads() {
  return detail::threads_line();
}

/// Collective: rank 0's threads, plus each rank's CPUs when there are several.
inline std::string describe_ranks() {
  const Threads mine = threads_in_use();
  std::string line = mine.description;
  const int size = mpi::size(MPI_COMM_WORLD);
  if (size == 1)
    return line;
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  const std::string cpus = mine.cpus + "@" + host;
  std::vector<char> all(std::size_t(size) * 128, '\0'), own(128, '\0');
  std::copy_n(cpus.begin(), std::min<std::size_t>(cpus.size(), 127), own.begin());
  mpi::check(MPI_Gather(own.data(), 128, MPI_CHAR, all.data(), 128, MPI_CHAR, 0, MPI_COMM_WORLD),
             "MPI_Gather of the ranks' CPUs");
  if (rank() != 0)
    return line;
  // Host names only where they differ from rank 0's.
  const char* at = std::strchr(all.data(), '@');
  const std::string host0 = at ? at : "";
  line = "rank 0: " + line + "; CPUs of each rank:";
  for (int r = 0; r < size && r < 16; ++r) {
    std::string cpus = &all[std::size_t(r) * 128];
    if (cpus.size() >= host0.size() &&
        cpus.compare(cpus.size() - host0.size(), host0.size(), host0) == 0)
      cpus.resize(cpus.size() - host0.size());
    line += (r == 0 ? " " : " | ") + cpus;
  }
  return size > 16 ? line + " | ..." : line;
}

/// body(argc, argv) parses its own flags with CLI11 and returns the exit code.
template <class Body> int run(const char* name, int argc, char** argv, Body body) {
  std::string binding_hint;
  prepare_threads(argc, argv, binding_hint);
  // First, so that a SIGINT/SIGTERM while the data loads ends the run cleanly (stop_point).
  lca::install_stop_handlers();
  // MPI_Init and MPI_Finalize lie outside the job's error handling: a failure is one line.
  const auto succeeded = [name](int mpi_rc, const char* what) {
    try {
      mpi::check(mpi_rc, what);
      return true;
    } catch (const Error& e) {
      std::cerr << name << ": error: " << e.what() << std::endl;
      return false;
    }
  };
  if (!succeeded(MPI_Init(&argc, &argv), "MPI_Init"))
    return 1;
  int rc = 0, size = 1, me = 0;
  std::string error;
  bool all_ranks = false; // an error every rank raised alike: rank 0 reports, no MPI_Abort
  try {
    size = mpi::size(MPI_COMM_WORLD), me = rank();
    if (!binding_hint.empty() && me == 0)
      std::cout << name << ": " << binding_hint << std::endl;
    SplitArgs args(argc, argv, me == 0);
    auto [device_flag, device_note] = gpu_device_flag(argc, argv);
    if (!device_flag.empty())
      args.kokkos.insert(args.kokkos.end() - 1, device_flag.data());
    if (!device_note.empty() && me == 0 && size > 1)
      std::cout << name << ": " << device_note << std::endl;
    int kokkos_argc = args.kokkos_argc();
    Kokkos::ScopeGuard kokkos(kokkos_argc, args.kokkos.data());
    detail::threads_line() = describe_ranks();
    rc = args.kokkos_help ? 0 : body(args.app_argc(), args.app.data());
  } catch (const UsageError& e) {
    error = e.what(), rc = 2, all_ranks = true;
  } catch (const Interrupted& e) {
    error = e.what(), rc = 128 + e.signal, all_ranks = true;
  } catch (const std::exception& e) {
    error = e.what();
    rc = 1;
  }
  if (!error.empty()) {
    if (all_ranks) {
      if (me == 0)
        std::cerr << name << ": " << (rc == 2 ? "error: " : "") << error << std::endl;
    } else {
      // One write: std::cerr is unbuffered, and mpirun forwards each write of a rank on its own,
      // so a line written in pieces could be split by the MPI_Abort notice below.
      std::cerr << (name + std::string(": error: ") + error +
                    (size > 1 ? " (rank " + std::to_string(me) + ")" : std::string()) + "\n")
                << std::flush;
      if (size > 1)
        MPI_Abort(MPI_COMM_WORLD, rc); // does not return: not checked
    }
  }
  if (!succeeded(MPI_Finalize(), "MPI_Finalize") && rc == 0)
    rc = 1;
  return rc;
}

} // namespace lca::app
