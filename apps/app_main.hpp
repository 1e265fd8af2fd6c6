#pragma once
// What every app's main does (style.md): stop handlers -> MPI init -> Kokkos -> run -> catch at
// the top, print one clear line, and end all ranks (MPI_Abort when there is more than one, so a
// failing rank never leaves the others hanging).
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

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

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
    "Kokkos flags (--kokkos-threads=N, --kokkos-numa=N, --kokkos-device-id=N (GPU builds: by "
    "default the node-local rank mod the visible GPUs), --kokkos-disable-warnings, ...) are "
    "passed to Kokkos; --kokkos-help lists them.";

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

/// argv split in two: Kokkos gets only its own --kokkos-* flags (Kokkos 3.4 prints its whole
/// help for a plain --help, and would read flags of the app), the app gets the rest.
struct SplitArgs {
  std::vector<char*> kokkos, app; ///< each starts with argv[0] and ends with nullptr
  bool kokkos_help = false;

  SplitArgs(int argc, char** argv, bool print_kokkos_help) {
    kokkos.push_back(argv[0]);
    app.push_back(argv[0]);
    for (int i = 1; i < argc; ++i) {
      const bool ours = std::strncmp(argv[i], "--kokkos-", 9) == 0;
      if (ours && std::strcmp(argv[i], "--kokkos-help") == 0) {
        kokkos_help = true;
        if (!print_kokkos_help) // once per job
          continue;
      }
      (ours ? kokkos : app).push_back(argv[i]);
    }
    kokkos.push_back(nullptr);
    app.push_back(nullptr);
  }
  int kokkos_argc() const { return int(kokkos.size()) - 1; }
  int app_argc() const { return int(app.size()) - 1; }
};

#ifdef KOKKOS_ENABLE_OPENMP
/// True when pinning OpenMP threads cannot hurt: the threads cover every CPU this process may
/// use (OMP_NUM_THREADS / --kokkos-threads not below that), and no other rank on this node
/// shares those CPUs (one local rank, or the launcher bound each rank to its own CPUs).
inline bool pinning_is_safe(int argc, char** argv) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0)
    return false;
  const int cpus = CPU_COUNT(&mask);
  int threads = cpus;
  if (const char* n = std::getenv("OMP_NUM_THREADS"))
    threads = std::atoi(n);
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--kokkos-threads=", 17) == 0)
      threads = std::atoi(argv[i] + 17);
  if (threads < cpus)
    return false;
  int local_ranks = 1;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* n = std::getenv(var))
      local_ranks = std::max(local_ranks, std::atoi(n));
  return local_ranks == 1 || cpus < sysconf(_SC_NPROCESSORS_ONLN);
}
#endif

/// OpenMP thread binding when the user chose none (neither OMP_PROC_BIND nor OMP_PLACES set).
/// libgomp reads OMP_* when it is loaded, before main, so the process execs itself once more
/// with OMP_PROC_BIND=spread OMP_PLACES=threads (same pid: fine under mpirun) when pinning is
/// safe. Otherwise it runs unbound as before, and Kokkos' four-line warning becomes one line
/// (`hint`, for rank 0) saying what to set. Returns only when no exec happened.
///
/// OpenBLAS (Debian's is built for every x86 core type and picks one at load) falls back to
/// its slowest, SSE3-only kernels on a CPU model it does not know, e.g. a virtual "Intel Xeon
/// Processor" with AVX-512 (measured: sgemm 34 instead of 172 GFLOP/s). Unless the user set
/// OPENBLAS_CORETYPE, the same exec names the kernels the CPU can run.
inline void default_openmp_binding(int argc, char** argv, std::string& hint) {
  const char* unpinned = "OpenMP threads are not pinned; for speed set OMP_PROC_BIND=spread "
                         "OMP_PLACES=threads (OMP_PROC_BIND=false silences this)";
  const bool user_omp = std::getenv("OMP_PROC_BIND") || std::getenv("OMP_PLACES");
  bool exec = false;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (!std::getenv("OPENBLAS_CORETYPE")) {
    __builtin_cpu_init();
    const char* core = nullptr;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      core = "SKYLAKEX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      core = "HASWELL";
    if (core) {
      setenv("OPENBLAS_CORETYPE", core, 1);
      exec = true;
    }
  }
#endif
#ifdef KOKKOS_ENABLE_OPENMP
  if (!user_omp) {
    if (pinning_is_safe(argc, argv)) {
      setenv("OMP_PROC_BIND", "spread", 1);
      setenv("OMP_PLACES", "threads", 1);
      exec = true;
    } else if (!exec) { // (after an exec for OpenBLAS alone, the new process says it)
      // libgomp stays unbound (its default without OMP_PROC_BIND and OMP_PLACES): say so to
      // Kokkos, which would print four lines about it.
      setenv("OMP_PROC_BIND", "false", 1);
      hint = unpinned;
    }
  }
#endif
  if (exec) {
    execv("/proc/self/exe", argv);
    if (!user_omp) { // exec failed: libgomp was loaded unbound, go on so
      unsetenv("OMP_PLACES");
      setenv("OMP_PROC_BIND", "false", 1);
      hint = unpinned;
    }
  }
  (void)argc;
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

/// body(argc, argv) parses its own flags with CLI11 and returns the exit code.
template <class Body> int run(const char* name, int argc, char** argv, Body body) {
  std::string binding_hint;
  default_openmp_binding(argc, argv, binding_hint);
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
      std::cerr << name << ": error: " << error
                << (size > 1 ? " (rank " + std::to_string(me) + ")" : std::string()) << std::endl;
      if (size > 1)
        MPI_Abort(MPI_COMM_WORLD, rc); // does not return: not checked
    }
  }
  if (!succeeded(MPI_Finalize(), "MPI_Finalize") && rc == 0)
    rc = 1;
  return rc;
}

} // namespace lca::app
