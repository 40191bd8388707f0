"""The torch view of a :class:`~facemark.data.faces.FaceSet`: face crops as the landmark
network sees them, with the training augmentation of :mod:`facemark.transforms` hooked in.

The only module of :mod:`facemark.data` that needs torch, so reading and splitting labels
(``evaluate``, ``preview --data``, the CLI's checks) does not pay for importing it.
"""

from __future__ import annotations

import numpy as np
import torch

from facemark import transforms
from facemark.data.faces import FaceSet
from facemark.errors import UsageError


class LandmarkDataset(torch.utils.data.Dataset):
    """Face crops as the landmark network sees them.

    ``[i]`` returns ``(image float32 (3, S, S) in [0, 1], keypoints float32 (68, 2) crop px)``.
    With ``augment=False`` the crop is exactly ``crop_face(image, face_box_from_keypoints(kps),
    S)``, the inference-time crop.  With augmentation, the randomness of sample ``i`` is a
    function of ``(seed, epoch, i)`` only: a resumed run sees the same samples, and DataLoader
    workers never repeat each other.

    The epoch lives in shared memory, so :meth:`set_epoch` reaches persistent DataLoader
    workers too; call it before iterating the loader for that epoch.
    """

    def __init__(
        self,
        faces: FaceSet,
        img_size: int,
        augment: bool,
        seed: int = 0,
        config: transforms.AugmentConfig | None = None,
    ) -> None:
        if img_size < 8:
            raise UsageError(f"img_size must be at least 8, not {img_size}")
        self.faces = faces
        self.img_size = int(img_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.config = config or transforms.AugmentConfig()
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._boxes = faces.boxes()

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(crop uint8 (S, S, 3), keypoints (68, 2) crop px, M image->crop)`` for index."""
        image, kps = self.faces.images[index], self.faces.keypoints[index]
        if not self.augment:
            crop, M = transforms.crop_face(image, self._boxes[index], self.img_size)
            return crop, transforms.apply_affine(kps.astype(np.float64), M), M
        rng = transforms.sample_rng(self.seed, self.epoch, index)
        return transforms.augment(image, kps, self.img_size, self.config, rng)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        crop, kps, _ = self.sample(int(index))
        return transforms.to_tensor(crop), torch.from_numpy(np.asarray(kps, dtype=np.float32))
