"""The test set that grows with real questions (issue 23): propose candidates from live failures, accept the ones a
person reviewed into a new, immutable version of the grown set.

`propose` takes the representatives of the period's content-gap clusters and the down-voted questions, asks the
live release each one again (so the reviewer sees the answer users get today) and writes them as test-set lines
with their provenance (cluster, request ids, the vote's reason). Nothing enters a test set without a person: the
reviewer writes the reference answer and the documents that hold it, then `accept` validates each item (as
`load_testset` does) and writes the grown set's next version, `v0003.jsonl`: the previous version's items plus the
accepted ones, never an edit in place, each version recorded with its sha256 in `manifest.jsonl`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.evaluation.testset import BUNDLED, EvalSet, InvalidTestset, load_testset
from ragops.gaps import analyse
from ragops.gaps.questions import failed_questions
from ragops.registry import Registry

MAX_FILE_BYTES = 5 * 1024 * 1024  # a reviewed file; a month's proposals are a few hundred lines
MAX_ITEMS = 1_000  # accepted per file
QUESTION_MAX = 2_000  # as the API's own bound on a question
DOWN_VOTED = 200  # down-voted questions proposed per period, newest first


def grown_dir(settings: Settings) -> Path:
    return settings.grown_testset_dir or settings.home / "testsets" / "grown"


def versions(settings: Settings) -> list[Path]:
    return sorted(grown_dir(settings).glob("v[0-9][0-9][0-9][0-9].jsonl"))


def latest_grown(settings: Settings) -> EvalSet | None:
    """The newest version of the grown test set, or None before the first `accept`."""
    found = versions(settings)
    return load_testset(found[-1]) if found else None


def _known_questions(settings: Settings) -> set[str]:
    sets = [load_testset(settings.eval_testset or BUNDLED)] + ([g] if (g := latest_grown(settings)) else [])
    return {item.question.strip().casefold() for s in sets for item in s.items}


def _answers_now(settings: Settings, registry: Registry, questions: list[str], service=None) -> list[dict]:
    """What the stable release answers each question today (the registry keeps no answers, only the questions)."""
    if service is None:
        from ragops.answer.llm import build_chat_model
        from ragops.answer.pipeline import AnswerService

        service = AnswerService(settings, registry, chat_model=build_chat_model(settings))
    gate = asyncio.Semaphore(4)

    async def one(question: str) -> dict:
        async with gate:
            result = await service.ask(question, "evaluation")
            return {"answer_now": result.answer[:2000], "fallback_now": result.fallback}

    async def every() -> list[dict]:
        return await asyncio.gather(*(one(q) for q in questions))

    return asyncio.run(every()) if questions else []


def _digest(request_id: str) -> str:
    """A candidate's id part: clients choose request ids (X-Request-ID), and theirs may share a long prefix."""
    return hashlib.sha256(request_id.encode()).hexdigest()[:12]


def propose(settings: Settings, since: timedelta, end: datetime | None = None, *, registry: Registry | None = None,
            service=None, embedder=None) -> list[dict]:
    """Candidate test questions from the period's gap clusters and down-voted answers, for a person to review."""
    end = end or datetime.now(timezone.utc)
    registry = registry or Registry(settings.registry_url)
    report = analyse(settings, end - since, end, registry=registry,
                     embedder=embedder or getattr(service, "embedder", None))
    known, out = _known_questions(settings), []
    stamp = f"{end:%Y%m%d}"
    for gap in report.clusters:
        for rep in gap.representatives:
            # the request's digest, not the position: a second run on one day ranks other questions first
            out.append({"id": f"gap-{stamp}-{gap.rank}-{_digest(rep['request_id'])}", "question": rep["question"],
                        "reference_answer": "",
                        "reference_doc_ids": [] if gap.new_page or not gap.belongs_in else [gap.belongs_in],
                        "provenance": {"source": "content_gap", "cluster": gap.name, "rank": gap.rank,
                                       "users": gap.users, "request_id": rep["request_id"],
                                       "request_ids": gap.request_ids[:10], "kind": rep["kind"],
                                       "nearest_documents": [d["doc_uri"] for d in gap.documents]}})
    proposed = {c["question"].casefold() for c in out}
    down, _ = failed_questions(registry, end - since, end, settings.gaps_max_questions)
    for q in [q for q in down if q.kind == "down_voted"][:DOWN_VOTED]:
        if q.question.casefold() in proposed:
            continue
        proposed.add(q.question.casefold())
        out.append({"id": f"down-{stamp}-{_digest(q.request_id)}", "question": q.question, "reference_answer": "",
                    "reference_doc_ids": [],
                    "provenance": {"source": "down_voted", "request_id": q.request_id, "request_ids": [q.request_id],
                                   "reason": q.reason, "comment": (q.comment or "")[:500] or None}})
    out = [c for c in out if c["question"].strip().casefold() not in known]
    for candidate, now in zip(out, _answers_now(settings, registry, [c["question"] for c in out], service)):
        candidate["provenance"] |= now
    return out


def write_candidates(candidates: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in candidates), encoding="utf-8")
    return path


def _reviewed(path: Path) -> tuple[list[dict], list[dict]]:
    """(valid items, refused items with the reason) of a reviewed file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidTestset(f"{path} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidTestset(f"cannot read {path}: {exc}") from exc
    valid, refused = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            refused.append({"line": number, "id": None, "reason": f"not JSON: {exc}"})
            continue
        problem = _problem(item)
        (refused.append({"line": number, "id": item.get("id") if isinstance(item, dict) else None, "reason": problem})
         if problem else valid.append(item))
    if len(valid) > MAX_ITEMS:
        raise InvalidTestset(f"{path} has {len(valid)} items; accept at most {MAX_ITEMS} at a time")
    return valid, refused


def _problem(item) -> str | None:
    if not isinstance(item, dict):
        return "not a JSON object"
    if not isinstance(item.get("id"), str) or not item["id"].strip() or len(item["id"]) > 128:
        return "needs an id (text, at most 128 characters)"
    if not isinstance(item.get("question"), str) or not item["question"].strip() or len(item["question"]) > QUESTION_MAX:
        return f"needs a question (at most {QUESTION_MAX} characters)"
    if not isinstance(item.get("reference_answer"), str) or not item["reference_answer"].strip():
        return "needs a reference answer: write what a correct answer says"
    contexts, docs = item.get("reference_contexts") or [], item.get("reference_doc_ids") or []
    if not isinstance(contexts, list) or not isinstance(docs, list) or not (contexts or docs):
        return "needs reference_doc_ids (the documents that hold the answer) or reference_contexts"
    return None


def accept(settings: Settings, path: Path | str, actor: str) -> dict:
    """Append the reviewed items of `path` to a new version of the grown set; refuse those not ready."""
    valid, refused = _reviewed(Path(path))
    previous = latest_grown(settings)
    items = [json.loads(line) for line in Path(previous.path).read_text(encoding="utf-8").splitlines() if line.strip()] \
        if previous else []
    ids, questions = {i["id"] for i in items}, {i["question"].strip().casefold() for i in items}
    added = []
    for n, item in enumerate(valid):
        if item["id"] in ids or item["question"].strip().casefold() in questions:
            refused.append({"line": None, "id": item["id"], "reason": "already in the grown set (same id or question)"})
            continue
        ids.add(item["id"])
        questions.add(item["question"].strip().casefold())
        added.append(item | {"accepted_by": actor, "accepted_at": datetime.now(timezone.utc).isoformat()})
    if not added:
        raise InvalidTestset(f"nothing to accept from {path}: " + "; ".join(
            f"{r['id'] or 'line ' + str(r['line'])}: {r['reason']}" for r in refused[:10]))
    body = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items + added).encode("utf-8")
    folder = grown_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    number = len(versions(settings)) + 1
    target = folder / f"v{number:04d}.jsonl"
    try:  # O_EXCL: two accepts at once cannot write the same version; the loser is told to run again
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise RagopsError(f"{target} was written meanwhile by another accept: run it again") from None
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    digest = hashlib.sha256(body).hexdigest()
    load_testset(target)  # the new version must load as every test set does
    entry = {"version": number, "file": target.name, "sha256": digest, "items": len(items) + len(added),
             "added": [i["id"] for i in added], "accepted_by": actor, "at": datetime.now(timezone.utc).isoformat()}
    with (folder / "manifest.jsonl").open("a", encoding="utf-8") as manifest:
        manifest.write(json.dumps(entry) + "\n")
    return entry | {"path": str(target), "refused": refused}


def evaluation_questions(settings: Settings) -> set[str]:
    """Every question an evaluation asks (the configured or bundled set, the grown set, the unanswerable set), as
    `training.votes.normal` compares them: what the reader must never be trained on."""
    from ragops.evaluation.abstention import load_unanswerable
    from ragops.training.votes import normal

    asked = [item.question for item in load_testset(settings.eval_testset or BUNDLED).items]
    asked += [item.question for item in (latest_grown(settings) or EvalSet("", "", [])).items]
    asked += [item.question for item in load_unanswerable().items]
    return {normal(q) for q in asked}
