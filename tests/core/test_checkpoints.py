"""Checkpoint folders survive a kill at any instant of a save, and damaged or pickled weights /
trainer state fail with one line naming the file (nothing is unpickled beyond plain data)."""

import json
import math
import os
import shutil
from dataclasses import asdict

import pytest
import torch

from scenemaker.errors import InputError
from scenemaker.io_utils import (
    COMPLETE_MARKER,
    atomic_folder,
    check_safetensors,
    load_safetensors,
    load_trainer_state,
    recover_folder,
)
from scenemaker.pose.config import preset
from scenemaker.pose.estimator import WEIGHTS_FILE, load_pose_model
from scenemaker.pose.model import PoseDiT

KILLED = 37  # exit code of a child process killed on purpose


# --- a kill at every instant of a save ------------------------------------------------------


def _fake_save(path, step, tick=lambda: None):
    """A checkpoint of two files, written one after the other (``tick`` between them)."""
    with atomic_folder(path) as tmp:
        (tmp / "weights.bin").write_bytes(b"w" * 5000 + str(step).encode())
        tick()
        (tmp / "state.json").write_text(json.dumps({"step": step}))


def _resume_step(path):
    """What a trainer resumes from: 0 without a checkpoint; a partial one fails here."""
    if not recover_folder(path):
        return 0
    step = json.loads((path / "state.json").read_text())["step"]
    assert (path / "weights.bin").read_bytes().endswith(str(step).encode())
    return step


def _names(folder):
    return tuple(sorted(p.name for p in folder.iterdir())) if folder.exists() else ()


def _save_killed_at(path, step, kill_at):
    """Save in a forked child that dies (os._exit: no except / finally runs) just before its
    ``kill_at``-th filesystem change; returns whether it died before the save finished."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            count = 0

            def tick():
                nonlocal count
                if count == kill_at:
                    os._exit(KILLED)
                count += 1

            def ticking(real):
                def call(*args, **kwargs):
                    tick()
                    return real(*args, **kwargs)

                return call

            for name in ("mkdir", "rename", "replace", "unlink", "rmdir"):
                setattr(os, name, ticking(getattr(os, name)))
            _fake_save(path, step, tick)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, KILLED), f"the child failed (exit code {code})"
    return code == KILLED


@pytest.mark.parametrize("previous", [3, None], ids=["over-a-checkpoint", "first-save"])
def test_a_kill_at_any_instant_of_a_save_resumes_from_the_newest_complete_checkpoint(
    tmp_path, previous
):
    states, steps = set(), []
    kill_at = 0
    while True:
        run = tmp_path / f"kill{kill_at}"
        path = run / "checkpoint"
        if previous is not None:
            _fake_save(path, previous)
        killed = _save_killed_at(path, 7, kill_at)
        left = _names(run)
        states.add(left)
        step = _resume_step(path)
        steps.append(step)
        # never step 0 while a complete checkpoint existed: the old one or the new one
        assert step in (7, previous or 0), (kill_at, left, step)
        if "checkpoint.old" in left:  # the new checkpoint was complete before the old moved
            assert step == 7, (kill_at, left)
        assert _names(run) == ("checkpoint",) * (step > 0)  # recovery leaves no stray folder
        _fake_save(path, 8)  # the next save leaves only the checkpoint
        assert _names(run) == ("checkpoint",)
        assert _resume_step(path) == 8
        if not killed:
            break
        kill_at += 1
    assert kill_at >= 6 and steps[-1] == 7
    assert steps == sorted(steps)  # once the new checkpoint was found, always found
    # the instants of the brief were all hit: tmp partly written / complete beside the
    # checkpoint, between the two renames, after the second rename before old is deleted
    if previous is not None:
        assert ("checkpoint", "checkpoint.tmp") in states
        assert ("checkpoint.old", "checkpoint.tmp") in states
        assert ("checkpoint", "checkpoint.old") in states


def test_recovery_from_each_state_a_kill_leaves(tmp_path):
    def folder(path, step, marked=False, partial=False):
        path.mkdir(parents=True)
        (path / "weights.bin").write_bytes(b"w" + str(step).encode())
        if not partial:
            (path / "state.json").write_text(json.dumps({"step": step}))
        if marked:
            (path / COMPLETE_MARKER).write_text("")

    cases = {  # state left by the kill -> step resumed
        "tmp partly written": ({"checkpoint": 3, "checkpoint.tmp": (5, False, True)}, 3),
        "tmp complete": ({"checkpoint": 3, "checkpoint.tmp": (5, True, False)}, 5),
        "after first rename": ({"checkpoint.old": 3, "checkpoint.tmp": (5, True, False)}, 5),
        "after second rename": ({"checkpoint.old": 3, "checkpoint": 5}, 5),
        # the old code's files (no marker): the complete .old, not step 0
        "unmarked tmp between renames": ({"checkpoint.old": 3, "checkpoint.tmp": 5}, 3),
        "first save partly written": ({"checkpoint.tmp": (5, False, True)}, 0),
    }
    for name, (state, expected) in cases.items():
        run = tmp_path / name.replace(" ", "_")
        for sub, spec in state.items():
            step, marked, partial = spec if isinstance(spec, tuple) else (spec, False, False)
            folder(run / sub, step, marked, partial)
        assert _resume_step(run / "checkpoint") == expected, name
        assert _names(run) == ("checkpoint",) * (expected > 0), name
        assert not (run / "checkpoint" / COMPLETE_MARKER).exists()


def test_an_exception_while_writing_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoint"
    _fake_save(path, 3)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(path) as tmp:
            (tmp / "weights.bin").write_bytes(b"partial")
            raise RuntimeError("disk full")
    assert _names(tmp_path) == ("checkpoint",)
    assert _resume_step(path) == 3


# --- the pose trainer's own save and resume ---------------------------------------------------


@pytest.fixture(scope="module")
def pose_data(tmp_path_factory):
    from scenemaker.pose.data import prepare_pose_data
    from scenemaker.synth.cameras import ViewConfig
    from scenemaker.synth.generate import GenerateConfig, generate_dataset

    root = tmp_path_factory.mktemp("pose")
    cfg = GenerateConfig(
        objects="procedural", views=ViewConfig(views=1, width=64, height=64), surface_samples=1024
    )
    generate_dataset(root / "scenes", 1, cfg, progress=False)
    prepare_pose_data([root / "scenes"], root / "train.npz", progress=False)
    return root / "train.npz"


def _pose_run(run, step):
    """A pose run folder as ``train_pose`` leaves it at ``step`` (its own save_checkpoint)."""
    from scenemaker.pose.train import _jsonable, save_checkpoint

    config = preset("tiny", max_steps=2, checkpoint_every=2)
    torch.manual_seed(step)
    model = PoseDiT(**config.model.model_kwargs())
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    run.mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps(_jsonable(asdict(config))))
    save_checkpoint(run / "checkpoint", model, optimizer, step, {"best": math.inf})
    return config, model


def test_pose_training_resumes_from_the_old_checkpoint_after_a_kill_between_renames(
    pose_data, tmp_path, capsys
):
    from scenemaker.pose.train import STATE_FILE, train_pose

    run = tmp_path / "run"
    config, model = _pose_run(run, 2)
    # killed between the renames of the next save: .old complete, .tmp half-written
    (run / "checkpoint").rename(run / "checkpoint.old")
    model.save_pretrained(run / "checkpoint.tmp")  # no trainer state, no marker yet
    train_pose(pose_data, run, config, progress=False)  # step 2 of 2: nothing left to train
    assert "resuming from step 2" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint", "train_config.json"]
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == [
        "config.json",
        WEIGHTS_FILE,
        STATE_FILE,
    ]
    resumed = load_pose_model(run / "checkpoint").state_dict()
    for name, value in model.state_dict().items():  # not retrained from step 0
        torch.testing.assert_close(resumed[name], value, atol=0, rtol=0)


def test_pose_training_refuses_a_pickled_trainer_state_without_running_it(pose_data, tmp_path):
    from scenemaker.pose.train import STATE_FILE, train_pose

    run = tmp_path / "run"
    config, _ = _pose_run(run, 2)
    marker = tmp_path / "executed"
    torch.save({"optimizer": {}, "step": 2, "x": _Evil(marker)}, run / "checkpoint" / STATE_FILE)
    with pytest.raises(InputError) as caught:
        train_pose(pose_data, run, config, progress=False)
    _assert_one_line(caught.value, run / "checkpoint" / STATE_FILE, "pickled file refused")
    assert not marker.exists()


# --- damaged weights and trainer state --------------------------------------------------------


class _Evil:
    """Unpickling it would create ``marker`` (only if pickles were trusted)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (shutil.copyfile, (__file__, self.marker))


def _assert_one_line(error, path, text):
    message = str(error)
    assert message.startswith(f"{path}: ") and text in message, message
    assert "\n" not in message and "weights_only" not in message, message


@pytest.fixture
def pose_weights(tmp_path):
    torch.manual_seed(0)
    model = PoseDiT(**preset("tiny").model.model_kwargs())
    model.save_pretrained(tmp_path / "weights")
    return tmp_path / "weights", model


def test_pose_weights_damaged_or_pickled_name_the_file(pose_weights):
    folder, model = pose_weights
    weights = folder / WEIGHTS_FILE
    good = weights.read_bytes()
    load_pose_model(folder)  # intact: loads
    cases = [
        (good[:-100], "truncated safetensors file"),  # tensor data cut short
        (good[:20], "not a safetensors file or truncated"),  # header cut short
        (b"", "empty file, expected safetensors"),
        (b"PK\x03\x04 zip of a torch.save", "pickled file refused: expected safetensors"),
    ]
    for data, text in cases:
        weights.write_bytes(data)
        with pytest.raises(InputError) as caught:
            load_pose_model(folder)
        _assert_one_line(caught.value, weights, text)
    torch.save(model.state_dict(), weights)  # a real pickle under the safetensors name
    with pytest.raises(InputError) as caught:
        load_pose_model(folder)
    _assert_one_line(caught.value, weights, "pickled file refused: expected safetensors")
    weights.unlink()  # only a pickled .bin: refused, not unpickled
    torch.save(model.state_dict(), folder / "diffusion_pytorch_model.bin")
    with pytest.raises(InputError) as caught:
        load_pose_model(folder)
    _assert_one_line(caught.value, folder, "pickled .bin weights refused")


def test_pose_config_that_is_not_an_object_names_the_file(pose_weights):
    folder, _ = pose_weights
    (folder / "config.json").write_text("[]")
    with pytest.raises(InputError) as caught:
        load_pose_model(folder)
    _assert_one_line(
        caught.value,
        folder / "config.json",
        "expected a JSON object of PoseDiT settings, found list",
    )
    (folder / "config.json").write_text("{")
    with pytest.raises(InputError) as caught:
        load_pose_model(folder)
    _assert_one_line(caught.value, folder / "config.json", "not valid JSON")


def test_lora_state_damaged_names_the_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "lora.safetensors"
    save_file({"a": torch.ones(64), "b": torch.zeros(3, 4)}, str(path))
    good = path.read_bytes()
    assert torch.equal(load_safetensors(path)["a"], torch.ones(64))
    for data, text in [
        (good[:-1], "truncated safetensors file"),
        (good + b"\0", "bytes after the tensors"),
        (b"", "empty file"),
        (b"\x80\x04\x95 a pickle", "pickled file refused"),
        (b"1234", "not a safetensors file or truncated"),
    ]:
        path.write_bytes(data)
        with pytest.raises(InputError) as caught:
            check_safetensors(path)
        _assert_one_line(caught.value, path, text)


def test_trainer_state_is_loaded_weights_only_and_errors_name_the_file(tmp_path):
    path = tmp_path / "trainer_state.pt"
    params = [torch.nn.Parameter(torch.ones(3))]
    optimizer = torch.optim.AdamW(params)
    params[0].grad = torch.ones(3)
    optimizer.step()
    torch.save({"optimizer": optimizer.state_dict(), "step": 5}, path)
    other = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3))])
    assert load_trainer_state(path, other)["step"] == 5
    assert other.state_dict()["state"][0]["step"] == 1  # the optimizer state went in

    marker = tmp_path / "executed"
    torch.save({"optimizer": {}, "step": 5, "x": _Evil(marker)}, path)
    with pytest.raises(InputError) as caught:
        load_trainer_state(path)
    _assert_one_line(caught.value, path, "pickled file refused (it wants shutil.copyfile)")
    assert not marker.exists()

    torch.save({"optimizer": {}, "step": 5}, path)
    good = path.read_bytes()
    for data, text in [
        (b"", "empty file"),
        (good[: len(good) // 2], "not a torch.save file or truncated"),
    ]:
        path.write_bytes(data)
        with pytest.raises(InputError) as caught:
            load_trainer_state(path)
        _assert_one_line(caught.value, path, text)
    torch.save({"step": 5}, path)
    with pytest.raises(InputError) as caught:
        load_trainer_state(path)
    _assert_one_line(caught.value, path, "expected a trainer state with 'optimizer' and 'step'")
    torch.save({"optimizer": optimizer.state_dict(), "step": 5}, path)
    two = torch.optim.AdamW([torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))])
    with pytest.raises(InputError) as caught:
        load_trainer_state(path, two)
    _assert_one_line(caught.value, path, "optimizer state does not fit this model")
