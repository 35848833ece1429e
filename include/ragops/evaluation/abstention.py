"""Unanswerable test sets and the abstention rates an evaluation reports.

A line per question the knowledge base does not answer: {"id", "question", "category": "near" | "far"}. "near"
questions use the domain's vocabulary (other products of the same ecosystem); "far" ones do not. The bundled set
(testsets/unanswerable.jsonl) was written for the RHDH product docs and is unanswerable by the demo corpus too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ragops.evaluation.testset import InvalidTestset

BUNDLED = Path(__file__).with_name("testsets") / "unanswerable.jsonl"
CATEGORIES = ("near", "far")


@dataclass(frozen=True)
class UnanswerableItem:
    id: str
    question: str
    category: str


@dataclass(frozen=True)
class UnanswerableSet:
    path: str
    sha256: str
    items: list[UnanswerableItem]


def load_unanswerable(path: Path | str | None = None) -> UnanswerableSet:
    path = Path(path) if path else BUNDLED
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidTestset(f"cannot read unanswerable set {path}: {exc}") from exc
    items, seen = [], set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            item = UnanswerableItem(str(data["id"]), str(data["question"]), str(data["category"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidTestset(f"{path}:{number}: each line needs id, question and category ({exc})") from exc
        if item.category not in CATEGORIES:
            raise InvalidTestset(f"{path}:{number}: category must be near or far, not {item.category!r}")
        if item.id in seen:
            raise InvalidTestset(f"{path}:{number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise InvalidTestset(f"unanswerable set {path} is empty")
    return UnanswerableSet(str(path), hashlib.sha256(raw).hexdigest(), items)


def abstention_rates(items: list[UnanswerableItem], fallbacks: list[str | None],
                     answerable_fallbacks: list[str | None]) -> dict:
    """Refusal (`no_results`) rates per category, and the share of answerable questions wrongly refused."""
    rates = {}
    for category in CATEGORIES:
        picked = [f for item, f in zip(items, fallbacks) if item.category == category]
        if picked:
            rates[f"abstention_{category}"] = round(sum(f == "no_results" for f in picked) / len(picked), 4)
    if answerable_fallbacks:
        rates["false_abstention"] = round(sum(f == "no_results" for f in answerable_fallbacks) / len(answerable_fallbacks), 4)
    return rates
