#!/usr/bin/python3
"""PyTorch as the oracle: reference tensors for tests/test_oracle.c (`make test` checks them
without torch, on every kernel backend).

    /usr/bin/python3 scripts/make_oracle.py        (Debian's python3-torch and python3-numpy)

writes tests/fixtures/oracle/: one file NAME.txt per case and INDEX (the case names, in order).
Deterministic: every case draws its numbers from numpy's RandomState seeded by the case's
number (the legacy generator, whose streams numpy keeps fixed), so running it again writes the
same bytes.  PyTorch computes in float64 with its own modules (nn.Linear, nn.Conv2d, pooling,
nn.BatchNorm1d/2d, nn.Upsample, nn.Embedding, nn.RNN / LSTM / GRU, the activation modules),
losses written as section 6 of nn.h computes them, torch.optim (SGD, Adam, AdamW, RMSprop) and
torch.nn.utils.clip_grad_norm_; the parameters are converted to nn.h's layouts.

What a case holds, and what tests/test_oracle.c does with it:
  - the model (nn.h's builder calls), the loss and the optimizer;
  - input x (batch samples), targets y, every layer's initial weights, bias and buffers (batch
    norm's running mean then running variance; normalization's mean then variance);
  - eval.out and eval.dx: a fresh model in inference mode (nn_input_gradient: batch norm on its
    running statistics, dropout off): the output and the gradient of the mean loss with respect
    to x (no eval.dx when the first layer is an embedding: nn_forward alone);
  - when steps > 0, training: nn_forward(training = 1) -> out (nn_output: probabilities after a
    softmax / sigmoid head fused with a cross-entropy, also for the _FROM_LOGITS losses), then
    nn_backward -> loss.1 and the gradients gw.L / gb.L, then nn_step -> the parameters after
    the step, stored as their updates uw.L@1, ub.L@1 (after - before, in float64: the test
    checks both the parameters before + update and nn.h's own update), and the buffers s.L@1
    (batch norm's running statistics after the step); with steps 2 the same batch once more
    (loss.2, uw.L@2 ...: the optimizer's state at its second step).
A tensor passes when each element is within 1e-4 of the largest expected magnitude; a layer's
weights and bias (gradients, updates) count as one block for that largest magnitude (the
gradient of a dense bias before batch norm is zero but for rounding); an update may also be off
by one float32 rounding of the parameter.

Layouts (nn.h's; the script converts): images NHWC, sequences (batch, time, features); dense W
(units, in) row-major = nn.Linear.weight (nn.h 0.2.0 held its transpose); conv W (KH, KW, C, F) = Conv2d.weight.permute(2, 3,
1, 0); recurrent W = [Wx (F, G); Wh (H, G)] = [weight_ih^T; weight_hh^T], gates i, f, g, o
(LSTM) and r, z, n (GRU) as PyTorch's; RNN / LSTM bias: one merged vector (G) = bias_ih (torch's
bias_hh is held at zero and not trained, so that one optimizer step on bias_ih is nn.h's step on
its merged bias); GRU bias [b_x (G) | b_h (G)] = [bias_ih | bias_hh]; nn.h's flatten reads NHWC
(the PyTorch model flattens its channels-last view).  Inputs, parameters and targets are
decimals of three places (exact after float32 rounding on both sides); hyper-parameters are the
float32 values nn.h holds.  The script refuses a draw where the comparison would sit on a kink
(a ReLU input or a max-pool runner-up within 1e-4): it draws again.  A case with zero_ties
(a max-pool after a ReLU conv) lets windows whose maximum is the ReLU's exact 0 tie (the
gradient is 0 whichever zero takes it) and insists on at least one such window, so that
nn.h's ReLU' applied to the pooled gradient is exercised.  A spec entry ending in "nobias"
(dense, conv2d) is PyTorch's bias=False: no bias tensor, and none drawn.

FILE FORMAT (text, ASCII; tokens separated by white space; '#' starts a comment to the end of
the line).  Keywords, in this order:
    case NAME
    input D0 [D1 [D2]]          per-sample shape: (n), (t, f) or (h, w, c)
    batch B
    layer KIND ARGS...          one per layer, in order:
        dense UNITS ACT                       nn_dense
        conv2d FILTERS KH KW STRIDE PAD ACT   nn_conv2d_ex (PAD: 0 valid, 1 same, -1-p NN_PADDING(p))
        maxpool2d SIZE | avgpool2d SIZE | global_avgpool2d | flatten | upsample2d FACTOR
        maxpool2d_ex SIZE PAD | avgpool2d_ex SIZE PAD    nn_maxpool2d_ex / nn_avgpool2d_ex:
                                    PyTorch's MaxPool2d / AvgPool2d(SIZE, padding=PAD)
        activation ACT | dropout RATE | batchnorm | normalization
        embedding VOCAB DIM | rnn UNITS SEQ | lstm UNITS SEQ | gru UNITS SEQ   (SEQ: return_sequences)
      ACT: linear relu leaky_relu sigmoid tanh softmax
    slope S                     (optional, after a layer) nn_leaky_relu_slope on that layer
    nobias                      (optional, after a dense or conv2d layer) nn_use_bias(m, 0),
                                PyTorch's bias=False: no b.L, gb.L or ub.L@K for that layer
    loss NAME                   mse binary_ce binary_ce_from_logits categorical_ce
                                categorical_ce_from_logits sparse_categorical_ce
                                sparse_categorical_ce_from_logits
    opt KIND LR MOMENTUM NESTEROV BETA1 BETA2 EPS RHO WEIGHT_DECAY CLIP_NORM
                                KIND: sgd adam adamw rmsprop (the fields of nn_optimizer)
    steps N                     0: inference checks only (a model with dropout)
    im2col_too 0|1              1: run the case again with every conv layer on im2col
                                (nn_conv_winograd(m, layer, 0)): a Winograd layer both ways
    tensor NAME COUNT           then COUNT numbers (float32 values in decimal)
    ...
    end
Tensor names: x, y; w.L, b.L, s.L (layer L's initial weights, bias, buffers); eval.out,
eval.dx; out, loss.K, gw.L, gb.L (step 1); uw.L@K, ub.L@K (the updates of step K), s.L@K
(buffers after step K).  x, y and the initial values are written exactly (the shortest
decimal of the float32); the expected values to 7 significant digits.
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as tF

torch.set_default_dtype(torch.float64)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "oracle")
MARGIN = 1e-4  # nearest kink (ReLU at 0, a max-pool tie) a draw may come to


def f32(v):
    """The float32 value nn.h holds, as a Python float."""
    return float(np.float32(v))


def num(v):
    """Shortest decimal that reads back as the float32 value (strtof)."""
    s = str(np.float32(v))
    return s[:-2] if s.endswith(".0") else s


class Kink(Exception):
    """The draw puts a comparison on a kink: draw again."""


# ---- random numbers: decimals of three places, exact in float32 and float64 ----
class Draw:
    def __init__(self, seed):
        self.r = np.random.RandomState(seed)

    @staticmethod
    def q(a):
        return np.float32(np.round(np.asarray(a, dtype=np.float64), 3)).astype(np.float64)

    def normal(self, shape, scale=1.0):
        return self.q(self.r.normal(0.0, scale, size=shape))

    def uniform(self, shape, lo, hi):
        return self.q(self.r.uniform(lo, hi, size=shape))

    def ints(self, shape, hi):
        return self.r.randint(0, hi, size=shape).astype(np.float64)


def T(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def setp(p, a):
    with torch.no_grad():
        p.copy_(T(a).reshape(p.shape))


# ---- activations (nn.h layout: softmax over the last dimension) ----
KINKS = []  # (what, distance to the kink, the least distance allowed)


def act_fn(name, slope, x):
    if name in ("relu", "leaky_relu"):
        KINKS.append(("relu input", float(x.detach().abs().min()), MARGIN))
    if name == "linear":
        return x
    if name == "relu":
        return torch.relu(x)
    if name == "leaky_relu":
        return tF.leaky_relu(x, slope)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softmax":
        return torch.softmax(x, dim=-1)
    raise ValueError(name)


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


# ---- layers: each takes and returns nn.h's layout; nnh() gives its tensors in nn.h's layout ----
class Layer(tnn.Module):
    act = "linear"
    slope = f32(0.01)

    def nnh(self, grad=False):
        """{'w': ..., 'b': ..., 's': ...} as flat float64 numpy arrays (s: values only)."""
        return {}

    def line(self):
        raise NotImplementedError


def val(p, grad):
    t = p.grad if grad else p
    if t is None:
        t = torch.zeros_like(p)
    return t.detach().reshape(-1).numpy().copy()


class Dense(Layer):
    def __init__(self, shape, d, units, act, bias=True):
        super().__init__()
        fin = shape[-1]
        self.units, self.act, self.nobias = units, act, not bias
        self.lin = tnn.Linear(fin, units, bias=bias)  # bias=False: no tensor, nothing drawn
        lim = np.sqrt(6.0 / (fin + units))
        setp(self.lin.weight, d.uniform((fin, units), -lim, lim).T)
        if bias:
            setp(self.lin.bias, d.uniform(units, -0.2, 0.2))
        self.out = shape[:-1] + (units,)

    def forward(self, x):
        return act_fn(self.act, self.slope, self.lin(x))

    def nnh(self, grad=False):
        w = (self.lin.weight.grad if grad else self.lin.weight).detach()
        r = {"w": w.reshape(-1).numpy().copy()}
        if self.lin.bias is not None:
            r["b"] = val(self.lin.bias, grad)
        return r

    def line(self):
        return "dense %d %s" % (self.units, self.act)


class Conv(Layer):
    def __init__(self, shape, d, filters, kh, kw, stride, pad, act, bias=True):
        super().__init__()
        h, w, c = shape
        self.f, self.kh, self.kw, self.s, self.pad, self.act = filters, kh, kw, stride, pad, act
        self.nobias = not bias
        self.conv = tnn.Conv2d(c, filters, (kh, kw), stride=stride, padding=0, bias=bias)
        lim = np.sqrt(6.0 / (kh * kw * (c + filters)))
        setp(self.conv.weight, d.uniform((kh, kw, c, filters), -lim, lim).transpose(3, 2, 0, 1))
        if bias:
            setp(self.conv.bias, d.uniform(filters, -0.2, 0.2))
        if pad < 0:  # NN_PADDING(p): p on every side (PyTorch's padding=p)
            p = -1 - pad
            self.padding = (p, p, p, p)
            oh, ow = (h + 2 * p - kh) // stride + 1, (w + 2 * p - kw) // stride + 1
        elif pad:  # 'same', TensorFlow's rule: the odd one to the bottom / right
            oh, ow = -(-h // stride), -(-w // stride)
            ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
            self.padding = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        else:
            self.padding = (0, 0, 0, 0)
            oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
        self.out = (oh, ow, filters)

    def forward(self, x):
        y = self.conv(tF.pad(nchw(x), self.padding))
        return act_fn(self.act, self.slope, nhwc(y))

    def nnh(self, grad=False):
        w = (self.conv.weight.grad if grad else self.conv.weight).detach().permute(2, 3, 1, 0)
        r = {"w": w.reshape(-1).numpy().copy()}
        if self.conv.bias is not None:
            r["b"] = val(self.conv.bias, grad)
        return r

    def line(self):
        return "conv2d %d %d %d %d %d %s" % (self.f, self.kh, self.kw, self.s, self.pad, self.act)


class Pool(Layer):
    """maxpool2d / avgpool2d SIZE (nn_maxpool2d), or with padding ("maxpool2d_ex" SIZE PAD,
    nn_maxpool2d_ex): PyTorch's MaxPool2d(size, padding=p) (pads -inf) and AvgPool2d(size,
    padding=p) (count_include_pad=True, the default), stride = size."""

    def __init__(self, shape, kind, size, pad=0, zero_ties=False):
        super().__init__()
        h, w, c = shape
        self.ex, kind = kind.endswith("_ex"), kind.replace("_ex", "")
        self.size, self.kind, self.p = size, kind, pad
        # zero_ties: the input comes from a ReLU; a window whose maximum is that ReLU's exact 0
        # is no kink (whichever zero takes the gradient, ReLU' makes it 0, in both)
        self.zero_ties = zero_ties
        if kind == "maxpool2d":
            self.pool = tnn.MaxPool2d(size, padding=pad)
        else:
            self.pool = tnn.AvgPool2d(size, padding=pad)
        self.out = ((h + 2 * pad) // size, (w + 2 * pad) // size, c)

    def forward(self, x):
        y = nhwc(self.pool(nchw(x)))
        if self.kind == "maxpool2d":  # the runner-up of every window
            s, p = self.size, self.p
            xd = x.detach()
            if p:  # PyTorch's -inf padding: (C), W, H
                xd = tF.pad(xd, (0, 0, p, p, p, p), value=-np.inf)
            b, h, w, c = xd.shape
            oh, ow = h // s, w // s
            win = xd[:, : oh * s, : ow * s, :].reshape(b, oh, s, ow, s, c)
            win = win.permute(0, 1, 3, 5, 2, 4).reshape(-1, s * s)
            top = torch.topk(win, 2, dim=1).values
            gap = top[:, 0] - top[:, 1]
            if self.zero_ties:
                gap = gap[top[:, 0] != 0]
                # the ReLU' path must be taken: some window's maximum is a ReLU's 0
                KINKS.append(("max-pool outputs that are a ReLU's 0", float((y == 0).sum()), 0))
            KINKS.append(("max-pool runner-up", float(gap.min()), MARGIN))
        return y

    def line(self):
        if self.ex:
            return "%s_ex %d %d" % (self.kind, self.size, self.p)
        return "%s %d" % (self.kind, self.size)


class GAP(Layer):
    def __init__(self, shape):
        super().__init__()
        self.pool = tnn.AdaptiveAvgPool2d(1)
        self.out = (shape[2],)

    def forward(self, x):
        return torch.flatten(self.pool(nchw(x)), 1)

    def line(self):
        return "global_avgpool2d"


class Flatten(Layer):
    def __init__(self, shape):
        super().__init__()
        self.out = (int(np.prod(shape)),)

    def forward(self, x):  # nn.h flattens its own (channels-last) order
        return x.reshape(x.shape[0], -1)

    def line(self):
        return "flatten"


class Act(Layer):
    def __init__(self, shape, act):
        super().__init__()
        self.act, self.out = act, shape

    def forward(self, x):
        return act_fn(self.act, self.slope, x)

    def line(self):
        return "activation %s" % self.act


class Dropout(Layer):
    def __init__(self, shape, rate):
        super().__init__()
        self.rate, self.out = f32(rate), shape
        self.drop = tnn.Dropout(self.rate)

    def forward(self, x):
        return self.drop(x)

    def line(self):
        return "dropout %s" % num(self.rate)


class BatchNorm(Layer):
    def __init__(self, shape, d):
        super().__init__()
        c = shape[-1]
        self.shape = self.out = shape
        mod = tnn.BatchNorm2d if len(shape) == 3 else tnn.BatchNorm1d
        self.bn = mod(c, eps=f32(1e-5), momentum=f32(0.1))
        setp(self.bn.weight, d.uniform(c, 0.5, 1.5))
        setp(self.bn.bias, d.uniform(c, -0.3, 0.3))
        with torch.no_grad():
            self.bn.running_mean.copy_(T(d.normal(c, 0.3)))
            self.bn.running_var.copy_(T(d.uniform(c, 0.5, 2.0)))

    def forward(self, x):
        if len(self.shape) == 3:
            return nhwc(self.bn(nchw(x)))
        if len(self.shape) == 2:  # a sequence: (B, C, T) for BatchNorm1d
            return self.bn(x.permute(0, 2, 1)).permute(0, 2, 1)
        return self.bn(x)

    def nnh(self, grad=False):
        r = {"w": val(self.bn.weight, grad), "b": val(self.bn.bias, grad)}
        if not grad:
            r["s"] = np.concatenate([self.bn.running_mean.numpy(), self.bn.running_var.numpy()])
        return r

    def line(self):
        return "batchnorm"


class Normalization(Layer):
    """Keras Normalization, in torch ops: (x - mean) / max(sqrt(var), 1e-7)."""

    def __init__(self, shape, d):
        super().__init__()
        c = shape[-1]
        self.out = shape
        self.register_buffer("mean", T(d.normal(c, 0.5)))
        self.register_buffer("var", T(d.uniform(c, 0.3, 3.0)))

    def forward(self, x):
        return (x - self.mean) / torch.clamp_min(torch.sqrt(self.var), f32(1e-7))

    def nnh(self, grad=False):
        return {} if grad else {"s": np.concatenate([self.mean.numpy(), self.var.numpy()])}

    def line(self):
        return "normalization"


class Upsample(Layer):
    def __init__(self, shape, factor):
        super().__init__()
        h, w, c = shape
        self.factor = factor
        self.up = tnn.Upsample(scale_factor=factor, mode="nearest")
        self.out = (h * factor, w * factor, c)

    def forward(self, x):
        return nhwc(self.up(nchw(x)))

    def line(self):
        return "upsample2d %d" % self.factor


class Embedding(Layer):
    def __init__(self, shape, d, vocab, dim):
        super().__init__()
        self.vocab, self.dim = vocab, dim
        self.emb = tnn.Embedding(vocab, dim)
        setp(self.emb.weight, d.normal((vocab, dim)))
        self.out = (shape[0], dim)

    def forward(self, x):
        return self.emb(x.long())

    def nnh(self, grad=False):
        return {"w": val(self.emb.weight, grad)}

    def line(self):
        return "embedding %d %d" % (self.vocab, self.dim)


class Recurrent(Layer):
    def __init__(self, shape, d, cell, units, seq):
        super().__init__()
        t, f = shape
        self.cell, self.units, self.seq = cell, units, seq
        mod = {"rnn": tnn.RNN, "lstm": tnn.LSTM, "gru": tnn.GRU}[cell]
        self.rnn = mod(f, units, batch_first=True)
        g = units * {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        lim = 1.0 / np.sqrt(units)
        setp(self.rnn.weight_ih_l0, d.uniform((f, g), -lim, lim).T)
        setp(self.rnn.weight_hh_l0, d.uniform((units, g), -lim, lim).T)
        setp(self.rnn.bias_ih_l0, d.uniform(g, -lim, lim))
        if cell == "gru":
            setp(self.rnn.bias_hh_l0, d.uniform(g, -lim, lim))
        else:  # nn.h's one merged bias is bias_ih; bias_hh stays zero, untrained
            setp(self.rnn.bias_hh_l0, np.zeros(g))
            self.rnn.bias_hh_l0.requires_grad_(False)
        self.out = (t, units) if seq else (units,)

    def forward(self, x):
        y, _ = self.rnn(x)
        return y if self.seq else y[:, -1, :]

    def nnh(self, grad=False):
        r = self.rnn

        def m(p):
            return (p.grad if grad else p).detach()

        w = torch.cat([m(r.weight_ih_l0).T, m(r.weight_hh_l0).T], dim=0)
        b = val(r.bias_ih_l0, grad)
        if self.cell == "gru":
            b = np.concatenate([b, val(r.bias_hh_l0, grad)])
        return {"w": w.reshape(-1).numpy().copy(), "b": b}

    def line(self):
        return "%s %d %d" % (self.cell, self.units, self.seq)


def build(spec, input_shape, d, zero_ties=False):
    layers, shape = [], tuple(input_shape)
    for s in spec:
        kind, a = s[0], s[1:]
        act, slope, extra = None, None, {}
        if kind in ("dense", "conv2d") and a[-1] == "nobias":  # PyTorch's bias=False
            a, extra["bias"] = a[:-1], False
        if kind in ("dense", "conv2d", "activation") and ":" in a[-1]:
            act, slope = a[-1].split(":")
            a = a[:-1] + (act,)
        if kind == "dense":
            L = Dense(shape, d, *a, **extra)
        elif kind == "conv2d":
            L = Conv(shape, d, *a, **extra)
        elif kind in ("maxpool2d", "avgpool2d", "maxpool2d_ex", "avgpool2d_ex"):
            zt = kind.startswith("max") and zero_ties and layers and layers[-1].act == "relu"
            L = Pool(shape, kind, *a, zero_ties=bool(zt))
        elif kind == "global_avgpool2d":
            L = GAP(shape)
        elif kind == "flatten":
            L = Flatten(shape)
        elif kind == "activation":
            L = Act(shape, *a)
        elif kind == "dropout":
            L = Dropout(shape, *a)
        elif kind == "batchnorm":
            L = BatchNorm(shape, d)
        elif kind == "normalization":
            L = Normalization(shape, d)
        elif kind == "upsample2d":
            L = Upsample(shape, *a)
        elif kind == "embedding":
            L = Embedding(shape, d, *a)
        elif kind in ("rnn", "lstm", "gru"):
            L = Recurrent(shape, d, kind, *a)
        else:
            raise ValueError(kind)
        if slope is not None:
            L.slope = f32(float(slope))
            L.has_slope = True
        layers.append(L)
        shape = L.out
    return tnn.ModuleList(layers), shape


# ---- losses: as nn.h's section 6 computes them (on logits where a head is fused) ----
CE = ("categorical_ce", "categorical_ce_from_logits", "sparse_categorical_ce",
      "sparse_categorical_ce_from_logits")
BCE = ("binary_ce", "binary_ce_from_logits")


def loss_fn(loss, z, y):
    if loss == "mse":  # mean over every output
        return ((z - y) ** 2).mean()
    if loss in BCE:  # mean over every output: max(z,0) - z t + log(1 + e^-|z|)
        return tF.binary_cross_entropy_with_logits(z, y)
    k = z.shape[-1]
    logp = torch.log_softmax(z.reshape(-1, k), dim=1)  # one row per sample, or per step
    if loss.startswith("sparse"):
        return tF.nll_loss(logp, y.reshape(-1).long())
    return -(y.reshape(-1, k) * logp).sum(dim=1).mean()


def head(loss, z):
    """nn_output: probabilities when a cross-entropy is fused with its softmax / sigmoid."""
    if loss in CE:
        return torch.softmax(z, dim=-1)
    if loss in BCE:
        return torch.sigmoid(z)
    return z


def targets(d, loss, batch, out_shape, soft):
    if loss.startswith("sparse"):
        rows = out_shape[0] if len(out_shape) == 2 else 1
        return d.ints((batch, rows), out_shape[-1])
    shape = (batch,) + tuple(out_shape)
    if loss in BCE:
        return d.uniform(shape, 0.0, 1.0) if soft else d.ints(shape, 2)
    if loss in CE:
        k = out_shape[-1]
        if soft:  # any non-negative targets: nn.h's gradient is p sum(t) - t
            return d.uniform(shape, 0.0, 2.0 / k)
        return np.eye(k)[d.r.randint(0, k, size=shape[:-1])]
    return d.normal(shape)


# ---- optimizers ----
def make_opt(o, params):
    kind = o["kind"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                               nesterov=bool(o["nesterov"]), weight_decay=o["wd"])
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                   weight_decay=o["wd"])
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=o["lr"], alpha=o["rho"], eps=o["eps"],
                                   weight_decay=o["wd"])
    raise ValueError(kind)


def opt(kind="sgd", lr=0.1, momentum=0.0, nesterov=0, wd=0.0, clip=0.0):
    # nn_sgd's defaults for the fields a kind does not use
    return {"kind": kind, "lr": f32(lr), "momentum": f32(momentum), "nesterov": nesterov,
            "beta1": f32(0.9), "beta2": f32(0.999), "eps": f32(1e-8), "rho": f32(0.99),
            "wd": f32(wd), "clip": f32(clip)}


# ---- one case ----
def run_case(c, seed):
    d = Draw(seed)
    layers, out_shape = build(c["layers"], c["input"], d, c.get("zero_ties", False))
    B, loss = c["batch"], c["loss"]
    first_embed = isinstance(layers[0], Embedding)
    if first_embed:
        x = d.ints((B,) + tuple(c["input"]), layers[0].vocab)
    else:
        x = d.normal((B,) + tuple(c["input"]))
    y = targets(d, loss, B, out_shape, c.get("soft", False))
    fused = loss in ("binary_ce", "categorical_ce", "sparse_categorical_ce")
    if fused:  # the head is computed inside the loss, on logits
        assert layers[-1].act == ("sigmoid" if loss == "binary_ce" else "softmax")
    o = c.get("opt") or opt()
    steps = c.get("steps", 1)

    def forward(model, xt):
        h = xt
        for i, L in enumerate(model):
            if i == len(model) - 1 and fused:
                saved, L.act = L.act, "linear"
                h = L(h)
                L.act = saved
            else:
                h = L(h)
        return h

    init = copy.deepcopy(layers)
    rec = {"x": x.reshape(-1), "y": y.reshape(-1)}
    prev = {}
    for i, L in enumerate(layers):
        for k, v in L.nnh().items():
            rec["%s.%d" % (k, i)] = prev["%s.%d" % (k, i)] = v

    # inference: a fresh copy, eval mode; the input gradient unless x holds token ids
    ev = copy.deepcopy(init)
    ev.eval()
    xt = T(x)
    if not first_embed:
        xt.requires_grad_(True)
    KINKS.clear()
    z = forward(ev, xt)
    rec["eval.out"] = head(loss, z).detach().reshape(-1).numpy()
    if not first_embed:
        loss_fn(loss, z, T(y)).backward()
        rec["eval.dx"] = xt.grad.reshape(-1).numpy()

    # training steps (batch statistics; dropout only with rate 0)
    layers.train()
    params = [p for p in layers.parameters() if p.requires_grad]
    optim = make_opt(o, params) if params else None
    for k in range(1, steps + 1):
        if optim:
            optim.zero_grad()
        z = forward(layers, T(x))
        lv = loss_fn(loss, z, T(y))
        lv.backward()
        rec["loss.%d" % k] = np.array([lv.item()])
        if k == 1:
            rec["out"] = head(loss, z).detach().reshape(-1).numpy()
            for i, L in enumerate(layers):
                for key, v in L.nnh(grad=True).items():
                    rec["g%s.%d" % (key, i)] = v
        if o["kind"] in ("adam", "adamw", "rmsprop"):
            # the first steps are sign-like (g / (|g| + eps)): a gradient near zero would make
            # float32 rounding decide the update's sign
            g = np.concatenate([p.grad.reshape(-1).numpy() for p in params])
            if o["wd"] and o["kind"] != "adamw":
                g = g + o["wd"] * np.concatenate([p.detach().reshape(-1).numpy() for p in params])
            a = np.abs(g)
            KINKS.append(("sign-like update: smallest |g| / largest", float(a[a > 0].min() / a.max()),
                          1e-5))
        if o["clip"] > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, o["clip"]))
            KINKS.append(("clip: |norm - threshold| / threshold", abs(norm - o["clip"]) / o["clip"],
                          MARGIN))
        if optim:
            optim.step()
        for i, L in enumerate(layers):  # updates of parameters, buffers after the step
            for key, v in L.nnh().items():
                name = "%s.%d" % (key, i)
                if key == "s":
                    rec["%s@%d" % (name, k)] = v
                else:
                    rec["u%s@%d" % (name, k)] = v - prev[name]
                prev[name] = v
    bad = [(w, m) for w, m, lim in KINKS if not m > lim]
    if bad:
        raise Kink(bad[0])
    return layers, rec, o, steps


def write_case(path, c, layers, rec, o, steps):
    lines = ["# nn.h oracle fixture, written by scripts/make_oracle.py (the format is described"
             " there); do not edit",
             "case %s" % c["name"],
             "input %s" % " ".join(str(v) for v in c["input"]),
             "batch %d" % c["batch"]]
    for L in layers:
        lines.append("layer %s" % L.line())
        if getattr(L, "has_slope", False):
            lines.append("slope %s" % num(L.slope))
        if getattr(L, "nobias", False):
            lines.append("nobias")
    lines.append("loss %s" % c["loss"])
    lines.append("opt %s %s %s %d %s %s %s %s %s %s" % (
        o["kind"], num(o["lr"]), num(o["momentum"]), o["nesterov"], num(o["beta1"]),
        num(o["beta2"]), num(o["eps"]), num(o["rho"]), num(o["wd"]), num(o["clip"])))
    lines.append("steps %d" % steps)
    lines.append("im2col_too %d" % (1 if c.get("im2col_too") else 0))
    for name, v in rec.items():
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        # nn.h's inputs exactly (float32); expected values to 7 significant digits
        exact = name in ("x", "y") or (name[0] in "wbs" and "@" not in name)
        fmt = num if exact else (lambda a: "%.7g" % a)
        lines.append("tensor %s %d" % (name, v.size))
        for i in range(0, v.size, 12):
            lines.append(" ".join(fmt(a) for a in v[i:i + 12]))
    lines.append("end")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- the cases ----
def C(name, inp, layers, loss="mse", batch=3, **kw):
    c = {"name": name, "input": inp, "layers": layers, "loss": loss, "batch": batch}
    c.update(kw)
    return c


MLP = [("dense", 6, "tanh"), ("dense", 3, "linear")]

CASES = [
    # dense
    C("dense_linear", (5,), [("dense", 4, "linear")]),
    C("dense_relu", (6,), [("dense", 8, "relu"), ("dense", 3, "linear")]),
    C("dense_sequence", (4, 3), [("dense", 5, "tanh"), ("dense", 2, "linear")]),
    C("dense_activations", (5,), [("dense", 6, "leaky_relu:0.25"), ("dense", 6, "sigmoid"),
                                  ("dense", 5, "tanh"), ("dense", 4, "relu"),
                                  ("dense", 4, "softmax")]),
    # conv2d
    C("conv_valid", (5, 5, 2), [("conv2d", 3, 3, 3, 1, 0, "tanh"), ("flatten",),
                                ("dense", 2, "linear")], batch=2),
    C("conv_same_s1_3x2", (4, 5, 2), [("conv2d", 3, 3, 2, 1, 1, "relu"), ("flatten",),
                                      ("dense", 2, "linear")], batch=2),
    C("conv_same_s2", (6, 5, 2), [("conv2d", 3, 3, 3, 2, 1, "tanh"), ("flatten",),
                                  ("dense", 2, "linear")], batch=2),
    C("conv_pad1_s2_even", (6, 6, 2), [("conv2d", 3, 3, 3, 2, -2, "sigmoid"), ("flatten",),
                                       ("dense", 2, "linear")], batch=2),
    C("conv_winograd_valid", (6, 6, 8), [("conv2d", 8, 3, 3, 1, 0, "relu"),
                                         ("global_avgpool2d",), ("dense", 2, "linear")],
      batch=2, im2col_too=True),
    C("conv_winograd_same", (5, 5, 8), [("conv2d", 9, 3, 3, 1, 1, "leaky_relu:0.1"),
                                        ("global_avgpool2d",), ("dense", 2, "linear")],
      batch=2, im2col_too=True),
    C("conv_1x1", (3, 3, 3), [("conv2d", 5, 1, 1, 1, 0, "leaky_relu:0.2"), ("flatten",),
                              ("dense", 2, "linear")], batch=2),
    C("conv_softmax_channels", (3, 3, 2), [("conv2d", 3, 3, 3, 1, 1, "softmax"), ("flatten",),
                                           ("dense", 2, "linear")], batch=2),
    # pooling
    C("conv_relu_maxpool2_first", (6, 6, 2), [("conv2d", 3, 3, 3, 1, 0, "relu"),
                                              ("maxpool2d", 2), ("flatten",),
                                              ("dense", 2, "linear")], batch=2),
    C("conv_conv_relu_maxpool2", (7, 7, 1), [("conv2d", 2, 2, 2, 1, 0, "tanh"),
                                             ("conv2d", 3, 3, 3, 1, 0, "relu"),
                                             ("maxpool2d", 2), ("flatten",),
                                             ("dense", 2, "linear")], batch=2),
    C("maxpool2_odd", (7, 7, 1), [("conv2d", 2, 3, 3, 1, 0, "tanh"), ("maxpool2d", 2),
                                  ("flatten",), ("dense", 2, "linear")], batch=2),
    C("maxpool3", (9, 9, 1), [("conv2d", 2, 3, 3, 1, 0, "linear"), ("maxpool2d", 3),
                              ("flatten",), ("dense", 2, "linear")], batch=2),
    C("avgpool2", (7, 7, 1), [("conv2d", 2, 3, 3, 1, 0, "relu"), ("avgpool2d", 2),
                              ("flatten",), ("dense", 2, "linear")], batch=2),
    C("global_avgpool", (5, 5, 3), [("conv2d", 4, 3, 3, 1, 0, "relu"), ("global_avgpool2d",),
                                    ("dense", 2, "linear")], batch=2),
    C("global_avgpool_first", (3, 4, 3), [("global_avgpool2d",), ("dense", 3, "softmax")],
      loss="categorical_ce"),
    C("flatten_dense", (3, 4, 2), [("flatten",), ("dense", 3, "linear")]),
    # activation layers, dropout
    C("activation_layers", (5,), [("dense", 6, "linear"), ("activation", "relu"),
                                  ("dense", 6, "linear"), ("activation", "leaky_relu:0.3"),
                                  ("dense", 5, "linear"), ("activation", "sigmoid"),
                                  ("dense", 5, "linear"), ("activation", "tanh"),
                                  ("dense", 4, "linear"), ("activation", "softmax")]),
    C("activation_softmax_sequence", (4, 3), [("dense", 5, "tanh"), ("dense", 3, "linear"),
                                              ("activation", "softmax")]),
    C("activation_image", (4, 4, 2), [("activation", "tanh"), ("conv2d", 2, 3, 3, 1, 0, "linear"),
                                      ("activation", "leaky_relu:0.05"), ("flatten",),
                                      ("dense", 2, "linear")]),
    C("dropout_eval", (6,), [("dense", 8, "relu"), ("dropout", 0.5), ("dense", 3, "linear")],
      steps=0),
    C("dropout_rate0_train", (6,), [("dense", 8, "tanh"), ("dropout", 0.0),
                                    ("dense", 3, "linear")]),
    # batch norm, normalization, upsampling
    C("batchnorm_features", (5,), [("dense", 6, "linear"), ("batchnorm",),
                                   ("activation", "relu"), ("dense", 3, "linear")], batch=4),
    C("batchnorm_images", (4, 4, 2), [("conv2d", 3, 3, 3, 1, 0, "linear"), ("batchnorm",),
                                      ("activation", "relu"), ("global_avgpool2d",),
                                      ("dense", 2, "linear")]),
    C("batchnorm_sequence", (4, 3), [("dense", 4, "linear"), ("batchnorm",),
                                     ("dense", 2, "tanh")]),
    C("batchnorm_first", (4,), [("batchnorm",), ("dense", 3, "linear")], batch=5),
    C("normalization", (4,), [("normalization",), ("dense", 3, "tanh"), ("dense", 2, "linear")]),
    C("normalization_image", (3, 3, 2), [("normalization",), ("flatten",),
                                         ("dense", 2, "linear")]),
    C("upsample2d", (3, 3, 2), [("upsample2d", 2), ("conv2d", 2, 3, 3, 1, 0, "tanh"),
                                ("flatten",), ("dense", 2, "linear")]),
    C("upsample3_conv_out", (2, 2, 1), [("conv2d", 2, 2, 2, 1, 1, "tanh"), ("upsample2d", 3),
                                        ("conv2d", 1, 3, 3, 1, 1, "linear")], batch=2),
    # embedding, recurrent
    C("embedding_flatten", (4,), [("embedding", 6, 3), ("flatten",), ("dense", 2, "linear")],
      batch=4),
    C("embedding_lstm_per_step", (4,), [("embedding", 5, 3), ("lstm", 4, 1),
                                        ("dense", 5, "softmax")],
      loss="sparse_categorical_ce"),
    C("rnn_last", (4, 3), [("rnn", 5, 0), ("dense", 2, "linear")]),
    C("rnn_sequences", (4, 3), [("rnn", 4, 1), ("dense", 2, "linear")]),
    C("lstm_last", (4, 3), [("lstm", 5, 0), ("dense", 2, "linear")]),
    C("lstm_sequences", (4, 3), [("lstm", 4, 1), ("dense", 2, "linear")]),
    C("gru_last", (4, 3), [("gru", 5, 0), ("dense", 2, "linear")]),
    C("gru_sequences", (4, 3), [("gru", 4, 1), ("dense", 2, "linear")]),
    C("lstm_gru_stack", (4, 2), [("lstm", 3, 1), ("gru", 3, 0), ("dense", 3, "softmax")],
      loss="sparse_categorical_ce"),
    # losses
    C("loss_binary_ce", (5,), [("dense", 6, "tanh"), ("dense", 3, "sigmoid")],
      loss="binary_ce", batch=4),
    C("loss_binary_ce_from_logits", (5,), MLP, loss="binary_ce_from_logits", batch=4, soft=True),
    C("loss_binary_ce_image", (4, 4, 1), [("conv2d", 1, 3, 3, 1, 1, "sigmoid")],
      loss="binary_ce", batch=2, soft=True),
    C("loss_categorical_ce", (5,), [("dense", 6, "tanh"), ("dense", 4, "softmax")],
      loss="categorical_ce", batch=4),
    C("loss_categorical_ce_from_logits", (5,), [("dense", 6, "tanh"), ("dense", 4, "linear")],
      loss="categorical_ce_from_logits", batch=4, soft=True),
    C("loss_sparse_ce", (5,), [("dense", 6, "tanh"), ("dense", 4, "softmax")],
      loss="sparse_categorical_ce", batch=4),
    C("loss_sparse_ce_from_logits", (5,), [("dense", 6, "tanh"), ("dense", 4, "linear")],
      loss="sparse_categorical_ce_from_logits", batch=4),
    C("loss_sparse_ce_per_step", (4, 3), [("gru", 5, 1), ("dense", 4, "linear")],
      loss="sparse_categorical_ce_from_logits"),
    C("loss_categorical_ce_per_step", (4, 3), [("rnn", 5, 1), ("dense", 3, "softmax")],
      loss="categorical_ce", soft=True),
    # optimizers: two steps on the same batch (the second uses the state of the first)
    C("opt_sgd", (5,), MLP, batch=4, steps=2, opt=opt("sgd", 0.1)),
    C("opt_sgd_wd", (5,), MLP, batch=4, steps=2, opt=opt("sgd", 0.1, wd=0.05)),
    C("opt_momentum", (5,), MLP, batch=4, steps=2, opt=opt("sgd", 0.1, momentum=0.9)),
    C("opt_nesterov_wd", (5,), MLP, batch=4, steps=2,
      opt=opt("sgd", 0.1, momentum=0.9, nesterov=1, wd=0.01)),
    C("opt_adam", (5,), MLP, batch=4, steps=2, opt=opt("adam", 0.01)),
    C("opt_adam_wd", (5,), MLP, batch=4, steps=2, opt=opt("adam", 0.01, wd=0.1)),
    C("opt_adamw", (5,), MLP, batch=4, steps=2, opt=opt("adamw", 0.01, wd=0.1)),
    C("opt_rmsprop", (5,), MLP, batch=4, steps=2, opt=opt("rmsprop", 0.01)),
    C("opt_rmsprop_wd", (5,), MLP, batch=4, steps=2, opt=opt("rmsprop", 0.01, wd=0.1)),
    C("opt_sgd_clip", (5,), MLP, batch=4, steps=2, opt=opt("sgd", 0.1, clip=0.3)),
    C("opt_adam_clip", (5,), MLP, batch=4, steps=2, opt=opt("adam", 0.01, clip=0.3)),
    C("opt_momentum_clip_bn", (5,), [("dense", 6, "linear"), ("batchnorm",),
                                     ("activation", "tanh"), ("dense", 3, "linear")],
      batch=4, steps=2, opt=opt("sgd", 0.1, momentum=0.9, clip=0.5)),
    C("opt_adam_lstm", (4, 3), [("lstm", 4, 0), ("dense", 2, "linear")], steps=2,
      opt=opt("adam", 0.01)),
    C("opt_rmsprop_gru_clip", (4, 3), [("gru", 4, 0), ("dense", 2, "linear")], steps=2,
      opt=opt("rmsprop", 0.01, wd=0.01, clip=0.2)),
    C("opt_adamw_conv", (4, 4, 2), [("conv2d", 3, 3, 3, 1, 0, "tanh"), ("flatten",),
                                    ("dense", 2, "linear")], batch=2, steps=2,
      opt=opt("adamw", 0.01, wd=0.1)),
    # bias=False (nn_use_bias(m, 0)) and padded pooling (nn_maxpool2d_ex, nn_avgpool2d_ex); new
    # cases go last: a case's seed is its position
    C("conv_nobias_bn", (5, 5, 3), [("conv2d", 4, 3, 3, 1, 1, "linear", "nobias"), ("batchnorm",),
                                    ("activation", "relu"), ("global_avgpool2d",),
                                    ("dense", 2, "linear")], batch=2),
    C("conv_nobias_bn_winograd", (4, 4, 8), [("conv2d", 8, 3, 3, 1, 1, "linear", "nobias"),
                                             ("batchnorm",), ("activation", "relu"),
                                             ("global_avgpool2d",), ("dense", 2, "linear")],
      batch=2, im2col_too=True),
    C("dense_nobias", (5,), [("dense", 6, "tanh", "nobias"), ("dense", 3, "linear", "nobias")]),
    C("dense_nobias_softmax_ce", (5,), [("dense", 6, "relu"), ("dense", 4, "softmax", "nobias")],
      loss="categorical_ce", batch=4),
    C("maxpool2_pad1_odd", (5, 5, 2), [("conv2d", 2, 3, 3, 1, 1, "tanh"), ("maxpool2d_ex", 2, 1),
                                       ("flatten",), ("dense", 2, "linear")], batch=2),
    C("maxpool2_pad1_even_first", (6, 6, 2), [("maxpool2d_ex", 2, 1), ("flatten",),
                                              ("dense", 2, "linear")], batch=2),
    C("maxpool3_pad1", (9, 9, 1), [("conv2d", 2, 3, 3, 1, 0, "linear"), ("maxpool2d_ex", 3, 1),
                                   ("flatten",), ("dense", 2, "linear")], batch=2),
    C("avgpool2_pad1", (5, 5, 1), [("conv2d", 2, 3, 3, 1, 1, "tanh"), ("avgpool2d_ex", 2, 1),
                                   ("flatten",), ("dense", 2, "linear")], batch=2),
    C("avgpool3_pad1", (6, 6, 2), [("conv2d", 2, 3, 3, 1, 0, "relu"), ("avgpool2d_ex", 3, 1),
                                   ("flatten",), ("dense", 2, "linear")], batch=2),
    # a ReLU conv before a max-pool: nn.h applies ReLU' to the pooled gradient (relu_first)
    # instead of the conv's; zero_ties keeps draws where pooled outputs are the ReLU's 0
    C("conv_relu_maxpool2_pad1", (6, 6, 2), [("conv2d", 3, 3, 3, 1, 0, "relu"),
                                             ("maxpool2d_ex", 2, 1), ("flatten",),
                                             ("dense", 2, "linear")], batch=2, zero_ties=True),
    C("conv_relu_nobias_maxpool3_pad1", (8, 8, 2), [("conv2d", 3, 3, 3, 1, 0, "relu", "nobias"),
                                                    ("maxpool2d_ex", 3, 1), ("flatten",),
                                                    ("dense", 2, "linear")],
      batch=2, zero_ties=True),
    # the optimizers on models without biases: nothing to decay, clip or update but weights
    C("opt_adamw_nobias", (5, 5, 2), [("conv2d", 3, 3, 3, 1, 0, "linear", "nobias"),
                                      ("batchnorm",), ("activation", "relu"), ("flatten",),
                                      ("dense", 3, "linear", "nobias")],
      batch=2, steps=2, opt=opt("adamw", 0.01, wd=0.1)),
    C("opt_momentum_wd_clip_nobias", (5,), [("dense", 6, "tanh", "nobias"),
                                            ("dense", 3, "linear", "nobias")],
      batch=4, steps=2, opt=opt("sgd", 0.1, momentum=0.9, wd=0.01, clip=0.3)),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    for f in os.listdir(OUT):  # cases that are gone
        if f.endswith(".txt") and f[:-4] not in names:
            os.remove(os.path.join(OUT, f))
    for n, c in enumerate(CASES):
        seed, tries = 1000 + n, 0
        while True:
            torch.manual_seed(seed)  # nothing random is drawn from torch; dropout runs in eval
            try:
                layers, rec, o, steps = run_case(c, seed)
                break
            except Kink as e:
                tries += 1
                if tries > 50:
                    sys.exit("%s: no draw without a kink (%s)" % (c["name"], e))
                seed += 100003
        write_case(os.path.join(OUT, c["name"] + ".txt"), c, layers, rec, o, steps)
    with open(os.path.join(OUT, "INDEX"), "w") as f:
        f.write("# the cases of tests/test_oracle.c, in order (scripts/make_oracle.py)\n")
        f.write("\n".join(names) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("%d cases, %d bytes in %s" % (len(CASES), total, os.path.relpath(OUT, ROOT)))


if __name__ == "__main__":
    main()
