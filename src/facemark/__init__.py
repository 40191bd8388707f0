"""facemark: find faces in photos and place the 68 iBUG 300-W keypoints on each.

Public Python API (usable without the CLI) is re-exported here as it lands:
``facemark.annotate(...)``, ``facemark.load_model(...)``, ``facemark.load_detector(...)``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
