// Vocalis web page: upload or record a clip, show class probabilities as bars and,
// for a clip longer than one window, the emotion timeline.
// Plain JavaScript, no external libraries; recordings are encoded as 16-bit WAV here.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
  "#65a30d", "#4b5563", "#b45309"];
let maxSeconds = 60;
let classes = [];

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

function setStatus(message) {
  $("status").textContent = message || "";
}

async function loadHealth() {
  try {
    const res = await fetch("/health");
    const info = await res.json();
    maxSeconds = info.max_duration_s || maxSeconds;
    classes = info.classes || [];
    if (info.limits) {
      $("card-limits").textContent = info.limits;
      $("card-link").href = info.model_card || "/model-card";
      $("card").hidden = false;
    }
    $("model-info").textContent =
      `Model ${info.model}${info.features ? ` (${info.features} features)` : ""} · classes: ${info.classes.join(", ")} · vocalis ${info.version}`;
    $("limits").textContent =
      `Up to ${info.max_upload_mb} MiB and ${info.max_duration_s} s; WAV, FLAC, OGG or MP3.`;
  } catch (err) {
    $("model-info").textContent = "model information unavailable";
  }
}

function colour(name) {
  const i = classes.indexOf(name);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

// Forget the previous clip's answer: nothing of it may stay on screen.
function clearResult() {
  $("result").hidden = true;
  $("chart").textContent = "";
  $("chart").dataset.ready = "false";
  $("label").textContent = "";
  $("confidence").textContent = "";
  $("filename").textContent = "";
  $("duration").textContent = "";
  $("timeline").textContent = "";
  $("timeline").dataset.segments = "0";
  $("timeline-legend").textContent = "";
  $("timeline-box").hidden = true;
}

function renderTimeline(segments, duration) {
  const box = $("timeline-box");
  const host = $("timeline");
  host.textContent = "";
  if (!segments || segments.length === 0) {
    box.hidden = true;
    host.dataset.segments = "0";
    return;
  }
  const width = 640, band = 36, axis = 18;
  const end = Math.max(duration || 0, ...segments.map((s) => s.end));
  const x = (t) => (t / end) * width;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${band + axis}`);
  svg.setAttribute("width", "100%");
  // each window drawn from its centre, one hop wide, so the band reads as a timeline
  const hop = segments.length > 1 ? segments[1].start - segments[0].start : segments[0].end;
  segments.forEach((seg, i) => {
    const centre = (seg.start + seg.end) / 2;
    const rect = document.createElementNS(SVG, "rect");
    // the first window reaches back to 0 and the last one to the end of the clip
    const from = i === 0 ? seg.start : Math.max(0, centre - hop / 2);
    const to = i === segments.length - 1 ? seg.end : Math.min(end, centre + hop / 2);
    rect.setAttribute("x", x(from).toFixed(2));
    rect.setAttribute("y", "0");
    rect.setAttribute("width", Math.max(1, x(to) - x(from)).toFixed(2));
    rect.setAttribute("height", String(band));
    rect.setAttribute("class", "segment");
    rect.dataset.start = String(seg.start);
    rect.dataset.end = String(seg.end);
    rect.dataset.label = seg.label === null ? "" : seg.label;
    if (seg.label === null) {
      rect.setAttribute("fill", "#d1d5db");
    } else {
      rect.setAttribute("fill", colour(seg.label));
      rect.setAttribute("fill-opacity", (0.35 + 0.65 * seg.confidence).toFixed(2));
    }
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${seg.start.toFixed(1)}–${seg.end.toFixed(1)} s: ` +
      (seg.label === null ? "no speech" : `${seg.label} (${(100 * seg.confidence).toFixed(0)}%)`);
    rect.appendChild(title);
    svg.appendChild(rect);
  });
  const step = end > 30 ? 10 : end > 10 ? 5 : 1;
  for (let t = 0; t <= end + 1e-9; t += step) {
    const tick = document.createElementNS(SVG, "text");
    tick.setAttribute("x", Math.min(width - 12, x(t)).toFixed(1));
    tick.setAttribute("y", String(band + axis - 4));
    tick.setAttribute("class", "tick");
    tick.textContent = `${t} s`;
    svg.appendChild(tick);
  }
  host.appendChild(svg);
  host.dataset.segments = String(segments.length);
  const legend = $("timeline-legend");
  legend.textContent = "";
  const seen = [...new Set(segments.map((s) => (s.label === null ? "no speech" : s.label)))];
  for (const name of seen) {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("i");
    swatch.style.background = name === "no speech" ? "#d1d5db" : colour(name);
    item.append(swatch, document.createTextNode(name));
    legend.appendChild(item);
  }
  box.hidden = false;
}

function renderChart(result) {
  const chart = $("chart");
  chart.textContent = "";
  const speech = typeof result.speech === "number" ? result.speech : null;
  const speechText = speech === null ? "" : ` · speech in ${(100 * speech).toFixed(0)}% of it`;
  if (result.label === null) {
    // no speech: no emotion is claimed, and no bars suggest one
    $("label").textContent = result.answer || "no speech detected";
    $("confidence").textContent = "";
    $("filename").textContent = result.filename ? `· ${result.filename}` : "";
    $("duration").textContent = `${result.duration_s.toFixed(2)} s analysed${speechText}`;
    renderTimeline(result.segments, result.duration_s);
    $("result").hidden = false;
    chart.dataset.ready = "true";
    return;
  }
  const entries = Object.entries(result.probabilities);
  for (const [name, p] of entries) {
    const row = document.createElement("div");
    row.className = "bar-row" + (name === result.label ? " top" : "");
    row.setAttribute("role", "listitem");
    row.dataset.class = name;
    row.dataset.probability = String(p);
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = name;
    const track = document.createElement("div");
    track.className = "bar-track";
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.appendChild(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(label, track, value);
    chart.appendChild(row);
  }
  $("label").textContent = result.label;
  $("confidence").textContent = `${(100 * result.confidence).toFixed(1)}%`;
  $("filename").textContent = result.filename ? `· ${result.filename}` : "";
  $("duration").textContent = `${result.duration_s.toFixed(2)} s analysed${speechText}`;
  renderTimeline(result.segments, result.duration_s);
  $("result").hidden = false;
  chart.dataset.ready = "true";
}

async function send(blob, filename) {
  showError("");
  clearResult();
  setStatus(`analysing ${filename}…`);
  const form = new FormData();
  form.append("file", blob, filename);
  try {
    const res = await fetch("/predict", { method: "POST", body: form });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      throw new Error(`${res.status}: ${detail || res.statusText}`);
    }
    renderChart(body);
    setStatus("");
  } catch (err) {
    setStatus("");
    clearResult();
    showError(err.message);
    $("error").scrollIntoView({ block: "nearest" });
  }
}

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (!file) return;
  clearResult();
  const player = $("player");
  player.src = URL.createObjectURL(file);
  player.hidden = false;
  send(file, file.name);
});

// ---- recording: raw samples through WebAudio, then a 16-bit PCM WAV -------------
function encodeWav(chunks, sampleRate) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const buffer = new ArrayBuffer(44 + 2 * length);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, 2 * sampleRate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * length, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) {
      const s = Math.max(-1, Math.min(1, chunk[i]));
      view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

let recorder = null;

async function startRecording() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("this browser cannot record audio here (open the page via http://127.0.0.1 or https)");
    return;
  }
  showError("");
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  const context = new (window.AudioContext || window.webkitAudioContext)();
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  const started = Date.now();
  processor.onaudioprocess = (event) => {
    chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
  };
  source.connect(processor);
  processor.connect(context.destination);
  const tick = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    $("timer").textContent = `${seconds.toFixed(1)} s`;
    if (seconds >= maxSeconds) stopRecording();
  }, 100);
  recorder = { stream, context, processor, source, chunks, tick };
  $("record").textContent = "■ Stop";
  $("record").classList.add("recording");
}

async function stopRecording() {
  if (!recorder) return;
  const { stream, context, processor, source, chunks, tick } = recorder;
  recorder = null;
  clearInterval(tick);
  source.disconnect();
  processor.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = context.sampleRate;
  await context.close();
  $("record").textContent = "● Record";
  $("record").classList.remove("recording");
  $("timer").textContent = "";
  const wav = encodeWav(chunks, rate);
  const player = $("player");
  player.src = URL.createObjectURL(wav);
  player.hidden = false;
  send(wav, "recording.wav");
}

$("record").addEventListener("click", () => {
  if (recorder) {
    stopRecording();
  } else {
    startRecording().catch((err) => showError(`cannot record: ${err.message}`));
  }
});

loadHealth();
