#!/usr/bin/env bash
# Time to a certified code (perf/README.md, "Time to a certified gap"): trains the two
# dictionaries with lca-train, then runs bench_gap on held-out images and plots the gap
# against time. W128 needs RGB tiles from Debian's python3-skimage photographs
# (perf/make_rgb_tiles.py); without it only the Fashion-MNIST shape runs.
#   bash perf/run_gap_benchmarks.sh [images=32]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
images=${1:-32}
bin=build/openmp
out=perf/results
work=${LCA_GAP_WORK:-/tmp/lca-gap}
mkdir -p "$out" "$work"
export OMP_NUM_THREADS=2 OMP_PROC_BIND=spread OMP_PLACES=threads
# bench_gap is not an app: name the OpenBLAS kernels the apps would pick (apps/app_main.hpp).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512bw /proc/cpuinfo; then export OPENBLAS_CORETYPE=SKYLAKEX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=HASWELL; fi
fi
train=($bin/apps/lca-train --progress 0 --batch 16)

# Fashion-MNIST shape, the README study's settings at nf 32, lambda 0.41.
fm=$work/fashion-mnist-nf32.h5
[ -f "$fm" ] || "${train[@]}" --images 1000 --nf 32 --kernel 8 --stride 2 --lambda 0.41 \
  --tau 50 --iterations 200 --eta 0.1 --momentum-tau 10 -o "$fm" | grep done
$bin/perf/bench_gap -c "$fm" --data fashion-mnist --split test --images "$images" \
  --json "$out/gap_fashion-mnist.json" --trace "$out/gap_trace_fashion-mnist.dat" | grep -v '^Kokkos'

if /usr/bin/python3 -c 'import skimage.io' 2>/dev/null; then
  tiles=$work/rgb
  [ -f "$tiles/train.txt" ] || /usr/bin/python3 perf/make_rgb_tiles.py "$tiles"
  png=(--data png-list --png-channels 3 --png-height 32 --png-width 32)
  w128=$work/w128.h5
  [ -f "$w128" ] || "${train[@]}" "${png[@]}" --data-path "$tiles/train.txt" --nf 128 --kernel 8 \
    --stride 2 --lambda 0.5 --solver fista --iterations 100 --eta 0.05 -o "$w128" | grep done
  $bin/perf/bench_gap -c "$w128" "${png[@]}" --data-path "$tiles/test.txt" --images "$images" \
    --json "$out/gap_w128.json" --trace "$out/gap_trace_w128.dat" | grep -v '^Kokkos'
  $bin/perf/bench_gap -c "$w128" "${png[@]}" --data-path "$tiles/test.txt" --images "$images" \
    --methods fista --no-polish --json "$out/gap_w128_nopolish.json" | grep -v '^Kokkos'
else
  echo "W128 skipped: install python3-skimage for its photographs"
fi
for f in "$out"/gap_trace_*.dat; do
  gnuplot -e "in='$f'; out='${f%.dat}.png'" perf/plot_gap.gp
done
