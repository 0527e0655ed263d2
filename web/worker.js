// worker.js - trains a model (or runs the benchmark) off the page's thread.
// One wasm instance per worker: nn_simd.js or nn_scalar.js, chosen by the page.
// Messages in:  {cmd:'init', build, role}   role 'classifier' | 'ae' | 'bench'
//               {cmd:'start', kind} {cmd:'pause'} {cmd:'reset', kind}
//               {cmd:'selftest', kind, steps} {cmd:'bench', quick}
// Messages out: {type:'ready', backend, simd} {type:'progress', ...} {type:'weights', ...}
//               {type:'eval', ...} {type:'codes', ...} {type:'bench', row} {type:'error', message}
'use strict';

const KIND = { cnn: 0, mlp: 1, ae: 2 };
const PIX = 784;
const BATCH = 32;
let M = null;          // the emscripten module
let role = '';
let data = null;       // {train: {x, y, n}, test: {x, y, n}} pointers into wasm memory
let st = null;         // the current training state
let running = false;
let scratch = 0;       // 16 floats for results

function fail(message) {
  running = false;
  postMessage({ type: 'error', message: String(message) });
}

async function fetchSet(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error('cannot load ' + url + ' (' + r.status + ')');
  const bytes = new Uint8Array(await r.arrayBuffer());
  const n = bytes.length / (PIX + 1);
  if (!Number.isInteger(n) || n < 1) throw new Error(url + ': unexpected size ' + bytes.length);
  const x = M._malloc(bytes.length);
  M.HEAPU8.set(bytes, x);
  return { x, y: x + n * PIX, n };
}

function freeState() {
  if (!st) return;
  M._app_trainer_free(st.trainer);
  M._app_model_free(st.model);
  st = null;
}

function newState(kind) {
  freeState();
  const k = KIND[kind];
  const model = M._app_model_new(k, 1);
  if (!model) throw new Error('could not build the ' + kind + ' model');
  const trainer = M._app_trainer_new(model, k === KIND.ae ? 1 : 0, data.train.x, data.train.y,
                                     data.train.n, BATCH, 1);
  if (!trainer) throw new Error('could not start the trainer');
  st = { kind, model, trainer, step: 0, trainMs: 0, lastWeights: 0, nextEval: 25,
         nparams: M._app_num_params(model) };
}

function params() {
  const p = M._app_params(st.model) >> 2;
  return M.HEAPF32.slice(p, p + st.nparams); // a copy: its buffer is transferred
}

function sendWeights() {
  const w = params();
  postMessage({ type: 'weights', kind: st.kind, step: st.step, params: w }, [w.buffer]);
}

// test accuracy of the classifier on the page's 1000 test images
function evaluate() {
  if (M._app_evaluate(st.model, data.test.x, data.test.y, data.test.n, scratch) !== 0)
    throw new Error(M.UTF8ToString(M._app_model_error(st.model)));
  const f = scratch >> 2;
  return { acc: M.HEAPF32[f], loss: M.HEAPF32[f + 1] };
}

// the autoencoder's 2-D codes of the test images
function sendCodes() {
  const n = data.test.n;
  const xf = M._malloc(n * PIX * 4), code = M._malloc(n * 2 * 4);
  M._app_u8_to_float(data.test.x, n, xf);
  const rc = M._app_encode(st.model, xf, n, code);
  const codes = M.HEAPF32.slice(code >> 2, (code >> 2) + 2 * n);
  M._free(xf);
  M._free(code);
  if (rc !== 0) throw new Error(M.UTF8ToString(M._app_model_error(st.model)));
  const w = params();
  postMessage({ type: 'codes', step: st.step, codes, params: w }, [codes.buffer, w.buffer]);
}

// one step, timed; returns [loss, acc]
function trainSteps(k) {
  const t0 = performance.now();
  if (M._app_trainer_run(st.trainer, k, scratch) !== 0)
    throw new Error(M.UTF8ToString(M._app_model_error(st.model)));
  st.trainMs += performance.now() - t0;
  st.step += k;
  const f = scratch >> 2;
  return [M.HEAPF32[f], M.HEAPF32[f + 1]];
}

// Trains in chunks of about 100 ms, then yields so that 'pause' gets through.
function loop() {
  if (!running) return;
  try {
    const t0 = performance.now(), ms0 = st.trainMs;
    let steps = 0, lsum = 0, asum = 0;
    do {
      const [l, a] = trainSteps(1);
      lsum += l; asum += a; steps++;
    } while (performance.now() - t0 < 100);
    const ms = st.trainMs - ms0;
    postMessage({ type: 'progress', kind: st.kind, step: st.step, epoch: M._app_trainer_epoch(st.trainer),
                  samples: st.step * BATCH, loss: lsum / steps, acc: asum / steps,
                  msPerStep: ms / steps, samplesPerS: steps * BATCH * 1000 / ms });
    const now = performance.now();
    if (st.kind === 'ae') {
      if (now - st.lastWeights > 1000) { sendCodes(); st.lastWeights = performance.now(); }
    } else {
      if (now - st.lastWeights > 300) { sendWeights(); st.lastWeights = now; }
      if (st.step >= st.nextEval) { // at steps 25, 50, 100, then every 100
        st.nextEval = st.nextEval < 100 ? 2 * st.nextEval : st.nextEval + 100;
        const e = evaluate();
        postMessage({ type: 'eval', kind: st.kind, step: st.step, samples: st.step * BATCH, acc: e.acc, loss: e.loss });
      }
    }
  } catch (e) { fail(e.message || e); return; }
  setTimeout(loop, 0);
}

// Self-test: a fixed number of steps from a fixed seed, then the test accuracy.
function selftest(kind, steps) {
  newState(kind);
  const first = trainSteps(1)[0];
  let last = first;
  for (let s = 1; s < steps; s += 10) {
    const [l, a] = trainSteps(Math.min(10, steps - s));
    last = l;
    postMessage({ type: 'progress', kind: st.kind, step: st.step, epoch: M._app_trainer_epoch(st.trainer),
                  samples: st.step * BATCH, loss: l, acc: a, msPerStep: st.trainMs / st.step,
                  samplesPerS: st.step * BATCH * 1000 / st.trainMs });
  }
  const out = { type: 'selftest', kind, steps: st.step, firstLoss: first, lastLoss: last,
                stepsPerS: st.step * 1000 / st.trainMs, msPerStep: st.trainMs / st.step };
  if (kind === 'ae') {
    sendCodes();
  } else {
    const e = evaluate();
    out.acc = e.acc;
    sendWeights();
  }
  postMessage(out);
}

// SGEMM and the model steps; each figure the best run within a time budget (see app.c)
function bench(quick) {
  const t = quick ? 0.25 : 1.0; // seconds per row
  const rows = [
    { id: 'sgemm256', f: () => M._app_bench_sgemm(256, t), conv: (s) => 2 * 256 ** 3 / s / 1e9 },
    { id: 'sgemm512', f: () => M._app_bench_sgemm(512, t), conv: (s) => 2 * 512 ** 3 / s / 1e9 },
    { id: 'cnn_step', f: () => M._app_bench_model(KIND.cnn, 0, 2 * t), conv: (s) => s * 1e3 },
    { id: 'cnn_predict', f: () => M._app_bench_model(KIND.cnn, 1, t), conv: (s) => s * 1e3 },
    { id: 'mlp_step', f: () => M._app_bench_model(KIND.mlp, 0, t), conv: (s) => s * 1e3 },
  ];
  for (const row of rows) {
    const s = row.f();
    if (!(s > 0)) throw new Error('benchmark ' + row.id + ' failed');
    postMessage({ type: 'bench', id: row.id, value: row.conv(s) });
  }
  postMessage({ type: 'bench-done' });
}

onmessage = async (ev) => {
  const m = ev.data;
  try {
    if (m.cmd === 'init') {
      role = m.role;
      importScripts('nn_' + m.build + '.js');
      M = await NNModule();
      scratch = M._malloc(64);
      if (role !== 'bench') {
        data = { train: await fetchSet('data/train.bin'), test: await fetchSet('data/test.bin') };
      }
      postMessage({ type: 'ready', backend: M.UTF8ToString(M._app_backend()), simd: M._app_simd_build() });
    } else if (m.cmd === 'start') {
      if (!st || st.kind !== m.kind) newState(m.kind);
      if (!running) { running = true; setTimeout(loop, 0); }
    } else if (m.cmd === 'pause') {
      running = false;
    } else if (m.cmd === 'reset') {
      running = false;
      newState(m.kind);
      if (m.kind === 'ae') sendCodes(); else sendWeights();
      postMessage({ type: 'reset', kind: m.kind });
    } else if (m.cmd === 'selftest') {
      running = false;
      selftest(m.kind, m.steps);
    } else if (m.cmd === 'bench') {
      bench(!!m.quick);
    }
  } catch (e) { fail(e.message || e); }
};
