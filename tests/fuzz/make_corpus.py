#!/usr/bin/python3
"""Writes the fuzzers' seed corpus, tests/fuzz/corpus/<target>/ (small valid and invalid
inputs in each target's input layout; see the fuzz_<target>.cpp headers). The files are
committed; rerun this after changing a layout: /usr/bin/python3 tests/fuzz/make_corpus.py
Regression inputs for fixed findings are committed beside them as regress-* and are not
written here."""
import gzip
import os
import struct
import sys
import zlib

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def save(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- CIFAR-10: records of label byte + 3x32x32 ------------------------------------------
rng = np.random.default_rng(1)
record = bytes([7]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()
save("cifar10", "one-record.bin", record)
save("cifar10", "bad-label.bin", bytes([10]) + record[1:])
save("cifar10", "truncated.bin", record[:200])


# ---- IDX: [flags][labels length (LE16), labels if flags & 1][images] --------------------
def idx_images(n, h, w, magic=0x803, extra=b""):
    return struct.pack(">IIII", magic, n, h, w) + bytes(range(n * h * w)) + extra


def idx_labels(n):
    return struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))


def idx_input(flags, images, labels=b""):
    head = bytes([flags]) + (struct.pack("<H", len(labels)) + labels if flags & 1 else b"")
    return head + images


save("idx", "plain.bin", idx_input(0, idx_images(3, 4, 5)))
save("idx", "plain-labels.bin", idx_input(1, idx_images(3, 4, 5), idx_labels(3)))
save("idx", "gz.bin", idx_input(2, idx_images(2, 3, 3)))
save("idx", "gz-labels.bin", idx_input(3, idx_images(2, 3, 3), idx_labels(2)))
save("idx", "gz-raw.bin", idx_input(0, gzip.compress(idx_images(2, 4, 4), mtime=0)))
save("idx", "label-count-differs.bin", idx_input(1, idx_images(3, 2, 2), idx_labels(4)))
save("idx", "truncated.bin", idx_input(0, idx_images(4, 4, 4)[:40]))
save("idx", "trailing-data.bin", idx_input(0, idx_images(1, 2, 2, extra=b"xx")))
save("idx", "bad-magic.bin", idx_input(0, idx_images(1, 2, 2, magic=0x801)))
save("idx", "huge-header.bin", idx_input(0, struct.pack(">IIII", 0x803, 0xFFFFFFFF, 4096, 4096)))
save("idx", "zero-dim.bin", idx_input(0, struct.pack(">IIII", 0x803, 1, 0, 4)))


# ---- PNG: [flags][list length][list text][png] ------------------------------------------
def chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload +
            struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png(w, h, color, depth, rows, interlace=0, palette=None, idat=None):
    """rows: the filtered scanlines (filter byte 0 + packed samples) already joined."""
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    out += chunk(b"IDAT", zlib.compress(rows) if idat is None else idat) + chunk(b"IEND", b"")
    return out


def scanlines(h, row_bytes, seed):
    r = np.random.default_rng(seed)
    return b"".join(b"\0" + r.integers(0, 256, row_bytes, dtype=np.uint8).tobytes() for _ in range(h))


def png_input(flags, list_text, data):
    assert len(list_text) < 256
    return bytes([flags, len(list_text)]) + list_text + data


gray = png(4, 4, 0, 8, scanlines(4, 4, 2))
rgb = png(5, 3, 2, 8, scanlines(3, 15, 3))
save("png", "gray-list-gray.bin", png_input(0, b"img.png\n", gray))
save("png", "gray-list-rgb.bin", png_input(1, b"# a list\n\n  img.png  \r\n./img.png\n", gray))
save("png", "rgb-list-gray.bin", png_input(0, b"img.png\n", rgb))
save("png", "rgba16.bin", png_input(1, b"img.png\n", png(2, 2, 6, 16, scanlines(2, 16, 4))))
save("png", "gray-alpha.bin", png_input(0, b"img.png\n", png(3, 2, 4, 8, scanlines(2, 6, 5))))
save("png", "gray-1bit.bin", png_input(1, b"img.png\n", png(9, 2, 0, 1, scanlines(2, 2, 6))))
save("png", "palette-4bit.bin",
     png_input(1, b"img.png\n", png(4, 2, 3, 4, b"\0\x01\x23\0\x10\x32", palette=bytes(range(12)))))
# Adam7 interlaced 2x2 gray: passes 1 (x0,y0), 6 (x1,y0), 7 (row 1).
save("png", "interlaced.bin", png_input(0, b"img.png\n", png(2, 2, 0, 8, b"\0\x10" + b"\0\x20" + b"\0\x30\x40", interlace=1)))
save("png", "truncated-idat.bin", png_input(0, b"img.png\n", png(8, 8, 0, 8, b"", idat=zlib.compress(scanlines(8, 8, 7))[:20])))
save("png", "bad-crc.bin", png_input(0, b"img.png\n", gray[:29] + b"\0\0\0\0" + gray[33:]))
save("png", "not-png.bin", png_input(0, b"img.png\n", b"GIF89a not a png"))
save("png", "missing-file.bin", png_input(0, b"nothere.png\n", gray))
# A header promising 100000 x 100000 pixels (valid CRCs) in a file of a few dozen bytes: made
# read_png allocate 10 GB (an out-of-memory finding; fixed, now a regression input).
save("png", "huge-header.bin", png_input(0, b"img.png\n", png(100000, 100000, 0, 8, b"\0\0")))
save("png", "empty-list.bin", png_input(0, b"# only a comment\n\n", gray))

# ---- TOML config of lca-train -----------------------------------------------------------
inputs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "inputs")
with open(os.path.join(inputs, "fashion-mnist.toml"), "rb") as f:
    save("config", "fashion-mnist.toml", f.read())
save("config", "vertices.toml", b"nf = 8\nkernel = 4\nstride = 2\nvthresh = 0.3\namin = 0\n"
     b"amax = 1e308\nashift = 0.1\nvwidth = 0.05\ndata = 'idx'\ndata-path = \"x.idx\"\n")
save("config", "bad-values.toml", b"nf = -3\nlambda = nan\nthreshold = \"sideways\"\ntau = 0\n")
save("config", "types.toml", b"[section]\nnf = \"many\"\nsizes = [1, 2, 3]\nshuffle = maybe\n"
     b"eta = 1e999\nbatch = 99999999999999999999\n'quoted key' = 'v'\nx.y = 1\n")
save("config", "flags.toml", b"help = true\nconfig = \"other.toml\"\ninject-fault = 1\n")
save("config", "strings.toml", b'output = "a\\tb\\u00e9\\"c"\nresume = \'\'\'multi\nline\'\'\'\n'
     b"subset = 0x10\ncheckpoint-every = +5\nprogress = -0.0\n")


# ---- HDF5 checkpoint: the bytes choose the file's contents (fuzz_checkpoint.cpp) ---------
# All zeros keeps every attribute and dataset valid; random bytes alter some of them.
save("checkpoint", "valid.bin", bytes(16))
for seed in range(4):
    save("checkpoint", f"random-{seed}.bin", np.random.default_rng(100 + seed).integers(0, 256, 96, dtype=np.uint8).tobytes())

total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(ROOT) for f in fs)
print(f"corpus: {total} bytes", file=sys.stderr)
