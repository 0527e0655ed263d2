#!/usr/bin/python3
"""test_torch_bridge.py - nn.h against its PyTorch twin, through safetensors files, both ways.

Run from the repository root (no make needed; Debian's python3-torch, a C compiler):

    /usr/bin/python3 scripts/test_torch_bridge.py                # everything, ~2 minutes
    /usr/bin/python3 scripts/test_torch_bridge.py --no-fashion   # without the Fashion-MNIST check

It builds scripts/test_torch_bridge.c (cc -O2 -I. ... -lm against ./nn.h) and, for each model
family of tests/fixtures/safetensors/models.{h,py} (an MLP with normalization, batch norm and
dropout; a CNN with a Winograd conv, batch norm and flatten, also with dotted layer names; an
embedding + LSTM language model; GRU + RNN; a conv autoencoder with TF 'same', PyTorch padding,
pooling and upsampling; a normalization + global-average-pooling CNN):

  nn.h -> PyTorch   trains a few steps in nn.h, nn_save_safetensors; load_nnh builds the twin;
                    the twin's predictions on random inputs match nn.h's within 1e-4 of the
                    output's largest magnitude; the file's architecture is models.py's; the
                    exported tensors equal, bit for bit, what read_nnm makes of nn_save's own
                    file of the same model (an independent implementation of the mapping) and
                    what save_for_nnh writes back from the twin's state_dict.
  PyTorch -> nn.h   random / perturbed weights in the twin (batch-norm statistics, normalization
                    buffers, LSTM's second bias), save_for_nnh as F32, F16, BF16 and F64; nn.h
                    loads each with nn_load_safetensors into the model built in C and with
                    nn_load (rebuilt from the metadata); both match the twin run with the same
                    rounded weights within 1e-4; nn.h's re-export of an F32 file holds the
                    twin's tensors (RNN / LSTM biases summed into bias_ih_l0).
  acceptance        bench/torch_reference.py's CNN trained in PyTorch on Fashion-MNIST (1 epoch;
                    `make data` or scripts/get_data.sh first), its plain state_dict exported
                    with save_for_nnh, loaded into the CNN of examples/fashion_cnn.c (layers
                    named conv1, conv2, fc1, fc2 with nn_layer_set_name), and again with the
                    keys renamed to layer indices plus the architecture (nn_load); the 10k
                    test images' classes must agree with PyTorch's for >= 99.9% of them.

Prints one line per check and ends with "N passed, N failed, N skipped"; exit status 1 on a
failure.  Without torch (or without a C compiler, or an nn.h without nn_save_safetensors) it
says why and exits 0.
"""
import argparse
import copy
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

# torch's own threads split the work; OpenBLAS threads under them would oversubscribe the cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "safetensors"))

TOL = 1e-4  # of the largest magnitude of the expected output
PASSED, FAILED, SKIPPED = [0], [0], [0]


def check(ok, what):
    (PASSED if ok else FAILED)[0] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    return ok


def skip(what):
    SKIPPED[0] += 1
    print(f"SKIP {what}", flush=True)


def finish():
    print(f"{PASSED[0]} passed, {FAILED[0]} failed, {SKIPPED[0]} skipped")
    sys.exit(1 if FAILED[0] else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-fashion", action="store_true", help="skip the Fashion-MNIST acceptance check")
    ap.add_argument("--epochs", type=int, default=1, help="Fashion-MNIST: PyTorch training epochs")
    ap.add_argument("--limit", type=int, default=0, help="Fashion-MNIST: first N training images (0: all)")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "fashion-mnist"))
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"test_torch_bridge: skipped: PyTorch is not installed ({e}); "
              "Debian: apt-get install python3-torch")
        return 0
    if not shutil.which(args.cc):
        print(f"test_torch_bridge: skipped: no C compiler ({args.cc})")
        return 0
    with open(os.path.join(ROOT, "nn.h")) as f:
        if "nn_save_safetensors" not in f.read():
            print("test_torch_bridge: skipped: this nn.h has no nn_save_safetensors")
            return 0

    tmp = tempfile.mkdtemp(prefix="nn_torch_bridge.")
    try:
        drv = os.path.join(tmp, "drv")
        cmd = [args.cc, "-O2", "-I.", "-o", drv, "scripts/test_torch_bridge.c", "-lm"]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if not check(r.returncode == 0, "build: " + " ".join(cmd)):
            print(r.stderr[-3000:])
            finish()
        run_families(drv, tmp)
        run_edges(drv, tmp)
        run_cli_and_errors(tmp)
        if args.no_fashion:
            skip("Fashion-MNIST acceptance (--no-fashion)")
        else:
            run_fashion(drv, tmp, args)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    finish()


# ---- helpers ----------------------------------------------------------------------------------

def inputs(arch, n, seed):
    """Random valid nn.h inputs (nn.h layout): ids, images in [0, 1), features N(1.5, 3^2)."""
    import torch_bridge as tb
    x = tb.random_input(arch, n, seed)
    if arch.layers[0].kind != "embedding" and len(arch.input_shape) < 3:
        x = 1.5 + 3.0 * x
    return x.astype("float32")


def twin_predict(twin, x):
    import torch
    import torch_bridge as tb
    with torch.no_grad():
        y = twin(torch.from_numpy(tb.to_torch_layout(x.astype("float32"))))
    return twin.nnh_output(y).numpy()


def compare(got, want, what):
    import numpy as np
    scale = float(np.abs(want).max())
    err = float(np.abs(got.astype(np.float64) - want).max()) / (scale or 1.0)
    return check(got.shape == want.shape and err <= TOL,
                 f"{what}: max |diff| / max |ref| = {err:.2e} (tolerance {TOL:g}, max |ref| {scale:.3g})")


def run(drv, *a):
    r = subprocess.run([drv] + [str(x) for x in a], capture_output=True, text=True)
    if r.returncode:
        print("     | " + (r.stderr or r.stdout).strip().replace("\n", "\n     | "))
    return r.returncode == 0


def read_out(path, n, shape):
    import numpy as np
    return np.fromfile(path, "<f4").reshape((n,) + tuple(shape))


def perturb_(twin, seed):
    """Random weights a trained model could have: PyTorch's init + noise, batch-norm affine and
    statistics away from 1/0, normalization buffers fitted to the inputs, LSTM / RNN second
    biases non-zero (nn.h sums them), num_batches_tracked 5."""
    import torch
    import torch_bridge as tb
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in twin:
            for name, p in m.named_parameters(recurse=False):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            if isinstance(m, tb.NNHBatchNorm):
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(5)
            if isinstance(m, tb.NNHNormalization):
                image = len(twin.nnh_arch.input_shape) == 3
                m.mean.copy_((0.5 if image else 1.5) + 0.1 * torch.randn(m.mean.shape, generator=g))
                m.variance.copy_((0.08 if image else 9.0) * (0.5 + torch.rand(m.variance.shape, generator=g)))
    return twin


# ---- the model families ------------------------------------------------------------------------

def run_families(drv, tmp):
    import numpy as np
    import torch
    import torch_bridge as tb
    import models
    N = 16
    torch.set_num_threads(1)
    for fi, (name, build) in enumerate(models.FAMILIES.items()):
        arch = build()
        x = inputs(arch, N, 100 + fi)
        xpath = os.path.join(tmp, f"{name}.x.bin")
        x.tofile(xpath)
        prefix = os.path.join(tmp, name)
        # -- nn.h -> PyTorch
        if not check(run(drv, "train", name, 20, prefix, xpath, N), f"{name}: nn.h trains and saves"):
            continue
        st = prefix + ".safetensors"
        want = read_out(prefix + ".out.bin", N, arch.shapes()[-1])
        try:
            twin = tb.load_nnh(st)
        except Exception as e:  # noqa: BLE001
            check(False, f"{name}: load_nnh of nn.h's file: {type(e).__name__}: {e}")
            continue
        check(twin.nnh_arch == arch, f"{name}: nn.h's nnh.arch is models.py's architecture")
        check(not twin.training, f"{name}: the twin comes back in eval mode")
        compare(twin_predict(twin, x), want, f"{name}: nn.h -> PyTorch, twin vs nn_predict")
        tensors, meta, dtypes = tb.read_safetensors(st)
        _, ref = tb.read_nnm(prefix + ".nnm")
        same = set(tensors) == set(ref) and all(
            tensors[k].shape == ref[k].shape and np.array_equal(tensors[k].view(np.uint8), ref[k].view(np.uint8))
            for k in ref if k.split(".")[-1] != "num_batches_tracked")
        check(same, f"{name}: nn_save_safetensors = read_nnm(nn_save) bit for bit ({len(ref)} tensors)")
        nbt = [k for k in tensors if k.endswith("num_batches_tracked")]
        check(all(dtypes[k] == "I64" and tensors[k].shape == () and int(tensors[k]) == 20 for k in nbt),
              f"{name}: num_batches_tracked I64 scalars = 20 steps ({len(nbt)})")
        check(set(dtypes[k] for k in dtypes if k not in nbt) == {"F32"} and meta.get("format") == "pt"
              and "nnh" in meta, f"{name}: F32 tensors, metadata format=pt and nnh={meta.get('nnh')}")
        back = os.path.join(tmp, f"{name}.back.safetensors")
        tb.save_for_nnh(twin, back)
        t2, m2, _ = tb.read_safetensors(back)
        sd = twin.state_dict()
        check(set(t2) == set(tensors) and all(np.array_equal(t2[k], tensors[k]) for k in tensors)
              and all(np.array_equal(sd[k].numpy(), tensors[k]) for k in tensors)
              and m2.get("nnh.arch") == meta.get("nnh.arch"),
              f"{name}: the twin's state_dict and save_for_nnh hold nn.h's tensors and arch exactly"
              f" (file bytes {'identical' if open(back, 'rb').read() == open(st, 'rb').read() else 'differ'})")
        compare(twin_predict(tb.load_nnh(prefix + ".nnm"), x), want,
                f"{name}: load_nnh of nn_save's own file")

        # -- PyTorch -> nn.h
        variants = [(None, "")] + ([(models.CNN_NAMES, "named")] if name == "cnn_winograd" else [])
        for names, flag in variants:
            label = f"{name}{' (dotted names)' if names else ''}"
            torch.manual_seed(1000 + fi)  # PyTorch's initialisation, then the perturbation
            twin = perturb_(tb.build_twin(arch, names), 1000 + fi).eval()
            x2 = inputs(arch, N, 200 + fi)
            x2path = os.path.join(tmp, f"{name}.x2.bin")
            x2.tofile(x2path)
            for dt in ("F32", "F16", "BF16", "F64"):
                path = os.path.join(tmp, f"{name}{flag}.{dt}.safetensors")
                tb.save_for_nnh(twin, path, dt)
                want2 = twin_predict(tb.round_weights_(copy.deepcopy(twin), dt), x2)
                out = os.path.join(tmp, "out.bin")
                if check(run(drv, "load", name, path, x2path, N, out, *([flag] if flag else [])),
                         f"{label} {dt}: nn_load_safetensors into the C-built model"):
                    compare(read_out(out, N, arch.shapes()[-1]), want2,
                            f"{label} {dt}: PyTorch -> nn.h (C-built), nn_predict vs the rounded twin")
                resave = os.path.join(tmp, "resave.safetensors") if dt == "F32" else ""
                if resave and os.path.exists(resave):
                    os.remove(resave)
                if check(run(drv, "nnload", path, x2path, N, out, *([resave] if resave else [])),
                         f"{label} {dt}: nn_load rebuilds the model from the metadata"):
                    compare(read_out(out, N, arch.shapes()[-1]), want2,
                            f"{label} {dt}: PyTorch -> nn.h (nn_load), nn_predict vs the rounded twin")
                    if resave:
                        check_reexport(twin, resave, label)


def edge_archs():
    """Corners of the mapping, PyTorch -> nn.h by nn_load (and nn.h's re-export)."""
    import torch_bridge as tb
    A = tb.Arch
    return {
        "flatten, batch norm as the output (the (c, h, w) order carried to the end)":
            A((6, 6, 2)).conv2d(3, 3).flatten().batchnorm().compile("mse", "sgd", lr=0.1),
        "flatten, dropout, batch norm, relu, normalization, dense":
            A((5, 5, 2)).flatten().dropout(0.1).batchnorm().activation("relu").normalization().dense(3)
            .compile("mse", "sgd", lr=0.1),
        "flatten as the first layer":
            A((4, 4, 3)).flatten().dense(5, "sigmoid").compile("mse", "sgd", lr=0.1),
        "dense, batch norm, normalization on a sequence, LSTM (last state) first":
            A((5, 3)).dense(4, "relu").batchnorm().normalization().lstm(6, 0).dense(2).compile("mse", "sgd", lr=0.1),
        "RNN alone":
            A((5, 3)).rnn(7, 1).compile("mse", "sgd", lr=0.1),
        "embedding, GRU, flatten of a sequence, dense":
            A((5,)).embedding(7, 3).gru(4, 1).flatten().dense(3, "softmax")
            .compile("sparse_categorical_ce", "sgd", lr=0.1),
        "conv with a softmax over the channels":
            A((5, 5, 2)).conv2d(4, 3, "softmax", padding="same").compile("mse", "sgd", lr=0.1),
        "leaky relu 0.2 frozen, categorical CE":
            A((6,)).dense(5, "leaky_relu").leaky_relu_slope(0.2).freeze(0).dense(2, "softmax")
            .compile("categorical_ce", "adam", lr=1e-3),
        "TF 'same' at stride 2 and 3 on odd and even sizes":
            A((8, 7, 2)).conv2d(3, 3, stride=2, padding="same").conv2d(2, 2, stride=3, padding="same")
            .compile("mse", "sgd", lr=0.1),
        "no-bias dense and conv (spec: optional setting no_bias)":
            A((6, 6, 2)).conv2d(4, 3, "relu", bias=False).flatten().dense(3, "tanh", bias=False).dense(2)
            .compile("mse", "sgd", lr=0.1),
        "max / average pooling with padding (spec: optional setting pad)":
            A((7, 7, 3)).maxpool2d(2, pad=1).avgpool2d(2, pad=1).conv2d(2, 1).compile("mse", "sgd", lr=0.1),
    }


def run_edges(drv, tmp):
    import torch
    import torch_bridge as tb
    N = 6
    for i, (what, arch) in enumerate(edge_archs().items()):
        torch.manual_seed(500 + i)
        twin = perturb_(tb.build_twin(arch), 500 + i).eval()
        x = inputs(arch, N, 600 + i)
        xpath, path = os.path.join(tmp, "edge.x.bin"), os.path.join(tmp, f"edge{i}.safetensors")
        out, resave = os.path.join(tmp, "edge.out.bin"), os.path.join(tmp, f"edge{i}.re.safetensors")
        x.tofile(xpath)
        tb.save_for_nnh(twin, path)
        optional = [L.describe() for L in arch.layers if len(L.settings) > tb.KINDS[L.kind][1]]
        if optional and not run(drv, "nnload", path, xpath, N, out, resave):
            skip(f"edge: {what}: nn.h refuses the optional settings ({'; '.join(optional)})")
            continue
        if check(run(drv, "nnload", path, xpath, N, out, resave), f"edge: {what}: nn_load"):
            compare(read_out(out, N, arch.shapes()[-1]), twin_predict(twin, x), f"edge: {what}: nn_predict vs the twin")
            check_reexport(twin, resave, f"edge: {what}")


def check_reexport(twin, path, label):
    """nn.h's export of a model loaded from the twin's F32 file holds the twin's tensors: the
    same values, except RNN / LSTM biases (nn.h keeps one: bias_ih + bias_hh, and a zero
    bias_hh) and num_batches_tracked (nn.h writes its own step count)."""
    import numpy as np
    import torch_bridge as tb
    tensors, meta, _ = tb.read_safetensors(path)
    sd = {k: v.numpy() for k, v in twin.state_dict().items()}
    bad = []
    if set(tensors) != set(sd):
        bad.append(f"keys {sorted(tensors)} != {sorted(sd)}")
    for k, v in sd.items():
        if k not in tensors or k.endswith("num_batches_tracked"):
            continue
        mod = twin[twin.nnh_names.index(k.rsplit(".", 1)[0])]
        if isinstance(mod, (tb.NNHLSTM, tb.NNHRNN)) and k.endswith("bias_ih_l0"):
            v = (v + sd[k.replace("bias_ih", "bias_hh")]).astype(np.float32)
            ok = np.allclose(tensors[k], v, rtol=1e-6, atol=1e-7)
        elif isinstance(mod, (tb.NNHLSTM, tb.NNHRNN)) and k.endswith("bias_hh_l0"):
            ok = not tensors[k].any()
        else:
            ok = np.array_equal(tensors[k], v)
        if not ok:
            bad.append(k)
    names = meta.get("nnh.names")
    want_names = ",".join(twin.nnh_names) if twin.nnh_names != [str(i) for i in range(len(twin))] else None
    if names != want_names:
        bad.append(f"nnh.names {names!r}, expected {want_names!r}")
    check(not bad, f"{label}: nn.h's re-export holds the twin's tensors"
                   + (f" -- differ: {', '.join(bad)}" if bad else ""))


# ---- the command line, and files the reader must refuse --------------------------------------------

def run_cli_and_errors(tmp):
    import json
    import struct
    import numpy as np
    import torch
    import torch_bridge as tb
    st = os.path.join(tmp, "cnn_winograd.safetensors")  # nn.h's export (run_families)
    if not os.path.exists(st):
        skip("command line: no nn.h export to work on")
        return
    cli = [sys.executable, os.path.join(ROOT, "scripts", "torch_bridge.py")]

    def cmd(*a, quiet=False):
        r = subprocess.run(cli + [str(x) for x in a], capture_output=True, text=True)
        if r.returncode and not quiet:
            print("     | " + (r.stderr or r.stdout).strip().replace("\n", "\n     | "))
        return r
    r = cmd("info", st)
    check(r.returncode == 0 and "nnh.arch" in r.stdout and "conv2d" in r.stdout, "cli info: header, decoded arch")
    r = cmd("check", st)
    check(r.returncode == 0 and "all finite: True" in r.stdout, "cli check: the twin runs")
    pt, back = os.path.join(tmp, "cnn.pt"), os.path.join(tmp, "cnn.back.safetensors")
    ok = cmd("to-pt", st, pt).returncode == 0 and cmd("from-pt", pt, back, "--arch-from", st).returncode == 0
    check(ok and open(back, "rb").read() == open(st, "rb").read(),
          "cli to-pt then from-pt --arch-from: nn.h's file again, byte for byte")
    f16 = os.path.join(tmp, "cnn.f16.safetensors")
    ok = cmd("convert-dtype", st, f16, "F16").returncode == 0
    if ok:
        a, ma, _ = tb.read_safetensors(st)
        b, mb, db = tb.read_safetensors(f16)
        ok = ma == mb and all(db[k] == ("I64" if k.endswith("tracked") else "F16") for k in b) and all(
            np.array_equal(b[k], a[k].astype(np.float16).astype(a[k].dtype)) for k in a)
    check(ok, "cli convert-dtype F16: every float rounded to F16, metadata kept")
    nnm, conv = os.path.join(tmp, "cnn_winograd.nnm"), os.path.join(tmp, "cnn.from_nnm.safetensors")
    ok = cmd("from-nnm", nnm, conv).returncode == 0
    if ok:
        a, ma, _ = tb.read_safetensors(st)
        b, mb, _ = tb.read_safetensors(conv)
        ok = ma["nnh.arch"] == mb["nnh.arch"] and set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    check(ok, "cli from-nnm: nn_save's file converted in Python = nn_save_safetensors's file")
    check(cmd("info", os.path.join(tmp, "no_such_file"), quiet=True).returncode == 1, "cli: a missing file is exit status 1")

    # well-formed files only
    good = os.path.join(tmp, "good.safetensors")
    tb.write_safetensors(good, {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, np.float32)},
                         {"format": "pt"})
    raw = open(good, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    check(len(raw[8:8 + n]) % 8 == 0 and raw[8 + n - 1:8 + n] in (b" ", b"}"),
          "writer: data starts at a multiple of 8 (header padded with spaces)")

    def variant(name, mutate=None, data=None, hlen=None):
        h = json.loads(json.dumps(hdr))
        if mutate:
            mutate(h)
        text = json.dumps(h).encode()
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
        body = raw[8 + n:] if data is None else data
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", len(text) if hlen is None else hlen) + text + body)
        return p

    bad = {
        "a hole between tensors": variant("hole", lambda h: h["b"].update(data_offsets=[28, 36]), raw[8 + n:] + b"\0" * 4),
        "overlapping tensors": variant("overlap", lambda h: h["b"].update(data_offsets=[16, 24])),
        "data past the end": variant("short", data=raw[8 + n:-4]),
        "bytes not matching the shape": variant("shape", lambda h: h["a"].update(shape=[3, 3])),
        "an unknown dtype": variant("dtype", lambda h: h["a"].update(dtype="F8_E4M3")),
        "a header length past the file": variant("hlen", hlen=1 << 40),
        "non-string metadata": variant("meta", lambda h: h.update(__metadata__={"format": 1})),
    }
    for what, p in bad.items():
        try:
            tb.read_safetensors(p)
            check(False, f"reader refuses {what}")
        except tb.SafetensorsError as e:
            check(True, f"reader refuses {what}: {e}")
    arch = tb.Arch((4,)).dense(3).compile("mse", "sgd", lr=0.1)
    twin = tb.build_twin(arch)
    sd = twin.state_dict()
    for what, d in (("a missing tensor", {"0.weight": sd["0.weight"]}),
                    ("a wrong shape", {"0.weight": sd["0.weight"].t(), "0.bias": sd["0.bias"]}),
                    ("an unexpected tensor", dict(sd, extra=torch.zeros(1)))):
        try:
            tb.save_for_nnh(d, os.path.join(tmp, "x.safetensors"), arch=arch)
            check(False, f"save_for_nnh with an architecture refuses {what}")
        except ValueError as e:
            check(True, f"save_for_nnh with an architecture refuses {what}: {e}")
    tb.write_safetensors(os.path.join(tmp, "miss.safetensors"), {"0.weight": sd["0.weight"]},
                         {"format": "pt", "nnh.arch": arch.to_hex()})
    try:
        tb.load_nnh(os.path.join(tmp, "miss.safetensors"))
        check(False, "load_nnh refuses a file without one of the model's tensors")
    except RuntimeError as e:
        check("Missing key" in str(e), "load_nnh refuses a file without one of the model's tensors (strict)")


# ---- the acceptance check: bench/torch_reference.py's CNN --------------------------------------------

def run_fashion(drv, tmp, args):
    import numpy as np
    import torch
    import torch_bridge as tb
    files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    if not all(os.path.exists(os.path.join(args.data, f)) for f in files):
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "get_data.sh")], cwd=ROOT)
    if not all(os.path.exists(os.path.join(args.data, f)) for f in files):
        skip(f"Fashion-MNIST acceptance: no data in {args.data} (make data)")
        return
    spec = importlib.util.spec_from_file_location("torch_reference", os.path.join(ROOT, "bench", "torch_reference.py"))
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.set_num_threads(min(2, len(os.sched_getaffinity(0))))
    torch.manual_seed(1)
    xtr, ytr = ref.load_split(args.data, "train")
    xte, yte = ref.load_split(args.data, "t10k")
    if args.limit > 0:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    xtr, ytr = ref.to_tensors(xtr, ytr)
    xte, yte = ref.to_tensors(xte, yte)
    model = ref.CNN()
    ref.init_like_nn_h(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    t0 = time.time()
    for _ in range(args.epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        for i in range(0, xtr.shape[0], 32):
            idx = perm[i:i + 32]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pt = torch.cat([model(xte[i:i + 1000]).argmax(1) for i in range(0, xte.shape[0], 1000)]).numpy()
    acc = float((pt == yte.numpy()).mean())
    print(f"     PyTorch CNN (bench/torch_reference.py): {args.epochs} epoch(s) on {xtr.shape[0]} images in "
          f"{time.time() - t0:.1f} s, test accuracy {acc:.4f}")
    # 1: the plain state_dict (conv1.weight, ...), nn_layer_set_name on the nn.h side
    plain = os.path.join(tmp, "fashion_plain.safetensors")
    tb.save_for_nnh(model.state_dict(), plain)
    # 2: keys renamed to nn.h's layer indices, with the architecture: nn_load rebuilds it
    arch = (tb.Arch((28, 28, 1)).conv2d(32, 3, "relu").maxpool2d(2).conv2d(64, 3, "relu").maxpool2d(2)
            .flatten().dense(64, "relu").dense(10, "softmax").compile("sparse_categorical_ce", "adam", lr=1e-3))
    indexed = os.path.join(tmp, "fashion_arch.safetensors")
    tb.save_for_nnh(model.state_dict(), indexed, arch=arch, rename={"conv1": "0", "conv2": "2", "fc1": "5", "fc2": "6"})
    for path, flag, how in ((plain, "named", "nn_load_safetensors into examples/fashion_cnn.c's CNN, "
                             "layers named conv1/conv2/fc1/fc2"),
                            (indexed, "", "nn_load of the renamed keys + architecture")):
        out = os.path.join(tmp, "fashion.cls")
        if not check(run(drv, "fashion", path, args.data, out, *([flag] if flag else [])), f"Fashion-MNIST: {how}"):
            continue
        cls = np.fromfile(out, np.uint8)
        agree = float((cls == pt).mean()) if cls.shape == pt.shape else 0.0
        check(agree >= 0.999, f"Fashion-MNIST ({how}): {agree * 100:.2f}% of the {pt.shape[0]} test images get "
                              f"PyTorch's class ({int((cls == pt).sum()) if cls.shape == pt.shape else 0} of "
                              f"{pt.shape[0]}; required >= 99.9%); nn.h accuracy "
                              f"{float((cls == yte.numpy()).mean()) if cls.shape == pt.shape else 0:.4f}")


if __name__ == "__main__":
    sys.exit(main())
