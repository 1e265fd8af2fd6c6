"""Shared helpers of the app-level tests: where the binaries are, tiny data sets, running."""
import gzip
import os
import struct
import subprocess
import tempfile
import zlib

import numpy as np

BIN = os.environ.get("LCA_BIN_DIR", "build/openmp/apps")
FMNIST = "/usr/share/datasets/fashion-mnist"
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
ENV = dict(os.environ, OMP_PROC_BIND="false", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def app(name):
    return os.path.join(BIN, name)


def run(args, timeout=300, env=None, check=True):
    """Runs a command; returns (returncode, stdout, stderr)."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env or ENV)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def write_idx(path, images, compress=False):
    """IDX3 unsigned-byte images (n, h, w)."""
    images = np.asarray(images, dtype=np.uint8)
    data = struct.pack(">IIII", 0x00000803, *images.shape) + images.tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


def write_png(path, pixels):
    """An 8-bit PNG of (h, w) gray or (h, w, 3) RGB pixels."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    header = struct.pack(">IIBBBBB", w, h, 8, 2 if pixels.ndim == 3 else 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                + chunk(b"IEND", b""))


def tmpdir():
    return tempfile.mkdtemp(prefix="lca-apps-")
