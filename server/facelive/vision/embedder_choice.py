"""Which embedder the settings mean on this machine, and loading it.

Apart from embedders.py so that the interface module does not import its FaceNet
implementations (which build on it): one direction, no cycle.
"""

from __future__ import annotations

import logging

from facelive.models import store
from facelive.settings import Settings
from facelive.vision.embedders import DlibResNetEmbedder, Embedder

log = logging.getLogger(__name__)


def resolve_embedder_name(settings: Settings) -> str:
    """The embedder `settings.embedder` means on this machine (see store.choose_embedder)."""
    return store.choose_embedder(settings.embedder, settings.models_dir)


def create_embedder(settings: Settings) -> Embedder:
    """Load the chosen embedder; ModelMissingError (one line naming the fix) if its weights are
    not in the models dir."""
    name = resolve_embedder_name(settings)
    paths = store.require_embedder(settings.models_dir, name)
    if name == "dlib-resnet":
        embedder: Embedder = DlibResNetEmbedder(paths["dlib-resnet"][0])
    else:
        from facelive.vision import facenet_embedders as fe

        model = next(m for m in paths if m != "dlib-resnet")
        variant = fe.FACENET_2017 if model == "facenet-keras" else fe.FACENET_2018
        facenet = fe.FaceNetEmbedder(fe.load_units(model, paths[model]), variant,
                                     mirror=fe.FACENET_MIRROR)
        if name.startswith("fused"):
            dlib = DlibResNetEmbedder(paths["dlib-resnet"][0])
            embedder = fe.FusedEmbedder(dlib, facenet, fe.FUSION_WEIGHT)
        else:
            embedder = facenet
    log.info("embedder: %s (%d-D, requested %s)", embedder.name, embedder.dim, settings.embedder)
    return embedder
