"""Trained models as versioned artefacts under RAGOPS_HOME/models/<kind>/<version>/.

Each version is a directory with the model (`model/`, loadable offline by sentence-transformers) and a
`manifest.json`: the kind, the base model, the hash of the training data, the training parameters and metrics.
A version's number is claimed with an exclusive `mkdir`, so two trainings at once get two versions, and its manifest
is renamed into place last, so a version is listed (and resolvable) only once its model is complete. Versions are never
overwritten; a release names one as `trained:<kind>/<version>` (e.g. `trained:reranker/3`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ragops.errors import ConfigError

KINDS = ("reranker", "embedder")
PREFIX = "trained:"
_REF = re.compile(r"^trained:(reranker|embedder)/([1-9][0-9]{0,8}|latest)$")


@dataclass(frozen=True)
class Artifact:
    kind: str
    version: int
    path: Path  # the version's directory

    @property
    def ref(self) -> str:
        return f"{PREFIX}{self.kind}/{self.version}"

    @property
    def model_path(self) -> Path:
        return self.path / "model"

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))


def is_ref(name: str | None) -> bool:
    return bool(name) and name.startswith(PREFIX)


class ModelStore:
    """The trained models of one RAGOPS_HOME."""

    def __init__(self, home: Path):
        self.root = Path(home) / "models"

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ConfigError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
        return self.root / kind

    def versions(self, kind: str) -> list[Artifact]:
        """Complete versions (those with a manifest), oldest first."""
        folder = self._kind_dir(kind)
        found = []
        for entry in folder.iterdir() if folder.is_dir() else ():
            if entry.name.isdigit() and (entry / "manifest.json").is_file():
                found.append(Artifact(kind, int(entry.name), entry))
        return sorted(found, key=lambda a: a.version)

    def latest(self, kind: str) -> Artifact | None:
        versions = self.versions(kind)
        return versions[-1] if versions else None

    def resolve(self, ref: str) -> Artifact:
        """`trained:<kind>/<version>` to its artefact; a clear error for a malformed or missing one."""
        match = _REF.match(ref or "")
        if not match:
            raise ConfigError(f"{ref!r} is not a trained-model reference; expected trained:reranker/<n> or "
                              "trained:embedder/<n>")
        if match[2] == "latest":  # a convenience for benchmarks and the CLI; a release records the number
            latest = self.latest(match[1])
            if latest is None:
                raise ConfigError(f"there is no trained {match[1]} under {self.root}; train one with "
                                  "`ragops models train`")
            return latest
        artifact = Artifact(match[1], int(match[2]), self._kind_dir(match[1]) / match[2])
        if not (artifact.path / "manifest.json").is_file():
            raise ConfigError(f"there is no trained model {ref} under {self.root}; `ragops models list` shows them")
        return artifact

    def publish(self, kind: str, built: Path, manifest: dict) -> Artifact:
        """Move a saved model directory in as the next version, with its manifest; returns the new artefact."""
        folder = self._kind_dir(kind)
        folder.mkdir(parents=True, exist_ok=True)
        version = max([int(p.name) for p in folder.iterdir() if p.name.isdigit()] or [0]) + 1
        while True:  # claim the number: mkdir is atomic, so a concurrent publisher takes the next one
            try:
                (folder / str(version)).mkdir()
                break
            except FileExistsError:
                version += 1
        target = folder / str(version)
        shutil.copytree(built, target / "model")
        record = {"kind": kind, "version": version, "created_at": datetime.now(timezone.utc).isoformat()} | manifest
        staging = target / ".manifest.json.tmp"
        staging.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(staging, target / "manifest.json")  # last: a version without its manifest is not listed
        return Artifact(kind, version, target)
