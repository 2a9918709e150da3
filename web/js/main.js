// The live page: camera frames to the server, one at a time, and face boxes back; plus the
// panels around it (capture, people, photos).
// A new frame goes out only when the reply to the previous one has come (or timed out), so a
// slow server or network lowers the frame rate instead of building a queue; and never faster
// than the server's frame rate limit (`max_client_fps` in its hello), which a fast server would
// otherwise let the page exceed.
import { Api } from "./api.js";
import { Camera } from "./camera.js";
import { CaptureView } from "./capture.js";
import { sentSide, smallestFace } from "./detail.js";
import { clearFaces, drawFaces, listLabels } from "./overlay.js";
import { describeEnrolment, PeopleView, showOutcome } from "./people.js";
import { connectLive, takeToken } from "./socket.js";
import { PhotosView } from "./upload.js";

const JPEG_QUALITY = 0.7;
const REPLY_TIMEOUT_MS = 5000; // a lost reply must not stop the stream for good
const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");
const camera = new Camera(video);

let running = false;
let seq = 0;
let inFlight = null; // {seq, started, frame: {width, height}, timer}
let nextFrameAt = 0; // performance.now() before which no frame goes out (the rate limit)
let pacer = 0; // the timer that sends the next frame once the rate limit allows
let shown = { faces: [], frame: null }; // the latest reply, redrawn on resize

// Frames per second over the last two seconds; latency smoothed over recent frames.
const stats = {
  replies: [],
  latency: null,
  server: null,
  add(latencyMs, serverMs) {
    const now = performance.now();
    this.replies.push(now);
    while (this.replies[0] < now - 2000) this.replies.shift();
    const smooth = (old, value) => (old === null ? value : 0.8 * old + 0.2 * value);
    this.latency = smooth(this.latency, latencyMs);
    this.server = smooth(this.server, serverMs);
  },
  text() {
    const span = (this.replies.at(-1) - this.replies[0]) / 1000;
    const fps = this.replies.length > 1 && span > 0 ? (this.replies.length - 1) / span : 0;
    if (this.latency === null) return "– fps · – ms";
    return `${fps.toFixed(1)} fps · ${Math.round(this.latency)} ms (server ${Math.round(this.server)} ms)`;
  },
};

/** The message line: a string, or {text, details} (details folded under the line). */
function say(outcome) {
  showOutcome($("message"), outcome || "");
}

const MIRROR_KEY = "facelive.mirror"; // "on" / "off" on this device; unset: front cameras only

function mirrored() {
  const chosen = localStorage.getItem(MIRROR_KEY);
  return chosen ? chosen === "on" : camera.mirrored;
}

function applyMirror() {
  video.classList.toggle("mirrored", mirrored());
  $("mirror").checked = mirrored();
  if (shown.frame) drawFaces(overlay, video, shown.faces, shown.frame, mirrored());
}

const token = takeToken();
const api = new Api(token);
let server = null; // the `hello` info: version, embedder, limits, can_change

function showDetails(gallerySize) {
  if (!server) return;
  const plural = gallerySize === 1 ? "example" : "examples";
  $("details").textContent = `FaceLive ${server.version} · embedder ${server.embedder} · `
    + `${gallerySize} ${plural} in gallery`;
}

/** Which mode the page is in, and what this visitor can do. */
function showMode(info) {
  const mode = $("mode");
  if (!info) {
    mode.dataset.mode = "closed";
    mode.textContent = "This server is closed to visitors without a link: open the URL the "
      + "server printed (the owner's, or a view-only one).";
  } else if (info.can_change) {
    mode.dataset.mode = "owner";
    mode.textContent = info.open_viewing
      ? "Owner: you can add, rename and delete people. Viewing is open to anyone on the network."
      : "Owner: you can add, rename and delete people. Others need the view-only URL to watch.";
  } else {
    mode.dataset.mode = "viewer";
    mode.textContent = "View only: you can watch the live view, see who is known and identify "
      + "photos; adding, renaming or deleting people needs the owner's link.";
  }
  mode.hidden = false;
}

const live = connectLive(token, {
  onStatus(state, text) {
    $("connection").dataset.state = state;
    $("connection").textContent = text;
    if (text.includes("token required")) showMode(null);
    if (state === "connected") pump();
    else finish();
  },
  onHello(info) {
    server = info;
    api.canChange = Boolean(info.can_change);
    showMode(info);
    for (const element of document.querySelectorAll("[data-needs-token]")) {
      element.hidden = !info.can_change;
    }
    showDetails(info.gallery_size);
    people.refresh();
  },
  onFaces(reply) {
    if (!inFlight || reply.seq !== inFlight.seq) return; // a reply to a frame we gave up on
    stats.add(performance.now() - inFlight.started, reply.ms.total);
    $("stats").textContent = stats.text();
    shown = { faces: reply.faces, frame: inFlight.frame };
    drawFaces(overlay, video, shown.faces, shown.frame, mirrored());
    listLabels($("face-labels"), shown.faces);
    // Labels on the video may be cut short: the full names on hover (and on tap, below).
    $("stage").title = shown.faces.map((face) => face.name).join(", ");
    finish();
  },
  onError(error) {
    if (error.code === "rate_limited") {
      // The frame came too soon after the last ones: not a fault to show, only a pause.
      nextFrameAt = Math.max(nextFrameAt, performance.now() + (error.retry_ms ?? 100));
      if (inFlight && error.seq === inFlight.seq) finish();
      return;
    }
    say(error.message);
    if (inFlight && error.seq === inFlight.seq) finish();
  },
  onCapture(progress) {
    capture.show(progress);
  },
  onPeopleChanged(info) {
    showDetails(info.gallery_size);
    people.refresh();
  },
});

const capture = new CaptureView({
  live,
  say,
  ensureCamera: () => (running ? Promise.resolve() : startCamera()),
  onSaved(result) {
    say(describeEnrolment(result));
    people.refresh();
  },
});
const people = new PeopleView({ api, say, capture: (name) => capture.start(name) });
new PhotosView({
  api,
  maxFiles: () => server?.upload_limits?.max_files ?? 20,
  onChanged: () => people.refresh(),
});
$("capture").addEventListener("click", () => capture.start());

/** The frame in flight is answered (or abandoned): schedule the next one. */
function finish() {
  if (inFlight) clearTimeout(inFlight.timer);
  inFlight = null;
  // requestAnimationFrame: no faster than the screen, and paused while the tab is hidden.
  requestAnimationFrame(pump);
}

async function pump() {
  if (!running || inFlight || !live.connected || !camera.ready) return;
  const wait = nextFrameAt - performance.now();
  if (wait > 0) {
    if (!pacer) {
      pacer = setTimeout(() => {
        pacer = 0;
        pump();
      }, wait);
    }
    return;
  }
  const fps = server?.max_client_fps;
  nextFrameAt = performance.now() + (fps > 0 ? 1000 / fps : 0);
  const mine = { seq: ++seq, started: performance.now(), frame: null, timer: 0 };
  mine.timer = setTimeout(() => inFlight === mine && finish(), REPLY_TIMEOUT_MS);
  inFlight = mine;
  try {
    const cameraSide = Math.max(video.videoWidth, video.videoHeight);
    const side = sentSide($("detail").value, cameraSide);
    showDetailNote(cameraSide, side);
    const shot = await camera.grab(side, JPEG_QUALITY);
    mine.frame = { width: shot.width, height: shot.height };
    const bytes = await shot.blob.arrayBuffer();
    if (inFlight === mine) live.sendFrame(mine.seq, bytes);
  } catch (err) {
    say(err.message);
    if (inFlight === mine) {
      clearTimeout(mine.timer);
      inFlight = null;
      setTimeout(pump, 500);
    }
  }
}

/** Say what the chosen detail can find: the smallest face, in the camera's own pixels. */
function showDetailNote(cameraSide, side) {
  const minFace = server?.min_face_size;
  if (!minFace || !cameraSide) return;
  const smallest = smallestFace(minFace, cameraSide, side);
  const text = `finds faces from ${smallest} px of the camera's ${video.videoWidth}x${video.videoHeight}`
    + (side < cameraSide && side < 1280 && smallest > 60 ? ": smaller faces need more detail" : "");
  if ($("detail-note").textContent !== text) $("detail-note").textContent = text;
}

async function startCamera(facing) {
  say("");
  try {
    await camera.start(facing);
  } catch (err) {
    running = false;
    $("start").textContent = "Start camera";
    say(err.name === "NotAllowedError" ? "Camera permission was refused." : `Camera: ${err.message}`);
    return;
  }
  running = true;
  $("start").textContent = "Stop camera";
  applyMirror();
  $("switch").hidden = !(await camera.hasSeveralCameras());
  pump();
}

function stopCamera() {
  running = false;
  camera.stop();
  shown = { faces: [], frame: null };
  clearFaces(overlay);
  listLabels($("face-labels"), []);
  $("start").textContent = "Start camera";
  if (capture.active) capture.cancel(); // a capture needs the stream
}

$("start").addEventListener("click", () => (running ? stopCamera() : startCamera()));
$("switch").addEventListener("click", () => {
  shown = { faces: [], frame: null };
  clearFaces(overlay);
  startCamera(camera.facing === "environment" ? "user" : "environment");
});
video.addEventListener("loadeddata", pump);
window.addEventListener("resize", () => {
  if (shown.frame) drawFaces(overlay, video, shown.faces, shown.frame, mirrored());
  else clearFaces(overlay);
});

$("mirror").addEventListener("change", () => {
  localStorage.setItem(MIRROR_KEY, $("mirror").checked ? "on" : "off");
  applyMirror();
});
$("stage").addEventListener("click", () => {
  if (shown.faces.length) say(`In view: ${shown.faces.map((face) => face.name).join(", ")}`);
});
applyMirror();

startCamera();
