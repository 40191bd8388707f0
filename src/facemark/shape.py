"""The 68-point iBUG 300-W markup: index groups, the mirror permutation and a mean shape.

Kept in one place because the dataset, augmentation, drawing, metrics and the synthetic test
data all need the same facts about the markup.
"""

from __future__ import annotations

import numpy as np

NUM_POINTS = 68

#: Where the markup's coordinate origin lies, in our pixel-index convention (pixel ``i`` is
#: centred on ``i``).  The Udacity CSVs, like the iBUG 300-W ``.pts`` files they come from, are
#: 1-based: a model trained with mirror augmentation on the raw numbers learns a -1.2 px
#: horizontal bias (measured on val), because mirroring about the wrong centre moves every
#: flipped label 2 px.  Readers subtract this and writers add it back, so files stay in the
#: dataset's convention while every array inside facemark is 0-based.
LABEL_ORIGIN = 1.0

#: Index ranges (start, stop) of each facial region.
REGIONS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17),
    "brows": (17, 27),
    "nose": (27, 36),
    "eyes": (36, 48),
    "mouth": (48, 68),
}

#: Mean shape of the training frames: centred on the keypoints' bounding-box centre and scaled
#: so the outer eye corners (36, 45) are one unit apart.  Image coordinates (y grows down).
MEAN_SHAPE = np.array(
    [
        (-0.870, -0.485),
        (-0.853, -0.257),
        (-0.810, -0.050),
        (-0.760, 0.152),
        (-0.679, 0.373),
        (-0.550, 0.561),
        (-0.407, 0.683),
        (-0.225, 0.790),
        (0.045, 0.853),
        (0.310, 0.774),
        (0.481, 0.664),
        (0.611, 0.538),
        (0.729, 0.354),
        (0.795, 0.129),
        (0.830, -0.072),
        (0.861, -0.279),
        (0.863, -0.510),
        (-0.654, -0.703),
        (-0.553, -0.774),
        (-0.427, -0.795),
        (-0.312, -0.783),
        (-0.206, -0.754),
        (0.213, -0.759),
        (0.313, -0.789),
        (0.428, -0.801),
        (0.553, -0.780),
        (0.652, -0.716),
        (0.010, -0.509),
        (0.015, -0.354),
        (0.023, -0.209),
        (0.028, -0.084),
        (-0.117, 0.008),
        (-0.056, 0.025),
        (0.027, 0.041),
        (0.103, 0.021),
        (0.162, 0.002),
        (-0.488, -0.522),
        (-0.408, -0.550),
        (-0.306, -0.553),
        (-0.214, -0.511),
        (-0.297, -0.481),
        (-0.406, -0.479),
        (0.226, -0.516),
        (0.322, -0.558),
        (0.423, -0.561),
        (0.503, -0.531),
        (0.421, -0.488),
        (0.316, -0.486),
        (-0.274, 0.294),
        (-0.170, 0.229),
        (-0.040, 0.188),
        (0.028, 0.201),
        (0.093, 0.187),
        (0.217, 0.224),
        (0.313, 0.287),
        (0.214, 0.377),
        (0.130, 0.428),
        (0.033, 0.441),
        (-0.068, 0.434),
        (-0.163, 0.384),
        (-0.253, 0.290),
        (-0.059, 0.265),
        (0.027, 0.262),
        (0.113, 0.265),
        (0.291, 0.283),
        (0.111, 0.325),
        (0.029, 0.335),
        (-0.060, 0.329),
    ],
    dtype=np.float32,
)
