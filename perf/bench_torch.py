#!/usr/bin/python3
"""Peer benchmark: the same convolutional sparse coding as bench_lca / bench_gap in PyTorch
(Debian's python3-torch). Optional: runs only where python3-torch is installed
(perf/run_benchmarks.sh skips it otherwise).

--solver lca (bench_lca's peer): residual-form LCA per iteration: Phi a = conv_transpose2d,
r = x - Phi a, Phi^T r = conv2d, V <- e^{-dt/tau} V + (1 - e^{-dt/tau}) (Phi^T r + a),
a = max(V - lambda, 0), on random smooth images; prints image-iterations/s (median of --reps).

--solver fista (bench_gap's peer, time to a certified code): FISTA in float32 on a trained
dictionary (a kokkos-lca checkpoint, read with h5py) and real test images (a CIFAR-10 binary
batch or an IDX images file, each image standardised as the library does), step 1/(1.05 L)
with L from a power iteration, the gradient restart of O'Donoghue and Candes per image, and
the library's certificate (algorithm.md section 9) every --check-every iterations: a batch
stops once every image's relative duality gap is at most the level. Prints iterations,
seconds and images/s to each level, and the mean energy, which equals bench_gap's optimum
when both solve the same problem.

    OMP_NUM_THREADS=2 /usr/bin/python3 perf/bench_torch.py --shape 3x32x32 --nf 128
    OMP_NUM_THREADS=2 /usr/bin/python3 perf/bench_torch.py --solver fista -c w128.h5 \
        --data-path cifar/test_batch.bin --images 32 --levels 1e-2,1e-3
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
    ap.add_argument("--solver", choices=["lca", "fista"], default="lca")
    ap.add_argument("--checkpoint", "-c", help="fista: trained dictionary (lca-train)")
    ap.add_argument("--data-path", help="fista: CIFAR-10 binary batch or IDX images (.gz)")
    ap.add_argument("--images", type=int, default=32, help="fista: test images (the first N)")
    ap.add_argument("--levels", default="1e-2,1e-3", help="fista: certified gap levels")
    ap.add_argument("--cap", type=int, default=4000, help="fista: iteration cap")
    ap.add_argument("--check-every", type=int, default=10, help="fista: iterations per check")
    a = ap.parse_args()
    if a.solver == "fista":
        return certified(a)
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


def load_images(path, n, shape):
    """The first n images of a CIFAR-10 binary batch or an IDX file, standardised per image
    (mean 0, population sd 1, in double) as lca::normalize_images does."""
    import gzip
    import numpy as np
    c, h, w = shape
    m = c * h * w
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if path.endswith(".bin"):  # CIFAR-10: a label byte, then the R, G, B planes
        rec = np.frombuffer(raw, np.uint8).reshape(-1, 1 + m)[:n, 1:]
    else:  # IDX: a 16-byte header for images
        rec = np.frombuffer(raw[16:], np.uint8).reshape(-1, m)[:n]
    if rec.shape[0] < n:
        sys.exit(f"bench_torch: {path} holds {rec.shape[0]} images, not {n}")
    x = rec.astype(np.float64)
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    return torch.from_numpy(x.astype(np.float32)).view(n, c, h, w)


def certified(a):
    """FISTA to each certified gap level on a trained dictionary (the module docstring)."""
    import h5py
    if not a.checkpoint or not a.data_path:
        sys.exit("bench_torch: --solver fista needs --checkpoint and --data-path")
    threads = int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))
    torch.set_num_threads(threads)
    with h5py.File(a.checkpoint, "r") as f:
        W = torch.from_numpy(f["dictionary"][...].astype("float32"))
        at = dict(f.attrs)
    nf, c, k, _ = W.shape
    s, lam = int(at["stride"]), float(at["transfer_lambda"])
    nonneg = not int(at["transfer_symmetric"])
    pad = (k - s) // 2
    x_all = load_images(a.data_path, a.images, (c, int(at["height"]), int(at["width"])))
    levels = [float(v) for v in a.levels.split(",")]
    phi = lambda z: F.conv_transpose2d(z, W, stride=s, padding=pad)
    phit = lambda r: F.conv2d(r, W, stride=s, padding=pad)

    def lipschitz(iterations=50):
        g = torch.Generator().manual_seed(0)
        v = torch.rand(1, c, x_all.shape[2], x_all.shape[3], generator=g) - 0.5
        for _ in range(iterations):
            v = phi(phit(v))
            norm = float(v.norm())
            v /= norm
        return norm

    def solve(x, level):
        """Iterations until every image of x is certified at level (or the cap)."""
        L = 1.05 * lipschitz()
        B = x.shape[0]
        z = torch.zeros_like(phit(x))
        y, t = z.clone(), torch.ones(B, 1, 1, 1)
        prox = (lambda v: torch.clamp(v - lam / L, min=0)) if nonneg else \
            (lambda v: torch.sign(v) * torch.clamp(v.abs() - lam / L, min=0))
        it = 0
        while True:
            if it % a.check_every == 0 or it >= a.cap:
                r = x - phi(z)
                drive = phit(r).flatten(1)
                gmax = (drive if nonneg else drive.abs()).max(1).values.double()
                rr = r.flatten(1).double().pow(2).sum(1)
                rx = (r.flatten(1).double() * x.flatten(1).double()).sum(1)
                primal = 0.5 * rr + lam * z.flatten(1).double().abs().sum(1)
                sc = torch.where(gmax > lam, lam / gmax, torch.ones_like(gmax))
                dual = sc * rx - 0.5 * sc * sc * rr
                gap = torch.clamp((primal - dual) / primal, min=0)
                if bool((gap <= level).all()) or it >= a.cap:
                    return it, primal, z, int((gap > level).sum())
            z_new = prox(y + phit(x - phi(y)) / L)
            t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
            # Gradient restart: momentum off for images whose step turns back.
            back = ((y - z_new) * (z_new - z)).flatten(1).sum(1) > 0
            t_new = torch.where(back.view(-1, 1, 1, 1), torch.ones_like(t_new), t_new)
            beta = torch.where(back.view(-1, 1, 1, 1), torch.zeros_like(t), (t - 1) / t_new)
            y = z_new + beta * (z_new - z)
            z, t = z_new, t_new
            it += 1

    nb = a.images // a.batch
    if nb < 1:
        sys.exit("bench_torch: need at least one full batch of images")
    print(f"bench_torch fista: {a.checkpoint}, nf {nf}, {c}x{x_all.shape[2]}x{x_all.shape[3]}, "
          f"lambda {lam:g}, {nb * a.batch} images in batches of {a.batch}, {threads} threads, "
          f"torch {torch.__version__}")
    print("\n| level | iterations per batch, mean / max | seconds | images/s | images above "
          "| mean energy | % active |\n|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    with torch.no_grad():
        solve(x_all[:a.batch], levels[0])  # warm-up
        for level in levels:
            its, seconds, energy, active, above = [], 0.0, 0.0, 0.0, 0
            for kb in range(nb):
                x = x_all[kb * a.batch:(kb + 1) * a.batch].contiguous()
                t0 = time.perf_counter()
                it, primal, z, up = solve(x, level)
                seconds += time.perf_counter() - t0
                its.append(it)
                above += up
                energy += float(primal.sum())
                active += 100.0 * float((z != 0).float().mean()) * a.batch
            n = nb * a.batch
            row = {"level": level, "iterations_mean": sum(its) / nb, "iterations_max": max(its),
                   "seconds": seconds, "images_per_second": n / seconds, "above": above,
                   "mean_energy": energy / n, "percent_active": active / n}
            rows.append(row)
            print(f"| {level:g} | {row['iterations_mean']:.0f} / {row['iterations_max']} | "
                  f"{seconds:.2f} | {n / seconds:.1f} | {above} | {energy / n:.6g} | "
                  f"{active / n:.3f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"peer": "pytorch-fista", "torch_version": torch.__version__,
                       "checkpoint": a.checkpoint, "images": nb * a.batch, "batch": a.batch,
                       "threads": threads, "check_every": a.check_every, "results": rows,
                       "host": platform.node()}, f, indent=1)


if __name__ == "__main__":
    main()
