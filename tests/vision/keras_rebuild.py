"""An independent reference for our Inception-ResNet-v1: a Keras 3 model rebuilt layer by layer
from facenet_keras.h5's own `model_config` (each Lambda replaced by a layer applying its
`scale`: inputs[0] + inputs[1] * scale), with every layer's weights set by name from the file.
Shares no code with facelive.vision.inception_resnet_v1 or facenet_weights."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np


class ScaleSum(keras.layers.Layer):
    def __init__(self, scale: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs: list) -> object:
        return inputs[0] + inputs[1] * self.scale


def _layer(class_name: str, config: dict) -> keras.layers.Layer:
    name = config["name"]
    if class_name == "Conv2D":
        return keras.layers.Conv2D(
            config["filters"], tuple(config["kernel_size"]), strides=tuple(config["strides"]),
            padding=config["padding"], use_bias=config["use_bias"], name=name,
        )
    if class_name == "BatchNormalization":
        return keras.layers.BatchNormalization(
            momentum=config["momentum"], epsilon=config["epsilon"], center=config["center"],
            scale=config["scale"], name=name,
        )
    if class_name == "Activation":
        return keras.layers.Activation(config["activation"], name=name)
    if class_name == "MaxPooling2D":
        return keras.layers.MaxPooling2D(
            tuple(config["pool_size"]), strides=tuple(config["strides"]),
            padding=config["padding"], name=name,
        )
    if class_name == "Concatenate":
        return keras.layers.Concatenate(axis=config["axis"], name=name)
    if class_name == "Lambda":
        return ScaleSum(float(config["arguments"]["scale"]), name=name)
    if class_name == "GlobalAveragePooling2D":
        return keras.layers.GlobalAveragePooling2D(name=name)
    if class_name == "Dropout":
        return keras.layers.Dropout(config["rate"], name=name)
    if class_name == "Dense":
        return keras.layers.Dense(config["units"], use_bias=config["use_bias"], name=name)
    raise ValueError(f"unexpected layer class {class_name}")


def rebuild(h5_path: Path) -> tuple[keras.Model, int]:
    """The Keras model and how many weight arrays were set from the file."""
    with h5py.File(h5_path, "r") as handle:
        config = json.loads(handle.attrs["model_config"])["config"]
        tensors: dict[str, object] = {}
        layers: dict[str, keras.layers.Layer] = {}
        for spec in config["layers"]:
            name = spec["name"]
            if spec["class_name"] == "InputLayer":
                shape = tuple(spec["config"]["batch_input_shape"][1:])
                tensors[name] = keras.Input(shape=shape, name=name)
                continue
            layer = _layer(spec["class_name"], spec["config"])
            inbound = [tensors[node[0]] for node in spec["inbound_nodes"][0]]
            tensors[name] = layer(inbound if len(inbound) > 1 else inbound[0])
            layers[name] = layer
        inputs = [tensors[i[0]] for i in config["input_layers"]]
        outputs = [tensors[o[0]] for o in config["output_layers"]]
        model = keras.Model(inputs, outputs)
        group = handle["model_weights"]
        count = 0
        for name, layer in layers.items():
            if not layer.weights:
                continue
            stored = {
                n.decode().split("/")[-1].split(":")[0]: np.asarray(group[name][n.decode()])
                for n in group[name].attrs["weight_names"]
            }
            values = []
            for weight in layer.weights:
                values.append(stored[weight.name.split("/")[-1].split(":")[0]])
            layer.set_weights(values)
            count += len(values)
    return model, count
