// How large a frame the page sends: the "detail" choice against the camera's own size.
// The server finds faces from its min face size (40 px) up in the frame it is sent, so scaling a
// frame down by k hides every face under 40 * k camera pixels. "auto" sends two thirds of the
// camera's longer side, at least 480 px and at most 1280 px, never more than the camera gives:
// a 640x480 webcam is sent at 480 px as before (same cost), a 1920x1080 camera at 1280 px, where
// the pedestrian clip's faces are still found (bench/detail.py, BENCHMARKS.md, issue 16).

export const AUTO_MIN_SIDE = 480;
export const AUTO_MAX_SIDE = 1280;

/** The longer side, in pixels, of the frame sent for `choice` ("auto" or a number of pixels). */
export function sentSide(choice, cameraSide) {
  const wanted = choice === "auto"
    ? Math.max(AUTO_MIN_SIDE, Math.min(AUTO_MAX_SIDE, Math.round((cameraSide * 2) / 3)))
    : Number(choice);
  return Math.min(cameraSide, wanted); // never upscaled: that finds nothing new and costs more
}

/** The smallest face, in camera pixels, that the server can find in a frame sent at `side`. */
export function smallestFace(minFace, cameraSide, side) {
  return Math.ceil((minFace * cameraSide) / Math.max(1, side));
}
