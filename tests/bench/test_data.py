"""bench/data.py builds the RHDH evaluation set from the dataset repository's layout: here a small fake of it, and
the real repository when RAGOPS_TEST_RHDH_SOURCE names a clone of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = "rhdh-product-docs-1.8-Nov19-2025"
GUIDES = {"about": "# About\n\nRed Hat Developer Hub is a portal.\n", "techdocs": "# TechDocs\n\nDocs as code.\n"}
ENTRIES = [
    {"context": ["# About  Red Hat\n Developer Hub\tis a portal."], "metadata": {"uuid": "id-1"},
     "response": "A  portal.", "user_input": "What is  Developer Hub?"},
    {"context": ["# TechDocs Docs as code."], "metadata": {"uuid": "id-2"},
     "response": "Docs as code.", "user_input": "What are TechDocs?"},
]


def fake_dataset(root: Path, entries: list = ENTRIES) -> Path:
    for guide, text in GUIDES.items():
        (root / DOCS / guide).mkdir(parents=True)
        (root / DOCS / guide / "master.txt").write_text(text)
    (root / "dataset").mkdir(parents=True)
    (root / "dataset" / "dataset_raw.yaml").write_text(yaml.safe_dump({"data": entries, "metadata": {}}))
    return root


@pytest.fixture
def source(tmp_path) -> Path:
    return fake_dataset(tmp_path / "lightspeed-evaluation-dataset")


def build(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "RAGOPS_EVAL_RHDH"} | (env or {})
    return subprocess.run([sys.executable, str(REPO / "bench" / "data.py"), *map(str, args)], env=environment,
                          capture_output=True, text=True, timeout=120)


def test_builds_the_layout_the_benchmarks_read(source, tmp_path):
    out = tmp_path / "rhdh"
    done = build("--from", source, "--out", out)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"docs": 2, "questions": 2, "out": str(out), "subset": None, "commit": None}
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "dev.jsonl", "docs"]
    for guide, text in GUIDES.items():
        assert (out / "docs" / guide / "master.txt").read_text() == text
    first, second = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    # Only the contexts are whitespace-normalised; the question and answer are kept as the dataset has them.
    assert first == {"id": "id-1", "question": "What is  Developer Hub?", "reference_answer": "A  portal.",
                     "reference_contexts": ["# About Red Hat Developer Hub is a portal."]}
    assert second["id"] == "id-2"
    readme = (out / "README.md").read_text()
    assert "redhat-ai-dev/lightspeed-evaluation-dataset" in readme and "The full set (2 questions)" in readme


def test_out_defaults_to_RAGOPS_EVAL_RHDH_and_is_required_without_it(source, tmp_path):
    out = tmp_path / "from-env"
    assert build("--from", source, env={"RAGOPS_EVAL_RHDH": str(out)}).returncode == 0
    assert (out / "dev.jsonl").exists()
    done = build("--from", source)
    assert done.returncode == 2 and "--out is required" in done.stderr


def test_subset_keeps_the_ids_of_an_earlier_dev_jsonl(source, tmp_path):
    subset = tmp_path / "subset.jsonl"
    subset.write_text(json.dumps({"id": "id-2"}) + "\n")
    done = build("--from", source, "--out", tmp_path / "rhdh", "--subset", subset)
    assert json.loads(done.stdout)["questions"] == 1
    assert [json.loads(line)["id"] for line in (tmp_path / "rhdh" / "dev.jsonl").read_text().splitlines()] == ["id-2"]
    subset.write_text(json.dumps({"id": "id-9"}) + "\n")
    done = build("--from", source, "--out", tmp_path / "other", "--subset", subset)
    assert done.returncode == 1 and "1 ids are not in" in done.stderr


def test_a_bare_git_directory_is_cloned_and_its_commit_recorded(source, tmp_path):
    def git(*args, cwd=source):
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "--quiet")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "--quiet", "-m", "data")
    git("clone", "--quiet", "--bare", str(source), str(tmp_path / "bare.git"))
    done = build("--from", tmp_path / "bare.git", "--out", tmp_path / "rhdh")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["commit"] == git("rev-parse", "HEAD")
    assert (tmp_path / "rhdh" / "docs" / "techdocs" / "master.txt").read_text() == GUIDES["techdocs"]


def test_refuses_to_write_inside_the_repository(source):
    out = REPO / "bench" / "out" / "rhdh-test"
    done = build("--from", source, "--out", out)
    assert done.returncode == 1 and "inside this repository" in done.stderr
    assert not out.exists()


def test_refuses_a_non_empty_folder_and_force_replaces_only_an_earlier_build(source, tmp_path):
    out = tmp_path / "rhdh"
    assert build("--from", source, "--out", out).returncode == 0
    (out / "docs" / "stale").mkdir()
    done = build("--from", source, "--out", out)
    assert done.returncode == 1 and "not empty" in done.stderr
    assert build("--from", source, "--out", out, "--force").returncode == 0
    assert sorted(p.name for p in (out / "docs").iterdir()) == sorted(GUIDES)  # the stale guide is gone
    (out / "notes.txt").write_text("mine")
    done = build("--from", source, "--out", out, "--force")
    assert done.returncode == 1 and "more than an earlier build (notes.txt)" in done.stderr
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("hostile", ["guide links outside", "docs folder links outside", "odd guide name"])
def test_names_from_the_dataset_cannot_reach_outside(source, tmp_path, hostile):
    secret = tmp_path / "secret"
    (secret / "x").mkdir(parents=True)
    (secret / "x" / "master.txt").write_text("private")
    if hostile == "guide links outside":
        (source / DOCS / "x").symlink_to(secret / "x")
    elif hostile == "docs folder links outside":
        (source / DOCS).rename(tmp_path / "moved")
        (source / DOCS).symlink_to(secret)
    else:
        (source / DOCS / "..x\n").mkdir()
    done = build("--from", source, "--out", tmp_path / "rhdh")
    assert done.returncode == 1 and DOCS in done.stderr
    assert not (tmp_path / "rhdh").exists()


def test_not_the_dataset_is_a_clear_error(tmp_path):
    done = build("--from", tmp_path, "--out", tmp_path / "rhdh")
    assert done.returncode == 1 and "is not the redhat-ai-dev/lightspeed-evaluation-dataset" in done.stderr
    done = build("--from", tmp_path / "missing", "--out", tmp_path / "rhdh")
    assert done.returncode == 1 and "no such folder, and not a URL" in done.stderr
    done = build("--from", (tmp_path / "missing").as_uri(), "--out", tmp_path / "rhdh")  # a URL, cloned: offline here
    assert done.returncode == 1 and "git clone file://" in done.stderr
    assert not (tmp_path / "rhdh").exists()


def test_yaml_is_loaded_safely_and_checked(tmp_path):
    unsafe = fake_dataset(tmp_path / "unsafe", entries=[])
    marker = tmp_path / "ran"
    (unsafe / "dataset" / "dataset_raw.yaml").write_text(f"data: !!python/object/apply:os.system ['touch {marker}']\n")
    done = build("--from", unsafe, "--out", tmp_path / "rhdh")
    assert done.returncode == 1 and "not readable YAML" in done.stderr and not marker.exists()
    wrong = fake_dataset(tmp_path / "wrong", entries=[{"question": "no metadata"}])
    done = build("--from", wrong, "--out", tmp_path / "rhdh")
    assert done.returncode == 1 and "entry 0: expected metadata.uuid" in done.stderr
    assert not (tmp_path / "rhdh").exists()


def test_the_real_repository_rebuilds_the_evaluation_set(rhdh, tmp_path):
    """Byte for byte: docs and dev.jsonl (the README is the builder's own); RAGOPS_TEST_RHDH_SOURCE is a clone, a
    bare git dir or a URL of redhat-ai-dev/lightspeed-evaluation-dataset."""
    origin = os.environ.get("RAGOPS_TEST_RHDH_SOURCE")
    if not origin:
        pytest.skip("RAGOPS_TEST_RHDH_SOURCE is not set (a clone of redhat-ai-dev/lightspeed-evaluation-dataset)")
    out = tmp_path / "rhdh"
    done = build("--from", origin, "--out", out, "--subset", rhdh / "dev.jsonl")
    assert done.returncode == 0, done.stderr
    assert (out / "dev.jsonl").read_bytes() == (rhdh / "dev.jsonl").read_bytes()
    built = sorted(p.relative_to(out).as_posix() for p in (out / "docs").rglob("*"))
    assert built == sorted(p.relative_to(rhdh).as_posix() for p in (rhdh / "docs").rglob("*"))
    for path in (out / "docs").glob("*/master.txt"):
        assert path.read_bytes() == (rhdh / path.relative_to(out)).read_bytes(), path
