"""Checks of user settings: one line naming the setting."""

import pytest

from depth_lightning.core.settings import number, whole_number
from depth_lightning.errors import DepthLightningError


def test_whole_numbers():
    assert whole_number("3", "data.batch_size") == 3 and whole_number(0, "x", minimum=0) == 0
    for bad, words in (("abc", "must be a whole number >= 1, got 'abc'"), (-1, "at least 1"),
                       (2.5, "whole number"), (True, "whole number"), (None, "whole number")):
        with pytest.raises(DepthLightningError) as info:
            whole_number(bad, "data.batch_size")
        assert str(info.value).startswith("data.batch_size: ") and words in str(info.value)


def test_numbers():
    assert number("0.5", "model.loss.lam") == 0.5
    for bad in ("abc", float("nan"), float("inf"), None):
        with pytest.raises(DepthLightningError, match="model.loss.lam: must be a number"):
            number(bad, "model.loss.lam")
    with pytest.raises(DepthLightningError, match="at least 0"):
        number(-1, "x", minimum=0)
