"""MTCNN's detection arithmetic, apart from the networks: the image pyramid and how its levels
are tiled into one canvas, candidates from the P-Net map, non-maximum suppression, box
regression, squaring, and cutting candidates out of the image.

Conventions, everywhere in this module:
- A box is (x1, y1, x2, y2) float32 in image pixels, continuous coordinates: pixel column c
  covers [c, c+1), so a box's width is x2 - x1 and x2/y2 are exclusive edges.
- A set of N boxes is an (N, 4) array; scores are (N,) float32 in [0, 1].
- Regression offsets (dx1, dy1, dx2, dy2) are in units of the box's width (for x) and height
  (for y), as all three MTCNN networks emit them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

PNET_CELL = 12  # P-Net sees 12x12 windows...
PNET_STRIDE = 2  # ...every 2 pixels (its single 2x2 max-pool), in the scaled image.

NmsMode = Literal["union", "min"]


# --- Pyramid -------------------------------------------------------------------------------


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Scales (pyramid level size / image size) at which a min_face_size face fills P-Net's
    12 px window, then smaller by `factor` per level while the level's short side is >= 12 px.

    Empty when the image is too small for even the first level (short side < min_face_size).
    """
    scale = PNET_CELL / min_face_size
    short = min(height, width)
    scales = []
    while short * scale >= PNET_CELL:
        scales.append(scale)
        scale *= factor
    return scales


def level_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(rows, cols) of the pyramid level at `scale`, rounded up as the reference does."""
    return max(1, math.ceil(height * scale)), max(1, math.ceil(width * scale))


def _bucket(n: int) -> int:
    """n rounded up to a multiple of 2^(floor(log2 n) - 3): 8 steps per octave, so at most
    12.5% padding, and only a handful of distinct canvas sizes for all frame sizes."""
    if n <= 32:
        return 32
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def _even(n: int) -> int:
    return n + (n & 1)


@dataclass(frozen=True)
class CanvasLayout:
    """Where each pyramid level of one image size sits on the P-Net canvas, and what every
    useful cell of P-Net's output map means.

    P-Net is fully convolutional with a 12 px receptive field, so running it once over a canvas
    holding all levels side by side gives, for every window lying wholly inside one level,
    exactly the output a run on that level alone gives, provided levels start at even offsets
    (P-Net's stride). Windows straddling two levels or the padding are simply not listed.

    canvas_shape: (rows, cols) of the canvas, both even, bucketed (see `_bucket`).
    map_shape: (rows, cols) of P-Net's output map on that canvas.
    offsets: (L, 2) int (row, col) of each level's top-left corner on the canvas.
    sizes: (L, 2) int (rows, cols) of each level.
    cell_index: (K,) int64 flat index into the output map of each useful cell.
    cell_level: (K,) int32 the level each cell belongs to.
    cell_boxes: (K, 4) float32 each cell's 12x12 window, mapped back to image pixels.
    """

    image_shape: tuple[int, int]
    canvas_shape: tuple[int, int]
    map_shape: tuple[int, int]
    offsets: np.ndarray
    sizes: np.ndarray
    cell_index: np.ndarray
    cell_level: np.ndarray
    cell_boxes: np.ndarray


def pnet_map_shape(canvas_rows: int, canvas_cols: int) -> tuple[int, int]:
    """P-Net output map size for an even-sized input: conv3 (-2), pool 2 (/2), conv3, conv3."""
    return canvas_rows // 2 - 5, canvas_cols // 2 - 5


def _pack_columns(sizes: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """First-fit decreasing: levels (largest first) go down columns `rows` tall, each into
    the first column with room left, else into a new column at the right. Returns each
    level's (row, col) offset, all even."""
    columns: list[list[int]] = []  # [x, width, used rows]
    offsets = []
    for h, w in sizes:
        h, w = _even(h), _even(w)
        for column in columns:
            if column[2] + h <= rows:
                break
        else:
            x = columns[-1][0] + columns[-1][1] if columns else 0
            column = [x, w, 0]
            columns.append(column)
        offsets.append((column[2], column[0]))
        column[2] += h
    return offsets


def plan_canvas(height: int, width: int, scales: list[float]) -> CanvasLayout:
    """Tile the pyramid levels of an (height, width) image into one canvas.

    The canvas is as tall as the largest level (as wide, for a portrait image) and the levels
    fill columns from left to right, so about 80% of it is image.
    """
    if not scales:
        raise ValueError("no pyramid levels: the image is smaller than the smallest face")
    sizes = [level_size(height, width, s) for s in scales]
    tall = height > width
    # A portrait image is packed as its transpose: columns as tall as its short side, side by
    # side along its long side.
    packed = [(w, h) for h, w in sizes] if tall else sizes
    offsets_t = _pack_columns(packed, _even(packed[0][0]))
    rows = max(y + _even(h) for (y, _), (h, _) in zip(offsets_t, packed, strict=True))
    cols = max(x + _even(w) for (_, x), (_, w) in zip(offsets_t, packed, strict=True))
    if tall:
        offsets = [(x, y) for y, x in offsets_t]
        rows, cols = cols, rows
    else:
        offsets = offsets_t
    canvas_shape = (_bucket(rows), _bucket(cols))
    map_rows, map_cols = pnet_map_shape(*canvas_shape)
    index, level, boxes = [], [], []
    for lvl, ((oy, ox), (h, w)) in enumerate(zip(offsets, sizes, strict=True)):
        ny, nx = (h - PNET_CELL) // PNET_STRIDE + 1, (w - PNET_CELL) // PNET_STRIDE + 1
        if ny <= 0 or nx <= 0:
            continue
        rows_i, cols_j = np.mgrid[0:ny, 0:nx]
        rows_i, cols_j = rows_i.ravel(), cols_j.ravel()
        map_r, map_c = oy // PNET_STRIDE + rows_i, ox // PNET_STRIDE + cols_j
        index.append(map_r.astype(np.int64) * map_cols + map_c)
        level.append(np.full(len(rows_i), lvl, dtype=np.int32))
        # Actual per-axis scales of the (rounded-up) level, so boxes land exactly.
        sy, sx = h / height, w / width
        x1 = cols_j * PNET_STRIDE / sx
        y1 = rows_i * PNET_STRIDE / sy
        boxes.append(np.stack([x1, y1, x1 + PNET_CELL / sx, y1 + PNET_CELL / sy], axis=1))
    return CanvasLayout(
        image_shape=(height, width),
        canvas_shape=canvas_shape,
        map_shape=(map_rows, map_cols),
        offsets=np.asarray(offsets, dtype=np.int64).reshape(-1, 2),
        sizes=np.asarray(sizes, dtype=np.int64).reshape(-1, 2),
        cell_index=np.concatenate(index) if index else np.zeros(0, np.int64),
        cell_level=np.concatenate(level) if level else np.zeros(0, np.int32),
        cell_boxes=(np.concatenate(boxes) if boxes else np.zeros((0, 4))).astype(np.float32),
    )


class Octaves:
    """An image and its successive halvings (2x2 area averages, which are exact and cheap),
    the sources every resize below starts from: resizing by a factor in (0.5, 1] from the
    nearest octave costs a fraction of an area resize from the full image and looks the same.

    images[k]: (H_k, W_k, 3) uint8, H_k = H // 2^k; scales[k]: (sx, sy) = (W_k / W, H_k / H).
    """

    def __init__(self, image: np.ndarray, smallest: int = PNET_CELL) -> None:
        self.images = [image]
        self.scales = [(1.0, 1.0)]
        height, width = image.shape[:2]
        while min(self.images[-1].shape[:2]) // 2 >= smallest:
            prev = self.images[-1]
            half = cv2.resize(
                prev, (prev.shape[1] // 2, prev.shape[0] // 2), interpolation=cv2.INTER_AREA
            )
            self.images.append(half)
            self.scales.append((half.shape[1] / width, half.shape[0] / height))

    def source_for(self, scale: float) -> int:
        """The smallest octave still at least `scale` times the image on both axes."""
        k = 0
        while k + 1 < len(self.images) and min(self.scales[k + 1]) >= scale:
            k += 1
        return k


def _resize(source: np.ndarray, rows: int, cols: int) -> np.ndarray:
    if source.shape[0] == rows and source.shape[1] == cols:
        return source
    shrinking = source.shape[0] > rows or source.shape[1] > cols
    mode = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(source, (cols, rows), interpolation=mode)


def fill_canvas(
    octaves: Octaves, layout: CanvasLayout, out: np.ndarray | None = None
) -> np.ndarray:
    """The (rows, cols, 3) uint8 canvas of `layout`, its levels resized from `octaves`.

    `out`, when given, is written in place (it must be zeros where no level goes).
    """
    canvas = np.zeros((*layout.canvas_shape, 3), np.uint8) if out is None else out
    height, width = layout.image_shape
    for (oy, ox), (h, w) in zip(layout.offsets, layout.sizes, strict=True):
        source = octaves.images[octaves.source_for(max(h / height, w / width))]
        canvas[oy : oy + h, ox : ox + w] = _resize(source, int(h), int(w))
    return canvas


def pnet_candidates(
    prob: np.ndarray, reg: np.ndarray, layout: CanvasLayout, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows P-Net calls a face.

    prob: (map_rows, map_cols) face probability; reg: (map_rows, map_cols, 4) offsets.
    Returns boxes (N, 4) (the windows, in image pixels), scores (N,), reg (N, 4), level (N,).
    """
    scores = prob.reshape(-1)[layout.cell_index]
    hit = np.flatnonzero(scores >= threshold)
    index = layout.cell_index[hit]
    return (
        layout.cell_boxes[hit],
        scores[hit].astype(np.float32),
        reg.reshape(-1, 4)[index].astype(np.float32),
        layout.cell_level[hit],
    )


# --- Non-maximum suppression ---------------------------------------------------------------


def _overlap(
    boxes: np.ndarray, area: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: NmsMode
) -> np.ndarray:
    """(len(rows), len(cols)) overlap of boxes[rows] with boxes[cols] (see `nms`)."""
    r, c = boxes[rows].T, boxes[cols].T  # (4, R), (4, C): contiguous coordinate rows
    iw = np.minimum(r[2][:, None], c[2]) - np.maximum(r[0][:, None], c[0])
    ih = np.minimum(r[3][:, None], c[3]) - np.maximum(r[1][:, None], c[1])
    inter = np.maximum(iw, 0, out=iw) * np.maximum(ih, 0, out=ih)
    ar, ac = area[rows][:, None], area[cols]
    denom = np.minimum(ar, ac) if mode == "min" else ar + ac - inter
    return inter / np.maximum(denom, 1e-12, out=denom)


_NMS_MATRIX_MAX = 2048  # beyond this the N x N matrix costs more than it saves


def nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: NmsMode = "union"
) -> np.ndarray:
    """Greedy NMS: indices (into boxes, best score first) of the boxes kept.

    A box is dropped when its overlap with an already kept, higher-scoring box exceeds
    `threshold`; overlap is intersection / union ("union") or intersection / the smaller
    area ("min", which also removes a small box lying inside a bigger one).
    """
    n = len(boxes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = boxes.astype(np.float32, copy=False)
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    if n <= _NMS_MATRIX_MAX:
        # All overlaps at once, in score order; the greedy pass is then one row per kept box.
        suppress = _overlap(boxes, area, order, order, mode) > threshold
        dropped = np.zeros(n, dtype=bool)
        for rank in range(n):
            if not dropped[rank]:
                keep.append(order[rank])
                dropped |= suppress[rank]
        return np.asarray(keep, dtype=np.int64)
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[_overlap(boxes, area, np.array([i]), rest, mode)[0] <= threshold]
    return np.asarray(keep, dtype=np.int64)


def nms_per_group(
    boxes: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    threshold: float,
    mode: NmsMode = "union",
) -> np.ndarray:
    """NMS within each group (e.g. pyramid level) only. Returns kept indices into boxes,
    best score first."""
    kept = [
        members[nms(boxes[members], scores[members], threshold, mode)]
        for members in (np.flatnonzero(groups == g) for g in np.unique(groups))
    ]
    if not kept:
        return np.zeros(0, dtype=np.int64)
    keep = np.concatenate(kept)
    return keep[np.argsort(-scores[keep], kind="stable")]


# --- Box arithmetic ------------------------------------------------------------------------


def apply_regression(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Calibrate boxes (N, 4) by offsets (N, 4) in units of each box's width/height."""
    size = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    return (boxes + reg * size).astype(np.float32)


def square(boxes: np.ndarray) -> np.ndarray:
    """The square with side max(width, height) centred on each box (N, 4): the next network
    takes a square input, so this keeps the face's aspect ratio."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.max(boxes[:, 2:] - boxes[:, :2], axis=1, keepdims=True) / 2
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def around(boxes: np.ndarray, shifts: Sequence[float], scales: Sequence[float]) -> np.ndarray:
    """Squares around each box (N, 4) where a face is expected (a track's predicted place):
    every combination of a shift (x and y, as fractions of the side) and a scale of the
    box's square, (N * len(shifts)^2 * len(scales), 4). R-Net picks the one that fits, as
    it does among P-Net's proposals, so a face that moved or grew a little is still found."""
    boxes = square(np.asarray(boxes, np.float32).reshape(-1, 4))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = boxes[:, 2] - boxes[:, 0]
    out = []
    for dy in shifts:
        for dx in shifts:
            for scale in scales:
                c = centre + np.stack([dx * side, dy * side], axis=1)
                half = (scale * side / 2)[:, None]
                out.append(np.concatenate([c - half, c + half], axis=1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


def keep_valid(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean (N,): boxes with positive size that overlap the (height, width) image."""
    return (
        (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
        & (boxes[:, 2] > 0)
        & (boxes[:, 3] > 0)
        & (boxes[:, 0] < width)
        & (boxes[:, 1] < height)
    )


def crop_patches(octaves: Octaves, boxes: np.ndarray, size: int, out: np.ndarray) -> np.ndarray:
    """Cut boxes (N, 4) out of the image and resize each to size x size, into out[:N]
    ((>= N, size, size, 3) uint8). Parts outside the image are black, as in training, so a
    face cut by the border keeps its place in the patch.

    Each box is cut from the smallest octave where it is still >= size pixels, on that
    octave's pixel grid. Returns the (N, 4) boxes, in image pixels, that the patches show
    exactly: later regression and landmarks are relative to them.
    """
    used = np.empty((len(boxes), 4), np.float32)
    side = np.max(boxes[:, 2:] - boxes[:, :2], axis=1)
    for k, box in enumerate(boxes):
        level = octaves.source_for(size / max(float(side[k]), 1e-6))
        source = octaves.images[level]
        sx, sy = octaves.scales[level]
        grid = np.array([sx, sy, sx, sy])
        x1, y1, x2, y2 = np.round(box * grid).astype(np.int64)
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        used[k] = np.array([x1, y1, x2, y2]) / grid
        rows, cols = source.shape[:2]
        ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, cols), min(y2, rows)
        if (ix1, iy1, ix2, iy2) == (x1, y1, x2, y2):
            region = source[y1:y2, x1:x2]
        else:
            region = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
            if ix2 > ix1 and iy2 > iy1:
                region[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] = source[iy1:iy2, ix1:ix2]
        out[k] = _resize(region, size, size)
    return used


def landmarks_from_offsets(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """O-Net's 10 outputs per box (5 x then 5 y, as fractions of the box) -> (N, 5, 2) (x, y)
    image pixels."""
    x = boxes[:, 0:1] + points[:, 0:5] * (boxes[:, 2:3] - boxes[:, 0:1])
    y = boxes[:, 1:2] + points[:, 5:10] * (boxes[:, 3:4] - boxes[:, 1:2])
    return np.stack([x, y], axis=2).astype(np.float32)


def batch_bucket(n: int, smallest: int, largest: int) -> int:
    """Batch size to pad n candidates to: the next of smallest * (1, 1.5, 2, 3, 4, 6, ...),
    capped at `largest`, so padding wastes at most a third and there are few distinct sizes."""
    if smallest < 2:
        raise ValueError(f"the smallest bucket must be >= 2, got {smallest}")  # 1 * 3 // 2 == 1
    bucket = smallest
    while bucket < n and bucket < largest:
        bucket = bucket * 3 // 2 if (bucket & (bucket - 1)) == 0 else bucket * 4 // 3
    return min(bucket, largest)


def bucket_sizes(smallest: int, largest: int) -> list[int]:
    """Every batch size batch_bucket can return for these bounds, smallest first."""
    sizes = [smallest]
    while sizes[-1] < largest:
        sizes.append(batch_bucket(sizes[-1] + 1, smallest, largest))
    return sizes
