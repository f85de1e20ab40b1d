"""Procedural objects carry procedural materials: per-face colours that are stable per id and,
for most objects, more than one tone."""

import numpy as np

from scenemaker.sources.procedural.source import ProceduralSource


def test_procedural_objects_have_stable_patterned_face_colours():
    source = ProceduralSource(instances_per_category=3)
    ids = source.all_ids()[::4][:20]
    toned = 0
    for object_id in ids:
        mesh = source.load(object_id).mesh
        colours = np.asarray(mesh.visual.face_colors)
        assert mesh.visual.kind == "face" and colours.shape == (len(mesh.faces), 4)
        again = np.asarray(source.load(object_id).mesh.visual.face_colors)
        np.testing.assert_array_equal(colours, again)  # an id always looks the same
        brightness = colours[:, :3].astype(float).mean(axis=1)
        toned += (brightness.max() - brightness.min()) > 40  # a second tone, not jitter
    assert toned >= len(ids) // 3, toned
