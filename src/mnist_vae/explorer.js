// The latent explorer. Decodes with the model's own float32 weights, as VAE.decode does
// (src/mnist_vae/model.py): input = sigmoid(z) or z; relu(fc3); fc4 → 784 logits → pixel mean.
"use strict";
const data = JSON.parse(document.getElementById("explorer-data").textContent);
const PIXELS = 784;
const HIDDEN = data.hidden_dim;

function bytes(base64) {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
const floats = (base64) => new Float32Array(bytes(base64).buffer); // little-endian, as written
const fc3Weight = floats(data.fc3_weight); // (HIDDEN, 2), row-major
const fc3Bias = floats(data.fc3_bias);
const fc4Weight = floats(data.fc4_weight); // (784, HIDDEN)
const fc4Bias = floats(data.fc4_bias);
const means = floats(data.means); // (count, 2): posterior means, in z
const labels = bytes(data.labels);

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

// E[x] under the continuous Bernoulli, from its logit: model.continuous_bernoulli_mean.
function continuousBernoulliMean(l) {
  if (Math.abs(l) < 1e-2) return 0.5 + l / 12 - (l * l * l) / 720;
  return sigmoid(l) / Math.tanh(l / 2) - 1 / l;
}
const pixelMean = data.likelihood === "continuous_bernoulli" ? continuousBernoulliMean : sigmoid;

// The decoder's input for a latent z, and back: the report squashes z through a sigmoid.
const toInput = (z) => (data.sigmoid_latent ? z.map(sigmoid) : z.slice());
const toLatent = (u) => (data.sigmoid_latent ? u.map((v) => Math.log(v / (1 - v))) : u.slice());

const hidden = new Float64Array(HIDDEN);
// The 784 pixel means (in [0, 1]) for a decoder input u = [u1, u2].
function decodeInput(u) {
  for (let j = 0; j < HIDDEN; j++) {
    const a = fc3Bias[j] + fc3Weight[2 * j] * u[0] + fc3Weight[2 * j + 1] * u[1];
    hidden[j] = a > 0 ? a : 0;
  }
  const out = new Float64Array(PIXELS);
  for (let i = 0; i < PIXELS; i++) {
    let logit = fc4Bias[i];
    const row = i * HIDDEN;
    for (let j = 0; j < HIDDEN; j++) logit += fc4Weight[row + j] * hidden[j];
    out[i] = pixelMean(logit);
  }
  return out;
}
const decode = (z) => decodeInput(toInput(z));

function drawPixels(canvas, pixels, left) {
  const image = canvas.getContext("2d").createImageData(28, 28);
  for (let i = 0; i < PIXELS; i++) {
    const grey = Math.round(255 * pixels[i]);
    image.data.set([grey, grey, grey, 255], 4 * i);
  }
  canvas.getContext("2d").putImageData(image, left, 0);
}

// The digit at the plane's centre first; the scatter and the rest follow.
const [[x0, x1], [y0, y1]] = data.limits;
const centre = [(x0 + x1) / 2, (y0 + y1) / 2];
drawPixels(document.getElementById("digit"), decodeInput(centre), 0);
const firstDigitMs = performance.now(); // since the page was opened

// The plane: decoder-input units, limits[axis] = [low, high]; a square of SIDE canvas pixels.
const plane = document.getElementById("plane");
const LEFT = 50, TOP = 10, SIDE = 460;
const toCanvas = (u) => [LEFT + ((u[0] - x0) / (x1 - x0)) * SIDE, TOP + ((y1 - u[1]) / (y1 - y0)) * SIDE];
const fromCanvas = (x, y) => [x0 + ((x - LEFT) / SIDE) * (x1 - x0), y1 - ((y - TOP) / SIDE) * (y1 - y0)];
// Keep the cursor half a canvas pixel inside the plane: sigmoid(z) never reaches 0 or 1.
function clampInput(u) {
  const inside = (v, lo, hi) => Math.min(Math.max(v, lo + (hi - lo) / (2 * SIDE)), hi - (hi - lo) / (2 * SIDE));
  return [inside(u[0], x0, x1), inside(u[1], y0, y1)];
}

const axisNames = data.sigmoid_latent ? ["sigmoid(z1)", "sigmoid(z2)"] : ["z1", "z2"];
document.getElementById("units").innerHTML = data.sigmoid_latent
  ? "This model (the report's) decodes <code>sigmoid(z)</code>, so the plane is the decoder's input: the unit square, " +
    "axes <code>sigmoid(z1)</code> and <code>sigmoid(z2)</code>. Dots are the test set's posterior means, squashed the same way."
  : "This model (the standard VAE) decodes <code>z</code> itself, so the axes are <code>z1</code> and <code>z2</code>, " +
    "over the test set's posterior means (the dots) and a margin.";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]; // tab10
const meanInputs = [];
for (let n = 0; n < data.count; n++) meanInputs.push(toInput([means[2 * n], means[2 * n + 1]]));

// The scatter and the axes, drawn once; each update redraws the overlay on top of it.
const background = document.createElement("canvas");
background.width = plane.width;
background.height = plane.height;
(function drawBackground() {
  const g = background.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, plane.width, plane.height);
  g.globalAlpha = 0.6;
  for (let n = 0; n < data.count; n++) {
    const [x, y] = toCanvas(meanInputs[n]);
    g.fillStyle = COLOURS[labels[n]];
    g.fillRect(x - 1, y - 1, 2, 2);
  }
  g.globalAlpha = 1;
  g.strokeStyle = "#888";
  g.strokeRect(LEFT, TOP, SIDE, SIDE);
  g.fillStyle = "#222";
  g.font = "11px sans-serif";
  for (let k = 0; k <= 4; k++) {
    const tx = x0 + ((x1 - x0) * k) / 4, ty = y0 + ((y1 - y0) * k) / 4;
    const [cx] = toCanvas([tx, y0]), [, cy] = toCanvas([x0, ty]);
    g.textAlign = "center";
    g.fillText(+tx.toFixed(2), cx, TOP + SIDE + 14);
    g.textAlign = "right";
    g.fillText(+ty.toFixed(2), LEFT - 4, cy + 4);
  }
  g.textAlign = "center";
  g.fillText(axisNames[0] + " (decoder input)", LEFT + SIDE / 2, TOP + SIDE + 32);
  g.save();
  g.translate(12, TOP + SIDE / 2);
  g.rotate(-Math.PI / 2);
  g.fillText(axisNames[1] + " (decoder input)", 0, 0);
  g.restore();
})();
document.getElementById("legend").innerHTML = data.class_names
  .map((name, k) => `<span><i style="background:${COLOURS[k]}"></i>${name}</span>`)
  .join("");

// What the page shows, exported on window.explorer for tests and benchmarks.
const state = { input: null, z: null, pixels: null, nearest: [], ends: [], line: [], linePixels: [] };

function nearestTo(u, k) {
  const best = []; // [distance², index], ascending
  for (let n = 0; n < data.count; n++) {
    const dx = meanInputs[n][0] - u[0], dy = meanInputs[n][1] - u[1];
    const d = dx * dx + dy * dy;
    if (best.length === k && d >= best[k - 1][0]) continue;
    const at = best.findIndex((b) => b[0] > d);
    best.splice(at === -1 ? best.length : at, 0, [d, n]);
    if (best.length > k) best.pop();
  }
  return best.map((b) => b[1]);
}

const nearestBox = document.getElementById("nearest");
function drawNearest() {
  nearestBox.innerHTML = state.nearest
    .map((n) => `<figure data-index="${n}"><canvas width="28" height="28"></canvas>${data.class_names[labels[n]]}<br>#${n}</figure>`)
    .join("");
  const sheet = document.getElementById("thumbnails"); // parsed after this script
  if (!sheet || !sheet.complete) return;
  nearestBox.querySelectorAll("figure").forEach((figure) => {
    const n = +figure.dataset.index, per = data.thumbnails_per_row;
    const g = figure.querySelector("canvas").getContext("2d");
    g.drawImage(sheet, 28 * (n % per), 28 * Math.floor(n / per), 28, 28, 0, 0, 28, 28);
  });
}
window.addEventListener("load", drawNearest);
nearestBox.addEventListener("click", (event) => {
  const figure = event.target.closest("figure");
  if (figure) {
    const n = Number(figure.dataset.index);
    addEnd([means[2 * n], means[2 * n + 1]]);
  }
});

function drawPlane() {
  const g = plane.getContext("2d");
  g.drawImage(background, 0, 0);
  g.strokeStyle = "#000";
  g.lineWidth = 1.5;
  if (state.line.length) {
    g.beginPath();
    state.line.forEach((z, k) => g[k ? "lineTo" : "moveTo"](...toCanvas(toInput(z))));
    g.stroke();
  }
  for (const z of state.ends) {
    const [x, y] = toCanvas(toInput(z));
    g.strokeRect(x - 4, y - 4, 8, 8);
  }
  if (state.input) {
    const [x, y] = toCanvas(state.input);
    g.beginPath();
    g.arc(x, y, 6, 0, 2 * Math.PI);
    g.moveTo(x - 10, y); g.lineTo(x + 10, y);
    g.moveTo(x, y - 10); g.lineTo(x, y + 10);
    g.stroke();
  }
}

// Decode and show the point at decoder input u.
function moveTo(u) {
  state.input = clampInput(u);
  state.z = toLatent(state.input);
  state.pixels = decodeInput(state.input);
  drawPixels(document.getElementById("digit"), state.pixels, 0);
  const f = (v) => v.toFixed(3);
  document.getElementById("where").innerHTML = data.sigmoid_latent
    ? `z = (${f(state.z[0])}, ${f(state.z[1])})<br>decoder input sigmoid(z) = (${f(state.input[0])}, ${f(state.input[1])})`
    : `z = decoder input = (${f(state.z[0])}, ${f(state.z[1])})`;
  state.nearest = nearestTo(state.input, data.nearest);
  drawNearest();
  drawPlane();
}

// Two ends give the line between them, straight in z as in plots/interpolation.png; a third
// starts a new pair.
function addEnd(z) {
  state.ends = state.ends.length === 2 ? [z] : [...state.ends, z];
  state.line = [];
  const strip = document.getElementById("line");
  if (state.ends.length === 2) {
    const [a, b] = state.ends, steps = data.steps;
    for (let k = 0; k < steps; k++) {
      const w = k / (steps - 1);
      state.line.push([a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1])]);
    }
    strip.width = 28 * steps;
    strip.style.width = 56 * steps + "px";
    state.linePixels = state.line.map(decode);
    state.linePixels.forEach((pixels, k) => drawPixels(strip, pixels, 28 * k));
    document.getElementById("line-title").textContent =
      `${steps} latents on the straight line in z between the two points, decoded:`;
  } else {
    state.linePixels = [];
    document.getElementById("line-title").textContent = "Click a second point.";
  }
  drawPlane();
}

function eventInput(event) {
  const rect = plane.getBoundingClientRect();
  const x = ((event.clientX - rect.left) * plane.width) / rect.width;
  const y = ((event.clientY - rect.top) * plane.height) / rect.height;
  return fromCanvas(x, y);
}
plane.addEventListener("pointermove", (event) => moveTo(eventInput(event)));
plane.addEventListener("pointerdown", (event) => moveTo(eventInput(event)));
plane.addEventListener("click", (event) => {
  moveTo(eventInput(event));
  addEnd(state.z);
});
document.addEventListener("keydown", (event) => {
  const step = (event.shiftKey ? 10 : 1) / 100; // of the plane's side
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
  if (moves[event.key]) {
    const [dx, dy] = moves[event.key];
    moveTo([state.input[0] + dx * step * (x1 - x0), state.input[1] + dy * step * (y1 - y0)]);
  } else if (event.key === "Enter" || event.key === " ") {
    addEnd(state.z);
  } else {
    return;
  }
  event.preventDefault();
});

moveTo(centre);
// Where decoder input u is in the window, for scripts that drive the page like a user.
function clientPoint(u) {
  const rect = plane.getBoundingClientRect(), [x, y] = toCanvas(u);
  return [rect.left + (x * rect.width) / plane.width, rect.top + (y * rect.height) / plane.height];
}
window.explorer = { data, state, decode, decodeInput, toInput, toLatent, moveTo, addEnd,
  clientPoint, means, labels, geometry: { left: LEFT, top: TOP, side: SIDE }, firstDigitMs };
