"""Suite-wide settings. Hypothesis: no per-example deadline. Property tests check correctness, not speed (speed
is for bench/), and a 2-core CI machine running agents beside them would otherwise fail them at random."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("shoal", deadline=None)
settings.load_profile("shoal")
