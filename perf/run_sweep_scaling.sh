#!/usr/bin/env bash
# Sweep throughput (perf/README.md, "Sweep across ranks"): the same small study grid run at 1, 2
# and 4 MPI ranks, group-parallel (--groups = ranks: one point per rank, side by side) against
# batch-parallel (--groups 1: every rank on each point's batches), then the queue model and the
# full CIFAR-10 study estimate (perf/sweep_model.py). One OpenMP thread per rank; 4 ranks on this
# 2-core machine are oversubscribed, so they show the overhead, not a speed-up.
#   bash perf/run_sweep_scaling.sh [work dir=/tmp/lca-sweep-scaling]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=${1:-/tmp/lca-sweep-scaling}
scaling=build/openmp/apps/lca-scaling
mkdir -p "$work"
export OMP_NUM_THREADS=1 OMP_PROC_BIND=false
# --bind-to none: mpirun pins 2 ranks to one core each, which starves a rank whose core another
# job's pinned threads hold (seen here: 1 % CPU for rank 0 beside a pinned study).
# 9 points whose cost grows with nf (4, 8, 16), the study's default solver (FISTA, certified gaps).
grid=(run --subset 128 --test-subset 32 --images 128 --sizes 4,8,16 --lambdas 0.1,0.3,0.9
  --progress 0)
runs=$work/runs.tsv
printf 'name\tranks\tgroups\tpoints_per_hour\tcpu_seconds\n' > "$runs"
# The app's own points/h (from the sweep's start: loading excluded), and the CPU time of all
# ranks (user + sys, loading included): on a busy machine the wall clock measures the others'
# load, the CPU time what the sweep itself costs.
sweep() { # name ranks groups
  local name=$1 ranks=$2 groups=$3 summary
  rm -rf "${work:?}/$name"
  summary=$(/usr/bin/time -o "$work/$name.time" -f '%U %S' mpirun --allow-run-as-root \
    --oversubscribe --bind-to none -np "$ranks" "$scaling" "${grid[@]}" --groups "$groups" \
    --out-dir "$work/$name" 2>/dev/null | tail -1)
  echo "$ranks rank(s), $groups group(s): $summary"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$ranks" "$groups" \
    "$(echo "$summary" | sed -n 's/.*(\([0-9.]*\) points\/h).*/\1/p')" \
    "$(awk '{print $1 + $2}' "$work/$name.time")" >> "$runs"
}
sweep r1 1 1
sweep r2g1 2 1
sweep r2g2 2 2
sweep r4g1 4 1
sweep r4g2 4 2
sweep r4g4 4 4
/usr/bin/python3 perf/sweep_model.py "$work"
