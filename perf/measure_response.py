#!/usr/bin/python3
"""Measure chi(lambda) (algorithm.md §7) on the dictionaries of a finished sweep and fit chi ~ lambda^g.

For the point checkpoints of one replicate in OUT_DIR/points whose lambda lies within a factor
--window of their size's lowest-error point (the sweep's mean error over its replicates), runs
`lca-denoise --response EPS` on the test images (noise as in the sweep) with codes certified to
--stop-gap, reads /images/response back and fits log chi against log lambda per size by least
squares: the exponent g of chi ~ lambda^g near the minimum. The response compares two solves,
so both must be far closer to their optimum than EPS moves it. On CIFAR-10 (JPEG q75) nf 16, lambda 0.3 (20 test images),
codes certified to 1e-4 gave chi 1.296, to 1e-6 (the default) 1.1135 and 10,000 iterations
(gap 7e-7) 1.1137: 1e-4 inflates chi by 16 %, 1e-6 is converged.

    /usr/bin/python3 perf/measure_response.py results/cifar10-slice build/openmp/apps/lca-denoise \
        --data cifar10 --data-path DIR/test_batch.bin
"""
import argparse
import math
import pathlib
import re
import subprocess
import sys

import h5py
import numpy as np


def fit(lam, chi):
    """Slope and standard error of log chi on log lambda (None below 3 points)."""
    x, y = np.log(lam), np.log(chi)
    if len(x) < 3:
        return None
    A = np.vstack([x, np.ones_like(x)]).T
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    r = y - A @ coef
    s2 = float(r @ r) / (len(x) - 2)
    se = math.sqrt(s2 / float(((x - x.mean()) ** 2).sum()))
    return coef[0], se


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="the sweep's --out-dir (sweep.h5 and points/)")
    ap.add_argument("denoise", help="the lca-denoise executable")
    ap.add_argument("--replicate", type=int, default=0)
    ap.add_argument("--epsilon", type=float, default=0.01)
    ap.add_argument("--stop-gap", type=float, default=1e-6)
    ap.add_argument("--subset", type=int, default=30, help="test images")
    ap.add_argument("--iterations", type=int, default=5000, help="the solver's cap")
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--window", type=float, default=1.5,
                    help="measure the lambda within this factor of the lowest-error point")
    ap.add_argument("--work", default=None, help="folder for the results files "
                    "(default OUT_DIR/response)")
    a, data = ap.parse_known_args()  # the rest: lca-denoise's data flags (the test set)
    data = [x for x in data if x != "--"]
    out = pathlib.Path(a.out_dir)
    work = pathlib.Path(a.work) if a.work else out / "response"
    work.mkdir(parents=True, exist_ok=True)

    with h5py.File(out / "sweep.h5", "r") as f:
        p = f["points"]
        nf, lam, err = p["nf"][:], p["lambda"][:], p["error_mean"][:]
    best = {}
    for n in np.unique(nf):
        ls = np.unique(lam[nf == n])
        means = [err[(nf == n) & (lam == l)].mean() for l in ls]
        best[int(n)] = float(ls[int(np.argmin(means))])

    pat = re.compile(r"nf(\d+)_lambda([0-9.e+-]+?)(?:_rep(\d+))?$")
    rows = []
    for d in sorted((out / "points").iterdir()):
        m = pat.match(d.name)
        if not m or int(m.group(3) or 0) != a.replicate or not (d / "checkpoint.h5").exists():
            continue
        n, l = int(m.group(1)), float(m.group(2))
        if n not in best or not best[n] / a.window <= l <= best[n] * a.window:
            continue
        res = work / f"{d.name}.h5"
        if not res.exists():  # resumable: a finished point is not measured again
            cmd = [a.denoise, "-c", str(d / "checkpoint.h5"), *data, "--subset", str(a.subset),
                   "--sigma", str(a.sigma), "--solver", "cd", "--stop-gap", str(a.stop_gap),
                   "--iterations", str(a.iterations), "--response", str(a.epsilon), "--progress", "0",
                   "-o", str(res) + ".part"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"measure_response: {d.name}: {r.stderr.strip().splitlines()[-1]}")
            pathlib.Path(str(res) + ".part").rename(res)
        with h5py.File(res, "r") as f:
            chi = f["images/response"][:]
            gap = f["images/gap"][:]
        rows.append((n, l, chi.mean(),
                     chi.std(ddof=1) / math.sqrt(len(chi)), gap.max()))
        print(f"nf {rows[-1][0]:4d}  lambda {rows[-1][1]:.4g}  chi {rows[-1][2]:.4g} "
              f"+- {rows[-1][3]:.2g}  max gap {rows[-1][4]:.2g}", flush=True)

    print(f"\nchi = <||a(x + eps eta) - a(x)||> / eps, eps {a.epsilon}, {a.subset} test images, "
          f"sigma {a.sigma}, codes certified to {a.stop_gap:g} by cd (cap {a.iterations}), "
          f"replicate {a.replicate}\n")
    print(f"| nf | lambda* (lowest error) | chi(lambda*) | g (fit ± se), lambda within "
          f"{a.window:g}x of lambda* | lambda measured |")
    print("|---:|---:|---:|---:|---|")
    for n in sorted({r[0] for r in rows}):
        rs = sorted(r for r in rows if r[0] == n)
        l = np.array([r[1] for r in rs])
        c = np.array([r[2] for r in rs])
        f = fit(l, c)
        at = c[np.argmin(abs(np.log(l / best[n])))]
        g = f"{f[0]:.3f} ± {f[1]:.3f}" if f else "n/a (< 3 lambda)"
        print(f"| {n} | {best[n]:.3g} | {at:.4g} | {g} | {', '.join(f'{x:.3g}' for x in l)} |")


if __name__ == "__main__":
    main()
