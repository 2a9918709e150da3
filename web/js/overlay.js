// Face boxes, names and confidence: drawn over the live video, or onto an uploaded photo; and
// the same names as a text list (screen readers and the browser test read it).

const KNOWN = "#3ddc84";
const UNKNOWN = "#ffb020";

/**
 * A live face's colour: its track's own (so two people, or a face that comes back as a new
 * track, are told apart at a glance); hues a golden angle apart, light enough for dark text.
 * Faces without a track (a photo) are green when named, amber when not.
 */
export function trackColour(face) {
  if (!Number.isInteger(face.track)) return face.name === "unknown" ? UNKNOWN : KNOWN;
  return `hsl(${Math.round((face.track * 137.508) % 360)}, 80%, 60%)`;
}

/** Match the canvas's pixel size to its displayed size (sharp lines on high-DPI screens). */
function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * dpr);
  const height = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  return ctx;
}

export function clearFaces(canvas) {
  fit(canvas);
}

function label(face) {
  // A confidence says how sure the match is; a stranger has no match to be sure of.
  if (face.name === "unknown" || face.confidence === null || face.confidence === undefined) {
    return face.name;
  }
  return `${face.name} ${Math.round(face.confidence * 100)}%`;
}

/** `text`, cut short with an ellipsis to fit `width` pixels (the full name is on hover/tap). */
export function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let chars = [...text];
  while (chars.length > 1 && ctx.measureText(`${chars.join("")}…`).width > width) chars.pop();
  chars = chars.join("").trimEnd();
  return `${chars}…`;
}

/**
 * One face: box, landmarks and a label. toX/toY map frame pixels to canvas pixels, k is the
 * scale; `size` the label's font size in canvas pixels.
 */
function paintFace(ctx, face, toX, toY, k, size, canvasW) {
  const [x, y, w, h] = face.box;
  const x1 = Math.min(toX(x), toX(x + w));
  const y1 = toY(y);
  const width = w * k;
  const height = h * k;
  const colour = trackColour(face);
  ctx.strokeStyle = colour;
  // An unknown track keeps its colour but a dashed box: still plainly not a name.
  ctx.setLineDash(face.name === "unknown" && Number.isInteger(face.track) ? [6, 4] : []);
  ctx.strokeRect(x1, y1, width, height);
  ctx.setLineDash([]);

  ctx.fillStyle = colour;
  for (const [lx, ly] of face.landmarks ?? []) {
    ctx.beginPath();
    ctx.arc(toX(lx), toY(ly), Math.max(2, size / 7), 0, 2 * Math.PI);
    ctx.fill();
  }

  const pad = size * 0.3;
  const boxH = size * 1.45;
  // A long name stops at the picture's right edge instead of running past it.
  const left = Math.max(0, x1 - 1);
  const text = fitText(ctx, label(face), Math.max(size, canvasW - left - 2 * pad));
  const textW = ctx.measureText(text).width + 2 * pad;
  const textY = y1 >= boxH ? y1 : y1 + height + boxH; // below the box when there is no room
  ctx.fillRect(left, textY - boxH, textW, boxH);
  ctx.fillStyle = "#111";
  ctx.fillText(text, left + pad, textY - pad);
}

function setFont(ctx, size, lineWidth) {
  ctx.lineWidth = lineWidth;
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
}

/**
 * Draw `faces` (boxes in the pixels of the sent frame, `frame` = {width, height}) over `video`.
 * The video is shown with object-fit: contain, so the picture may not fill its box; and a
 * mirrored video flips x, while the labels must stay readable, so the flip is done here.
 */
export function drawFaces(canvas, video, faces, frame, mirrored) {
  const ctx = fit(canvas);
  if (!faces.length || !video.videoWidth) return;
  const boxW = canvas.clientWidth;
  const boxH = canvas.clientHeight;
  const shown = Math.min(boxW / video.videoWidth, boxH / video.videoHeight);
  const picW = video.videoWidth * shown;
  const picH = video.videoHeight * shown;
  const left = (boxW - picW) / 2;
  const top = (boxH - picH) / 2;
  const k = picW / frame.width;
  const toX = (x) => left + (mirrored ? picW - x * k : x * k);
  const toY = (y) => top + y * k;
  setFont(ctx, 14, 2);
  for (const face of faces) paintFace(ctx, face, toX, toY, k, 14, boxW);
}

/** A photo with its faces drawn on, at the photo's own resolution (CSS scales it down). */
export function drawOnImage(canvas, image, faces) {
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  // Lines and text sized to the photo, so they read the same once it is scaled to fit.
  const size = Math.max(12, Math.round(canvas.width / 40));
  setFont(ctx, size, Math.max(2, canvas.width / 300));
  for (const face of faces) paintFace(ctx, face, (x) => x, (y) => y, 1, size, canvas.width);
}

/** The faces' names as list items, left to right; the DOM is touched only on a change. */
export function listLabels(list, faces) {
  const names = [...faces].sort((a, b) => a.box[0] - b.box[0]).map((face) => face.name);
  const current = [...list.children].map((item) => item.textContent);
  if (names.length === current.length && names.every((name, i) => name === current[i])) return;
  list.replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    item.textContent = name;
    return item;
  }));
}
