// main.js - the page: picks the wasm build, drives the training workers, and runs
// prediction, saliency and the autoencoder's decoder on its own wasm instance
// (weights copied from the workers as they train).  Plain JavaScript, no framework.
'use strict';

const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
// matplotlib's tab10, as examples/autoencoder.c colours the classes
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
                '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const KIND = { cnn: 0, mlp: 1, ae: 2 };
const PIX = 784;
const query = new URLSearchParams(location.search);
const SELFTEST = query.get('selftest') === '1';
// self-test: training steps of the CNN and the autoencoder, and the accuracy it must reach
const ST_STEPS = +(query.get('steps') || 150);
const ST_AE_STEPS = 300;
const ST_MIN_ACC = 0.65;
// saliency: |gradient| averaged over this many noisy copies (SmoothGrad)
const SMOOTH_N = 8;

const $ = (id) => document.getElementById(id);

// ---- which build: SIMD128 when this browser validates a module using it --------------
// (type () -> v128; body: i32.const 0, i8x16.splat, i8x16.popcnt)
function simdSupported() {
  try {
    return WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
                                                10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]));
  } catch (e) { return false; }
}
const HAS_SIMD = simdSupported();
const BUILD = query.get('build') === 'scalar' || !HAS_SIMD ? 'scalar' : 'simd';

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error('cannot load ' + src));
    document.head.appendChild(s);
  });
}

// ---- the page's wasm instance -----------------------------------------------------------
let M = null;
const page = { clf: null, clfKind: '', ae: null, buf: {} };
let testSet = null; // {x: Uint8Array n*784, y: Uint8Array n, n}

function pageModel(kind) {
  const ptr = M._app_model_new(KIND[kind], 1);
  if (!ptr) throw new Error('could not build the ' + kind + ' model');
  return { ptr, kind, n: M._app_num_params(ptr) };
}
function setParams(model, params) {
  if (params.length !== model.n) throw new Error('weights of ' + params.length + ' floats for a model of ' + model.n);
  M.HEAPF32.set(params, M._app_params(model.ptr) >> 2);
}
function f32(ptr, n) { return M.HEAPF32.subarray(ptr >> 2, (ptr >> 2) + n); }

function predict(model, x) { // x: Float32Array(784) -> Float32Array(10) (a view) and the time
  f32(page.buf.x, PIX).set(x);
  const t0 = performance.now();
  const rc = M._app_predict(model.ptr, page.buf.x, 1, page.buf.p);
  const ms = performance.now() - t0;
  if (rc !== 0) throw new Error(M.UTF8ToString(M._app_model_error(model.ptr)));
  return { p: f32(page.buf.p, 10), ms };
}
function saliency(model, x, cls) {
  f32(page.buf.x, PIX).set(x);
  if (M._app_saliency(model.ptr, page.buf.x, cls, SMOOTH_N, page.buf.g) !== 0)
    throw new Error(M.UTF8ToString(M._app_model_error(model.ptr)));
  return f32(page.buf.g, PIX);
}
function decode(cx, cy) {
  const c = f32(page.buf.c, 2);
  c[0] = cx; c[1] = cy;
  if (M._app_decode(page.ae.ptr, page.buf.c, 1, page.buf.d) !== 0)
    throw new Error(M.UTF8ToString(M._app_model_error(page.ae.ptr)));
  return f32(page.buf.d, PIX);
}

// ---- workers --------------------------------------------------------------------------------
function startWorker(role, build, onmsg) {
  const w = new Worker('worker.js');
  w.onmessage = (ev) => onmsg(ev.data);
  w.onerror = (ev) => showError('worker: ' + (ev.message || 'failed to start'));
  w.postMessage({ cmd: 'init', build, role });
  return w;
}

function showError(msg) {
  console.error(msg);
  if (SELFTEST) selftestDone(false, msg);
  let b = document.querySelector('.error-banner');
  if (!b) {
    b = document.createElement('p');
    b.className = 'error-banner';
    document.querySelector('.top .wrap').appendChild(b);
  }
  b.textContent = 'Something went wrong: ' + msg;
}

// ---- 1. training ------------------------------------------------------------------------------
const train = { worker: null, ready: false, running: false, kind: 'cnn', hist: [], test: [], waiters: [] };

function onTrainMsg(m) {
  if (m.type === 'ready') {
    train.ready = true;
    $('badge-backend').textContent = 'nn.h backend: ' + m.backend;
    $('train-toggle').disabled = false;
    $('train-reset').disabled = false;
    if (!SELFTEST) setTraining(true);
  } else if (m.type === 'progress') {
    if (m.kind !== train.kind) return;
    train.hist.push({ s: m.samples, loss: m.loss, acc: m.acc });
    $('st-samples').textContent = m.samples.toLocaleString('en-US');
    $('st-epoch').textContent = String(m.epoch + 1);
    $('st-speed').textContent = Math.round(m.samplesPerS).toLocaleString('en-US') + '/s';
    $('st-step').textContent = fmtMs(m.msPerStep);
    drawChart();
  } else if (m.type === 'eval') {
    if (m.kind !== train.kind) return;
    train.test.push({ s: m.samples, acc: m.acc });
    $('st-test').textContent = (100 * m.acc).toFixed(1) + '%';
    drawChart();
  } else if (m.type === 'weights') {
    if (!page.clf || page.clfKind !== m.kind) {
      if (page.clf) M._app_model_free(page.clf.ptr);
      page.clf = pageModel(m.kind);
      page.clfKind = m.kind;
    }
    setParams(page.clf, m.params);
    schedulePredict();
  } else if (m.type === 'error') {
    showError(m.message);
    setTraining(false);
  }
  for (const w of train.waiters.slice()) w(m);
}

function fmtMs(ms) { return ms >= 100 ? Math.round(ms) + ' ms' : ms >= 10 ? ms.toFixed(1) + ' ms' : ms.toFixed(2) + ' ms'; }

function setTraining(on) {
  train.running = on;
  const b = $('train-toggle');
  b.textContent = on ? 'Pause' : (train.hist.length ? 'Resume training' : 'Start training');
  b.classList.toggle('running', on);
  if (train.worker && train.ready) train.worker.postMessage(on ? { cmd: 'start', kind: train.kind } : { cmd: 'pause' });
}

function resetTraining() {
  train.hist = [];
  train.test = [];
  for (const id of ['st-epoch', 'st-speed', 'st-step', 'st-test']) $(id).innerHTML = '&ndash;';
  $('st-samples').textContent = '0';
  const was = train.running;
  train.worker.postMessage({ cmd: 'reset', kind: train.kind });
  setTraining(was);
  drawChart();
}

// the chart: loss on the left axis, accuracies (0-100%) on the right, pictures seen along the bottom
function drawChart() {
  const cv = $('chart'), dpr = window.devicePixelRatio || 1;
  const W = cv.clientWidth, H = cv.clientHeight;
  if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) {
    cv.width = Math.round(W * dpr);
    cv.height = Math.round(H * dpr);
  }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const css = getComputedStyle(document.documentElement);
  const cLoss = css.getPropertyValue('--loss').trim(), cAcc = css.getPropertyValue('--acc').trim(),
        cTest = css.getPropertyValue('--test').trim();
  const L = 44, R = 46, T = 10, B = 40, pw = W - L - R, ph = H - T - B;
  const hist = train.hist, test = train.test;
  const maxS = Math.max(10000, hist.length ? hist[hist.length - 1].s : 0);
  const sx = niceStep(maxS / 5);
  const xmax = Math.ceil(maxS / sx) * sx;
  // the loss axis: four equal steps of a round size, so its labels line up with 0-25-50-75-100%
  let lraw = 2.3;
  for (const h of hist) lraw = Math.max(lraw, Math.min(h.loss, 20));
  const lstep = [0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5].find((v) => 4 * v >= lraw) || 5;
  const lmax = 4 * lstep;
  const X = (s) => L + (s / xmax) * pw, YL = (v) => T + ph - (Math.min(v, lmax) / lmax) * ph,
        YA = (a) => T + ph - a * ph;
  // grid and axes
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  g.strokeStyle = '#e9ecf3';
  g.fillStyle = '#7a8296';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = T + ph - (i / 4) * ph;
    g.beginPath(); g.moveTo(L, y + 0.5); g.lineTo(L + pw, y + 0.5); g.stroke();
    g.fillStyle = cLoss; g.textAlign = 'right'; g.fillText(String(+(lstep * i).toFixed(2)), L - 6, y);
    g.fillStyle = cAcc; g.textAlign = 'left'; g.fillText(25 * i + '%', L + pw + 6, y);
  }
  g.fillStyle = '#7a8296';
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (let s = 0; s <= xmax + 1e-9; s += sx) g.fillText(fmtCount(s), X(s), T + ph + 7);
  g.fillText('training pictures seen', L + pw / 2, T + ph + 23);
  if (!hist.length) {
    g.fillStyle = '#98a0b3';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.font = '14px system-ui, sans-serif';
    g.fillText(train.ready ? 'Press “Start training”: the curves appear here.' : 'Loading the network…', L + pw / 2, T + ph / 2);
    return;
  }
  // smoothed curves (an exponential moving average, as TensorBoard draws them)
  const line = (key, Y, color, width) => {
    g.strokeStyle = color;
    g.lineWidth = width;
    g.lineJoin = 'round';
    g.beginPath();
    let ema = hist[0][key];
    hist.forEach((h, i) => {
      ema = i ? 0.85 * ema + 0.15 * h[key] : ema;
      const x = X(h.s), y = Y(ema);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  };
  line('loss', YL, cLoss, 2);
  line('acc', YA, cAcc, 2);
  if (test.length) {
    g.strokeStyle = cTest;
    g.fillStyle = cTest;
    g.lineWidth = 1.5;
    g.setLineDash([4, 3]);
    g.beginPath();
    test.forEach((t, i) => { if (i) g.lineTo(X(t.s), YA(t.acc)); else g.moveTo(X(t.s), YA(t.acc)); });
    g.stroke();
    g.setLineDash([]);
    for (const t of test) { g.beginPath(); g.arc(X(t.s), YA(t.acc), 3.2, 0, 2 * Math.PI); g.fill(); }
  }
}
function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(x))), f = x / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
function fmtCount(s) { return s >= 1e6 ? (s / 1e6) + 'M' : s >= 1e3 ? (s / 1e3) + 'k' : String(s); }

// ---- 2. drawing pad, guesses, saliency ---------------------------------------------------------
const ink = new Float32Array(PIX);
const pad = { down: false, last: null, eraser: false, radius: 1.5, pending: false, hasInk: false };

// Paints a stroke from a to b (pixel coordinates, 0..28): full ink within the radius,
// fading over one pixel outside it; the eraser takes ink away the same way.
function stroke(a, b) {
  const r = pad.radius, x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r - 1)),
        x1 = Math.min(27, Math.ceil(Math.max(a.x, b.x) + r + 1)),
        y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r - 1)),
        y1 = Math.min(27, Math.ceil(Math.max(a.y, b.y) + r + 1));
  const dx = b.x - a.x, dy = b.y - a.y, len2 = dx * dx + dy * dy;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5, py = y + 0.5;
      let t = len2 ? ((px - a.x) * dx + (py - a.y) * dy) / len2 : 0;
      t = Math.max(0, Math.min(1, t));
      const ex = px - (a.x + t * dx), ey = py - (a.y + t * dy), d = Math.sqrt(ex * ex + ey * ey);
      const v = d <= r ? 1 : Math.max(0, 1 - (d - r));
      const i = y * 28 + x;
      ink[i] = pad.eraser ? Math.min(ink[i], 1 - v) : Math.max(ink[i], v);
    }
  }
}

function drawGray(cv, img, heat) { // a 28x28 image into a canvas, nearest-neighbour
  const g = cv.getContext('2d'), small = g.createImageData(28, 28);
  for (let i = 0; i < PIX; i++) {
    const v = Math.round(255 * Math.max(0, Math.min(1, img[i])));
    let r = v, gg = v, b = v;
    if (heat) { // the picture dimmed, the decisive pixels from red to yellow on top of it
      const a = Math.max(0, Math.min(1, (heat[i] - 0.2) / 0.7)), base = v * 0.35;
      r = base * (1 - a) + 255 * a;
      gg = base * (1 - a) + (50 + 190 * a * a) * a;
      b = base * (1 - a) + 30 * a;
    }
    small.data[4 * i] = r; small.data[4 * i + 1] = gg; small.data[4 * i + 2] = b; small.data[4 * i + 3] = 255;
  }
  const tmp = drawGray.tmp || (drawGray.tmp = document.createElement('canvas'));
  tmp.width = 28; tmp.height = 28;
  tmp.getContext('2d').putImageData(small, 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, cv.width, cv.height);
}

function renderPad() {
  const cv = $('pad');
  drawGray(cv, ink);
  // a faint pixel grid, so the 28x28 resolution the network sees is visible
  const g = cv.getContext('2d'), s = cv.width / 28;
  g.strokeStyle = 'rgba(255,255,255,0.045)';
  g.lineWidth = 1;
  g.beginPath();
  for (let i = 1; i < 28; i++) {
    const p = Math.round(i * s) + 0.5;
    g.moveTo(p, 0); g.lineTo(p, cv.height); g.moveTo(0, p); g.lineTo(cv.width, p);
  }
  g.stroke();
  if (!pad.hasInk) {
    g.fillStyle = 'rgba(255,255,255,0.45)';
    g.font = (15 * cv.width / 224) + 'px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText('Draw here', cv.width / 2, cv.height / 2);
  }
}

function padPoint(ev) {
  const r = $('pad').getBoundingClientRect();
  return { x: (ev.clientX - r.left) / r.width * 28, y: (ev.clientY - r.top) / r.height * 28 };
}

function setupPad() {
  const cv = $('pad'), dpr = window.devicePixelRatio || 1;
  cv.width = cv.height = Math.round(224 * dpr);
  cv.addEventListener('pointerdown', (ev) => {
    ev.preventDefault();
    cv.setPointerCapture(ev.pointerId);
    pad.down = true;
    pad.last = padPoint(ev);
    pad.hasInk = true;
    stroke(pad.last, pad.last);
    padChanged();
  });
  cv.addEventListener('pointermove', (ev) => {
    if (!pad.down) return;
    // coalesced events: every point of a fast stroke (touch screens deliver them batched)
    const evs = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of (evs.length ? evs : [ev])) {
      const p = padPoint(e);
      stroke(pad.last, p);
      pad.last = p;
    }
    padChanged();
  });
  const up = () => { pad.down = false; pad.last = null; };
  cv.addEventListener('pointerup', up);
  cv.addEventListener('pointercancel', up);
  cv.addEventListener('contextmenu', (ev) => ev.preventDefault());
  const tool = (eraser) => {
    pad.eraser = eraser;
    $('tool-brush').classList.toggle('on', !eraser);
    $('tool-eraser').classList.toggle('on', eraser);
  };
  $('tool-brush').onclick = () => tool(false);
  $('tool-eraser').onclick = () => tool(true);
  $('brush-size').oninput = (ev) => { pad.radius = +ev.target.value; };
  $('pad-clear').onclick = () => { ink.fill(0); pad.hasInk = false; padChanged(); };
  $('pad-sample').onclick = () => loadSample(Math.floor(Math.random() * (testSet ? testSet.n : 1)));
  const bars = $('bars');
  CLASSES.forEach((c) => {
    const li = document.createElement('li');
    li.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
    li.querySelector('.name').textContent = c;
    bars.appendChild(li);
  });
  renderPad();
  drawGray($('saliency'), ink);
}

function loadSample(i) {
  if (!testSet) return;
  for (let p = 0; p < PIX; p++) ink[p] = testSet.x[i * PIX + p] / 255;
  pad.hasInk = true;
  pad.sample = CLASSES[testSet.y[i]];
  padChanged(true);
}

function padChanged(keepSample) {
  if (!keepSample) pad.sample = null;
  renderPad();
  schedulePredict();
}

function schedulePredict() {
  if (pad.pending) return;
  pad.pending = true;
  requestAnimationFrame(() => { pad.pending = false; updateGuess(); });
}

function updateGuess() {
  const guess = $('guess'), items = $('bars').children;
  if (!pad.hasInk || !page.clf) {
    guess.textContent = !page.clf ? 'Waiting for the network…' : 'Draw something';
    guess.className = 'guess idle';
    for (const li of items) {
      li.classList.remove('best');
      li.querySelector('.fill').style.width = '0';
      li.querySelector('.pct').textContent = '';
    }
    $('predict-time').textContent = '';
    drawGray($('saliency'), ink);
    return;
  }
  try {
    const { p, ms } = predict(page.clf, ink);
    let best = 0;
    for (let c = 1; c < 10; c++) if (p[c] > p[best]) best = c;
    for (let c = 0; c < 10; c++) {
      const li = items[c];
      li.classList.toggle('best', c === best);
      li.querySelector('.fill').style.width = (100 * p[c]).toFixed(1) + '%';
      li.querySelector('.pct').textContent = Math.round(100 * p[c]) + '%';
    }
    guess.className = 'guess';
    guess.textContent = CLASSES[best] + (p[best] < 0.5 ? '?' : '');
    guess.dataset.cls = String(best);
    // the saliency costs 8 gradients: at most every 60 ms while drawing, and once more at the end
    pad.best = best;
    pad.predictMs = ms;
    const since = performance.now() - (pad.lastExplain || 0);
    clearTimeout(pad.explainTimer);
    if (since >= 60) explain(); else pad.explainTimer = setTimeout(explain, 60 - since);
    $('predict-time').dataset.ms = ms.toFixed(3);
  } catch (e) { showError(e.message); }
}

// the saliency map of the current guess, scaled so that the 99th percentile is full heat
function explain() {
  if (!pad.hasInk || !page.clf) return;
  try {
    const t0 = performance.now();
    const g = saliency(page.clf, ink, pad.best);
    const ms = performance.now() - t0;
    pad.lastExplain = performance.now();
    const sorted = Float32Array.from(g).sort();
    const ref = Math.max(sorted[Math.floor(0.99 * (PIX - 1))], 1e-30);
    const heat = new Float32Array(PIX);
    for (let i = 0; i < PIX; i++) heat[i] = Math.min(1, g[i] / ref);
    drawGray($('saliency'), ink, heat);
    $('predict-time').textContent = 'Guessed in ' + fmtMs(pad.predictMs) + ', explained in ' + fmtMs(ms) + '.' +
      (pad.sample ? ' This test picture is labelled “' + pad.sample + '”.' : '');
  } catch (e) { showError(e.message); }
}

// ---- 3. autoencoder -------------------------------------------------------------------------------
const ae = { worker: null, ready: false, running: false, codes: null, view: null, point: null, steps: 0, waiters: [] };

function onAeMsg(m) {
  if (m.type === 'ready') {
    ae.ready = true;
    if (ae.wantRun) setAe(true);
  } else if (m.type === 'progress') {
    ae.steps = m.step;
    $('ae-status').textContent = 'Step ' + m.step.toLocaleString('en-US') + ', epoch ' + (m.epoch + 1) +
      ', reconstruction error ' + m.loss.toFixed(4) + ' (mean squared, per pixel)';
  } else if (m.type === 'codes') {
    if (!page.ae) page.ae = pageModel('ae');
    setParams(page.ae, m.params);
    ae.codes = m.codes;
    drawPlane();
  } else if (m.type === 'error') {
    showError(m.message);
  }
  for (const w of ae.waiters.slice()) w(m);
}

function ensureAeWorker() {
  if (!ae.worker) ae.worker = startWorker('ae', BUILD, onAeMsg);
}

function setAe(on) {
  ae.running = on;
  ae.wantRun = on;
  ensureAeWorker();
  const b = $('ae-toggle');
  b.textContent = on ? 'Pause' : (ae.steps ? 'Resume' : 'Train the autoencoder');
  b.classList.toggle('running', on);
  if (ae.ready) ae.worker.postMessage(on ? { cmd: 'start', kind: 'ae' } : { cmd: 'pause' });
  if (on && !ae.ready) $('ae-status').textContent = 'Loading…';
}

// the plane's view: the codes' range with a margin, square so distances look right
function planeView() {
  const c = ae.codes, n = c.length / 2;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    x0 = Math.min(x0, c[2 * i]); x1 = Math.max(x1, c[2 * i]);
    y0 = Math.min(y0, c[2 * i + 1]); y1 = Math.max(y1, c[2 * i + 1]);
  }
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, half = Math.max(x1 - x0, y1 - y0, 1e-3) * 0.55;
  return { x0: cx - half, x1: cx + half, y0: cy - half, y1: cy + half };
}

function drawPlane() {
  const cv = $('plane'), dpr = window.devicePixelRatio || 1, W = cv.clientWidth || 320;
  if (cv.width !== Math.round(W * dpr)) { cv.width = cv.height = Math.round(W * dpr); }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, W);
  if (!ae.codes) {
    g.fillStyle = '#98a0b3';
    g.font = '14px system-ui, sans-serif';
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText('The code plane appears here', W / 2, W / 2);
    return;
  }
  const v = ae.view = planeView(), c = ae.codes, n = c.length / 2;
  const X = (x) => (x - v.x0) / (v.x1 - v.x0) * W, Y = (y) => W - (y - v.y0) / (v.y1 - v.y0) * W;
  g.globalAlpha = 0.75;
  for (let i = 0; i < n; i++) {
    g.fillStyle = COLORS[testSet.y[i]];
    g.beginPath();
    g.arc(X(c[2 * i]), Y(c[2 * i + 1]), 2.6, 0, 2 * Math.PI);
    g.fill();
  }
  g.globalAlpha = 1;
  if (ae.point) {
    const px = X(ae.point.x), py = Y(ae.point.y);
    g.strokeStyle = '#1c2333';
    g.lineWidth = 2;
    g.beginPath(); g.arc(px, py, 7, 0, 2 * Math.PI); g.stroke();
    g.beginPath(); g.moveTo(px - 12, py); g.lineTo(px - 4, py); g.moveTo(px + 4, py); g.lineTo(px + 12, py);
    g.moveTo(px, py - 12); g.lineTo(px, py - 4); g.moveTo(px, py + 4); g.lineTo(px, py + 12); g.stroke();
    showDecoded();
  }
}

function showDecoded() {
  if (!page.ae || !ae.point) return;
  try {
    const img = decode(ae.point.x, ae.point.y);
    drawGray($('decoded'), img);
    $('ae-point').textContent = 'Code (' + ae.point.x.toFixed(2) + ', ' + ae.point.y.toFixed(2) + ')';
  } catch (e) { showError(e.message); }
}

function setupPlane() {
  const cv = $('plane');
  const pick = (ev) => {
    if (!ae.view) return;
    const r = cv.getBoundingClientRect(), v = ae.view;
    ae.point = { x: v.x0 + (ev.clientX - r.left) / r.width * (v.x1 - v.x0),
                 y: v.y0 + (1 - (ev.clientY - r.top) / r.height) * (v.y1 - v.y0) };
    drawPlane();
  };
  cv.addEventListener('pointerdown', (ev) => { ev.preventDefault(); cv.setPointerCapture(ev.pointerId); ae.drag = true; pick(ev); });
  cv.addEventListener('pointermove', (ev) => { if (ae.drag || ev.pointerType === 'mouse') pick(ev); });
  cv.addEventListener('pointerup', () => { ae.drag = false; });
  cv.addEventListener('pointercancel', () => { ae.drag = false; });
  const leg = $('ae-legend');
  CLASSES.forEach((c, i) => {
    const li = document.createElement('li');
    li.innerHTML = '<i></i>';
    li.querySelector('i').style.background = COLORS[i];
    li.appendChild(document.createTextNode(c));
    leg.appendChild(li);
  });
  drawPlane();
  drawGray($('decoded'), new Float32Array(PIX));
}

// ---- 4. benchmark -----------------------------------------------------------------------------------
const BENCH_ROWS = [
  { id: 'sgemm256', name: 'Matrix product 256×256 (SGEMM)', unit: 'GFLOP/s', higher: true },
  { id: 'sgemm512', name: 'Matrix product 512×512 (SGEMM)', unit: 'GFLOP/s', higher: true },
  { id: 'cnn_step', name: 'CNN training step, batch of 32', unit: 'ms', higher: false },
  { id: 'cnn_predict', name: 'CNN guess, one picture', unit: 'ms', higher: false },
  { id: 'mlp_step', name: 'MLP training step, batch of 32', unit: 'ms', higher: false },
];
const bench = { results: { simd: {}, scalar: {} }, backend: {} };

function renderBench() {
  const body = $('bench-body');
  body.innerHTML = '';
  for (const r of BENCH_ROWS) {
    const tr = document.createElement('tr'), s = bench.results.simd[r.id], c = bench.results.scalar[r.id];
    const fmt = (v) => v === undefined ? '–' : (r.unit === 'ms' ? fmtMs(v) : v.toFixed(2) + ' ' + r.unit);
    let ratio = '–';
    if (s !== undefined && c !== undefined) ratio = (r.higher ? s / c : c / s).toFixed(2) + '×';
    tr.innerHTML = '<td></td><td></td><td></td><td class="ratio"></td>';
    tr.dataset.id = r.id;
    tr.children[0].textContent = r.name;
    tr.children[1].textContent = HAS_SIMD ? fmt(s) : 'not in this browser';
    tr.children[2].textContent = fmt(c);
    tr.children[3].textContent = ratio;
    for (const k of [1, 2]) if (tr.children[k].textContent === '–') tr.children[k].className = 'pending';
    body.appendChild(tr);
  }
}

function benchBuild(build) {
  return new Promise((resolve, reject) => {
    const w = startWorker('bench', build, (m) => {
      if (m.type === 'ready') { bench.backend[build] = m.backend; w.postMessage({ cmd: 'bench', quick: query.get('quick') === '1' }); }
      else if (m.type === 'bench') { bench.results[build][m.id] = m.value; renderBench(); }
      else if (m.type === 'bench-done') { w.terminate(); resolve(); }
      else if (m.type === 'error') { w.terminate(); reject(new Error(m.message)); }
    });
  });
}

async function runBench() {
  const b = $('bench-run');
  b.disabled = true;
  const wasTraining = train.running, wasAe = ae.running;
  if (wasTraining) setTraining(false);
  if (wasAe) setAe(false);
  bench.results = { simd: {}, scalar: {} };
  renderBench();
  try {
    if (HAS_SIMD) {
      $('bench-status').textContent = 'Running the SIMD128 build…';
      await benchBuild('simd');
    }
    $('bench-status').textContent = 'Running the scalar build…';
    await benchBuild('scalar');
    $('bench-status').textContent = 'Done: each figure is the best of a few runs.';
    $('bench-note').textContent = 'nn.h chose its “' + (bench.backend.simd || '–') + '” kernels in the SIMD128 build and its “' +
      bench.backend.scalar + '” kernels in the scalar one; both run on one thread of this tab.' +
      (bench.backend.simd === 'scalar' ? ' (This nn.h has no hand-written SIMD128 kernels yet: the SIMD128 build gains only what the compiler vectorises by itself.)' : '');
  } catch (e) {
    $('bench-status').textContent = 'Failed: ' + e.message;
  }
  if (wasTraining) setTraining(true);
  if (wasAe) setAe(true);
  b.disabled = false;
  b.textContent = 'Run it again';
  $('bench').dataset.done = '1';
}

// ---- self-test: ?selftest=1 -------------------------------------------------------------------------------
let selftestFinished = false;
function selftestDone(ok, text) {
  if (selftestFinished) return;
  selftestFinished = true;
  const line = ok ? 'SELFTEST ok ' + text : 'SELFTEST fail reason=' + String(text).replace(/\s+/g, '_');
  const pre = $('selftest');
  pre.hidden = false;
  pre.textContent = line;
  pre.classList.toggle('fail', !ok);
  document.title = line;
  console.log(line);
}

function waitFor(target, pred, what, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout waiting for ' + what)), ms);
    const w = (m) => {
      if (m.type === 'error') { clearTimeout(timer); target.waiters.splice(target.waiters.indexOf(w), 1); reject(new Error(m.message)); }
      else if (pred(m)) { clearTimeout(timer); target.waiters.splice(target.waiters.indexOf(w), 1); resolve(m); }
    };
    target.waiters.push(w);
  });
}

async function selftest() {
  $('selftest-hint').hidden = true;
  const pre = $('selftest');
  pre.hidden = false;
  pre.textContent = 'self-test running: ' + ST_STEPS + ' CNN training steps, then the test pictures…';
  if (!train.ready) await waitFor(train, (m) => m.type === 'ready', 'the training worker', 60000);
  // the CNN: fixed steps from a fixed seed, then the 1000 test pictures in the worker...
  const gotWeights = waitFor(train, (m) => m.type === 'weights', 'the weights', 600000);
  train.worker.postMessage({ cmd: 'selftest', kind: 'cnn', steps: ST_STEPS });
  const r = await waitFor(train, (m) => m.type === 'selftest', 'the training steps', 600000);
  await gotWeights;
  if (!(r.acc > ST_MIN_ACC)) throw new Error('accuracy ' + r.acc + ' after ' + r.steps + ' steps is not above ' + ST_MIN_ACC);
  if (!(r.lastLoss < r.firstLoss)) throw new Error('loss did not fall: ' + r.firstLoss + ' -> ' + r.lastLoss);
  train.test.push({ s: r.steps * 32, acc: r.acc });
  $('st-step').textContent = fmtMs(r.msPerStep);
  $('st-speed').textContent = Math.round(32000 / r.msPerStep).toLocaleString('en-US') + '/s';
  $('st-test').textContent = (100 * r.acc).toFixed(1) + '%';
  drawChart();
  // ...and on this page with the copied weights: the same accuracy, to the last picture
  const xs = M._malloc(testSet.n * (PIX + 1)), out = M._malloc(8);
  M.HEAPU8.set(testSet.x, xs);
  M.HEAPU8.set(testSet.y, xs + testSet.n * PIX);
  const erc = M._app_evaluate(page.clf.ptr, xs, xs + testSet.n * PIX, testSet.n, out);
  const pageAcc = M.HEAPF32[out >> 2];
  M._free(xs); M._free(out);
  if (erc !== 0 || Math.abs(pageAcc - r.acc) > 1e-6)
    throw new Error('the page copy of the model disagrees: accuracy ' + pageAcc + ' vs ' + r.acc);
  // one picture: the guess (timed: median of 51) and its saliency
  const x = new Float32Array(PIX);
  for (let p = 0; p < PIX; p++) x[p] = testSet.x[p] / 255;
  // performance.now() steps by 0.1 ms in a page without cross-origin isolation: time 50 in a row
  let p0 = predict(page.clf, x).p;
  const t0 = performance.now();
  for (let k = 0; k < 50; k++) p0 = predict(page.clf, x).p;
  const predictMs = (performance.now() - t0) / 50;
  let best = 0, psum = 0;
  for (let c = 0; c < 10; c++) { psum += p0[c]; if (p0[c] > p0[best]) best = c; }
  if (!(Math.abs(psum - 1) < 1e-3)) throw new Error('probabilities sum to ' + psum);
  const g = saliency(page.clf, x, best);
  let gmax = 0;
  for (let i = 0; i < PIX; i++) { if (!Number.isFinite(g[i])) throw new Error('saliency not finite'); gmax = Math.max(gmax, Math.abs(g[i])); }
  if (!(gmax > 0)) throw new Error('saliency is all zero');
  loadSample(0);
  // the autoencoder: its loss falls, its codes spread, its decoder draws pixels in [0,1]
  pre.textContent = 'self-test running: the autoencoder…';
  ensureAeWorker();
  if (!ae.ready) await waitFor(ae, (m) => m.type === 'ready', 'the autoencoder worker', 60000);
  const gotCodes = waitFor(ae, (m) => m.type === 'codes', 'the codes', 600000);
  ae.worker.postMessage({ cmd: 'selftest', kind: 'ae', steps: ST_AE_STEPS });
  const a = await waitFor(ae, (m) => m.type === 'selftest', 'the autoencoder steps', 600000);
  await gotCodes;
  if (!(a.lastLoss < 0.75 * a.firstLoss)) throw new Error('autoencoder loss ' + a.firstLoss + ' -> ' + a.lastLoss);
  const v = planeView();
  if (!(v.x1 - v.x0 > 1e-3) || !Number.isFinite(v.x0) || !Number.isFinite(v.y0)) throw new Error('autoencoder codes collapsed');
  ae.point = { x: (v.x0 + v.x1) / 2, y: (v.y0 + v.y1) / 2 };
  drawPlane();
  const img = decode(ae.point.x, ae.point.y);
  for (let i = 0; i < PIX; i++) if (!(img[i] >= 0 && img[i] <= 1)) throw new Error('decoded pixel ' + img[i]);
  $('ae-status').textContent = 'Self-test: ' + a.steps + ' steps, reconstruction error ' + a.lastLoss.toFixed(4);
  return 'accuracy=' + r.acc.toFixed(4) + ' simd=' + (BUILD === 'simd' ? 1 : 0) +
    ' steps_per_s=' + r.stepsPerS.toFixed(2) + ' predict_ms=' + predictMs.toFixed(3) +
    ' step_ms=' + r.msPerStep.toFixed(2) + ' steps=' + r.steps + ' test_images=' + testSet.n +
    ' backend=' + M.UTF8ToString(M._app_backend()) + ' build=' + BUILD + ' ae_loss=' + a.lastLoss.toFixed(4);
}

// ---- start -----------------------------------------------------------------------------------------------
async function main() {
  const bb = $('badge-build');
  bb.textContent = BUILD === 'simd' ? 'WebAssembly SIMD128 build' :
    (HAS_SIMD ? 'scalar WebAssembly build (chosen by ?build=scalar)' : 'scalar WebAssembly build (no SIMD128 in this browser)');
  bb.classList.add(BUILD === 'simd' ? 'good' : 'warn');
  setupPad();
  setupPlane();
  renderBench();
  drawChart();
  window.addEventListener('resize', () => { drawChart(); drawPlane(); });
  $('train-toggle').onclick = () => setTraining(!train.running);
  $('train-reset').onclick = resetTraining;
  $('model-kind').onchange = (ev) => { train.kind = ev.target.value; resetTraining(); };
  $('ae-toggle').onclick = () => setAe(!ae.running);
  $('bench-run').onclick = runBench;
  try {
    const [mod, test] = await Promise.all([
      loadScript('nn_' + BUILD + '.js').then(() => NNModule()),
      fetch('data/test.bin').then((r) => { if (!r.ok) throw new Error('cannot load data/test.bin'); return r.arrayBuffer(); }),
    ]);
    M = mod;
    const bytes = new Uint8Array(test), n = bytes.length / (PIX + 1);
    testSet = { x: bytes.subarray(0, n * PIX), y: bytes.subarray(n * PIX), n };
    page.buf = { x: M._malloc(PIX * 4), p: M._malloc(64), g: M._malloc(PIX * 4 * 9), c: M._malloc(16), d: M._malloc(PIX * 4) };
    $('badge-backend').textContent = 'nn.h backend: ' + M.UTF8ToString(M._app_backend());
    $('ae-toggle').disabled = false;
    train.worker = startWorker('classifier', BUILD, onTrainMsg);
    if (SELFTEST) selftestDone(true, await selftest());
  } catch (e) {
    showError(e.message || String(e));
  }
}

main();
