"""Landmark networks and their registry, one module per design.

Every network here takes a float tensor ``(B, 3, S, S)`` in ``[0, 1]`` (a face crop made by
``transforms.crop_face``), normalises it itself, and offers the same three methods:

* ``model(x)`` -> raw outputs, whatever its loss needs;
* ``model.loss(outputs, keypoints)`` -> a scalar, with ``keypoints`` ``(B, 68, 2)`` in crop
  pixels (pixel-index convention: integer ``i`` is the centre of pixel ``i``);
* ``model.decode(outputs)`` -> ``(keypoints (B, 68, 2) crop pixels, confidence (B, 68))``.

Designs (see docs/model.md for how they compare on this data):

``heatmap``
    PIPNet-style: a coarse grid of cells (stride 8) scores which cell holds each point and
    regresses the point's sub-cell offset from every cell near it.  Decoding takes the best
    cell and averages its neighbours' votes weighted by their scores, so the answer is
    sub-pixel even though the labels are integers and the grid is coarse.
``integral``
    Soft-argmax: a stride-4 heatmap per point turned into a probability map whose expected
    position is the prediction; trained directly on the coordinates.
``regression``
    Direct coordinate regression from pooled features with a Wing loss, plus a per-point
    uncertainty head that gives the confidence.
``udacity``
    The classic Udacity P1 network (224 px grayscale, four conv blocks, three dense layers,
    MSE loss), kept as the baseline the others are measured against.

All but ``udacity`` share one compact ResNet-style backbone with BatchNorm and a small
feature pyramid; none needs pretrained weights.

Modules: :mod:`.arch` (the registry by name and the ``--arch`` parser, torch-free),
:mod:`.blocks` (the shared parts, ``fuse_batchnorm``), and one per design: :mod:`.heatmap`,
:mod:`.integral`, :mod:`.regression`, :mod:`.udacity`.  The arch registry and parser are
imported with this package; the networks (and torch) on first use of their names (module
``__getattr__``), so ``facemark.models.parse_arch`` never costs a torch import.
"""

from __future__ import annotations

from facemark.lazy import attach
from facemark.models.arch import (
    ARCHS,
    DEFAULT_ARCH,
    ArchSpec,
    arch_spec,
    build_landmark_model,
    parse_arch,
)

#: public name -> the submodule that defines it (imports torch), loaded on first use.
_LAZY: dict[str, str] = {
    "Backbone": "facemark.models.blocks",
    "BasicBlock": "facemark.models.blocks",
    "Normalize": "facemark.models.blocks",
    "Pyramid": "facemark.models.blocks",
    "conv_bn": "facemark.models.blocks",
    "count_parameters": "facemark.models.blocks",
    "fp32": "facemark.models.blocks",
    "fuse_batchnorm": "facemark.models.blocks",
    "HeatmapNet": "facemark.models.heatmap",
    "IntegralNet": "facemark.models.integral",
    "RegressionNet": "facemark.models.regression",
    "wing_loss": "facemark.models.regression",
    "UdacityNet": "facemark.models.udacity",
}

__all__ = [
    "ARCHS",
    "DEFAULT_ARCH",
    "ArchSpec",
    "arch_spec",
    "build_landmark_model",
    "parse_arch",
    *_LAZY,
]


__getattr__, __dir__ = attach(globals(), _LAZY)
