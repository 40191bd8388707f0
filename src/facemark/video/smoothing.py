"""Smoothing of keypoints over time: a One-Euro filter per point.

The tracker keeps one filter per track, reset for every new track; it works in units of
the face's size, so its parameters do not depend on the video's resolution.
"""

from __future__ import annotations

import math

import numpy as np


class OneEuro:
    """The One-Euro filter (Casiez et al., CHI 2012) over an array of values, vectorised.

    ``min_cutoff`` (Hz) sets the smoothing of slow motion; ``beta`` raises the cutoff with
    speed, so fast motion is followed with little lag.  Timestamps (seconds) drive it, so a
    variable frame rate is handled.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None or self.dx is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        if dt <= 0:  # a repeated timestamp: nothing new to filter on
            dt = 1e-3
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff, dt)
        self.x = a * x + (1 - a) * self.x
        self.t = t
        return self.x.copy()
