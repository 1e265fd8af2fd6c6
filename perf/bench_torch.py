#!/usr/bin/python3
"""Peer benchmark: the same convolutional LCA as bench_lca in PyTorch (Debian's python3-torch),
residual form per iteration: Phi a = conv_transpose2d, r = x - Phi a, Phi^T r = conv2d,
exponential update V <- e^{-dt/tau} V + (1 - e^{-dt/tau}) (Phi^T r + a), a = max(V - lambda, 0).
Prints image-iterations/s (median of --reps solves) and writes a JSON record. Optional: runs
only where python3-torch is installed (perf/run_benchmarks.sh skips it otherwise).

    OMP_NUM_THREADS=2 /usr/bin/python3 perf/bench_torch.py --shape 3x32x32 --nf 128
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit("bench_torch: python3-torch is not installed (apt-get install python3-torch)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="3x32x32", help="CxHxW")
    ap.add_argument("--nf", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--kernel", type=int, default=8)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--tau", type=float, default=100.0)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    c, h, w = (int(v) for v in a.shape.split("x"))
    k, s = a.kernel, a.stride
    pad = (k - s) // 2
    torch.manual_seed(42)
    threads = int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    torch.set_num_threads(threads)
    W = torch.randn(a.nf, c, k, k)
    W /= W.flatten(1).norm(dim=1).view(-1, 1, 1, 1)  # unit-norm features, as the library
    x = F.avg_pool2d(torch.randn(a.batch, c, h, w), 3, 1, 1)  # smooth images, normalised
    x = (x - x.mean((1, 2, 3), keepdim=True)) / x.std((1, 2, 3), keepdim=True)
    decay = torch.exp(torch.tensor(-1.0 / a.tau))

    def solve():
        V = torch.zeros(a.batch, a.nf, h // s, w // s)
        act = torch.zeros_like(V)
        for _ in range(a.iterations):
            r = x - F.conv_transpose2d(act, W, stride=s, padding=pad)
            drive = F.conv2d(r, W, stride=s, padding=pad)
            V = decay * V + (1 - decay) * (drive + act)
            act = torch.clamp(V - a.lam, min=0)
        return act

    with torch.no_grad():
        solve()  # warm-up
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            act = solve()
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    rate = a.batch * a.iterations / t
    active = 100.0 * float((act != 0).float().mean())
    print(f"bench_torch: {a.shape} nf {a.nf} batch {a.batch} {a.iterations} iterations, "
          f"{threads} threads, torch {torch.__version__}: {rate:.0f} image-iterations/s "
          f"({active:.1f} % active)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"peer": "pytorch", "torch_version": torch.__version__, "shape": a.shape,
                       "nf": a.nf, "batch": a.batch, "iterations": a.iterations,
                       "threads": threads, "seconds_median": t, "image_iterations_per_s": rate,
                       "percent_active": active, "host": platform.node(),
                       "cpu": platform.processor()}, f, indent=1)


if __name__ == "__main__":
    main()
