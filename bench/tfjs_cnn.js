#!/usr/bin/env node
// The seed CNN of examples/fashion_cnn.c in TensorFlow.js, for bench/tfjs_compare.sh (issue 13).
//
//   node --no-experimental-fetch bench/tfjs_cnn.js --modules build/tfjs/node_modules --backend wasm
//
// Conv2d(32, 3x3) ReLU, MaxPool 2, Conv2d(64, 3x3) ReLU, MaxPool 2, Flatten (1600), Dense 64 ReLU,
// Dense 10 softmax; NHWC, float32; He uniform before a ReLU, Glorot uniform before the softmax, zero
// biases (as nn.h).  The weights are untrained: speed does not depend on them.
//
// predict_s: the first --images (default all 10k) Fashion-MNIST test images at batch --batch (32),
// model.predict on each batch and its probabilities read back (dataSync: nn.h writes them to memory
// too), after one warm-up batch; the batches are sliced before the timed loop.  With --images below
// 10000 the line also gives predict_10k_s, the time scaled to 10k images (for the slow cpu backend).
// train_step_ms: --train-steps steps of Adam (1e-3) on categorical cross-entropy at batch --batch
// (model.trainOnBatch on training images), after one warm-up step; the median step.  A backend that
// cannot train the net (tfjs 4.22's wasm has no Conv2DBackpropFilter kernel) gets train_error=.
// Backends: wasm (XNNPACK; SIMD unless --simd 0; one thread: node never gets the threaded build,
// setThreadsCount(1) all the same) or cpu (plain JavaScript).  Progress on stderr; stdout gets one line:
//
//   RESULT framework=tfjs version=4.22.0 backend=wasm simd=1 threads=1 images=10000 predict_s=9.000 ...
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

function usage(msg) {
    if (msg) process.stderr.write(`tfjs_cnn.js: ${msg}\n`);
    process.stderr.write('usage: node tfjs_cnn.js [--modules DIR] [--backend wasm|cpu] [--data DIR] [--images N] ' +
                         '[--batch B] [--train-steps N] [--simd 0|1]\n');
    process.exit(2);
}

const opt = { modules: 'build/tfjs/node_modules', backend: 'wasm', data: 'data/fashion-mnist', images: 10000,
              batch: 32, 'train-steps': 3, simd: 1 };
for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    if (!(k in opt) || i + 1 >= process.argv.length) usage(`unknown or incomplete option ${process.argv[i]}`);
    opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
    if (typeof opt[k] === 'number' && !(Number.isInteger(opt[k]) && opt[k] >= 0)) usage(`--${k} wants a whole number`);
}
if (!['wasm', 'cpu'].includes(opt.backend)) usage(`--backend must be wasm or cpu, not ${opt.backend}`);
if (opt.batch < 1 || opt.images < 1) usage('--batch and --images must be >= 1');

// tfjs from the directory bench/tfjs_compare.sh installed it into (never downloaded here)
const req = createRequire(path.resolve(opt.modules, '..', 'package.json'));
let tf, wasm;
try {
    tf = req('@tensorflow/tfjs');
    wasm = req('@tensorflow/tfjs-backend-wasm');
} catch (e) {
    process.stderr.write(`tfjs_cnn.js: cannot load @tensorflow/tfjs from ${opt.modules} (${e.message}); ` +
                         'run bench/tfjs_compare.sh, which installs it\n');
    process.exit(1);
}
const version = JSON.parse(fs.readFileSync(req.resolve('@tensorflow/tfjs/package.json'), 'utf8')).version;

function log(s) { process.stderr.write(s + '\n'); }

function readIdx(file, magic, ndim) {
    const raw = fs.readFileSync(file);
    if (raw.length < 4 + 4 * ndim || raw.readUInt32BE(0) !== magic)
        throw new Error(`${file}: not an IDX file with magic ${magic.toString(16)} (gunzipped?)`);
    const dims = [];
    for (let i = 0; i < ndim; i++) dims.push(raw.readUInt32BE(4 + 4 * i));
    const n = dims.reduce((a, b) => a * b, 1);
    if (raw.length - 4 - 4 * ndim !== n) throw new Error(`${file}: size does not match its header`);
    return { dims, bytes: raw.subarray(4 + 4 * ndim) };
}

// the first n images of a split as float32 in [0, 1], and their labels
function loadSplit(prefix, n) {
    const x = readIdx(path.join(opt.data, `${prefix}-images-idx3-ubyte`), 0x803, 3);
    const y = readIdx(path.join(opt.data, `${prefix}-labels-idx1-ubyte`), 0x801, 1);
    n = Math.min(n, x.dims[0]);
    const f = new Float32Array(n * 784);
    for (let i = 0; i < f.length; i++) f[i] = x.bytes[i] / 255;
    return { n, x: f, y: Int32Array.from(y.bytes.subarray(0, n)) };
}

function buildModel() {
    const m = tf.sequential();
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu',
                             kernelInitializer: 'heUniform' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu', kernelInitializer: 'heUniform' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: 'heUniform' }));
    m.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: 'glorotUniform' }));
    return m;
}

function median(a) {
    const s = [...a].sort((p, q) => p - q), h = s.length >> 1;
    return s.length % 2 ? s[h] : 0.5 * (s[h - 1] + s[h]);
}

async function main() {
    let simd = 0, threads = 1;
    if (opt.backend === 'wasm') {
        if (!opt.simd) tf.env().set('WASM_HAS_SIMD_SUPPORT', false);
        if (wasm.setThreadsCount) wasm.setThreadsCount(1);
    }
    if (!(await tf.setBackend(opt.backend))) throw new Error(`tfjs backend ${opt.backend} did not initialise`);
    await tf.ready();
    if (opt.backend === 'wasm') {
        simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 1 : 0;
        if (wasm.getThreadsCount) threads = wasm.getThreadsCount();
    }
    log(`tfjs ${version}, backend ${tf.getBackend()}${opt.backend === 'wasm' ? `, simd ${simd}, threads ${threads}` : ''}, ` +
        `node ${process.version}`);

    const test = loadSplit('t10k', opt.images);
    const model = buildModel();
    const xte = tf.tensor4d(test.x, [test.n, 28, 28, 1]);
    const batches = [];
    for (let i = 0; i < test.n; i += opt.batch) batches.push(xte.slice([i, 0, 0, 0], [Math.min(opt.batch, test.n - i), 28, 28, 1]));

    // predict: one warm-up batch, then every batch with its probabilities read back
    model.predict(batches[0]).dispose();
    const pred = new Int32Array(test.n);
    const t0 = process.hrtime.bigint();
    let at = 0;
    for (const xb of batches) {
        const y = model.predict(xb);
        const p = y.dataSync();
        y.dispose();
        for (let r = 0; r < p.length / 10; r++, at++) {
            let best = 0;
            for (let c = 1; c < 10; c++) if (p[r * 10 + c] > p[r * 10 + best]) best = c;
            pred[at] = best;
        }
    }
    const predictS = Number(process.hrtime.bigint() - t0) / 1e9;
    let agree = 0;
    for (let i = 0; i < test.n; i++) agree += pred[i] === test.y[i];
    log(`predict: ${test.n} test images at batch ${opt.batch}: ${predictS.toFixed(3)} s ` +
        `(${(1e3 * predictS / test.n).toFixed(3)} ms/image; untrained weights, accuracy ${(agree / test.n).toFixed(3)})`);
    let line = `RESULT framework=tfjs version=${version} backend=${opt.backend} simd=${simd} threads=${threads} ` +
               `images=${test.n} batch=${opt.batch} predict_s=${predictS.toFixed(3)}`;
    if (test.n < 10000) line += ` predict_10k_s=${(predictS * 10000 / test.n).toFixed(3)}`;
    batches.forEach((b) => b.dispose());
    xte.dispose();

    // a training step (Adam, cross-entropy) if the backend can
    if (opt['train-steps'] > 0) {
        const train = loadSplit('train', opt.batch * (opt['train-steps'] + 1));
        const xtr = tf.tensor4d(train.x, [train.n, 28, 28, 1]);
        const ytr = tf.oneHot(tf.tensor1d(train.y, 'int32'), 10);
        model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
        const step = async (i) => {
            const xb = xtr.slice([i * opt.batch, 0, 0, 0], [opt.batch, 28, 28, 1]);
            const yb = ytr.slice([i * opt.batch, 0], [opt.batch, 10]);
            const s0 = process.hrtime.bigint();
            await model.trainOnBatch(xb, yb); // resolves with the loss read back: the step has finished
            const s = Number(process.hrtime.bigint() - s0) / 1e9;
            xb.dispose();
            yb.dispose();
            return s;
        };
        try {
            await step(0); // warm-up
            const times = [];
            for (let i = 1; i <= opt['train-steps']; i++) times.push(await step(i));
            const ms = 1e3 * median(times);
            log(`training: ${times.length} steps at batch ${opt.batch}, median ${ms.toFixed(1)} ms per step`);
            line += ` train_step_ms=${ms.toFixed(2)} train_steps=${times.length}`;
        } catch (e) {
            const msg = String(e && e.message ? e.message : e).split('\n')[0];
            log(`training on ${opt.backend}: ${msg}`);
            line += ` train_error=${JSON.stringify(msg).replace(/ /g, '_')}`;
        }
        xtr.dispose();
        ytr.dispose();
    }
    console.log(line);
}

main().catch((e) => {
    process.stderr.write(`tfjs_cnn.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});
