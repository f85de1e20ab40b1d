"""The retrieval library build (about a minute, once) shows progress, in one process and in
worker processes alike, and is silent when asked."""

import re

import pytest

from scenemaker.object3d.retrieval_library import build_library, plan_library


@pytest.mark.parametrize("workers", [1, 2])
def test_the_library_build_shows_progress(workers, capsys):
    plan = plan_library(["procedural"], "train", 3)
    library = build_library(plan, "train", workers=workers, progress=True)
    err = capsys.readouterr().err
    count = sum(len(ids) for *_, ids in plan)
    assert len(library.keys) == count
    assert "retrieval library" in err and f"0/{count}" in err, err[-400:]
    assert re.search(rf"[1-9]\d*/{count} ", err), err[-400:]  # it moved as meshes were done
    build_library(plan, "train", workers=workers, progress=False)
    assert "retrieval library" not in capsys.readouterr().err
