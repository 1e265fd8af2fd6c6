#!/usr/bin/python3
"""Estimate the time of a study config from a measured sweep on images of the same shape.

Each point of the target costs, on this machine, the measured point of the nearest lambda (in
log lambda) at the nearest size, scaled by the size ratio (the GEMMs and the scatter grow
linearly in nf) and by the ratio of training and test images (training seconds per image and
epoch, test seconds per test image; the sweep records both since train_seconds exists). A
measured sweep trained with --epochs auto counts each point's own epochs (train_epochs); a
target with epochs = "auto" needs --epochs, the epochs its points are assumed to take (default:
its max-epochs, an upper bound).
Optionally divides by a measured speed-up (e.g. a GPU's image-iterations/s over this machine's).
The wall time on N devices (one group each, lca-scaling run --groups) follows rank 0's queue:
each free group takes the point left with the largest nf, then the smallest lambda
(perf/sweep_model.py, makespan).

    /usr/bin/python3 perf/estimate_study.py results/rgb-study/sweep.h5 inputs/cifar10-study.toml \
        [--train-images 50000] [--test-images 10000] [--speedup 46] [--devices 1,8,32]
"""
import argparse
import math
import sys
import tomllib

import h5py
import numpy as np
from sweep_model import makespan


def hours(seconds):
    h = seconds / 3600
    return f"{h:,.0f}" if h >= 100 else f"{h:.3g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep")
    ap.add_argument("config")
    ap.add_argument("--train-images", type=float, help="training images per point (default: "
                    "the config's images, else 50000)")
    ap.add_argument("--test-images", type=float, help="test images (default: the config's "
                    "test-subset, else 10000)")
    ap.add_argument("--epochs", type=float, help="epochs per point of a target with epochs = "
                    "\"auto\" (default: its max-epochs)")
    ap.add_argument("--speedup", type=float, default=1.0, help="device speed over the measuring "
                    "machine")
    ap.add_argument("--devices", default="1,2,4,8,16,32,64",
                    help="device counts (one group each) to give the wall time for")
    a = ap.parse_args()
    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    run = cfg.get("run", cfg)
    sizes = run["sizes"]
    if "lambdas" in run:
        lambdas = run["lambdas"]
    else:
        lo, hi, n = run.get("lambda-min", 0.1), run.get("lambda-max", 1.0), run.get("lambda-count", 8)
        lambdas = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
    replicates = run.get("replicates", 1)
    refine = run.get("refine", 0)
    n_train = a.train_images or run.get("images") or 50000
    target_epochs = run.get("epochs", 1)
    if target_epochs == "auto":
        target_epochs = a.epochs or run.get("max-epochs", 30)
    n_train *= float(target_epochs)  # image-epochs per point
    n_test = a.test_images or run.get("test-subset") or 10000
    with h5py.File(a.sweep) as f:
        if "train_seconds" not in f["points"]:
            sys.exit(f"{a.sweep}: no train_seconds (a sweep from before they were recorded)")
        settings = f.attrs["settings"]
        nf = f["points/nf"][...]
        lam = f["points/lambda"][...]
        sec = f["points/seconds"][...]
        tsec = f["points/train_seconds"][...]
        m_test = f.attrs["n_test"]
        point_epochs = f["points/train_epochs"][...] if "train_epochs" in f["points"] else None
    m_train = float(settings.split(" images=")[1].split()[0])
    if m_train <= 0:  # all images, every epoch
        m_train = float(settings.split("| train: ")[1].split(" n=")[1].split()[0])
        held_out = settings.split("| minus ")
        if len(held_out) > 1:  # the validation images are not trained on
            m_train -= float(held_out[1].split()[0])
        if "| epochs=auto" in settings:
            m_train = m_train * point_epochs  # per point: the epochs it took to its plateau
        else:
            m_train *= float(settings.split(" epochs=")[1].split()[0])
    m_train = np.broadcast_to(m_train, tsec.shape)
    ok = np.isfinite(tsec) & np.isfinite(m_train)
    per_point = []
    for s in sizes:
        for l in lambdas:
            near_nf = nf[ok][np.argmin(np.abs(np.log(nf[ok] / s)))]
            sel = ok & (nf == near_nf)
            k = np.flatnonzero(sel)[np.argmin(np.abs(np.log(lam[sel] / l)))]
            train_s = tsec[k] / m_train[k] * n_train
            test_s = (sec[k] - tsec[k]) / m_test * n_test
            per_point.append((s, l, (train_s + test_s) * s / near_nf / a.speedup))
    # Refinement adds up to 2 points per size and round: cost them like their size's dearest.
    extra = [max(p for p in per_point if p[0] == s) for s in sizes for _ in range(2 * refine)]
    points = per_point * replicates + extra * replicates
    total = sum(p[2] for p in points)
    longest = max(p[2] for p in points)
    print(f"{a.config}: {len(sizes)} sizes x {len(lambdas)} lambdas x {replicates} replicate(s)"
          f" + up to {len(extra) * replicates} refinement points, {n_train:.0f} training image-epochs"
          f" / {n_test:.0f} test images per point")
    print(f"  measured on {a.sweep} ({len(nf)} points, {np.mean(m_train[ok]):.0f} training "
          f"image-epochs (mean) / {m_test} test images)")
    print(f"  estimate: {hours(total)} device-hours at speed-up {a.speedup:g}, costliest "
          f"point {hours(longest)} h")
    counts = [int(n) for n in a.devices.split(",")]
    print("  | devices | " + " | ".join(str(n) for n in counts) + " |")
    print("  |---|" + "---:|" * len(counts))
    print("  | wall hours | " + " | ".join(hours(makespan(points, n)) for n in counts)
          + " |")

if __name__ == "__main__":
    main()
