#!/usr/bin/python3
"""PyTorch reference for the nn.h Fashion-MNIST examples (build/fashion_mlp, build/fashion_cnn, build/autoencoder).

Same models, initialisation, optimiser and batch size as the C examples.  Measure it the fair way
(see shared/REFERENCE.md): one core, OpenBLAS on its own best kernel, Debian's torch:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        /usr/bin/python3 bench/torch_reference.py --model cnn --epochs 1

Timed (train_s): the training loop only -- forward, backward and Adam step for every batch of every
epoch.  Loading, float conversion, per-epoch shuffling (done by indexing a preloaded tensor before
each epoch's timed loop) and evaluation are outside it.  infer_s: the 10k test images at batch 32,
model.eval() under torch.no_grad().  A few warm-up steps run first on a throw-away copy of the
model.  --threads N (default 1): torch.set_num_threads(N), run with OPENBLAS_NUM_THREADS=1 (torch's
own threads split the work; OpenBLAS threads under them would oversubscribe the cores) and taskset
on N cores, as `make compare THREADS=N` does.  Progress goes to stderr (with the loop's CPU time: far below the wall time means core 0 was
shared, and an sgemm machine check to compare with REFERENCE.md); stdout gets exactly one line:

    RESULT test_acc=0.8630 train_s=11.400 epochs=1 infer_s=1.000 s_per_epoch=11.400 framework=torch threads=1 model=cnn

--model ae is the dense autoencoder of examples/autoencoder.c (784-128-32-128-784: ReLU, linear code,
ReLU, sigmoid output; MSE on pixels in [0,1]; input = target = image/255; same initialisation rule,
Adam, warm-up and timed region as above; no inference timing) and prints instead

    RESULT test_mse=0.0109 train_s=10.500 epochs=5 s_per_epoch=2.100 framework=torch threads=1 model=ae

where test_mse is the mean squared error over all pixels of the 10k test images.

--model lstm is the character-level language model of examples/char_rnn.c on the same text
(--text FILE, default every regular file of /usr/share/common-licenses, symlinks skipped,
concatenated in name order; vocabulary = the distinct bytes in increasing order; first 90% trains,
last 10% validates): one-hot input -> nn.LSTM(vocab, --hidden 128, batch_first) -> Linear(vocab),
cross-entropy at every step, Adam 2e-3 (unless --lr), clip_grad_norm_ 5, batch 32 random windows
of --seq 64, --steps 2000 (default).  Initialisation as nn.h: LSTM weights PyTorch's
U(-1/sqrt(H), 1/sqrt(H)) with zero biases, Linear Glorot uniform, zero bias.  Every 200 steps (and
after the last) the whole validation text is read as one stream in chunks of --seq, the state
carried across chunks, batch 1; bits per character = mean -log2 p(next char); the best is
reported.  Each step (one-hot, forward, backward, clipping, Adam) is timed alone; ms_per_step is
the median of the per-step means over blocks of 50 steps after 20 warm-up steps, as
build/char_rnn reports it:

    RESULT val_bpc=2.7000 ms_per_step=17.300 steps=2000 train_s=34.600 framework=torch threads=1 model=lstm

Layout: NCHW by default (as REFERENCE.md measured); --channels-last runs the CNN in PyTorch's
channels_last format, NHWC in memory like nn.h, which is PyTorch's faster CPU path (on the Zen 5
here about 25% less training time and half the inference time); the line then ends with
memory_format=channels_last.

--int8 (mlp, cnn) adds PyTorch's post-training static quantization of the trained model, eager mode,
as issue 12 compares it with nn.h's nn_quantize: torch.backends.quantized.engine = 'onednn' (the
first of onednn, fbgemm, x86, qnnpack in torch.backends.quantized.supported_engines; the line says
which ran), a copy of the model with QuantStub/DeQuantStub and module ReLUs, conv+ReLU and
linear+ReLU fused (fuse_modules), get_default_qconfig(engine), prepare, calibration on the first 1000
training images (unshuffled, batch 32: the images nn.h's examples calibrate with), convert.  The line
gains int8_acc= (test set), int8_infer_s= (the 10k test images at batch 32, timed as infer_s: one
warm-up batch, then every batch), b1_ms= and int8_b1_ms= (ms per image predicting the first 1000
test images one at a time after one warm-up image, float and int8: the keys of build/fashion_cnn
--int8) and int8_engine=.
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


class AE(nn.Module):
    """Dense autoencoder: 784-128 ReLU, 128-32 linear (the code), 32-128 ReLU, 128-784 sigmoid."""

    def __init__(self, code=32):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, code)
        self.fc3 = nn.Linear(code, 128)
        self.fc4 = nn.Linear(128, 784)

    def forward(self, x):
        x = x.reshape(x.shape[0], 784)
        z = self.fc2(F.relu(self.fc1(x)))
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def init_layers(self):  # He before ReLU, Glorot for the linear code and the sigmoid output
        return [(self.fc1, True), (self.fc2, False), (self.fc3, True), (self.fc4, False)]


def fans(w):
    # Linear: (out, in).  Conv: (out_c, in_c, kh, kw): fan_in = in_c*kh*kw, fan_out = out_c*kh*kw.
    receptive = 1
    for d in w.shape[2:]:
        receptive *= d
    return w.shape[1] * receptive, w.shape[0] * receptive


def init_like_nn_h(model):
    """He uniform before ReLU, Glorot uniform for the other layers (softmax / linear / sigmoid), zero biases."""
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


# ---- --int8: post-training static quantization (eager mode) -----------------------------------

INT8_CALIB = 1000  # calibration images: as examples/common/args.h ex_int8 (nn_quantize)
INT8_ENGINES = ("onednn", "fbgemm", "x86", "qnnpack")  # preference order


class QuantCNN(nn.Module):
    """The trained CNN rebuilt from modules (eager-mode quantization fuses and swaps modules, not
    F.relu calls), between a QuantStub and a DeQuantStub; the layers are copies of the trained ones."""

    def __init__(self, m):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv1, self.relu1, self.pool1 = copy.deepcopy(m.conv1), nn.ReLU(), nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = copy.deepcopy(m.conv2), nn.ReLU(), nn.MaxPool2d(2)
        self.fc1, self.relu3 = copy.deepcopy(m.fc1), nn.ReLU()
        self.fc2 = copy.deepcopy(m.fc2)
        self.dequant = torch.ao.quantization.DeQuantStub()

    fuse = [["conv1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"]]

    def forward(self, x):
        x = self.quant(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.relu3(self.fc1(x))
        return self.dequant(self.fc2(x))


class QuantMLP(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.fc1, self.relu1 = copy.deepcopy(m.fc1), nn.ReLU()
        self.fc2, self.relu2 = copy.deepcopy(m.fc2), nn.ReLU()
        self.fc3 = copy.deepcopy(m.fc3)
        self.dequant = torch.ao.quantization.DeQuantStub()

    fuse = [["fc1", "relu1"], ["fc2", "relu2"]]

    def forward(self, x):
        x = self.quant(x.reshape(x.shape[0], 784))
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        return self.dequant(self.fc3(x))


def quantize_int8(model, model_name, xcalib, batch, channels_last):
    """(int8 model, engine): post-training static quantization of a copy of the trained model."""
    supported = torch.backends.quantized.supported_engines
    engine = next((e for e in INT8_ENGINES if e in supported), None)
    if engine is None:
        sys.exit(f"--int8: no quantized engine among {supported}")
    if engine != "onednn":
        log(f"warning: int8: onednn is not among {supported}; using {engine}")
    torch.backends.quantized.engine = engine
    qm = {"cnn": QuantCNN, "mlp": QuantMLP}[model_name](model)
    qm.eval()
    torch.ao.quantization.fuse_modules(qm, qm.fuse, inplace=True)
    qm.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    torch.ao.quantization.prepare(qm, inplace=True)
    with torch.no_grad():
        for i in range(0, xcalib.shape[0], batch):
            qm(xcalib[i:i + batch])
    torch.ao.quantization.convert(qm, inplace=True)
    if channels_last:
        qm = qm.to(memory_format=torch.channels_last)
    return qm, engine


def time_batches(model, batches):
    """Seconds to run every batch through model (eval, no_grad) after one warm-up batch."""
    model.eval()
    with torch.no_grad():
        model(batches[0])
        t0 = time.perf_counter()
        for xb in batches:
            model(xb)
        return time.perf_counter() - t0


def batch1_ms(model, x, n=1000):
    """ms per image predicting the first n images of x one at a time (after one warm-up image)."""
    images = [x[i:i + 1] for i in range(min(n, x.shape[0]))]
    return 1e3 * time_batches(model, images) / len(images)


# ---- main ------------------------------------------------------------------------------------

def loss_fn(model_name, out, xb, yb):
    """Training loss: cross-entropy for the classifiers, pixel MSE against the input for the autoencoder."""
    if model_name == "ae":
        return F.mse_loss(out, xb)
    return F.cross_entropy(out, yb)


def evaluate_mse(model, x, batch):
    model.eval()
    se = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            xb = x[i:i + batch]
            se += ((model(xb) - xb) ** 2).sum().item()
    return se / x.numel()


def evaluate(model, x, y, batch):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


# ---- --model lstm: character-level language model (examples/char_rnn.c) ---------------------

LSTM_DEFAULT_DIR = "/usr/share/common-licenses"
LSTM_WARMUP, LSTM_BLOCK = 20, 50  # ms_per_step: median over blocks of 50 steps after 20 warm-up steps


def load_text(path):
    """The bytes of path, or of every regular file (not symlinks) in the default directory, by name."""
    if path:
        with open(path, "rb") as f:
            return f.read(), path, 1
    names = sorted(n for n in os.listdir(LSTM_DEFAULT_DIR)
                   if os.path.isfile(os.path.join(LSTM_DEFAULT_DIR, n))
                   and not os.path.islink(os.path.join(LSTM_DEFAULT_DIR, n)))
    data = b""
    for n in names:
        with open(os.path.join(LSTM_DEFAULT_DIR, n), "rb") as f:
            data += f.read()
    return data, LSTM_DEFAULT_DIR, len(names)


class CharLSTM(nn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.vocab = vocab
        self.lstm = nn.LSTM(vocab, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, vocab)
        with torch.no_grad():  # as nn.h: LSTM weights U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's), biases zero
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_hh_l0.zero_()
            limit = math.sqrt(6.0 / (hidden + vocab))  # Glorot uniform before the softmax
            self.fc.weight.uniform_(-limit, limit)
            self.fc.bias.zero_()

    def forward(self, ids, state=None):
        h, state = self.lstm(F.one_hot(ids, self.vocab).float(), state)
        return self.fc(h), state


def lstm_val_bpc(model, val, seq):
    """Bits per character over the validation stream, read in chunks of seq with the state carried."""
    model.eval()
    bits, count, state = 0.0, 0, None
    with torch.no_grad():
        for pos in range(0, val.shape[0] - 1, seq):
            n = min(seq, val.shape[0] - 1 - pos)
            x = val[pos:pos + n].unsqueeze(0)
            y = val[pos + 1:pos + 1 + n]
            logits, state = model(x, state)
            logp = F.log_softmax(logits[0], dim=1)
            bits -= logp.gather(1, y.unsqueeze(1)).sum().item() / math.log(2.0)
            count += n
    model.train()
    return bits / count


def run_lstm(args):
    data, source, nfiles = load_text(args.text)
    if len(data) < 2:
        sys.exit(f"{source}: the text has {len(data)} bytes; a language model needs at least 2 characters")
    vocab = sorted(set(data))
    if len(vocab) < 2:
        sys.exit(f"{source}: the text uses a single distinct character; there is nothing to predict")
    lut = np.zeros(256, dtype=np.int64)
    lut[vocab] = np.arange(len(vocab))
    ids = torch.from_numpy(lut[np.frombuffer(data, dtype=np.uint8)])
    V, seq, batch = len(vocab), args.seq, args.batch
    ntrain = len(data) * 9 // 10
    if ntrain < seq + 1 or len(data) - ntrain < 2:
        sys.exit(f"{source}: {len(data)} bytes is too short for --seq {seq}")
    train, val = ids[:ntrain], ids[ntrain:]
    lr = args.lr if args.lr is not None else 2e-3

    model = CharLSTM(V, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    nparams = sum(p.numel() for p in model.parameters())
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, openblas core {openblas_corename()}, "
        f"mkldnn {torch.backends.mkldnn.is_available()}")
    log(f"text: {len(data)} bytes from {nfiles} file(s) ({source}), vocabulary {V}, train {ntrain}, "
        f"validation {len(data) - ntrain}; LSTM({V}->{args.hidden}) + Linear({V}), {nparams} params, "
        f"batch {batch}, seq {seq}, Adam {lr:g}, clip 5")
    log(f"machine check: sgemm 1024 {sgemm_gflops():.0f} GFLOP/s on this core "
        "(REFERENCE.md, one Zen 5 core, OpenBLAS best kernel: 234)")

    gen = torch.Generator().manual_seed(args.seed)
    offs = torch.arange(seq)
    step_s, best_bpc, best_step, losses = [], float("inf"), 0, []
    model.train()
    for step in range(1, args.steps + 1):
        # Batch building outside the timed region.
        starts = torch.randint(0, ntrain - seq, (batch,), generator=gen)
        idx = starts.unsqueeze(1) + offs
        xb, yb = train[idx], train[idx + 1]
        c0, t0 = time.process_time(), time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits, _ = model(xb)
        loss = F.cross_entropy(logits.reshape(-1, V), yb.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        step_s.append((dt, cpu))
        losses.append(loss.detach())
        if step % 200 == 0 or step == args.steps:
            bpc = lstm_val_bpc(model, val, seq)
            if bpc < best_bpc:
                best_bpc, best_step = bpc, step
            done = sum(s for s, _ in step_s)
            log(f"step {step:5d}  train {torch.stack(losses).mean().item() / math.log(2.0):.3f} bpc  "
                f"val {bpc:.4f} bpc{' *' if best_step == step else ''}  {done:.1f} s, "
                f"{1e3 * done / step:.2f} ms/step")
            losses = []

    train_s = sum(s for s, _ in step_s)
    cpu_s = sum(c for _, c in step_s)
    times = [s for s, _ in step_s]
    blocks = [sum(times[i:i + LSTM_BLOCK]) / LSTM_BLOCK
              for i in range(LSTM_WARMUP, len(times) - LSTM_BLOCK + 1, LSTM_BLOCK)]
    if blocks:
        blocks.sort()
        mid = len(blocks) // 2
        ms = 1e3 * (blocks[mid] if len(blocks) % 2 else 0.5 * (blocks[mid - 1] + blocks[mid]))
    else:
        ms = 1e3 * train_s / len(times)
    log(f"best validation {best_bpc:.4f} bpc at step {best_step}; training {train_s:.2f} s, cpu {cpu_s:.2f} s"
        + (" -- warning: the core was shared, the time is not clean" if cpu_s < 0.9 * train_s else ""))
    print(f"RESULT val_bpc={best_bpc:.4f} ms_per_step={ms:.3f} steps={args.steps} train_s={train_s:.3f} "
          f"best_step={best_step} framework=torch threads={args.threads} model=lstm", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["mlp", "cnn", "ae", "lstm"], required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (0 = all)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (run with OPENBLAS_NUM_THREADS=1)")
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=None, help="default 1e-3 (lstm: 2e-3)")
    ap.add_argument("--channels-last", action="store_true",
                    help="CNN: model and inputs in torch.channels_last (NHWC in memory, as nn.h); "
                         "PyTorch's faster CPU path, opt-in.  Default: NCHW as in REFERENCE.md")
    ap.add_argument("--int8", action="store_true",
                    help="mlp, cnn: also post-training static int8 quantization (onednn engine): int8_acc, "
                         "int8_infer_s, b1_ms, int8_b1_ms")
    ap.add_argument("--text", default=None, help="lstm: text file (default: /usr/share/common-licenses/*)")
    ap.add_argument("--steps", type=int, default=2000, help="lstm: training steps")
    ap.add_argument("--hidden", type=int, default=128, help="lstm: hidden units")
    ap.add_argument("--seq", type=int, default=64, help="lstm: characters per window")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.int8 and args.model not in ("mlp", "cnn"):
        ap.error("--int8 is for --model mlp and cnn")
    if args.lr is None and args.model != "lstm":
        args.lr = 1e-3

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    shuffle_gen = torch.Generator().manual_seed(args.seed)

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            log(f"warning: {var}={os.environ[var]} is set: OpenBLAS is handicapped, the reference is "
                "not fair (run under env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)")
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        log(f"warning: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} (expected 1: torch's "
            f"{args.threads} thread(s) split the work, OpenBLAS threads under them would oversubscribe)")
    if len(os.sched_getaffinity(0)) < args.threads:
        log(f"warning: --threads {args.threads} on {len(os.sched_getaffinity(0))} allowed core(s)")
    if args.model == "lstm":
        return run_lstm(args)

    xtr, ytr = load_split(args.data, "train")
    xte, yte = load_split(args.data, "t10k")
    if args.limit > 0:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    xtr, ytr = to_tensors(xtr, ytr)
    xte, yte = to_tensors(xte, yte)
    if args.model == "ae":  # input = target: keep the images flat, (N, 784)
        xtr, xte = xtr.reshape(xtr.shape[0], 784), xte.reshape(xte.shape[0], 784)
    n = xtr.shape[0]

    model = {"mlp": MLP, "cnn": CNN, "ae": AE}[args.model]()
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
        loss_fn(args.model, wm(xb), xb, yb).backward()
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
            loss = loss_fn(args.model, model(xb), xb, yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0

        train_s += dt
        del batches, xs, ys
        log(f"epoch {epoch}/{args.epochs}: loss {torch.stack(losses).mean().item():.4f}, {dt:.3f} s "
            f"({n / dt:.0f} img/s), cpu {cpu:.3f} s"
            + (" -- warning: the core was shared, the time is not clean" if cpu < 0.9 * dt else ""))

    if args.model == "ae":
        test_mse = evaluate_mse(model, xte, 1000)
        log(f"test MSE {test_mse:.5f} over {xte.shape[0]} images")
        print(f"RESULT test_mse={test_mse:.4f} train_s={train_s:.3f} epochs={args.epochs} "
              f"s_per_epoch={train_s / args.epochs:.3f} framework=torch threads={args.threads} model=ae", flush=True)
        return

    test_acc = evaluate(model, xte, yte, 1000)

    # Inference timing: 10k test images at batch 32, after one warm-up batch.
    test_batches = [xte[i:i + 32] for i in range(0, xte.shape[0], 32)]
    infer_s = time_batches(model, test_batches)
    log(f"test accuracy {test_acc:.4f}; inference {xte.shape[0]} images at batch 32: {infer_s:.3f} s")

    int8_line = ""
    if args.int8:
        b1 = batch1_ms(model, xte)
        # xtr is still in file order (each epoch shuffles a copy): the first 1000 as nn.h calibrates.
        ncal = min(INT8_CALIB, xtr.shape[0])
        c0 = time.perf_counter()
        qmodel, engine = quantize_int8(model, args.model, xtr[:ncal], args.batch, channels_last)
        quant_s = time.perf_counter() - c0
        q_acc = evaluate(qmodel, xte, yte, 1000)
        q_infer_s = time_batches(qmodel, test_batches)
        q_b1 = batch1_ms(qmodel, xte)
        log(f"int8 ({engine} engine, {ncal} calibration images, quantized in {quant_s:.2f} s): test accuracy "
            f"{q_acc:.4f} (float {test_acc:.4f}); {xte.shape[0]} images at batch 32: {q_infer_s:.3f} s "
            f"(float {infer_s:.3f} s, ratio {q_infer_s / infer_s:.2f}); one at a time {q_b1:.4f} ms "
            f"(float {b1:.4f} ms, ratio {q_b1 / b1:.2f})")
        int8_line = (f" int8_acc={q_acc:.4f} int8_infer_s={q_infer_s:.3f} b1_ms={b1:.4f} "
                     f"int8_b1_ms={q_b1:.4f} int8_engine={engine}")

    print(f"RESULT test_acc={test_acc:.4f} train_s={train_s:.3f} epochs={args.epochs} "
          f"infer_s={infer_s:.3f} s_per_epoch={train_s / args.epochs:.3f} framework=torch "
          f"threads={args.threads} model={args.model}"
          + (" memory_format=channels_last" if channels_last else "") + int8_line, flush=True)


if __name__ == "__main__":
    main()
