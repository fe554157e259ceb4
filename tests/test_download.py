"""The downloader against a loopback HTTP server: fresh, resumed, rejected, offline, via the CLI."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hellomeme_core.model_files.download import (
    DownloadError,
    OfflineError,
    download_entries,
    download_file,
    part_path,
)
from hellomeme_core.model_files.manifest import folder_map, load_manifest
from tests.support.comfy_server import free_port
from tests.support.file_server import FileServer

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(tmp_path: Path):
    """A 3 MB file of pseudo-random bytes behind a loopback server."""
    root = tmp_path / "served"
    root.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 123)
    (root / "weights.bin").write_bytes(data)
    with FileServer(root) as server:
        yield server, data, hashlib.sha256(data).hexdigest()


def test_fresh_download_verified_and_renamed(served, tmp_path):
    server, data, sha = served
    target = tmp_path / "out" / "model.safetensors"
    result = download_file([server.url("weights.bin")], target, size=len(data), sha256=sha, progress=False)
    assert result.status == "downloaded"
    assert target.read_bytes() == data
    assert not part_path(target).exists()
    assert server.requests == [("weights.bin", None)]
    # A second call finds the verified file and fetches nothing.
    assert download_file([server.url("weights.bin")], target, size=len(data), sha256=sha, progress=False).status == "present"
    assert len(server.requests) == 1


def test_resume_after_cut_connection(served, tmp_path):
    server, data, sha = served
    cut = 1_000_000
    server.cut_after["weights.bin"] = [cut]
    target = tmp_path / "model.safetensors"
    result = download_file([server.url("weights.bin")], target, size=len(data), sha256=sha,
                           progress=False, retry_wait=0.05)
    assert result.status == "resumed"
    assert target.read_bytes() == data
    assert server.requests[0] == ("weights.bin", None)
    # The second request asks only for the bytes after those already on disk.
    rel, range_header = server.requests[1]
    assert range_header is not None and range_header.startswith("bytes=")
    resumed_from = int(range_header[len("bytes="):].rstrip("-"))
    assert 0 < resumed_from <= cut


def test_resume_from_part_file_of_earlier_run(served, tmp_path):
    server, data, sha = served
    target = tmp_path / "model.safetensors"
    part_path(target).write_bytes(data[:2_000_000])
    result = download_file([server.url("weights.bin")], target, size=len(data), sha256=sha, progress=False)
    assert result.status == "resumed"
    assert server.requests == [("weights.bin", "bytes=2000000-")]
    assert target.read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(served, tmp_path):
    server, data, sha = served
    server.honour_range = False
    target = tmp_path / "model.safetensors"
    part_path(target).write_bytes(b"x" * 1000)  # garbage prefix that must not survive
    download_file([server.url("weights.bin")], target, size=len(data), sha256=sha, progress=False)
    assert target.read_bytes() == data


def test_checksum_mismatch_leaves_nothing(served, tmp_path):
    server, data, _ = served
    target = tmp_path / "model.safetensors"
    with pytest.raises(DownloadError, match="sha256") as info:
        download_file([server.url("weights.bin")], target, size=len(data), sha256="0" * 64, progress=False)
    assert str(target) in str(info.value)
    assert not target.exists() and not part_path(target).exists()


def test_size_mismatch_rejected_before_writing(served, tmp_path):
    server, data, sha = served
    target = tmp_path / "model.safetensors"
    with pytest.raises(DownloadError, match=str(len(data) + 1)):
        download_file([server.url("weights.bin")], target, size=len(data) + 1, progress=False)
    assert not target.exists()


def test_truncated_transfer_without_known_size_is_not_renamed(served, tmp_path):
    """The server promises N bytes and keeps cutting: no retries left, nothing under the final name."""
    server, data, _ = served
    server.cut_after["weights.bin"] = [500_000] * 10
    target = tmp_path / "model.safetensors"
    with pytest.raises(DownloadError, match="could not download"):
        download_file([server.url("weights.bin")], target, progress=False, retries=1, retry_wait=0.01)
    assert not target.exists()
    assert part_path(target).exists()  # kept for the next resume


def test_http_error_then_next_url(served, tmp_path):
    server, data, sha = served
    target = tmp_path / "model.safetensors"
    result = download_file([server.url("nope.bin"), server.url("weights.bin")], target, sha256=sha, progress=False)
    assert result.status == "downloaded" and target.read_bytes() == data


def test_offline_fails_fast_with_hand_placement_message(tmp_path):
    port = free_port()  # nothing listens there: connection refused, as offline
    manifest = load_manifest()
    entries = manifest.for_version("v5", "video")
    folders = folder_map(tmp_path / "models" / "hellomeme")
    start = time.monotonic()
    with pytest.raises(OfflineError) as info:
        download_entries(entries, folders, mirror=f"http://127.0.0.1:{port}", progress=False, log=lambda s: None)
    assert time.monotonic() - start < 10
    message = str(info.value)
    for e in entries:
        assert str(e.target(folders)) in message
    assert "by hand" in message
    assert not any(p.is_file() for p in (tmp_path / "models").rglob("*"))


def test_cli_download_through_mirror_then_check(tmp_path):
    """``download --mirror`` fetches hub-shaped URLs, then the layout is verified from the header."""
    from tests.support.official_weights import config_for, write_repo

    mirror_root = tmp_path / "mirror"
    repo_dir = mirror_root / "songkey" / "hm4_control_proj" / "resolve" / "main"
    # Header-valid file of the official layout, zero data (sparse), served like the hub would.
    weights = write_repo(tmp_path / "gen", "hm4_control_proj", dtype=__import__("torch").float16, zero_data=True)
    repo_dir.mkdir(parents=True)
    os.link(weights, repo_dir / "diffusion_pytorch_model.safetensors")
    (repo_dir / "config.json").write_text(json.dumps(config_for("songkey/hm4_control_proj")))
    models = tmp_path / "ComfyUI" / "models" / "hellomeme"
    with FileServer(mirror_root) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "hellomeme_core", "download", "--id", "hm4_control_proj", "--id", "hm4_control_proj/config",
             "--models-dir", str(models), "--mirror", server.base_url, "--no-progress"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        )
        paths = {p for p, _ in server.requests}
    assert proc.returncode == 0, proc.stderr
    assert "songkey/hm4_control_proj/resolve/main/diffusion_pytorch_model.safetensors" in paths
    got = models / "hm4_control_proj" / "diffusion_pytorch_model.safetensors"
    assert got.stat().st_size == weights.stat().st_size
    check = subprocess.run([sys.executable, "-m", "hellomeme_core", "check", "--file", str(got.parent)],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "hm4_control_proj: ok" in check.stdout, check.stdout + check.stderr


def test_cli_download_offline_exit_code_and_message(tmp_path):
    port = free_port()
    models = tmp_path / "hm"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "hellomeme_core", "download", "--version", "v5", "--models-dir", str(models),
         "--mirror", f"http://127.0.0.1:{port}", "--no-progress"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 3
    assert time.monotonic() - start < 60
    assert "hm5_motion" in proc.stderr and str(models / "hm5_reference" / "diffusion_pytorch_model.safetensors") in proc.stderr
    assert "Traceback" not in proc.stderr


def test_truncated_existing_file_is_fetched_again(tmp_path):
    """A truncated weight file already under its final name is replaced through a verified download."""
    import torch

    from tests.support.official_weights import write_repo

    mirror_root = tmp_path / "mirror"
    served = mirror_root / "songkey" / "hm4_control_proj" / "resolve" / "main" / "diffusion_pytorch_model.safetensors"
    served.parent.mkdir(parents=True)
    write_repo(tmp_path / "gen", "hm4_control_proj", form="file", dtype=torch.float16, zero_data=True).rename(served)
    folders = folder_map(tmp_path / "hellomeme")
    entry = load_manifest().by_id("hm4_control_proj")
    target = entry.target(folders)
    target.parent.mkdir(parents=True)
    target.write_bytes(served.read_bytes()[:5000])  # an interrupted manual copy
    logs: list[str] = []
    with FileServer(mirror_root) as server:
        download_entries([entry], folders, mirror=server.base_url, progress=False, log=logs.append)
    assert target.stat().st_size == served.stat().st_size
    assert any("refetching" in line and "truncated" in line for line in logs)


# -- what the hub declares, content checks, bad arguments --------------------------------------------
def _hub_redirect(server, data: bytes, sha: str, size: int | None = None) -> str:
    server.redirects["songkey/x/resolve/main/weights.bin"] = (
        "weights.bin", {"X-Linked-Size": str(len(data) if size is None else size), "X-Linked-Etag": f'"{sha}"'})
    return server.url("songkey/x/resolve/main/weights.bin")


def test_hub_redirect_followed_and_declared_checksum_verified(served, tmp_path):
    server, data, sha = served
    target = tmp_path / "model.bin"
    result = download_file([_hub_redirect(server, data, sha)], target, progress=False)  # manifest knows nothing
    assert result.status == "downloaded" and result.sha256 == sha and target.read_bytes() == data
    assert [p for p, _ in server.requests] == ["songkey/x/resolve/main/weights.bin", "weights.bin"]


def test_hub_declared_checksum_mismatch_rejected(served, tmp_path):
    server, data, _ = served
    target = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="sha256"):
        download_file([_hub_redirect(server, data, "ab" * 32)], target, progress=False)
    assert not target.exists() and not part_path(target).exists()


def test_resume_through_hub_redirect_keeps_range(served, tmp_path):
    server, data, sha = served
    target = tmp_path / "model.bin"
    part_path(target).write_bytes(data[:1_500_000])
    result = download_file([_hub_redirect(server, data, sha)], target, progress=False)
    assert result.status == "resumed" and target.read_bytes() == data
    assert server.requests[-1] == ("weights.bin", "bytes=1500000-")


def test_truncated_safetensors_without_length_is_refused(tmp_path):
    """No size anywhere (no manifest size, no Content-Length): the safetensors check catches the cut file."""
    import torch

    from tests.support.official_weights import write_repo

    root = tmp_path / "served"
    root.mkdir()
    whole = write_repo(tmp_path / "gen", "hm4_control_proj", form="file", dtype=torch.float16, zero_data=True)
    (root / "cut.safetensors").write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    entry = load_manifest().by_id("hm4_control_proj")
    folders = folder_map(tmp_path / "hellomeme")
    with FileServer(root) as server:
        server.omit_length.add("cut.safetensors")
        server.redirects["songkey/hm4_control_proj/resolve/main/diffusion_pytorch_model.safetensors"] = ("cut.safetensors", {})
        with pytest.raises(DownloadError, match="unusable .*truncated|unusable .*ends at byte"):
            download_entries([entry], folders, mirror=server.base_url, progress=False, log=lambda s: None)
    assert not entry.target(folders).exists()


def test_optional_config_missing_on_the_host_is_skipped(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    entry = load_manifest().by_id("hm4_control_proj/config")
    assert entry.optional
    logs: list[str] = []
    with FileServer(root) as server:  # serves nothing: 404
        assert download_entries([entry], folder_map(tmp_path / "hm"), mirror=server.base_url,
                                progress=False, log=logs.append) == []
    assert any("skipped" in line and "optional" in line and "404" in line for line in logs)


def test_cli_rejects_mirror_without_scheme_and_a_file_as_models_dir(tmp_path):
    not_a_folder = tmp_path / "afile"
    not_a_folder.write_text("x")
    for extra, expected in ((["--mirror", "hf-mirror.com"], "must be a URL that starts with https://"),
                            (["--models-dir", str(not_a_folder)], "is a file, not a folder")):
        args = ["--models-dir", str(tmp_path / "hm"), *extra] if "--models-dir" not in extra else extra
        proc = subprocess.run([sys.executable, "-m", "hellomeme_core", "download", "--version", "v5", *args, "--no-progress"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_destination_is_one_clear_error(served, tmp_path):
    """The models folder sits below a file: the OS refuses, the CLI says where and that .part files are kept."""
    server, data, sha = served
    blocker = tmp_path / "ComfyUI" / "models"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the models folder should be")
    root = tmp_path / "mirror"
    served_file = root / "songkey" / "hm4_control_proj" / "resolve" / "main" / "diffusion_pytorch_model.safetensors"
    served_file.parent.mkdir(parents=True)
    served_file.write_bytes(b"x")
    with FileServer(root) as mirror:
        proc = subprocess.run([sys.executable, "-m", "hellomeme_core", "download", "--id", "hm4_control_proj", "--models-dir",
                               str(blocker / "hellomeme"), "--mirror", mirror.base_url, "--no-progress"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
