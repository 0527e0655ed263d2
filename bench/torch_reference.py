#!/usr/bin/python3
"""PyTorch reference for the nn.h Fashion-MNIST examples (build/fashion_mlp, build/fashion_cnn).

Same models, initialisation, optimiser and batch size as the C examples.  Measure it the fair way
(see shared/REFERENCE.md): one core, OpenBLAS on its own best kernel, Debian's torch:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        /usr/bin/python3 bench/torch_reference.py --model cnn --epochs 1

Timed (train_s): the training loop only -- forward, backward and Adam step for every batch of every
epoch.  Loading, float conversion, per-epoch shuffling (done by indexing a preloaded tensor before
each epoch's timed loop) and evaluation are outside it.  infer_s: the 10k test images at batch 32,
model.eval() under torch.no_grad().  A few warm-up steps run first on a throw-away copy of the
model.  Progress goes to stderr (with the loop's CPU time: far below the wall time means core 0 was
shared, and an sgemm machine check to compare with REFERENCE.md); stdout gets exactly one line:

    RESULT test_acc=0.8630 train_s=11.400 epochs=1 infer_s=1.000 s_per_epoch=11.400 framework=torch threads=1 model=cnn

Layout: NCHW by default (as REFERENCE.md measured); --channels-last runs the CNN in PyTorch's
channels_last format, NHWC in memory like nn.h, which is PyTorch's faster CPU path (on the Zen 5
here about 25% less training time and half the inference time); the line then ends with
memory_format=channels_last.
"""
import argparse
import copy
import ctypes
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- data ------------------------------------------------------------------------------------

def read_idx(path, magic, ndim):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 + 4 * ndim:
        sys.exit(f"{path}: too short for an IDX header")
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        sys.exit(f"{path}: bad IDX magic {got:#x}, expected {magic:#x} (gunzipped file?)")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(raw) - off != n:
        sys.exit(f"{path}: {len(raw) - off} data bytes, header says {dims} = {n}")
    return np.frombuffer(raw, dtype=np.uint8, offset=off).reshape(dims)


def load_split(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte"), 0x00000803, 3)
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte"), 0x00000801, 1)
    if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28):
        sys.exit(f"{data_dir}/{prefix}: images {x.shape} and labels {y.shape} do not match")
    if y.max() > 9:
        sys.exit(f"{data_dir}/{prefix}: label {y.max()} out of range")
    return x, y


def to_tensors(x, y):
    # uint8/255 -> float32, NCHW (N, 1, 28, 28); the MLP flattens in forward (a view).
    xt = torch.from_numpy(x.astype(np.float32) / np.float32(255.0)).unsqueeze(1).contiguous()
    yt = torch.from_numpy(y.astype(np.int64))
    return xt, yt


# ---- models ----------------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.reshape(x.shape[0], 784)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)

    def init_layers(self):  # (layer, followed by ReLU?)
        return [(self.fc1, True), (self.fc2, True), (self.fc3, False)]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(1600, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 32 x 13 x 13
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 64 x 5 x 5
        x = torch.flatten(x, 1)                       # 1600
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    def init_layers(self):
        return [(self.conv1, True), (self.conv2, True), (self.fc1, True), (self.fc2, False)]


def fans(w):
    # Linear: (out, in).  Conv: (out_c, in_c, kh, kw): fan_in = in_c*kh*kw, fan_out = out_c*kh*kw.
    receptive = 1
    for d in w.shape[2:]:
        receptive *= d
    return w.shape[1] * receptive, w.shape[0] * receptive


def init_like_nn_h(model):
    """He uniform before ReLU, Glorot uniform for the (softmax) output layer, zero biases."""
    with torch.no_grad():
        for layer, relu in model.init_layers():
            fan_in, fan_out = fans(layer.weight)
            limit = math.sqrt(6.0 / fan_in) if relu else math.sqrt(6.0 / (fan_in + fan_out))
            layer.weight.uniform_(-limit, limit)
            layer.bias.zero_()


# ---- environment report ----------------------------------------------------------------------

def openblas_corename():
    """Kernel OpenBLAS picked in this process (it reads OPENBLAS_CORETYPE once), or None."""
    try:
        with open("/proc/self/maps") as f:
            libs = {ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln}
        for lib in sorted(libs):
            fn = getattr(ctypes.CDLL(lib), "openblas_get_corename", None)
            if fn:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    except OSError:
        pass
    return None


def sgemm_gflops(n=1024, reps=10):
    """Machine check for the log: best-of-reps torch.mm n x n x n (OpenBLAS), GFLOP/s."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


# ---- main ------------------------------------------------------------------------------------

def evaluate(model, x, y, batch):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["mlp", "cnn"], required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--channels-last", action="store_true",
                    help="CNN: model and inputs in torch.channels_last (NHWC in memory, as nn.h); "
                         "PyTorch's faster CPU path, opt-in.  Default: NCHW as in REFERENCE.md")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    shuffle_gen = torch.Generator().manual_seed(args.seed)

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            log(f"warning: {var}={os.environ[var]} is set: OpenBLAS is handicapped, the reference is "
                "not fair (run under env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)")
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):
        log(f"warning: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} "
            f"(expected {args.threads})")

    xtr, ytr = load_split(args.data, "train")
    xte, yte = load_split(args.data, "t10k")
    if args.limit > 0:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    xtr, ytr = to_tensors(xtr, ytr)
    xte, yte = to_tensors(xte, yte)
    n = xtr.shape[0]

    model = MLP() if args.model == "mlp" else CNN()
    init_like_nn_h(model)
    channels_last = args.channels_last and args.model == "cnn"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        xtr = xtr.contiguous(memory_format=torch.channels_last)
        xte = xte.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    nparams = sum(p.numel() for p in model.parameters())
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, openblas core "
        f"{openblas_corename()}, mkldnn {torch.backends.mkldnn.is_available()}, "
        f"{'channels_last' if channels_last else 'NCHW'}, model {args.model} ({nparams} params), train {n}, test {xte.shape[0]}, batch {args.batch}")

    log(f"machine check: sgemm 1024 {sgemm_gflops():.0f} GFLOP/s on this core "
        "(REFERENCE.md, one Zen 5 core, OpenBLAS best kernel: 234)")

    # Warm-up on a throw-away copy (the real model and optimiser are untouched).
    wm = copy.deepcopy(model)
    wopt = torch.optim.Adam(wm.parameters(), lr=args.lr)
    wm.train()
    for i in range(3):
        xb, yb = xtr[i * args.batch:(i + 1) * args.batch], ytr[i * args.batch:(i + 1) * args.batch]
        wopt.zero_grad(set_to_none=True)
        F.cross_entropy(wm(xb), yb).backward()
        wopt.step()
    del wm, wopt

    train_s = 0.0
    for epoch in range(1, args.epochs + 1):
        # Shuffle and batch outside the timed region: one gather, then views.
        perm = torch.randperm(n, generator=shuffle_gen)
        xs, ys = xtr[perm], ytr[perm]
        if channels_last:
            xs = xs.contiguous(memory_format=torch.channels_last)
        batches = [(xs[i:i + args.batch], ys[i:i + args.batch]) for i in range(0, n, args.batch)]
        losses = []
        model.train()

        c0, t0 = time.process_time(), time.perf_counter()
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0

        train_s += dt
        del batches, xs, ys
        log(f"epoch {epoch}/{args.epochs}: loss {torch.stack(losses).mean().item():.4f}, {dt:.3f} s "
            f"({n / dt:.0f} img/s), cpu {cpu:.3f} s"
            + (" -- warning: the core was shared, the time is not clean" if cpu < 0.9 * dt else ""))

    test_acc = evaluate(model, xte, yte, 1000)

    # Inference timing: 10k test images at batch 32, after one warm-up batch.
    model.eval()
    test_batches = [xte[i:i + 32] for i in range(0, xte.shape[0], 32)]
    with torch.no_grad():
        model(test_batches[0])
        t0 = time.perf_counter()
        for xb in test_batches:
            model(xb)
        infer_s = time.perf_counter() - t0
    log(f"test accuracy {test_acc:.4f}; inference {xte.shape[0]} images at batch 32: {infer_s:.3f} s")

    print(f"RESULT test_acc={test_acc:.4f} train_s={train_s:.3f} epochs={args.epochs} "
          f"infer_s={infer_s:.3f} s_per_epoch={train_s / args.epochs:.3f} framework=torch "
          f"threads={args.threads} model={args.model}"
          + (" memory_format=channels_last" if channels_last else ""), flush=True)


if __name__ == "__main__":
    main()
