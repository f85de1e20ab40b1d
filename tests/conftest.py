import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """One rendered view of unseen (test-split) objects saved as image / depth / masks / K, as
    a user's files (the pipeline tests of tests/core share it; one per test module)."""
    from scenemaker.demo import write_frame
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.dataset import list_scenes
    from scenemaker.synth.generate import GenerateConfig, generate_dataset
    from scenemaker.synth.layout import LayoutConfig

    root = tmp_path_factory.mktemp("frame")
    config = GenerateConfig(
        objects="procedural", split="test", seed=3,
        layout=LayoutConfig(min_objects=3, max_objects=3),
        views=ViewConfig(views=1, width=192, height=160), surface_samples=2048,
    )  # fmt: skip
    generate_dataset(root / "data", 1, config, workers=1, progress=False)
    scene = list_scenes(root / "data")[0]
    view = scene.view(0)
    files = write_frame(view, scene.scene.objects, root / "input")
    files["view"] = view
    return files
