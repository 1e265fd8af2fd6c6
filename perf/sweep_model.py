"""The sweep's throughput and a model of the full study's time (perf/README.md, "Sweep across
ranks"). Reads the runs of perf/run_sweep_scaling.sh (runs.tsv, each run's sweep.h5), prints
points per hour and per CPU-hour, the efficiency of group-parallel against batch-parallel runs at
equal ranks, and the queue model: rank 0 hands the point left with the largest nf, then the
smallest lambda, to the next free group (src/drivers/scaling.cpp, WorkQueue), so G groups with a core each
finish after that greedy schedule of the one-rank per-point times (perf/estimate_study.py
applies the same model to a whole study config).
  python3 perf/sweep_model.py WORK_DIR"""
import csv
import heapq
import sys

import h5py


def makespan(points, groups):
    """The queue's schedule on `groups` workers: each free group takes the point left with the
    largest nf, then the smallest lambda; points are (nf, lambda, seconds)."""
    free = [0.0] * groups
    for _, _, seconds in sorted(points, key=lambda p: (-p[0], p[1])):
        heapq.heapreplace(free, free[0] + seconds)
    return max(free)


def measured(work):
    with open(f"{work}/runs.tsv") as f:
        runs = list(csv.DictReader(f, delimiter="\t"))
    with h5py.File(f"{work}/r1/sweep.h5") as f:  # one rank: the cost of each point alone
        points = list(zip(f["points/nf"][...], f["points/lambda"][...], f["points/seconds"][...]))
    seconds = [p[2] for p in points]
    key = lambda r: (int(r["ranks"]), int(r["groups"]))
    rate = {key(r): float(r["points_per_hour"]) for r in runs}
    # Points per CPU-hour: what a point costs whatever else runs on the machine.
    per_cpu = {key(r): 3600 * len(points) / float(r["cpu_seconds"]) for r in runs}
    print(f"{len(points)} points; one-rank point times {min(seconds):.1f}-{max(seconds):.1f} s, "
          f"sum {sum(seconds):.1f} s\n")
    print("| ranks | groups | points/h | points per CPU-hour | vs 1 rank | queue model points/h "
          "(a core per group) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        ranks, groups = key(r)
        # The model gives each group a core of its own: up to the 2 cores here.
        model = 3600 * len(points) / makespan(points, groups) if ranks == groups <= 2 else None
        print(f"| {ranks} | {groups} | {rate[(ranks, groups)]:.0f} | {per_cpu[(ranks, groups)]:.0f} "
              f"| {per_cpu[(ranks, groups)] / per_cpu[(1, 1)]:.2f} | "
              f"{f'{model:.0f}' if model else ''} |")
    print()
    for ranks in (2, 4):
        if (ranks, ranks) in rate and (ranks, 1) in rate:
            print(f"{ranks} ranks: group-parallel / batch-parallel, points per CPU-hour "
                  f"{per_cpu[(ranks, ranks)] / per_cpu[(ranks, 1)]:.2f}, points/h "
                  f"{rate[(ranks, ranks)] / rate[(ranks, 1)]:.2f}")


if __name__ == "__main__":
    measured(sys.argv[1])
