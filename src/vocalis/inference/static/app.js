// Vocalis web page: upload or record a clip, show class probabilities as bars.
// Plain JavaScript, no external libraries; recordings are encoded as 16-bit WAV here.
"use strict";

const $ = (id) => document.getElementById(id);
let maxSeconds = 60;

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
    $("model-info").textContent =
      `Model ${info.model} (${info.features} features) · classes: ${info.classes.join(", ")} · vocalis ${info.version}`;
    $("limits").textContent =
      `Up to ${info.max_upload_mb} MiB and ${info.max_duration_s} s; WAV, FLAC, OGG or MP3.`;
  } catch (err) {
    $("model-info").textContent = "model information unavailable";
  }
}

function renderChart(result) {
  const chart = $("chart");
  chart.textContent = "";
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
  $("duration").textContent = `${result.duration_s.toFixed(2)} s analysed`;
  $("result").hidden = false;
  chart.dataset.ready = "true";
}

async function send(blob, filename) {
  showError("");
  $("chart").dataset.ready = "false";
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
    showError(err.message);
  }
}

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (!file) return;
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
