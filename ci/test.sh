#!/usr/bin/env bash
# The README's test command: set up, build and run the whole test suite. Where nvcc exists
# the whole project is also compiled against the CUDA Kokkos (it cannot run without a GPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/build.sh openmp
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== CUDA variant: compiling library, apps, tests and benchmarks with nvcc_wrapper"
  bash ci/build.sh cuda
fi
echo "== tests (OpenMP + Serial backends, 1 and 2 threads, 2 MPI ranks)"
ctest --preset openmp -j "$(nproc)"
