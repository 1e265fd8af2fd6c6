#include "binding.hpp"

#include <Kokkos_Core.hpp>
#ifdef KOKKOS_ENABLE_OPENMP
#include <omp.h>
#endif

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace lca::app {
namespace {

std::set<int> cpus_of(const cpu_set_t& mask) {
  std::set<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &mask))
      cpus.insert(c);
  return cpus;
}

/// The calling thread's CPUs.
std::set<int> my_cpus() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0)
    return {};
  return cpus_of(mask);
}

/// "0-3,8" (ranges of consecutive CPUs).
std::string cpu_list(const std::set<int>& cpus) {
  std::string out;
  for (auto it = cpus.begin(); it != cpus.end();) {
    const int first = *it;
    int last = first;
    while (++it != cpus.end() && *it == last + 1)
      ++last;
    out += (out.empty() ? "" : ",") + std::to_string(first);
    if (last > first)
      out += "-" + std::to_string(last);
  }
  return out;
}

#ifdef KOKKOS_ENABLE_OPENMP
/// Gives the calling thread back every CPU of libgomp's places (built from the affinity the
/// process started with, before libgomp bound this thread to the first place), keeping the
/// ones it has. Never narrows.
void widen_to_openmp_places() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0)
    return;
  const int before = CPU_COUNT(&mask);
  for (int p = 0; p < omp_get_num_places(); ++p) {
    std::vector<int> ids(std::max(1, omp_get_place_num_procs(p)));
    omp_get_place_proc_ids(p, ids.data());
    for (int id : ids)
      if (id >= 0 && id < CPU_SETSIZE)
        CPU_SET(id, &mask);
  }
  if (CPU_COUNT(&mask) > before)
    sched_setaffinity(0, sizeof mask, &mask); // a failure leaves the mask as it was
}

/// True when pinning OpenMP threads cannot hurt: the threads cover every CPU this process may
/// use (OMP_NUM_THREADS / --kokkos-(num-)threads not below that), and no other rank on this node
/// shares those CPUs (one local rank, or the launcher bound each rank to its own CPUs).
bool pinning_is_safe(int argc, char** argv) {
  const int cpus = int(my_cpus().size());
  if (cpus == 0)
    return false;
  int threads = cpus;
  if (const char* n = std::getenv("OMP_NUM_THREADS"))
    threads = std::atoi(n);
  for (int i = 1; i < argc; ++i)
    for (const char* flag : {"--kokkos-threads=", "--kokkos-num-threads="}) // kokkos_args.hpp
      if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0)
        threads = std::atoi(argv[i] + std::strlen(flag));
  if (threads < cpus)
    return false;
  int local_ranks = 1;
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* n = std::getenv(var))
      local_ranks = std::max(local_ranks, std::atoi(n));
  return local_ranks == 1 || cpus < sysconf(_SC_NPROCESSORS_ONLN);
}
#endif

} // namespace

void prepare_threads(int argc, char** argv, std::string& hint) {
  const char* unpinned = "OpenMP threads are not pinned; for speed set OMP_PROC_BIND=spread "
                         "OMP_PLACES=threads (OMP_PROC_BIND=false silences this)";
  const bool user_omp = std::getenv("OMP_PROC_BIND") || std::getenv("OMP_PLACES");
  bool exec = false;
  // OpenBLAS (Debian's is built for every x86 core type and picks one at load) falls back to
  // its slowest, SSE3-only kernels on a CPU model it does not know, e.g. a virtual "Intel Xeon
  // Processor" with AVX-512 (measured: sgemm 34 instead of 172 GFLOP/s). It has no call to
  // change its kernels once loaded, hence the variable and the exec.
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
  if (exec)
    widen_to_openmp_places();
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

namespace {
/// Each host thread's CPUs (one entry without OpenMP).
std::vector<std::set<int>> thread_cpus() {
#ifdef KOKKOS_ENABLE_OPENMP
  std::vector<std::set<int>> cpus(Kokkos::OpenMP().concurrency());
#pragma omp parallel num_threads(int(cpus.size()))
  cpus[omp_get_thread_num()] = my_cpus();
  return cpus;
#else
  return {my_cpus()};
#endif
}

std::set<int> all_of(const std::vector<std::set<int>>& per_thread) {
  std::set<int> all = my_cpus();
  for (const auto& t : per_thread)
    all.insert(t.begin(), t.end());
  return all;
}
} // namespace

Threads threads_in_use() {
  const auto per_thread = thread_cpus();
  const auto all = all_of(per_thread);
  const std::size_t n = per_thread.size();
  const auto cpus = [](std::size_t k) { return std::string(k == 1 ? " CPU" : " CPUs"); };
#ifdef KOKKOS_ENABLE_OPENMP
  std::string out = "OpenMP " + std::to_string(n) + (n == 1 ? " thread" : " threads");
#else
  std::string out = Kokkos::DefaultHostExecutionSpace::name();
#endif
  out += " on" + cpus(all.size()) + " " + cpu_list(all);
  const bool pinned = std::any_of(per_thread.begin(), per_thread.end(),
                                  [&](const std::set<int>& t) { return t != all; });
  if (n > 1 && pinned) {
    out += ", pinned";
    for (std::size_t i = 0; i < n && i < 16; ++i)
      out += (i == 0 ? " " : " | ") + cpu_list(per_thread[i]);
    if (n > 16)
      out += " | ...";
  } else if (n > 1) {
    out += ", unpinned";
  }
  if (n > all.size())
    out += ", " + std::to_string(n) + " threads share " + std::to_string(all.size()) +
           cpus(all.size());
  return {out, cpu_list(all)};
}

} // namespace lca::app
