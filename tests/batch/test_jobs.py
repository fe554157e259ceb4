"""Jobs files (CSV, JSONL) and folder pairs: what is read, what fails one job, what stops the batch (with the line)."""
from __future__ import annotations

from pathlib import Path

import pytest

from hellomeme_core.batch.errors import JobsFileError
from hellomeme_core.batch.jobs import check_settings, jobs_from_folders, read_jobs_file
from tests.batch.support import jsonl


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    for name in ("alice.jpg", "bob.png", "notes.txt"):
        (tmp_path / "refs" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "refs" / name).write_bytes(b"x")
    for name in ("alice.mp4", "alice_wink.mov", "nod.mp4", "still.jpg"):
        (tmp_path / "clips" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "clips" / name).write_bytes(b"y")
    return tmp_path


def test_csv_reads_paths_relative_to_the_file_settings_typed_and_default_names(media: Path):
    jobs_file = media / "jobs.csv"
    jobs_file.write_text("Reference,Driving,Name,seed,steps,CFG,size,target-fps,prompt\n"
                         "refs/alice.jpg,clips/nod.mp4,,42,3,1.5,256,8,oil painting\n"
                         "# a comment row\n"
                         "\n"
                         "refs/bob.png,clips/nod.mp4,bob_nods,,,,,,\n"
                         "refs/alice.jpg,clips/nod.mp4,,7,,,,,\n")
    jobs = read_jobs_file(jobs_file)
    assert [j.name for j in jobs] == ["alice__nod", "bob_nods", "alice__nod_2"]
    assert [j.line for j in jobs] == [2, 5, 6]
    assert jobs[0].reference == media / "refs" / "alice.jpg" and jobs[0].driving == media / "clips" / "nod.mp4"
    assert jobs[0].settings == {"seed": 42, "steps": 3, "cfg": 1.5, "size": 256, "fps": 8.0, "prompt": "oil painting"}
    assert jobs[1].settings == {} and jobs[2].settings == {"seed": 7}
    assert all(j.error is None for j in jobs)


def test_jsonl_with_command_line_defaults_that_a_job_overrides(media: Path):
    path = jsonl(media / "jobs.jsonl", [
        {"reference": "refs/alice.jpg", "driving": "clips/nod.mp4", "steps": 5},
        {"ref": str(media / "refs" / "bob.png"), "video": "clips/alice.mp4", "output": "b"},
    ])
    jobs = read_jobs_file(path, {"steps": 2, "version": "V5"})
    assert jobs[0].settings == {"steps": 5, "version": "v5"}
    assert jobs[1].settings == {"steps": 2, "version": "v5"} and jobs[1].name == "b"


@pytest.mark.parametrize("line, reason", [
    ('{"reference": "refs/alice.jpg", "driving": "clips/nod.mp4",}', "not valid JSON"),
    ('["refs/alice.jpg", "clips/nod.mp4"]', "expected a JSON object"),
    ('{"reference": "refs/alice.jpg"}', "no driving"),
    ('{"reference": "refs/alice.jpg", "driving": "clips/nod.mp4", "sead": 4}', "unknown key 'sead'"),
    ('{"reference": "refs/alice.jpg", "driving": 5}', "driving must be a file path"),
])
def test_a_malformed_jsonl_line_stops_the_batch_and_names_its_line(media: Path, line: str, reason: str):
    path = media / "jobs.jsonl"
    path.write_text('{"reference": "refs/alice.jpg", "driving": "clips/nod.mp4"}\n\n' + line + "\n")
    with pytest.raises(JobsFileError) as info:
        read_jobs_file(path)
    assert info.value.line == 3
    assert "jobs.jsonl line 3: " in str(info.value) and reason in str(info.value)


def test_malformed_csv_rows_name_their_line(media: Path):
    path = media / "jobs.csv"
    path.write_text("reference,driving\nrefs/alice.jpg,clips/nod.mp4\nrefs/bob.png,clips/nod.mp4,extra\n")
    with pytest.raises(JobsFileError, match=r"jobs.csv line 3: 3 cells but the header names 2 columns"):
        read_jobs_file(path)
    path.write_text("reference,clip\nrefs/alice.jpg,clips/nod.mp4\n")
    with pytest.raises(JobsFileError, match=r"line 1: unknown key 'clip'"):
        read_jobs_file(path)
    path.write_text("reference,seed\nrefs/alice.jpg,1\n")
    with pytest.raises(JobsFileError, match=r"line 1: the header has no 'driving' column"):
        read_jobs_file(path)


def test_two_jobs_naming_the_same_output_is_an_error_naming_both_lines(media: Path):
    path = jsonl(media / "jobs.jsonl", [{"reference": "refs/alice.jpg", "driving": "clips/nod.mp4", "name": "x"},
                                        {"reference": "refs/bob.png", "driving": "clips/nod.mp4", "name": "X"}])
    with pytest.raises(JobsFileError, match=r"line 2: name 'X' is already used by line 1"):
        read_jobs_file(path)


def test_problems_of_one_job_stay_with_that_job(media: Path):
    path = jsonl(media / "jobs.jsonl", [
        {"reference": "refs/alice.jpg", "driving": "clips/nod.mp4"},
        {"reference": "refs/missing.jpg", "driving": "clips/nod.mp4"},
        {"reference": "refs/alice.jpg", "driving": "clips/nod.mp4", "steps": "many", "size": 100, "cfg": "-1"},
        {"reference": "refs/alice.jpg", "driving": "clips/nod.mp4", "seed": 2.5, "name": "../escape"},
    ])
    good, missing, bad_values, bad_name = read_jobs_file(path)
    assert good.error is None
    assert missing.error == f"reference file not found: {media / 'refs' / 'missing.jpg'}"
    assert bad_values.error == ("steps: 'many' is not a whole number; cfg: '-1' is out of range (0 or more); "
                                "size: 100 is not a multiple of 64 (the generation size must be; e.g. 512)")
    assert "seed: 2.5 is not a whole number" in bad_name.error and "name '../escape' is not a plain file name" in bad_name.error
    assert bad_name.name == "escape"


def test_settings_checks():
    settings, problems = check_settings({"seed": "18446744073709551615", "steps": "4.0", "fps": "0", "prompt": " x ",
                                         "version": " ", "cfg": True})
    assert settings == {"seed": 2 ** 64 - 1, "steps": 4, "fps": 0.0, "prompt": "x"}
    assert problems == ["cfg: True is not a number"]
    assert check_settings({"seed": -1})[1] == ["seed: -1 is out of range (0 to 18446744073709551615)"]


def test_folders_every_reference_by_every_clip_or_paired_by_name(media: Path):
    jobs = jobs_from_folders(media / "refs", media / "clips", defaults={"steps": 2})
    assert [j.name for j in jobs] == ["alice__alice", "alice__alice_wink", "alice__nod",
                                      "bob__alice", "bob__alice_wink", "bob__nod"]  # images, videos only
    assert all(j.settings == {"steps": 2} and j.line is None for j in jobs)
    paired = jobs_from_folders(media / "refs", media / "clips", pair_by_name=True)
    assert [(j.reference.name, j.driving.name) for j in paired] == [("alice.jpg", "alice.mp4"),
                                                                     ("alice.jpg", "alice_wink.mov")]
    with pytest.raises(JobsFileError, match="holds no driving videos"):
        jobs_from_folders(media / "refs", media / "refs")


def test_unknown_file_type_and_empty_file(media: Path):
    (media / "jobs.txt").write_text("x")
    with pytest.raises(JobsFileError, match="use .csv"):
        read_jobs_file(media / "jobs.txt")
    (media / "jobs.jsonl").write_text("\n# nothing\n")
    with pytest.raises(JobsFileError, match="holds no jobs"):
        read_jobs_file(media / "jobs.jsonl")
