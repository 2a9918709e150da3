"""The confidence a person reads: the estimated probability that the name is right.

The KNN's own score (vote share times closeness, knn.py) orders candidates well but reads as
doubt: a correct match showed "24%". This maps the distance to the nearest example of the
named person to P(same person | distance), a logistic curve fitted on LFW pairs by
bench/confidence_fit.py (the same LFW images, two photos per pair, half of the pairs the same
person):

    dlib-resnet, 600 pairs (60 per fold, deep-funneled LFW): P = 1 / (1 + exp(-(a + b d))),
    a = 47.85, b = -113.86 (P = 0.5 at d = 0.420); reliability per 0.1 bin: predicted
    1.000/0.998/0.119/0.000 vs observed 1.000/1.000/0.114/0.000 at 0.2-0.3/0.3-0.4/0.4-0.5/0.5-0.6.

600 pairs cannot tell 0.999 from 0.9999, so the result is kept in [0.01, 0.99]. It is a
one-photo-against-one-photo probability at even odds: a gallery of many people, or a stranger
who is nobody's look-alike, changes the odds, which the open-set threshold (not this number)
guards. An embedder without a fitted curve gets the dlib slope centred on the threshold in
force, so its names read 50% at the threshold and more below it.
"""

from __future__ import annotations

import math

# embedder -> (a, b) of P(same) = sigmoid(a + b * distance), from bench/confidence_fit.py.
FITTED: dict[str, tuple[float, float]] = {"dlib-resnet": (47.8523, -113.8555)}
FALLBACK_SLOPE = -113.8555
LOWEST, HIGHEST = 0.01, 0.99


def probability_right(distance: float | None, embedder: str, threshold: float) -> float:
    """The probability that the face is the person whose example lies `distance` away (unit
    embeddings, 0..2). None (an empty gallery) is 0."""
    if distance is None or not math.isfinite(distance):
        return 0.0
    a, b = FITTED.get(embedder, (-FALLBACK_SLOPE * threshold, FALLBACK_SLOPE))
    z = a + b * float(distance)
    p = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
    return min(HIGHEST, max(LOWEST, p))
