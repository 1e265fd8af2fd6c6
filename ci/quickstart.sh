#!/usr/bin/env bash
# The README's main command: set up, build, and run the small phase-transition study on the
# built-in Fashion-MNIST data (train -> denoise -> analyze). Rerunning resumes where it left off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash ci/build.sh openmp
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} OMP_PROC_BIND=${OMP_PROC_BIND:-spread}
export OMP_PLACES=${OMP_PLACES:-threads}
out=results/fashion-mnist-study
build/openmp/apps/lca-scaling --config inputs/fashion-mnist-study.toml run --out-dir "$out"
build/openmp/apps/lca-scaling analyze "$out/sweep.h5"
echo "quickstart: results in $out/analysis (results.md, results.csv, *.png)"
