#!/usr/bin/env python3
"""The same measurements as `digits bench --mode speed`, for PyTorch (CPU) and numpy.

784-128-10 (ReLU), softmax cross-entropy, SGD lr 0.05 momentum 0.9 weight decay 1e-4 (constant),
batch 64, all 60,000 MNIST training images per epoch, pixels / 255. Not a dependency of the
project: run it from a virtualenv outside the repository, e.g.

    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch numpy
    /work/venv-torch/bin/python scripts/bench_torch.py --data ../shared/data/mnist --threads 2
"""
import argparse
import gzip
import json
import os
import statistics
import time

np = None  # imported in main(), after the BLAS thread count is set

TRAIN_FLOPS = 2 * (784 * 128 + 128 * 10) + 2 * 784 * 128 + 4 * 128 * 10
INFER_FLOPS = 2 * (784 * 128 + 128 * 10)


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(d):
    def f(name):
        for p in (os.path.join(d, name), os.path.join(d, name + ".gz")):
            if os.path.exists(p):
                return idx(p)
        raise SystemExit(f"{name} not found in {d}")

    return (
        f("train-images-idx3-ubyte").reshape(-1, 784),
        f("train-labels-idx1-ubyte"),
        f("t10k-images-idx3-ubyte").reshape(-1, 784),
        f("t10k-labels-idx1-ubyte"),
    )


def row(what, seconds, images, flops):
    g = images * flops / seconds / 1e9
    print(f"{what:<44} {seconds:>10.4f} {images / seconds:>12.0f} {g:>12.2f}")


def header(name):
    print(name)
    print(f"{'measurement':<44} {'seconds':>10} {'images/s':>12} {'GFLOP/s':>12}")


def bench_torch(xtr, ytr, xte, yte, args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    header(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  (torch.set_num_threads({args.threads}))", flush=True)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    X = torch.from_numpy(xtr.astype(np.float32) / 255.0)
    Y = torch.from_numpy(ytr.astype(np.int64))
    n = len(Y)
    times = []
    for _ in range(args.epochs):
        perm = torch.randperm(n)
        start = time.perf_counter()
        for b in range(0, n, args.batch):
            i = perm[b : b + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[i]), Y[i])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    Xte = torch.from_numpy(xte.astype(np.float32) / 255.0)
    with torch.no_grad():
        acc = (model(Xte).argmax(1).numpy() == yte).mean()
    row(f"train epoch, batch {args.batch} (median of {len(times)})", statistics.median(times), n, TRAIN_FLOPS)
    print("  epochs: " + " ".join(f"{t:.3f}" for t in times))
    print(f"  test accuracy after {args.epochs} epochs: {100 * acc:.2f}%")
    with torch.inference_mode():
        single = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for k in range(len(xte)):
                model(torch.from_numpy(xte[k].astype(np.float32) / 255.0)).argmax()
            single.append(time.perf_counter() - start)
        row("infer one at a time (u8 -> logits)", statistics.median(single), len(xte), INFER_FLOPS)
        batched = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model(torch.from_numpy(xte.astype(np.float32) / 255.0))
            batched.append(time.perf_counter() - start)
        row(f"infer batch of {len(xte)}", statistics.median(batched), len(xte), INFER_FLOPS)
    result("torch", times, acc, single, batched, len(xte))


def result(name, times, acc, single, batched, images):
    """One machine-readable line for `digits bench --mode speed --compare`."""
    print("RESULT " + json.dumps({
        "name": name,
        "epoch_seconds": statistics.median(times),
        "test_accuracy": float(acc),
        "single_images_per_second": images / statistics.median(single),
        "batched_images_per_second": images / statistics.median(batched),
    }), flush=True)


def bench_numpy(xtr, ytr, xte, yte, args):
    header(f"numpy {np.__version__}, BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}")
    rng = np.random.default_rng(args.seed)
    w1 = (rng.standard_normal((784, 128)) * np.sqrt(2 / 784)).astype(np.float32)
    b1 = np.zeros(128, np.float32)
    w2 = (rng.standard_normal((128, 10)) * np.sqrt(1 / 128)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    params = [w1, b1, w2, b2]
    vel = [np.zeros_like(p) for p in params]
    X = xtr.astype(np.float32) / 255.0
    n = len(ytr)
    lr, mu, wd = np.float32(args.lr), np.float32(0.9), np.float32(1e-4)
    times = []
    for _ in range(args.epochs):
        perm = rng.permutation(n)
        start = time.perf_counter()
        for b in range(0, n, args.batch):
            i = perm[b : b + args.batch]
            x, y = X[i], ytr[i]
            pre = x @ w1 + b1
            h = np.maximum(pre, 0)
            z = h @ w2 + b2
            z -= z.max(1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(y)), y] -= 1
            dz = p / len(y)
            gw2 = h.T @ dz
            gb2 = dz.sum(0)
            dh = (dz @ w2.T) * (pre > 0)
            gw1 = x.T @ dh
            gb1 = dh.sum(0)
            for k, (prm, g) in enumerate(zip(params, [gw1, gb1, gw2, gb2])):
                if k % 2 == 0:
                    g = g + wd * prm
                vel[k] = mu * vel[k] + g
                prm -= lr * vel[k]
        times.append(time.perf_counter() - start)
    xt = xte.astype(np.float32) / 255.0
    acc = ((np.maximum(xt @ w1 + b1, 0) @ w2 + b2).argmax(1) == yte).mean()
    row(f"train epoch, batch {args.batch} (median of {len(times)})", statistics.median(times), n, TRAIN_FLOPS)
    print("  epochs: " + " ".join(f"{t:.3f}" for t in times))
    print(f"  test accuracy after {args.epochs} epochs: {100 * acc:.2f}%")
    single = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for k in range(len(xte)):
            (np.maximum((xte[k].astype(np.float32) / 255.0) @ w1 + b1, 0) @ w2 + b2).argmax()
        single.append(time.perf_counter() - start)
    row("infer one at a time (u8 -> logits)", statistics.median(single), len(xte), INFER_FLOPS)
    batched = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        np.maximum((xte.astype(np.float32) / 255.0) @ w1 + b1, 0) @ w2 + b2
        batched.append(time.perf_counter() - start)
    row(f"infer batch of {len(xte)}", statistics.median(batched), len(xte), INFER_FLOPS)
    result("numpy", times, acc, single, batched, len(xte))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("MNIST_DIR", "data/mnist"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["torch", "numpy"], default=None)
    args = ap.parse_args()
    # numpy's BLAS uses every core unless told before it is loaded: the same count as torch.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    global np
    import numpy

    np = numpy
    xtr, ytr, xte, yte = load(args.data)
    if args.only != "numpy":
        bench_torch(xtr, ytr, xte, yte, args)
    if args.only != "torch":
        bench_numpy(xtr, ytr, xte, yte, args)


if __name__ == "__main__":
    main()
