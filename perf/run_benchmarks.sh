#!/usr/bin/env bash
# Reproduces the tables of perf/README.md: kernel benchmarks at 1 and 2 threads for the
# CIFAR-sized (3x32x32) and Fashion-MNIST (1x28x28) workloads, and lca-train throughput at
# 1 rank x 2 threads vs 2 ranks x 1 thread, then the PyTorch peer side by side (--peer-only: just
# that). JSON records go to perf/results/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=build/openmp
out=perf/results
mkdir -p "$out"
export OMP_PROC_BIND=spread OMP_PLACES=threads
# The benchmarks are not apps: name the OpenBLAS kernels the apps would pick (apps/app_main.hpp).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512bw /proc/cpuinfo; then export OPENBLAS_CORETYPE=SKYLAKEX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=HASWELL; fi
fi
peer_only=false
[ "${1:-}" = "--peer-only" ] && peer_only=true # just the side-by-side peer runs at the end
$peer_only || for threads in 2 1; do
  for shape in 3x32x32 1x28x28; do
    for run in 1 2 3; do
      OMP_NUM_THREADS=$threads $bin/perf/bench_lca --shape $shape --nf 64,128,256 --reps 5 \
        --json "$out/bench_${shape}_t${threads}_run${run}.json" $([ $run = 1 ] || echo --no-peak)
    done
  done
done
if ! $peer_only; then
train=($bin/apps/lca-train --nf 128 --iterations 400 --images 640 --batch 16 --progress 0 --lambda 0.5)
echo "== lca-train, 1 rank x 2 threads"
OMP_NUM_THREADS=2 "${train[@]}" -o /tmp/lca-perf/one.h5 | grep done
echo "== lca-train, 2 ranks x 1 thread"
OMP_NUM_THREADS=1 OMP_PROC_BIND=false mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to core \
  "${train[@]}" -o /tmp/lca-perf/two.h5 | grep done
fi
# Peer: the same W128 LCA in PyTorch (where python3-torch is installed), run alternately with
# bench_lca in one session so that the ratio in perf/README.md is measured side by side.
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "== peer: kokkos-lca vs PyTorch, W128 (3x32x32, nf 128, batch 16, 400 iterations), 2 threads"
  # kokkos-lca's scatter costs grow with the active fraction, PyTorch's dense convolutions do not:
  # bench_lca calibrates lambda to the fraction PyTorch's codes reached (and to the usual 3 %).
  for run in 1 2 3; do
    OMP_NUM_THREADS=2 /usr/bin/python3 perf/bench_torch.py --shape 3x32x32 --nf 128 \
      --iterations 400 --reps 5 --json "$out/peer_torch_run${run}.json"
    active=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['percent_active'])" \
      "$out/peer_torch_run${run}.json")
    for target in "$active" 3; do
      echo -n "kokkos-lca at $target % active:"
      OMP_NUM_THREADS=2 $bin/perf/bench_lca --shape 3x32x32 --nf 128 --iterations 400 --reps 5 \
        --active "$target" --no-peak --json "$out/peer_kokkos_a${target%%.*}_run${run}.json" |
        grep "end to end"
    done
  done
else
  echo "== peer: python3-torch not installed, PyTorch comparison skipped"
fi
