#!/usr/bin/env bash
# The README's test command: set up, build and run the whole test suite. Where nvcc exists
# the whole project is also compiled against the CUDA Kokkos (it cannot run without a GPU).
set -euo pipefail
export OMP_PROC_BIND=false # tests oversubscribe the cores; pinning would serialise them
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/build.sh openmp
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== CUDA variant: compiling library, apps, tests and benchmarks with nvcc_wrapper"
  bash ci/build.sh cuda
fi
echo "== sanitizers: debug preset (ASan + UBSan): unit suite at 2 threads, 1/2/4 MPI ranks, bad inputs to the apps"
step=$SECONDS
cmake --preset debug >/dev/null
cmake --build --preset debug -j "$(nproc)"
(
  # The slow unwinder lets LeakSanitizer see OpenMPI's frames, which ci/lsan.supp names (their
  # leaks are not ours). Any report fails the step: ASan/UBSan abort, LSan exits non-zero.
  export LSAN_OPTIONS=suppressions=$PWD/ci/lsan.supp:print_suppressions=0
  export ASAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
  export OMP_PROC_BIND=false # also keeps Kokkos' start-up warning out of ctest's test discovery
  (cd build/debug/tests && OMP_NUM_THREADS=2 ./test_lca --gtest_brief=1)
  ctest --preset debug -j "$(nproc)" -R '^unit[.]mpi[124]$|^badinput[.]'
)
echo "   sanitizers: $((SECONDS - step)) s"
echo "== fuzzing: one libFuzzer target per input parser (ci/fuzz.sh)"
step=$SECONDS
bash ci/fuzz.sh 45
echo "   fuzzing: $((SECONDS - step)) s"
echo "== tests (OpenMP + Serial backends, both layouts, 1 and 2 threads, 1/2/4 MPI ranks)"
ctest --preset openmp -j "$(nproc)"
