"""The local search follows a direction that worked (``local_repeat``)."""

import numpy as np
import pytest

from scenemaker.refine.local_search import local_search
from scenemaker.refine.render_settings import RenderCompareSettings
from scenemaker.refine.scoring import CropObservation


class _Blank:
    """A renderer that draws nothing (the depth-shift move then stays put)."""

    def render(self, K, matrices, w, h):
        return np.zeros((len(matrices), h, w), np.float32)


def _crop():
    return CropObservation((0, 0, 8, 8), 1, 8, 8, np.eye(3), np.zeros((8, 8), np.float32),
                           np.zeros((8, 8), bool), np.zeros((8, 8), bool), 0)  # fmt: skip


def _valley(z, R, t, s):
    """A long narrow valley: far to go along x, steep walls in every other direction."""
    off_axis = np.abs(t[:, 1:]).sum(1) + np.abs(np.log(s)) + (3.0 - np.trace(R, axis1=1, axis2=2))
    return np.abs(t[:, 0] - 1.0) + 0.5 * off_axis


def _search(repeat: bool, seed: int, steps: int = 10):
    st = RenderCompareSettings(local_repeat=repeat, local_margin=None)
    R, t, s = np.eye(3)[None].copy(), np.zeros((1, 3)), np.ones(1)
    score = _valley(None, R, t, s)
    renders = local_search(_valley, _Blank(), _crop(), st, np.random.default_rng(seed), steps,
                           R, t, s, score)  # fmt: skip
    assert np.isclose(score[0], _valley(None, R, t, s)[0])  # the score kept is the pose's
    return float(score[0]), renders


def test_a_direction_that_worked_is_followed_down_a_narrow_valley():
    start = float(_valley(None, np.eye(3)[None], np.zeros((1, 3)), np.ones(1))[0])
    plain = [_search(False, seed) for seed in range(8)]
    followed = [_search(True, seed) for seed in range(8)]
    # only improvements are ever kept
    assert all(score <= start for score, _ in plain + followed)
    # with the same random draws, following what worked gets further down the valley
    assert np.mean([f for f, _ in followed]) < np.mean([p for p, _ in plain]) - 0.05
    assert sum(f < p for (f, _), (p, _) in zip(followed, plain, strict=True)) >= 6
    # the extra moves are rendered like any other candidate
    assert all(r > q for (_, r), (_, q) in zip(followed, plain, strict=True))


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_local_repeat_must_be_a_boolean(value):
    with pytest.raises(ValueError, match="^render refiner: local_repeat must be true or false"):
        RenderCompareSettings(local_repeat=value)
