#!/usr/bin/python3
"""torch_bridge.py - nn.h <-> PyTorch through safetensors files.

Needs Debian's python3-torch (1.13) and the standard library (numpy comes with torch); no
`safetensors` package: the format (u64 LE header length, JSON header, raw little-endian data)
is read and written here.  The mapping is nn.h's (README "PyTorch interop"): keys
"<layer>.<param>" with PyTorch's layouts, the architecture in the metadata key "nnh.arch"
(the ARCH payload of nn.h's own model files, hex), layer names in "nnh.names".

As a module (`sys.path.insert(0, "scripts"); import torch_bridge as tb`):

    twin = tb.load_nnh("model.safetensors")    # nn.h -> PyTorch: the model's twin, eval mode
    y = twin(x)                                # x in PyTorch's layout: images NCHW,
                                               # sequences (batch, time, features), token ids
                                               # as floats (batch, time)
    tb.save_for_nnh(twin, "out.safetensors", dtype="F16")   # PyTorch -> nn.h (+ the arch)
    tb.save_for_nnh(model.state_dict(), "w.safetensors",     # any state_dict: nn.h's
                    rename={"conv1": "0", "fc1": "5"})       # nn_load_safetensors reads it

The twin is an nn.Sequential whose child i is nn.h layer i (its state_dict keys are exactly
the file's); layers named with nn_layer_set_name become module names ("features.0" a child "0"
of a container "features"; twin[i] is still layer i).  Each child is a small subclass of the
PyTorch module (nn.Linear, nn.Conv2d, nn.LSTM, ...) that applies nn.h's fused activation and
its conventions: TF 'same' padding with the extra row/column at the bottom/right, the last step
of a recurrent layer without return_sequences, Keras Normalization as buffers "mean" and
"variance".  nn.Flatten on NCHW gives (c, h, w) order, which is the order the file stores for
the first dense layer after a flatten (and for batch norm / normalization between them), so a
plain PyTorch CNN maps directly.  The twin's output is in PyTorch's layout too: twin.nnh_output(y)
turns it into nn.h's (NCHW images to NHWC; a model ending in a flatten of an image gives
(c, h, w) features in PyTorch, (h, w, c) in nn.h).

A twin can also be built without nn.h, from an architecture written in Python:

    arch = (tb.Arch((28, 28, 1)).conv2d(32, 3, "relu").maxpool2d(2).flatten()
            .dense(10, "softmax").compile("sparse_categorical_ce", "adam", lr=1e-3))
    twin = tb.build_twin(arch)                 # random PyTorch initialisation
    tb.save_for_nnh(twin, "m.safetensors")     # nn_load(&m, "m.safetensors") rebuilds it

Command line (/usr/bin/python3 scripts/torch_bridge.py COMMAND ...; --help for each):

    info FILE                      header, metadata, the decoded architecture, every tensor
    check FILE                     load_nnh (strict), print the twin, run one random batch
    convert-dtype IN OUT DTYPE     rewrite every float tensor as F32, F16, BF16 or F64
    from-pt IN.pt OUT [--dtype D] [--arch-from NNH_FILE] [--rename OLD=NEW ...]
                                   a torch.save'd state_dict (or module) to safetensors
    from-nnm IN.nnm OUT [--dtype D]
                                   nn.h's own model file (nn_save, format 2) to safetensors,
                                   with the architecture (read_nnm: the same mapping)
    to-pt FILE OUT.pt              the twin's state_dict, torch.save'd

Reading accepts F64, F32, F16 and BF16 (and integer dtypes); every float becomes float32 in the
twin, as nn.h converts them.  Writing: float tensors in the dtype asked for, integer ones
(num_batches_tracked: I64) as they are.
"""
import argparse
import collections
import json
import math
import os
import struct
import sys

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # the safetensors reader/writer and Arch work without torch
    torch = None
    nn = None
    F = None

__version__ = "1.0"
NNH_VERSION = "0.2.0"  # "__metadata__"["nnh"] when no nn.h file gave one: the NN_VERSION it maps

# ---- safetensors ---------------------------------------------------------------------------

# dtype name -> (numpy dtype as stored, little-endian; bytes per element)
DTYPES = {
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U64": ("<u8", 8), "U32": ("<u4", 4), "U16": ("<u2", 2), "U8": ("u1", 1), "BOOL": ("?", 1),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
MAX_HEADER = 100 << 20  # as the safetensors reference implementation


class SafetensorsError(ValueError):
    """A file that is not well-formed safetensors (or not what nn.h writes)."""


def bf16_to_f32(u16):
    """uint16 array of bfloat16 bits -> float32 (exact)."""
    return (np.asarray(u16, dtype=np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (as torch's .bfloat16()),
    NaN kept a quiet NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def read_header(path):
    """(header dict without __metadata__, metadata dict, data start offset, file size)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise SafetensorsError(f"{path}: {size} bytes, too short for a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n < 2 or n > MAX_HEADER or 8 + n > size:
            raise SafetensorsError(f"{path}: header length {n} does not fit the file ({size} bytes)")
        text = f.read(n)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: the header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise SafetensorsError(f"{path}: __metadata__ must map strings to strings")
    datalen = size - 8 - n
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{path}: tensor {name!r}: needs exactly dtype, shape, data_offsets")
        if e["dtype"] not in DTYPES:
            raise SafetensorsError(f"{path}: tensor {name!r}: dtype {e['dtype']!r} is not supported")
        shape, off = e["shape"], e["data_offsets"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{path}: tensor {name!r}: bad shape {shape!r}")
        if (not isinstance(off, list) or len(off) != 2 or not all(isinstance(v, int) for v in off)
                or not 0 <= off[0] <= off[1] <= datalen):
            raise SafetensorsError(f"{path}: tensor {name!r}: data_offsets {off!r} outside the "
                                   f"{datalen} data bytes")
        want = math.prod(shape) * DTYPES[e["dtype"]][1]
        if off[1] - off[0] != want:
            raise SafetensorsError(f"{path}: tensor {name!r}: {off[1] - off[0]} bytes for "
                                   f"{e['dtype']} {shape} ({want} expected)")
        spans.append((off[0], off[1], name))
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            raise SafetensorsError(f"{path}: tensor {name!r} starts at {b}, expected {pos} "
                                   "(holes or overlaps in data_offsets)")
        pos = e
    if pos != datalen:
        raise SafetensorsError(f"{path}: the tensors cover {pos} of {datalen} data bytes")
    return header, meta, 8 + n, size


def read_safetensors(path, as_float32=True):
    """Every tensor of a safetensors file and its metadata: ({name: numpy array}, {str: str},
    {name: dtype name}).  as_float32: F64 / F16 / BF16 become float32 (as nn.h reads them);
    otherwise BF16 comes back as float32 too (numpy has no bfloat16) and the others keep
    their dtype.  Integer tensors keep theirs."""
    header, meta, start, _ = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out, dtypes = collections.OrderedDict(), {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data, dtype=DTYPES[e["dtype"]][0], count=(end - b) // DTYPES[e["dtype"]][1],
                            offset=b).reshape(e["shape"])
        if e["dtype"] == "BF16":
            arr = bf16_to_f32(arr).reshape(e["shape"])
        elif as_float32 and e["dtype"] in FLOAT_DTYPES:
            arr = arr.astype(np.float32)
        else:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        out[name] = arr
        dtypes[name] = e["dtype"]
    return out, meta, dtypes


def _tensor_bytes(value, dtype):
    """(stored dtype name, shape, bytes) of a tensor / array; floats in dtype, ints as they are."""
    if torch is not None and isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            t = t.float()
        arr = t.numpy()
    else:
        arr = np.asarray(value)
    shape = list(arr.shape)
    if arr.dtype.kind == "f":
        if dtype == "BF16":
            return "BF16", shape, f32_to_bf16_bits(arr.astype(np.float32)).astype("<u2").tobytes()
        return dtype, shape, arr.astype(DTYPES[dtype][0]).tobytes()
    if arr.dtype.kind == "b":
        return "BOOL", shape, arr.astype("?").tobytes()
    for name, (np_dt, _) in DTYPES.items():
        if name not in FLOAT_DTYPES and name != "BF16" and np.dtype(np_dt) == arr.dtype.newbyteorder("<"):
            return name, shape, arr.astype(np_dt).tobytes()
    raise SafetensorsError(f"cannot store numpy dtype {arr.dtype}")


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Write {name: tensor or array} as safetensors: float tensors as dtype (F32, F16, BF16,
    F64), integer ones as they are; metadata {str: str} as __metadata__.  The JSON header is
    compact, padded with spaces so the data starts at a multiple of 8; data_offsets are
    contiguous, the tensors in the order given except that wider elements come first."""
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, not {dtype!r}")
    header = collections.OrderedDict()
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    items = []
    for name, value in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a tensor name")
        items.append((name,) + _tensor_bytes(value, dtype))
    # wider elements first (stable): every tensor aligned to its element size, as nn.h writes
    # (its I64 num_batches_tracked scalars, then the F32 tensors)
    items.sort(key=lambda it: -DTYPES[it[1]][1])
    blobs, pos = [], 0
    for name, dt, shape, blob in items:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [pos, pos + len(blob)]}
        blobs.append(blob)
        pos += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---- the architecture: nn.h's ARCH payload -----------------------------------------------------

ACTIVATIONS = ["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
LOSSES = ["none", "mse", "binary_ce", "binary_ce_from_logits", "categorical_ce",
          "categorical_ce_from_logits", "sparse_categorical_ce", "sparse_categorical_ce_from_logits"]
OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop"]
OPT_FIELDS = ["lr", "momentum", "beta1", "beta2", "eps", "rho", "weight_decay", "clip_norm"]
# kind -> (setting names, how many nn.h needs; the rest are optional and 0 when missing)
KINDS = {
    "dense": (["units", "no_bias"], 1),
    "conv2d": (["filters", "kh", "kw", "stride", "same", "no_bias"], 5),
    "maxpool2d": (["size", "pad"], 1),
    "avgpool2d": (["size", "pad"], 1),
    "global_avgpool2d": ([], 0),
    "flatten": ([], 0),
    "activation": ([], 0),
    "dropout": (["rate_bits"], 1),
    "batchnorm": ([], 0),
    "normalization": ([], 0),
    "upsample2d": (["factor"], 1),
    "embedding": (["vocab", "dim"], 2),
    "rnn": (["units", "return_sequences"], 2),
    "lstm": (["units", "return_sequences"], 2),
    "gru": (["units", "return_sequences"], 2),
}


def _f32_bits(x):
    return struct.unpack("<i", struct.pack("<f", x))[0]


def _bits_f32(i):
    return struct.unpack("<f", struct.pack("<i", i))[0]


def _f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _act_id(a):
    if isinstance(a, int):
        if not 0 <= a < len(ACTIVATIONS):
            raise ValueError(f"activation {a} out of range")
        return a
    return ACTIVATIONS.index(a)


class Layer:
    """One nn.h layer record: kind name, activation id, frozen flag, leaky slope, settings."""

    def __init__(self, kind, act=0, frozen=0, slope=0.01, settings=()):
        if kind not in KINDS:
            raise ValueError(f"unknown layer kind {kind!r} (known: {', '.join(KINDS)})")
        self.kind, self.act, self.frozen = kind, _act_id(act), int(frozen)
        self.slope, self.settings = _f32(slope), [int(s) for s in settings]

    def get(self, name):
        """A setting by name; an optional one missing from the record is 0."""
        names = KINDS[self.kind][0]
        i = names.index(name)
        return self.settings[i] if i < len(self.settings) else 0

    @property
    def rate(self):
        return _bits_f32(self.get("rate_bits"))

    def describe(self):
        names = KINDS[self.kind][0]
        parts = []
        for i, v in enumerate(self.settings):
            key = names[i] if i < len(names) else f"set{i}"
            parts.append(f"rate={_bits_f32(v):g}" if key == "rate_bits" else f"{key}={v}")
        if self.act:
            parts.append(ACTIVATIONS[self.act] + (f"({self.slope:g})" if self.act == 2 else ""))
        if self.frozen:
            parts.append("frozen")
        return f"{self.kind} " + " ".join(parts)

    def __eq__(self, other):  # optional settings: missing == 0
        if not isinstance(other, Layer):
            return NotImplemented
        n = max(len(self.settings), len(other.settings))
        pad = lambda s: list(s) + [0] * (n - len(s))  # noqa: E731
        return (self.kind, self.act, self.frozen, pad(self.settings)) == \
            (other.kind, other.act, other.frozen, pad(other.settings)) and \
            (self.act != 2 or self.slope == other.slope)

    def __repr__(self):
        return f"Layer({self.describe()})"


class Arch:
    """An nn.h architecture: per-sample input shape (nn.h's: (f), (t, f) or (h, w, c)), the
    layers, the loss and the optimizer settings.  Chainable builders mirror nn.h's calls
    (nn_dense -> .dense, ...); to_bytes()/from_bytes() are the ARCH payload, to_hex() the
    "nnh.arch" string."""

    def __init__(self, input_shape, layers=None, loss=0, optimizer=0, opt=None, nesterov=0):
        self.input_shape = tuple(int(d) for d in input_shape)
        if not 1 <= len(self.input_shape) <= 3 or min(self.input_shape) <= 0:
            raise ValueError(f"input shape {input_shape}: 1 to 3 positive dimensions")
        self.layers = list(layers or [])
        self.loss = loss if isinstance(loss, int) else LOSSES.index(loss)
        self.optimizer = optimizer if isinstance(optimizer, int) else OPTIMIZERS.index(optimizer)
        self.opt = {"lr": 1e-3, "momentum": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                    "rho": 0.99, "weight_decay": 0.0, "clip_norm": 0.0}
        self.opt.update(opt or {})
        self.nesterov = int(nesterov)

    # -- builders (each returns self) --
    def add(self, kind, act=0, settings=(), slope=0.01, frozen=0):
        self.layers.append(Layer(kind, act, frozen, slope, settings))
        return self

    def dense(self, units, act="linear", bias=True):
        return self.add("dense", act, [units] + ([] if bias else [1]))

    def conv2d(self, filters, k, act="linear", stride=1, padding="valid", kw=None, bias=True):
        """padding 'valid', 'same' (TF rule) or an int p (PyTorch padding=p, NN_PADDING(p))."""
        same = {"valid": 0, "same": 1}[padding] if isinstance(padding, str) else -1 - int(padding)
        return self.add("conv2d", act, [filters, k, kw or k, stride, same] + ([] if bias else [1]))

    def maxpool2d(self, size, pad=0):
        return self.add("maxpool2d", 0, [size] + ([pad] if pad else []))

    def avgpool2d(self, size, pad=0):
        return self.add("avgpool2d", 0, [size] + ([pad] if pad else []))

    def global_avgpool2d(self):
        return self.add("global_avgpool2d")

    def flatten(self):
        return self.add("flatten")

    def activation(self, act):
        return self.add("activation", act)

    def dropout(self, rate):
        return self.add("dropout", 0, [_f32_bits(rate)])

    def batchnorm(self):
        return self.add("batchnorm")

    def normalization(self):
        return self.add("normalization")

    def upsample2d(self, factor):
        return self.add("upsample2d", 0, [factor])

    def embedding(self, vocab, dim):
        return self.add("embedding", 0, [vocab, dim])

    def rnn(self, units, return_sequences=0):
        return self.add("rnn", 0, [units, int(return_sequences)])

    def lstm(self, units, return_sequences=0):
        return self.add("lstm", 0, [units, int(return_sequences)])

    def gru(self, units, return_sequences=0):
        return self.add("gru", 0, [units, int(return_sequences)])

    def leaky_relu_slope(self, slope):
        """nn_leaky_relu_slope: the last layer's slope."""
        self.layers[-1].slope = _f32(slope)
        return self

    def freeze(self, layer, frozen=1):
        self.layers[layer].frozen = int(frozen)
        return self

    def compile(self, loss="none", optimizer="adam", nesterov=0, **opt):
        """The loss and optimizer nn_compile gets (nn_load compiles with them); opt: lr,
        momentum, beta1, beta2, eps, rho, weight_decay, clip_norm (defaults as nn_sgd)."""
        bad = set(opt) - set(OPT_FIELDS)
        if bad:
            raise ValueError(f"unknown optimizer settings {sorted(bad)}")
        self.loss = loss if isinstance(loss, int) else LOSSES.index(loss)
        self.optimizer = optimizer if isinstance(optimizer, int) else OPTIMIZERS.index(optimizer)
        self.opt.update(opt)
        self.nesterov = int(nesterov)
        return self

    # -- the binary form --
    def to_bytes(self):
        out = [struct.pack("<I", len(self.input_shape))]
        dims = list(self.input_shape) + [1] * (3 - len(self.input_shape))  # nn_shape1/2: unused = 1
        out.append(struct.pack("<3i", *dims))
        out.append(struct.pack("<I", len(self.layers)))
        for L in self.layers:
            name = L.kind.encode("ascii")
            out.append(struct.pack("<I", len(name)) + name)
            out.append(struct.pack("<IIfI", L.act, L.frozen, L.slope, len(L.settings)))
            out.append(struct.pack(f"<{len(L.settings)}i", *L.settings))
        out.append(struct.pack("<II", self.loss, self.optimizer))
        out.append(struct.pack("<8f", *[self.opt[k] for k in OPT_FIELDS]))
        out.append(struct.pack("<I", self.nesterov))
        return b"".join(out)

    def to_hex(self):
        return self.to_bytes().hex()

    @classmethod
    def from_bytes(cls, b):
        pos = 0

        def take(fmt):
            nonlocal pos
            size = struct.calcsize(fmt)
            if pos + size > len(b):
                raise SafetensorsError(f"nnh.arch: truncated at byte {pos}")
            v = struct.unpack_from(fmt, b, pos)
            pos += size
            return v

        (ndim,) = take("<I")
        dims = take("<3i")
        if not 1 <= ndim <= 3:
            raise SafetensorsError(f"nnh.arch: input ndim {ndim}")
        (nl,) = take("<I")
        if nl > 65536:
            raise SafetensorsError(f"nnh.arch: {nl} layers")
        layers = []
        for i in range(nl):
            (ln,) = take("<I")
            if not 0 < ln <= 64:
                raise SafetensorsError(f"nnh.arch: layer {i}: kind name length {ln}")
            (kind,) = take(f"<{ln}s")
            act, frozen, slope, nset = take("<IIfI")
            if nset > 16:
                raise SafetensorsError(f"nnh.arch: layer {i}: {nset} settings")
            settings = take(f"<{nset}i")
            kind = kind.decode("ascii", "replace")
            if kind not in KINDS:
                raise SafetensorsError(f"nnh.arch: layer {i}: unknown kind {kind!r}")
            if act >= len(ACTIVATIONS):
                raise SafetensorsError(f"nnh.arch: layer {i}: activation {act}")
            if nset < KINDS[kind][1]:
                raise SafetensorsError(f"nnh.arch: layer {i} ({kind}): {nset} settings, needs "
                                       f"{KINDS[kind][1]}")
            layers.append(Layer(kind, act, frozen, slope, settings))
        loss, optimizer = take("<II")
        opt = dict(zip(OPT_FIELDS, take("<8f")))
        (nesterov,) = take("<I")
        if pos != len(b):
            raise SafetensorsError(f"nnh.arch: {len(b) - pos} bytes after the optimizer")
        return cls(dims[:ndim], layers, loss, optimizer, opt, nesterov)

    @classmethod
    def from_hex(cls, s):
        try:
            return cls.from_bytes(bytes.fromhex(s))
        except ValueError as e:
            if isinstance(e, SafetensorsError):
                raise
            raise SafetensorsError(f"nnh.arch is not hex: {e}") from None

    def shapes(self):
        """nn.h's per-sample output shape of every layer (what nn_layer_output_shape gives)."""
        out, s = [], self.input_shape
        for i, L in enumerate(self.layers):
            s = layer_output_shape(L, s, i)
            out.append(s)
        return out

    def __eq__(self, other):
        if not isinstance(other, Arch):
            return NotImplemented
        return (self.input_shape, self.layers, self.loss, self.optimizer, self.nesterov) == \
            (other.input_shape, other.layers, other.loss, other.optimizer, other.nesterov) and \
            all(_f32(self.opt[k]) == _f32(other.opt[k]) for k in OPT_FIELDS)

    def describe(self):
        lines = [f"input {self.input_shape}"]
        for i, (L, s) in enumerate(zip(self.layers, self.shapes())):
            lines.append(f"  {i:3d} {L.describe():50s} -> {s}")
        opt = " ".join(f"{k}={self.opt[k]:g}" for k in OPT_FIELDS)
        lines.append(f"loss {LOSSES[self.loss] if self.loss < len(LOSSES) else self.loss}, "
                     f"optimizer {OPTIMIZERS[self.optimizer] if self.optimizer < len(OPTIMIZERS) else self.optimizer} "
                     f"{opt}{' nesterov' if self.nesterov else ''}")
        return "\n".join(lines)


def layer_output_shape(L, s, i=0):
    """nn.h's shape rules (section 5.2) for one layer on per-sample input shape s."""
    k = L.kind

    def need(nd):
        if len(s) != nd:
            raise ValueError(f"layer {i} ({k}): input {s} needs {nd} dimensions")

    if k == "dense":
        if len(s) == 3:
            raise ValueError(f"layer {i} (dense): input {s} is an image; flatten first")
        return s[:-1] + (L.get("units"),)
    if k == "conv2d":
        need(3)
        (h, w, _), kh, kw, st, same = s, L.get("kh"), L.get("kw"), L.get("stride"), L.get("same")
        if same == 1:
            oh, ow = -(-h // st), -(-w // st)
        else:
            p = 0 if same == 0 else -1 - same
            oh, ow = (h + 2 * p - kh) // st + 1, (w + 2 * p - kw) // st + 1
        if oh <= 0 or ow <= 0:
            raise ValueError(f"layer {i} (conv2d): kernel larger than its input {s}")
        return (oh, ow, L.get("filters"))
    if k in ("maxpool2d", "avgpool2d"):
        need(3)
        p, size = L.get("pad"), L.get("size")
        return ((s[0] + 2 * p) // size, (s[1] + 2 * p) // size, s[2])
    if k == "global_avgpool2d":
        need(3)
        return (s[2],)
    if k == "flatten":
        return (math.prod(s),)
    if k == "upsample2d":
        need(3)
        f = L.get("factor")
        return (s[0] * f, s[1] * f, s[2])
    if k == "embedding":
        need(1)
        return (s[0], L.get("dim"))
    if k in ("rnn", "lstm", "gru"):
        need(2)
        return (s[0], L.get("units")) if L.get("return_sequences") else (L.get("units"),)
    return s  # activation, dropout, batchnorm, normalization


def flatten_perm_map(arch):
    """{layer index: (h, w, c)} of the layers whose vectors the mapping stores in PyTorch's
    (c, h, w) order instead of nn.h's (h, w, c): after a flatten of an image, the batch norm /
    normalization layers that keep the shape (through dropout and activation layers too) and
    the first dense layer, which consumes the order (nn.h section 8.4: the order is carried
    until a matrix consumes it or the model ends)."""
    shapes = [arch.input_shape] + arch.shapes()
    out = {}
    for i, L in enumerate(arch.layers):
        if L.kind != "flatten" or len(shapes[i]) != 3:
            continue
        for j in range(i + 1, len(arch.layers)):
            if arch.layers[j].kind in ("batchnorm", "normalization", "dense"):
                out[j] = shapes[i]
            if arch.layers[j].kind not in ("dropout", "activation", "batchnorm", "normalization", "flatten"):
                break
    return out


def flat_tail(arch):
    """(h, w, c) when the model ends in a flatten of an image (through layers that keep the
    shape, no dense after it): the twin's output is then in (c, h, w) order, nn.h's in
    (h, w, c); None otherwise."""
    shapes = [arch.input_shape] + arch.shapes()
    for i in range(len(arch.layers) - 1, -1, -1):
        k = arch.layers[i].kind
        if k == "flatten" and len(shapes[i]) == 3:
            return shapes[i]
        if k not in ("dropout", "activation", "batchnorm", "normalization", "flatten"):
            return None
    return None


def read_nnm(path):
    """nn.h's own model file (nn_save, format 2) as (Arch, {key: float32 array} in this
    mapping's keys and layouts, by layer index).  What nn_save_safetensors would write for the
    same model: an independent check of it, and a way to bring files of nn.h 0.2 over."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 16 or buf[:4] != b"NNH\x1a":
        raise SafetensorsError(f"{path}: not an nn.h model file")
    if zlib_crc32(buf[:-4]) != struct.unpack("<I", buf[-4:])[0]:
        raise SafetensorsError(f"{path}: CRC mismatch")
    version, nsec = struct.unpack_from("<II", buf, 4)
    if version != 2:
        raise SafetensorsError(f"{path}: format {version}; only format 2 is read here "
                               "(nn_load then nn_save_safetensors converts older files)")
    pos, sections = 12, {}
    for _ in range(nsec):
        tag, _, slen = struct.unpack_from("<4sIQ", buf, pos)
        pos += 16
        sections[tag] = buf[pos:pos + slen]
        pos += slen
    arch = Arch.from_bytes(sections[b"ARCH"])
    (npar,) = struct.unpack_from("<Q", sections[b"PARM"])
    params = np.frombuffer(sections[b"PARM"], "<f4", npar, 8).astype(np.float32)
    (nbuf,) = struct.unpack_from("<Q", sections[b"BUFS"])
    bufs = np.frombuffer(sections[b"BUFS"], "<f4", nbuf, 8).astype(np.float32)
    step = struct.unpack_from("<Q", sections[b"OPTS"])[0] if b"OPTS" in sections else 0
    shapes = [arch.input_shape] + arch.shapes()
    perm = flatten_perm_map(arch)
    sd = collections.OrderedDict()
    po = bo = 0
    for i, L in enumerate(arch.layers):
        s, k = shapes[i], L.kind
        c = s[-1]

        def take(n):
            nonlocal po
            v = params[po:po + n]
            po += n
            return v

        def vec(v):  # a per-feature vector between a flatten and its dense: (c, h, w) order
            return v.reshape(perm[i]).transpose(2, 0, 1).reshape(-1) if i in perm else v

        used = po
        if k == "dense":
            u = L.get("units")
            w = take(c * u).reshape(c, u)
            if i in perm:
                h, wd, ch = perm[i]
                w = w.reshape(h, wd, ch, u).transpose(2, 0, 1, 3).reshape(c, u)
            sd[f"{i}.weight"] = w.T.copy()
            if not L.get("no_bias"):
                sd[f"{i}.bias"] = take(u).copy()
        elif k == "conv2d":
            fo, kh, kw = L.get("filters"), L.get("kh"), L.get("kw")
            sd[f"{i}.weight"] = take(kh * kw * c * fo).reshape(kh, kw, c, fo).transpose(3, 2, 0, 1).copy()
            if not L.get("no_bias"):
                sd[f"{i}.bias"] = take(fo).copy()
        elif k == "batchnorm":
            sd[f"{i}.weight"] = vec(take(c)).copy()
            sd[f"{i}.bias"] = vec(take(c)).copy()
            sd[f"{i}.running_mean"] = vec(bufs[bo:bo + c]).copy()
            sd[f"{i}.running_var"] = vec(bufs[bo + c:bo + 2 * c]).copy()
            sd[f"{i}.num_batches_tracked"] = np.array(step, dtype=np.int64)
            bo += 2 * c
        elif k == "normalization":
            sd[f"{i}.mean"] = vec(bufs[bo:bo + c]).copy()
            sd[f"{i}.variance"] = vec(bufs[bo + c:bo + 2 * c]).copy()
            bo += 2 * c
        elif k == "embedding":
            sd[f"{i}.weight"] = take(L.get("vocab") * L.get("dim")).reshape(L.get("vocab"), L.get("dim")).copy()
        elif k in ("rnn", "lstm", "gru"):
            hu = L.get("units")
            g = hu * {"rnn": 1, "lstm": 4, "gru": 3}[k]
            sd[f"{i}.weight_ih_l0"] = take(c * g).reshape(c, g).T.copy()
            sd[f"{i}.weight_hh_l0"] = take(hu * g).reshape(hu, g).T.copy()
            sd[f"{i}.bias_ih_l0"] = take(g).copy()
            sd[f"{i}.bias_hh_l0"] = take(g).copy() if k == "gru" else np.zeros(g, np.float32)
        po = used + ((po - used + 15) & ~15)
    if po != npar or bo != nbuf:
        raise SafetensorsError(f"{path}: {npar} parameters and {nbuf} buffers, the architecture "
                               f"needs {po} and {bo}")
    return arch, sd


def zlib_crc32(b):
    import zlib
    return zlib.crc32(b) & 0xFFFFFFFF


# ---- the twin: PyTorch modules with nn.h's conventions -------------------------------------------

if torch is not None:

    def _activate(x, act, slope, cdim):
        if act == 0:
            return x
        if act == 1:
            return F.relu(x)
        if act == 2:
            return F.leaky_relu(x, slope)
        if act == 3:
            return torch.sigmoid(x)
        if act == 4:
            return torch.tanh(x)
        return torch.softmax(x, dim=cdim)  # nn.h: the last dim of NHWC = channels

    class _NNHLayer:
        """What every twin layer carries: its nn.h record and the fused activation."""

        def _nnh_init(self, layer):
            self.nnh_kind, self.nnh_act, self.nnh_slope = layer.kind, layer.act, layer.slope
            self.nnh_layer = layer

        def _post(self, y):
            return _activate(y, self.nnh_act, self.nnh_slope, 1 if y.dim() == 4 else -1)

        def extra_repr(self):
            base = super().extra_repr() if hasattr(super(), "extra_repr") else ""
            act = ACTIVATIONS[self.nnh_act]
            tail = "" if self.nnh_act == 0 else f"act={act}" + (
                f"({self.nnh_slope:g})" if self.nnh_act == 2 else "")
            return ", ".join(p for p in (base, tail) if p)

    class NNHDense(_NNHLayer, nn.Linear):
        """nn.h dense: Linear on the last dimension (every step of a sequence), then the
        activation."""

        def __init__(self, layer, in_features):
            nn.Linear.__init__(self, in_features, layer.get("units"), bias=not layer.get("no_bias"))
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(nn.Linear.forward(self, x))

    class NNHConv2d(_NNHLayer, nn.Conv2d):
        """nn.h conv2d on NCHW: 'valid', PyTorch padding=p, or TF 'same' (the extra row and
        column of an odd total padding at the bottom / right)."""

        def __init__(self, layer, in_channels):
            same = layer.get("same")
            pad = -1 - same if same < 0 else 0
            nn.Conv2d.__init__(self, in_channels, layer.get("filters"),
                               (layer.get("kh"), layer.get("kw")), stride=layer.get("stride"),
                               padding=pad, bias=not layer.get("no_bias"))
            self._nnh_init(layer)
            self.tf_same = same == 1

        def forward(self, x):
            if self.tf_same:
                pads = []
                for size, k in ((x.shape[3], self.kernel_size[1]), (x.shape[2], self.kernel_size[0])):
                    s = self.stride[0]
                    total = max((-(-size // s) - 1) * s + k - size, 0)
                    pads += [total // 2, total - total // 2]
                x = F.pad(x, pads)
            return self._post(nn.Conv2d.forward(self, x))

    class NNHMaxPool2d(_NNHLayer, nn.MaxPool2d):
        def __init__(self, layer):
            nn.MaxPool2d.__init__(self, layer.get("size"), layer.get("size"), padding=layer.get("pad"))
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(nn.MaxPool2d.forward(self, x))

    class NNHAvgPool2d(_NNHLayer, nn.AvgPool2d):
        def __init__(self, layer):
            nn.AvgPool2d.__init__(self, layer.get("size"), layer.get("size"), padding=layer.get("pad"),
                                  count_include_pad=True)
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(nn.AvgPool2d.forward(self, x))

    class NNHGlobalAvgPool2d(_NNHLayer, nn.Module):
        """(N, C, H, W) -> (N, C): the mean of each channel."""

        def __init__(self, layer):
            nn.Module.__init__(self)
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(x.mean(dim=(2, 3)))

    class NNHFlatten(_NNHLayer, nn.Flatten):
        """nn.Flatten on NCHW: (c, h, w) order, the order the file stores the vectors of the
        layers after it in (NNHTwin.nnh_output turns a flattened model output into nn.h's)."""

        def __init__(self, layer):
            nn.Flatten.__init__(self)
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(torch.flatten(x, 1))

    class NNHActivation(_NNHLayer, nn.Module):
        def __init__(self, layer):
            nn.Module.__init__(self)
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(x)

    class NNHDropout(_NNHLayer, nn.Dropout):
        def __init__(self, layer):
            nn.Dropout.__init__(self, layer.rate)
            self._nnh_init(layer)

        def forward(self, x):
            return self._post(nn.Dropout.forward(self, x))

    class NNHBatchNorm(_NNHLayer, nn.modules.batchnorm._BatchNorm):
        """Batch norm per channel (images, NCHW), feature (N, C) or feature of every step
        (N, T, C); eps 1e-5, momentum 0.1 as nn.h (PyTorch's defaults)."""

        def __init__(self, layer, features):
            nn.modules.batchnorm._BatchNorm.__init__(self, features, eps=1e-5, momentum=0.1)
            self._nnh_init(layer)

        def _check_input_dim(self, x):
            if x.dim() not in (2, 3, 4):
                raise ValueError(f"expected 2D, 3D or 4D input (got {x.dim()}D)")

        def forward(self, x):
            if x.dim() == 3:  # (N, T, C): PyTorch's BatchNorm1d wants (N, C, T)
                return self._post(nn.modules.batchnorm._BatchNorm.forward(self, x.transpose(1, 2))
                                  .transpose(1, 2))
            return self._post(nn.modules.batchnorm._BatchNorm.forward(self, x))

    class NNHNormalization(_NNHLayer, nn.Module):
        """Keras Normalization: y = (x - mean) / max(sqrt(variance), 1e-7) per channel /
        feature; mean and variance are buffers (the file's "mean" and "variance")."""

        def __init__(self, layer, features):
            nn.Module.__init__(self)
            self._nnh_init(layer)
            self.register_buffer("mean", torch.zeros(features))
            self.register_buffer("variance", torch.ones(features))

        def forward(self, x):
            d = torch.sqrt(self.variance)
            d = torch.where(d >= 1e-7, d, torch.full_like(d, 1e-7))
            shape = (1, -1, 1, 1) if x.dim() == 4 else (-1,)
            return self._post((x - self.mean.view(shape)) / d.view(shape))

    class NNHUpsample2d(_NNHLayer, nn.Module):
        """Nearest-neighbour upsampling by an integer factor (each pixel an f x f block)."""

        def __init__(self, layer):
            nn.Module.__init__(self)
            self._nnh_init(layer)
            self.factor = layer.get("factor")

        def forward(self, x):
            f = self.factor
            return self._post(x.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3))

        def extra_repr(self):
            return f"factor={self.factor}"

    class NNHEmbedding(_NNHLayer, nn.Embedding):
        """Token ids given as floats (batch, time), as nn.h takes them."""

        def __init__(self, layer):
            nn.Embedding.__init__(self, layer.get("vocab"), layer.get("dim"))
            self._nnh_init(layer)

        def forward(self, x):
            if x.is_floating_point():
                bad = (x != x.floor()) | (x < 0) | (x >= self.num_embeddings)
                if bool(bad.any()):
                    raise ValueError(f"token id {x[bad].flatten()[0].item()} is not in "
                                     f"[0, {self.num_embeddings})")
                x = x.long()
            return self._post(nn.Embedding.forward(self, x))

    def _recurrent(base):
        class NNHRecurrent(_NNHLayer, base):
            def __init__(self, layer, input_size):
                base.__init__(self, input_size, layer.get("units"), batch_first=True)
                self._nnh_init(layer)
                self.return_sequences = bool(layer.get("return_sequences"))

            def forward(self, x):
                y = base.forward(self, x)[0]
                return self._post(y if self.return_sequences else y[:, -1])

        NNHRecurrent.__name__ = NNHRecurrent.__qualname__ = "NNH" + base.__name__
        NNHRecurrent.__doc__ = (f"nn.h {base.__name__.lower()}: batch_first; without "
                                "return_sequences the last step's state (N, H).")
        return NNHRecurrent

    NNHRNN, NNHLSTM, NNHGRU = _recurrent(nn.RNN), _recurrent(nn.LSTM), _recurrent(nn.GRU)

    def make_layer(L, in_shape):
        """The twin module of nn.h layer record L on nn.h per-sample input shape in_shape."""
        k, c = L.kind, in_shape[-1]
        if k == "dense":
            return NNHDense(L, c)
        if k == "conv2d":
            return NNHConv2d(L, c)
        if k == "maxpool2d":
            return NNHMaxPool2d(L)
        if k == "avgpool2d":
            return NNHAvgPool2d(L)
        if k == "global_avgpool2d":
            return NNHGlobalAvgPool2d(L)
        if k == "flatten":
            return NNHFlatten(L)
        if k == "activation":
            return NNHActivation(L)
        if k == "dropout":
            return NNHDropout(L)
        if k == "batchnorm":
            return NNHBatchNorm(L, c)
        if k == "normalization":
            return NNHNormalization(L, c)
        if k == "upsample2d":
            return NNHUpsample2d(L)
        if k == "embedding":
            return NNHEmbedding(L)
        return {"rnn": NNHRNN, "lstm": NNHLSTM, "gru": NNHGRU}[k](L, c)

    class NNHContainer(nn.Module):
        """A level of a dotted layer name ("features" of "features.0"); no forward of its own."""

        def forward(self, *a):
            raise RuntimeError("a name container is not a layer; call the twin")

    class NNHTwin(nn.Sequential):
        """The PyTorch twin of an nn.h model: twin[i] is nn.h layer i, registered under its
        name (its index unless named); forward runs the layers in nn.h's order.  Attributes:
        nnh_arch (Arch), nnh_names (list of str), nnh_version (the file's "nnh" or None)."""

        def __init__(self, arch, names=None):
            nn.Sequential.__init__(self)
            layers = arch.layers
            names = [str(i) for i in range(len(layers))] if names is None else list(names)
            if len(names) != len(layers):
                raise ValueError(f"{len(names)} names for {len(layers)} layers")
            shapes = [arch.input_shape] + arch.shapes()
            mods = [make_layer(L, shapes[i]) for i, L in enumerate(layers)]
            object.__setattr__(self, "nnh_layers", mods)
            self.nnh_arch, self.nnh_names, self.nnh_version = arch, names, None
            for name, mod in zip(names, mods):
                self._place(name, mod)

        def _place(self, name, mod):
            parts = name.split(".")
            if not name or "," in name or not all(parts):
                raise ValueError(f"layer name {name!r}: empty part or a comma")
            node = self
            for p in parts[:-1]:
                child = node._modules.get(p)
                if child is None:
                    child = NNHContainer()
                    node.add_module(p, child)
                node = child
            if parts[-1] in node._modules:
                raise ValueError(f"layer name {name!r} used twice")
            node.add_module(parts[-1], mod)

        def __getitem__(self, i):
            if isinstance(i, slice):
                raise TypeError("NNHTwin does not slice; index single layers")
            return self.nnh_layers[i]

        def __len__(self):
            return len(self.nnh_layers)

        def __iter__(self):
            return iter(self.nnh_layers)

        def forward(self, x):
            for m in self.nnh_layers:
                x = m(x)
            return x

        def nnh_output(self, y):
            """The twin's output in nn.h's layout: NCHW images to NHWC, and the (c, h, w)
            features of a model that ends in a flatten to nn.h's (h, w, c)."""
            if y.dim() == 4:
                return y.permute(0, 2, 3, 1).contiguous()
            tail = flat_tail(self.nnh_arch)
            if tail is not None and y.dim() == 2:
                h, w, c = tail
                return y.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(y.shape[0], -1)
            return y

    def build_twin(arch, names=None):
        """An NNHTwin of arch (Arch, its hex string or bytes) with PyTorch's initialisation."""
        if isinstance(arch, str):
            arch = Arch.from_hex(arch)
        elif isinstance(arch, (bytes, bytearray)):
            arch = Arch.from_bytes(bytes(arch))
        return NNHTwin(arch, names)

    def _names_from_meta(meta, n):
        s = meta.get("nnh.names")
        if s is None:
            return None
        names = s.split(",")
        if len(names) != n:
            raise SafetensorsError(f"nnh.names lists {len(names)} names for {n} layers")
        return names

    def load_nnh(path, use_names=True):
        """The twin of an nn.h-written safetensors file (nn_save_safetensors, or save_for_nnh
        with an architecture): built from "nnh.arch", named by "nnh.names" (unless
        use_names=False: then keys must be "<index>.<param>"), the tensors loaded with
        load_state_dict(strict=True) as float32, in eval mode.  nn.h's own model files
        (nn_save, format 2; told apart by content) load too (read_nnm)."""
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"NNH\x1a":  # nn.h's own model file
            arch, sd = read_nnm(path)
            twin = NNHTwin(arch)
            twin.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
            return twin.eval()
        tensors, meta, _ = read_safetensors(path)
        if "nnh.arch" not in meta:
            raise SafetensorsError(f"{path}: no nnh.arch in the metadata (not written by nn.h / "
                                   "save_for_nnh with an architecture); load the tensors with "
                                   "read_safetensors")
        arch = Arch.from_hex(meta["nnh.arch"])
        names = _names_from_meta(meta, len(arch.layers)) if use_names else None
        twin = NNHTwin(arch, names)
        sd = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
        twin.load_state_dict(sd, strict=True)
        twin.nnh_version = meta.get("nnh")
        return twin.eval()

    def round_weights_(module, dtype):
        """Round every float parameter and buffer of module to dtype (F32, F16, BF16, F64)
        and back to its own dtype, in place: the twin then computes with the weights a file
        of that dtype holds."""
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                if not t.is_floating_point() or dtype in ("F32", "F64"):
                    continue
                t.copy_(t.to(torch.float16 if dtype == "F16" else torch.bfloat16).to(t.dtype))
        return module

else:  # pragma: no cover
    def _no_torch(*a, **k):
        raise ImportError("torch_bridge: this needs PyTorch (Debian: apt-get install python3-torch)")

    build_twin = load_nnh = round_weights_ = _no_torch


def _apply_rename(sd, rename):
    """Keys "old.rest" -> "new.rest" for each prefix old -> new (longest prefix first)."""
    if not rename:
        return sd
    out = collections.OrderedDict()
    prefixes = sorted(rename, key=len, reverse=True)
    for k, v in sd.items():
        for p in prefixes:
            if k == p or k.startswith(p + "."):
                k = rename[p] + k[len(p):]
                break
        if k in out:
            raise ValueError(f"rename maps two keys to {k!r}")
        out[k] = v
    return out


def save_for_nnh(model, path, dtype="F32", arch=None, names=None, rename=None, nnh_version=None,
                 metadata=None):
    """Write a PyTorch model's state_dict (or a state_dict) as safetensors for nn.h.

    dtype: the float tensors' type, F32 (default), F16, BF16 or F64; integer tensors
    (num_batches_tracked) stay I64.  rename: {old prefix: new prefix} for the keys (e.g.
    {"conv1": "0"} or {"fc1": "classifier.1"}), applied first.  arch (an Arch, its hex or
    bytes) and names (one per layer) add the metadata nn_load needs to rebuild the model
    ("format", "nnh", "nnh.arch", "nnh.names"); a twin from this module supplies its own.
    With an architecture, the keys and shapes are checked against it first (strict, as nn.h
    loads).  Without one the file still loads into a model built in C (nn_load_safetensors,
    with nn_layer_set_name for non-index names)."""
    twin_like = torch is not None and isinstance(model, nn.Module)
    if twin_like:
        if arch is None and hasattr(model, "nnh_arch"):
            arch = model.nnh_arch
            if names is None:
                names = model.nnh_names
            if nnh_version is None:
                nnh_version = model.nnh_version
        sd = model.state_dict()
    else:
        sd = model
    sd = _apply_rename(collections.OrderedDict(sd), rename)
    meta = {"format": "pt"}
    if arch is not None:
        if isinstance(arch, str):
            arch = Arch.from_hex(arch)
        elif isinstance(arch, (bytes, bytearray)):
            arch = Arch.from_bytes(bytes(arch))
        if names is not None:
            names = [str(n) for n in names]
        if torch is not None:  # keys and shapes must be the architecture's
            want = NNHTwin(arch, names).state_dict()
            missing = [k for k in want if k not in sd]
            extra = [k for k in sd if k not in want]
            shapes = [f"{k} {tuple(sd[k].shape)} (needs {tuple(want[k].shape)})" for k in want
                      if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
            if missing or extra or shapes:
                raise ValueError("the state_dict does not fit the architecture: " + "; ".join(
                    p for p in (missing and f"missing {missing}", extra and f"unexpected {extra}",
                                shapes and f"shapes {shapes}") if p))
            sd = collections.OrderedDict((k, sd[k]) for k in want)  # nn.h's layer order
        meta["nnh"] = nnh_version or NNH_VERSION
        meta["nnh.arch"] = arch.to_hex()
        if names is not None and names != [str(i) for i in range(len(arch.layers))]:
            meta["nnh.names"] = ",".join(names)
    if metadata:
        meta.update(metadata)
    write_safetensors(path, sd, meta, dtype)


# ---- layout helpers ---------------------------------------------------------------------------

def to_torch_layout(x):
    """nn.h NHWC images (N, H, W, C) -> NCHW; anything else unchanged (numpy or torch)."""
    if x.ndim != 4:
        return x
    return x.permute(0, 3, 1, 2).contiguous() if torch is not None and isinstance(x, torch.Tensor) \
        else np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def to_nnh_layout(y):
    """NCHW -> nn.h NHWC (N, H, W, C); anything else unchanged (numpy or torch)."""
    if y.ndim != 4:
        return y
    return y.permute(0, 2, 3, 1).contiguous() if torch is not None and isinstance(y, torch.Tensor) \
        else np.ascontiguousarray(np.transpose(y, (0, 2, 3, 1)))


def random_input(arch, n, seed=0):
    """n valid nn.h inputs for arch as float32 (N, *input_shape) in nn.h's layout: token ids
    for an embedding first layer, N(0, 1) otherwise (uniform [0, 1) for images)."""
    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(arch.input_shape)
    if arch.layers and arch.layers[0].kind == "embedding":
        return rng.integers(0, arch.layers[0].get("vocab"), size=shape).astype(np.float32)
    if len(arch.input_shape) == 3:
        return rng.random(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float32)


# ---- command line ------------------------------------------------------------------------------

def _cmd_info(a):
    header, meta, start, size = read_header(a.file)
    print(f"{a.file}: {size} bytes, header {start - 8} bytes, data from byte {start}, "
          f"{len(header)} tensors")
    for k, v in meta.items():
        if k == "nnh.arch":
            try:
                arch = Arch.from_hex(v)
                print(f"  nnh.arch ({len(v) // 2} bytes):")
                print("    " + arch.describe().replace("\n", "\n    "))
            except (SafetensorsError, ValueError) as e:
                print(f"  nnh.arch: cannot decode: {e}")
        else:
            print(f"  {k}: {v}")
    counts = collections.Counter()
    for name, e in header.items():
        n = math.prod(e["shape"])
        counts[e["dtype"]] += n
        print(f"  {name:40s} {e['dtype']:5s} {str(e['shape']):18s} {e['data_offsets']}")
    print("  " + ", ".join(f"{dt}: {n} values" for dt, n in counts.items()))
    return 0


def _cmd_check(a):
    twin = load_nnh(a.file)
    print(twin)
    x = random_input(twin.nnh_arch, a.batch)
    with torch.no_grad():
        y = twin(torch.from_numpy(to_torch_layout(x)))
    print(f"input {tuple(x.shape)} (nn.h layout) -> output {tuple(y.shape)} (PyTorch layout), "
          f"max |y| {y.abs().max().item():.6g}, all finite: {bool(torch.isfinite(y).all())}")
    return 0


def _cmd_convert(a):
    tensors, meta, dtypes = read_safetensors(a.input, as_float32=False)
    write_safetensors(a.output, tensors, meta, a.dtype)
    print(f"{a.output}: {len(tensors)} tensors, floats as {a.dtype} "
          f"(were {', '.join(sorted(set(dtypes.values())))})")
    return 0


def _cmd_from_pt(a):
    obj = torch.load(a.input, map_location="cpu")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    arch = names = ver = None
    if a.arch_from:
        _, meta, _ = read_safetensors(a.arch_from)
        if "nnh.arch" not in meta:
            raise SystemExit(f"{a.arch_from}: no nnh.arch in its metadata")
        arch = Arch.from_hex(meta["nnh.arch"])
        names = _names_from_meta(meta, len(arch.layers))
        ver = meta.get("nnh")
    rename = dict(r.split("=", 1) for r in a.rename)
    save_for_nnh(obj, a.output, a.dtype, arch=arch, names=names, rename=rename, nnh_version=ver)
    print(f"{a.output}: written ({a.dtype}{', with the architecture' if arch else ''})")
    return 0


def _cmd_from_nnm(a):
    twin = load_nnh(a.input)
    save_for_nnh(twin, a.output, a.dtype)
    print(f"{a.output}: {len(twin)} layers, {len(twin.state_dict())} tensors as {a.dtype}, with the architecture")
    return 0


def _cmd_to_pt(a):
    twin = load_nnh(a.file)
    torch.save(twin.state_dict(), a.output)
    print(f"{a.output}: the state_dict of\n{twin}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="torch_bridge.py", description=__doc__.split("\n")[0],
                                 epilog="Module use and the mapping: python3 -m pydoc scripts/torch_bridge.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="header, metadata, decoded architecture, tensors")
    p.add_argument("file")
    p.set_defaults(fn=_cmd_info, torch=False)
    p = sub.add_parser("check", help="build the twin (strict load), run one random batch")
    p.add_argument("file")
    p.add_argument("--batch", type=int, default=2)
    p.set_defaults(fn=_cmd_check, torch=True)
    p = sub.add_parser("convert-dtype", help="rewrite every float tensor in DTYPE (metadata kept)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("dtype", choices=FLOAT_DTYPES)
    p.set_defaults(fn=_cmd_convert, torch=False)
    p = sub.add_parser("from-pt", help="a torch.save'd state_dict (or module) to safetensors")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--dtype", choices=FLOAT_DTYPES, default="F32")
    p.add_argument("--arch-from", metavar="NNH_FILE",
                   help="copy nnh.arch / nnh.names from this nn.h file (nn_load can then rebuild)")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="key prefix OLD becomes NEW (repeatable), e.g. conv1=0")
    p.set_defaults(fn=_cmd_from_pt, torch=True)
    p = sub.add_parser("from-nnm", help="nn.h's own model file (nn_save, format 2) to safetensors")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--dtype", choices=FLOAT_DTYPES, default="F32")
    p.set_defaults(fn=_cmd_from_nnm, torch=True)
    p = sub.add_parser("to-pt", help="the twin's state_dict, torch.save'd")
    p.add_argument("file")
    p.add_argument("output")
    p.set_defaults(fn=_cmd_to_pt, torch=True)
    a = ap.parse_args(argv)
    if a.torch and torch is None:
        print("torch_bridge.py: this command needs PyTorch (Debian: apt-get install python3-torch)",
              file=sys.stderr)
        return 2
    try:
        return a.fn(a)
    except (SafetensorsError, ValueError, OSError) as e:
        print(f"torch_bridge.py {a.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
