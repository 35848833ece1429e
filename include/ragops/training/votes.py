"""Training pairs from what real users said of real answers (issue 23's votes): the reader learns from its users.

A vote joins its request event, which keeps the redacted question (or the standalone query a follow-up was condensed
to) and the chunks the answer was built from. An up vote makes the answer's first chunk a positive for that
question; a "wrong" vote makes the answer's chunks negatives for the same question, ahead
of BM25's hard negatives. What is left out, and counted in the run's manifest:

- a question of any evaluation set (the configured one, the grown one, the unanswerable one): the release gate
  judges a model on those, so it must never have trained on them;
- probe traffic, and by default callers without a key (`RAGOPS_TRAIN_VOTES_VERIFIED_ONLY`): an anonymous caller
  must not be able to teach the reader;
- more than `RAGOPS_TRAIN_VOTES_PER_USER` pairs from one caller: no one stuffs the ballot;
- a question whose text retention has cleared, and an answer whose chunks the index no longer holds;
- an answer whose first chunk lies in a section held out to measure the model (`held_out`): it must stay unseen.

A model trained here goes the existing way to users: an artefact, evaluation against the accepted run, a canary.
"""

from __future__ import annotations

import collections
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent
from ragops.training.pairs import CorpusChunk, HardNegatives, Pair

_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script: a question in Cyrillic or Chinese is not ""


def normal(question: str) -> str:
    """A question as compared with the evaluation sets: its lower-cased words, punctuation, spacing and Unicode
    width or composition aside."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", question).casefold()))


@dataclass
class VoteHarvest:
    pairs: list[Pair] = field(default_factory=list)
    votes: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)

    def to_dict(self) -> dict:
        return {"votes": self.votes, "pairs": len(self.pairs), "skipped": dict(sorted(self.skipped.items()))}


def _voted(registry: Registry, since: datetime) -> list[dict]:
    """Votes since `since`, oldest first, each joined once to its own caller's latest request event of that id."""
    columns = (Feedback.request_id, Feedback.user_hash, Feedback.rating, Feedback.reason,
               RequestEvent.question, RequestEvent.query, RequestEvent.chunk_ids, RequestEvent.verified,
               RequestEvent.synthetic, RequestEvent.fallback, RequestEvent.status)
    query = (select(*columns)
             .join(RequestEvent, (RequestEvent.request_id == Feedback.request_id)
                   & (RequestEvent.user_hash == Feedback.user_hash))
             .where(Feedback.ts >= since)
             .order_by(Feedback.ts, Feedback.id, RequestEvent.ts.desc(), RequestEvent.id.desc()))
    seen, out = set(), []
    with registry.session() as s:
        for row in s.execute(query):
            # a request logged twice (a retried id) counts once: by its latest answer, the one the vote was on;
            # another caller's vote on the same (client-chosen) id is its own vote
            if (row.request_id, row.user_hash) not in seen:
                seen.add((row.request_id, row.user_hash))
                out.append(row._asdict())
    return out


def vote_pairs(registry: Registry, chunks: list[CorpusChunk], evaluation_questions: set[str], since: datetime, *,
               verified_only: bool = True, per_user: int = 20, negatives: int = 3, seed: int = 13,
               held_out: set[str] = frozenset()) -> VoteHarvest:
    """The pairs users' votes give, deterministic for the same votes and chunks. `evaluation_questions` are
    `normal()`-ised questions that must never be trained on; `held_out`, the sections (`Pair.section`) of the
    held-out pairs."""
    harvest = VoteHarvest()
    by_id = {c.chunk_id: c for c in chunks}
    positives: dict[str, tuple[str, CorpusChunk, str]] = {}  # normal question -> (question, chunk, user_hash)
    wrong: dict[str, list[str]] = collections.defaultdict(list)
    per_caller: collections.Counter = collections.Counter()
    for vote in _voted(registry, since):
        harvest.votes += 1
        text = vote["query"] or vote["question"]
        reason = _left_out(vote, text, evaluation_questions, verified_only)
        shown = [by_id[c] for c in (vote["chunk_ids"] or []) if c in by_id]
        if reason is None and not shown:
            reason = "chunks_gone"
        if reason is not None:
            harvest.skipped[reason] += 1
            continue
        key = normal(text)
        if vote["rating"] == "down" and vote["reason"] != "wrong":
            harvest.skipped["down_not_wrong"] += 1
            continue
        if vote["rating"] == "up" and "|".join(shown[0].section) in held_out:
            harvest.skipped["held_out_section"] += 1
            continue
        if vote["rating"] == "up" and key in positives:
            harvest.skipped["repeated_question"] += 1
            continue
        if per_caller[vote["user_hash"]] >= per_user:  # up and "wrong" votes alike: no one caller steers the reader
            harvest.skipped["caller_cap"] += 1
            continue
        per_caller[vote["user_hash"]] += 1
        if vote["rating"] == "down":
            wrong[key].extend(c.body for c in shown)
        else:
            positives[key] = (text, shown[0], vote["user_hash"])
    if not positives:
        return harvest
    ordered = sorted(chunks, key=lambda c: (c.doc_uri, c.ordinal))
    hard = HardNegatives(ordered, random.Random(seed), negatives)
    for key, (text, chunk, _) in positives.items():
        found = hard(text, {chunk.section}, chunk.body, first=tuple(wrong.get(key, ())))
        if found:
            harvest.pairs.append(Pair("vote", text, chunk.body, found, "|".join(chunk.section)))
        else:  # every other chunk is of the answer's section: nothing to rank below it
            harvest.skipped["no_negatives"] += 1
    return harvest


def _left_out(vote: dict, text: str | None, evaluation_questions: set[str], verified_only: bool) -> str | None:
    if not text:
        return "question_cleared"
    if vote["synthetic"]:
        return "probe"
    if verified_only and not vote["verified"]:
        return "unverified"
    # the question as typed too: a follow-up's query adds words to it (the rule condenser), and still asks it
    if normal(text) in evaluation_questions or (vote["question"] and normal(vote["question"]) in evaluation_questions):
        return "evaluation_question"
    if vote["status"] != 200 or vote["fallback"] is not None:  # a refusal or an error: no passage to learn from
        return "not_answered"
    return None
