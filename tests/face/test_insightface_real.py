"""The same paths on the real insightface packs, when HELLOMEME_INSIGHTFACE_DIR points at an insightface models
folder (``.../models/insightface``, holding ``models/antelopev2`` or ``antelopev2`` ...); skipped otherwise.
Also: the extension does not install insightface (its wheel requires opencv-python, a second cv2)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from hellomeme_core.face.insightface.packs import ENV_VAR, KNOWN_PACKS, InsightFacePack, find_pack
from tests.face.media_cache import media_path
from tests.parity.fixture import REPO_ROOT


def _packs() -> list:
    base = os.environ.get(ENV_VAR)
    if not base:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{ENV_VAR} is not set (no real insightface pack)"))]
    out = []
    for name in KNOWN_PACKS:
        try:
            out.append(pytest.param(find_pack([base], name), id=name))
        except Exception:  # noqa: BLE001 - a pack that is not there is simply not tested
            continue
    return out or [pytest.param(None, marks=pytest.mark.skip(reason=f"no known pack under {base}"))]


@pytest.fixture(scope="module", params=_packs())
def pack(request) -> InsightFacePack:
    return InsightFacePack(request.param)


def _rgb(relative: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media_path(relative))), cv2.COLOR_BGR2RGB)


def test_real_pack_finds_one_face_per_portrait(pack):
    for name in ("chillout.jpg", "civitai1.jpg", "majicmix2.jpg", "show1.jpg", "zzj.jpg"):
        det = pack.detector.detect(_rgb(f"reference/{name}"))
        assert len(det) == 1 and det.scores[0] > 0.6, name
        box, kps = det.boxes[0], det.keypoints[0]
        assert (kps[:, 0] > box[0]).all() and (kps[:, 0] < box[2]).all() and kps[0, 0] < kps[1, 0]  # eyes in order


def test_real_identity_self_flip_other(pack):
    from hellomeme_core.face.insightface.identity import similarity_series

    a, b = _rgb("reference/zzj.jpg"), cv2.resize(_rgb("reference/civitai1.jpg"), (512, 512))
    values = similarity_series(pack, a, np.stack([a, np.ascontiguousarray(a[:, ::-1]), b]))
    assert values[0] == pytest.approx(1.0, abs=1e-3)
    assert values[1] > 0.6  # the mirrored photo stays the same person
    assert values[2] < min(0.4, values[1] - 0.2)  # another person


def test_real_pack_follows_identity_across_the_swap(pack):
    from hellomeme_core.face.insightface.follow import track_faces
    from tests.face.test_insightface_follow import HALF, SWAP, identity_image, swap_clip

    track = track_faces(pack, swap_clip(), identity_rgb=identity_image("zzj.jpg")[:, :HALF])
    side = (track.boxes[:, 0] + track.boxes[:, 2]) / 2 < HALF
    assert track.found.all() and side.tolist() == [True] * SWAP + [False] * SWAP


def test_install_does_not_bring_insightface_or_a_second_cv2():
    """insightface 2.x requires opencv-python, which must not land beside opencv-contrib-python: we read the
    packs ourselves, so neither requirements.txt nor install.py names insightface or opencv-python."""
    names = [line.split("#")[0].split(";")[0].strip().lower() for line in
             Path(REPO_ROOT, "requirements.txt").read_text().splitlines()]
    assert not any(n.startswith(("insightface", "opencv-python")) for n in names)
    assert "insightface" not in Path(REPO_ROOT, "install.py").read_text().lower()
