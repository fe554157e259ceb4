"""Retargeting keeps every limb's angle and takes the reference's limb lengths."""
from __future__ import annotations

import numpy as np

from hellomeme_core.body.openpose import body_18
from hellomeme_core.body.render import canvas_points, render_skeleton
from hellomeme_core.body.retarget import PARENTS, link_lengths, retarget_body
from tests.body.test_skeleton_render import POSE, _motion_from_coco


def _links(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(angle, length) of every child -> parent link, (F, 17) each."""
    children = sorted(PARENTS)
    vectors = points[:, children] - points[:, [PARENTS[c] for c in children]]
    return np.arctan2(vectors[..., 1], vectors[..., 0]), np.linalg.norm(vectors, axis=-1)


def test_angles_kept_lengths_from_the_reference():
    rng = np.random.default_rng(0)
    driving = POSE[None] + rng.normal(0, 25, (12, 18, 2))  # 12 frames of a moving, differently built person
    reference = POSE * np.array([0.7, 1.3]) + 40  # a thinner, taller person elsewhere
    ref_lengths = link_lengths(reference)
    roots = rng.uniform(100, 400, (12, 2))
    out = retarget_body(driving, ref_lengths, roots)
    angle_in, _ = _links(driving)
    angle_out, length_out = _links(out)
    difference = np.angle(np.exp(1j * (angle_out - angle_in)))  # wrapped to (-pi, pi]
    assert np.abs(difference).max() < 1e-5
    _, ref_length = _links(reference[None])
    assert np.allclose(length_out, ref_length, atol=1e-6)
    assert np.allclose(out[:, 1], roots)
    # Not the identity: lengths did change.
    _, length_in = _links(driving)
    assert np.abs(length_in - ref_length).max() > 10


def test_render_with_a_reference_draws_the_reference_proportions_from_its_neck():
    frames = 3
    driving = POSE[None].repeat(frames, 0) + np.array([[0, 0], [20, 0], [40, 10]])[:, None]  # the person moves right
    drive = _motion_from_coco(driving, frames)
    reference = _motion_from_coco(POSE * 0.5 + 100)  # half size, moved
    plain = render_skeleton(drive, 512, 512)
    retargeted = render_skeleton(drive, 512, 512, reference=reference)
    assert not np.array_equal(plain, retargeted)
    # The first frame is the reference skeleton itself (same angles, the reference's lengths, at its neck) ...
    assert np.array_equal(retargeted[0], render_skeleton(reference, 512, 512)[0])
    # ... and later frames move by the driving neck's movement, scaled to the reference's size (x 0.5).
    lit = [np.argwhere(f.max(-1) > 0).mean(0) for f in retargeted]
    assert np.allclose(lit[2] - lit[0], [5, 20], atol=1.0)  # (rows, columns) = 0.5 x (10, 40)
    body, _, _, _ = canvas_points(reference, 512, 512)
    assert np.allclose(body[0, :, :2], body_18(reference.body)[0, :, :2])
