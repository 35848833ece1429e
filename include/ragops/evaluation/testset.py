"""Test sets: JSONL, one question per line.

    {"id": "q1", "question": "...", "reference_answer": "...",
     "reference_contexts": ["passage ..."],          # optional: passages that contain the answer
     "reference_doc_ids": ["refreshing-documents.md"]}  # optional: documents (by URI suffix) that answer it

Every item needs an id, a question and a reference answer, plus reference contexts, reference doc ids or both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ragops.errors import RagopsError

BUNDLED = Path(__file__).with_name("testsets") / "ragops_docs.jsonl"


class InvalidTestset(RagopsError):
    code = "invalid_testset"


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    reference_answer: str
    reference_contexts: list[str] = field(default_factory=list)
    reference_doc_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvalSet:
    path: str
    sha256: str
    items: list[EvalItem]


def load_testset(path: Path | str | None = None) -> EvalSet:
    path = Path(path) if path else BUNDLED
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidTestset(f"cannot read test set {path}: {exc}") from exc
    items, seen = [], set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            item = EvalItem(str(data["id"]), data["question"], data["reference_answer"],
                            list(data.get("reference_contexts") or []), list(data.get("reference_doc_ids") or []))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidTestset(f"{path}:{number}: each line needs id, question and reference_answer ({exc})") from exc
        if not (item.reference_contexts or item.reference_doc_ids):
            raise InvalidTestset(f"{path}:{number}: give reference_contexts or reference_doc_ids")
        if item.id in seen:
            raise InvalidTestset(f"{path}:{number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise InvalidTestset(f"test set {path} is empty")
    return EvalSet(str(path), hashlib.sha256(raw).hexdigest(), items)


def current_testset_hash(settings) -> str:
    """The sha256 of the test set evaluations use now (RAGOPS_EVAL_TESTSET, else the bundled one)."""
    return load_testset(settings.eval_testset).sha256
