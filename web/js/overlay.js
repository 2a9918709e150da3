// The overlay: face boxes, names and confidence drawn on a canvas laid over the video.

const KNOWN = "#3ddc84";
const UNKNOWN = "#ffb020";

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
  if (face.confidence === null || face.confidence === undefined) return face.name;
  return `${face.name} ${Math.round(face.confidence * 100)}%`;
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

  ctx.lineWidth = 2;
  ctx.font = "600 14px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const face of faces) {
    const [x, y, w, h] = face.box;
    const x1 = Math.min(toX(x), toX(x + w));
    const y1 = toY(y);
    const width = w * k;
    const height = h * k;
    const colour = face.name === "unknown" ? UNKNOWN : KNOWN;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1, y1, width, height);

    ctx.fillStyle = colour;
    for (const [lx, ly] of face.landmarks ?? []) {
      ctx.beginPath();
      ctx.arc(toX(lx), toY(ly), 2, 0, 2 * Math.PI);
      ctx.fill();
    }

    const text = label(face);
    const textW = ctx.measureText(text).width + 8;
    const textY = y1 >= 20 ? y1 : y1 + height + 20; // below the box when there is no room above
    ctx.fillRect(x1 - 1, textY - 20, textW, 20);
    ctx.fillStyle = "#111";
    ctx.fillText(text, x1 + 3, textY - 3);
  }
}
