"""warmeval: rerun the warm-persona reliability study (Ibrahim, Hafner & Rocher, Nature 2026) on your own model."""

__version__ = "0.1.0"
