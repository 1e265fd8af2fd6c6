#pragma once
// How an app's OpenMP threads and OpenBLAS are set up before MPI and Kokkos start, and what
// they got. libgomp and OpenBLAS read their variables once, while they load (before main), so
// choosing for the user means executing the process once more with the variables set.
#include <string>

namespace lca::app {

/// Called first thing in main. Unless the user chose (OMP_PROC_BIND or OMP_PLACES set), pins
/// OpenMP threads (OMP_PROC_BIND=spread OMP_PLACES=threads) where that cannot hurt, and names
/// OpenBLAS's kernels for this CPU (OPENBLAS_CORETYPE) unless set; either needs an exec of the
/// same binary (same pid: fine under mpirun). Before any exec the affinity the process started
/// with is restored: a libgomp bound by the user's variables has already pinned this thread to
/// its first place, and the new image would inherit that one CPU. Returns only when no exec
/// happened (or it failed); `hint` is then a line for rank 0 to print, or "".
void prepare_threads(int argc, char** argv, std::string& hint);

/// What the host threads got, after Kokkos started.
struct Threads {
  /// e.g. "OpenMP 2 threads on CPUs 0-1, pinned 0 | 1", "OpenMP 2 threads on CPUs 0-1,
  /// unpinned", "OpenMP 2 threads on CPU 0, 2 threads share 1 CPU"; "Serial on CPU 0" on a
  /// build without OpenMP.
  std::string description;
  std::string cpus; ///< the process's CPUs as a list ("0-3,8"): the union over its threads
};
Threads threads_in_use();

} // namespace lca::app
