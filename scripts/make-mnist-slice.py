#!/usr/bin/env python3
"""Writes testkit/data/mnist-slice: the first 1000 training and 500 test images of the real
MNIST (with their labels) as the four gzipped IDX files of a data directory.

usage: scripts/make-mnist-slice.py MNIST_DIR
"""
import gzip, os, struct, sys

TRAIN, TEST = 1000, 500
src = sys.argv[1]
out = os.path.join(os.path.dirname(__file__), "..", "testkit", "data", "mnist-slice")
os.makedirs(out, exist_ok=True)

def read(name):
    path = os.path.join(src, name + ".gz")
    return gzip.open(path).read() if os.path.exists(path) else open(os.path.join(src, name), "rb").read()

def write(name, data):
    # mtime=0: the same input gives the same bytes.
    with open(os.path.join(out, name + ".gz"), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as g:
            g.write(data)

for prefix, n in (("train", TRAIN), ("t10k", TEST)):
    images = read(f"{prefix}-images-idx3-ubyte")
    labels = read(f"{prefix}-labels-idx1-ubyte")
    write(f"{prefix}-images-idx3-ubyte", struct.pack(">IIII", 2051, n, 28, 28) + images[16:16 + n * 784])
    write(f"{prefix}-labels-idx1-ubyte", struct.pack(">II", 2049, n) + labels[8:8 + n])
