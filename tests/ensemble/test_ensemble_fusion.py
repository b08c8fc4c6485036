"""Late fusion: weights on the simplex, picked on validation, uniform among ties."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.ensemble.fusion import choose_weights, fuse, simplex_grid
from vocalis.errors import ConfigError, DataError


def test_simplex_grid_sums_to_one_and_counts():
    grid = simplex_grid(3, 4)
    assert len(grid) == 15  # C(4 + 2, 2)
    assert all(abs(sum(w) - 1) < 1e-12 for w in grid)


def test_complementary_members_beat_each_alone():
    y = np.array([0, 0, 1, 1, 2, 2])
    eye = np.eye(3)[y]
    a = eye.copy()
    a[4:] = [0.4, 0.3, 0.3]  # member a misses class 2, unsure
    b = eye * 0.6 + 0.4 / 3
    b[:2] = [0.3, 0.4, 0.3]  # member b misses class 0, unsure
    w = choose_weights([a, b], y, resolution=10)
    fused = fuse([a, b], w).argmax(1)
    assert (fused == y).all()
    assert 0 < w[0] < 1


def test_ties_give_uniform_weights_and_nan_rows_are_ignored():
    y = np.array([0, 1])
    p = np.eye(2)
    assert choose_weights([p, p, p], y, resolution=3) == (1 / 3, 1 / 3, 1 / 3)
    q = np.vstack([p, [np.nan, np.nan]])
    assert choose_weights([q, q], np.array([0, 1, 0]), resolution=2) == (0.5, 0.5)


def test_errors():
    with pytest.raises(DataError, match="shape"):
        fuse([np.ones((2, 2)), np.ones((3, 2))], (1, 1))
    with pytest.raises(ConfigError, match="non-negative"):
        fuse([np.ones((2, 2))], (-1,))
