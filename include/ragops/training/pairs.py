"""Weak relevance labels that the documents themselves provide: no question from any evaluation set is used.

From the chunks of one index version (heading path, title, text, reading order) come three kinds of pairs:

- **heading**: a section's own heading (its last one or two levels) against the section's chunks, with the heading
  line removed, so the pair must be matched on content: this is the pair closest to a user's question, which
  usually names the task or the thing a section is about;
- **title**: a document's title against its chunks (a weaker, broader topic label);
- **neighbour**: a sentence of a chunk against the next (or previous) chunk of the same section, the inverse-cloze
  idea: text that continues a passage is relevant to it.

Each query gets hard negatives: the chunks that Okapi BM25 ranks highest for it but that lie outside the positive's
section (a different section can still share its words, which is exactly what the model must learn to see past).
Pairs are split into train and held-out by document section, so the held-out metric measures sections the model never
saw. Everything is seeded: the same chunks give the same pairs, and `data_hash` names them in the model's manifest.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import random
import re
from dataclasses import asdict, dataclass

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
STOP = frozenset("the a an of to and or in on for with is are be by as at from that this it its can you your use using "
                 "which when what how do does".split())


@dataclass(frozen=True)
class CorpusChunk:
    chunk_id: str
    doc_uri: str
    ordinal: int
    heading: str
    title: str
    text: str

    @property
    def body(self) -> str:
        """The text without its heading line (chunking puts the heading path first)."""
        if self.heading and self.text.startswith(self.heading):
            return self.text[len(self.heading):].lstrip("\n")
        return self.text

    @property
    def section(self) -> tuple[str, str]:
        return (self.doc_uri, self.heading)


@dataclass(frozen=True)
class Pair:
    kind: str  # heading | title | neighbour | vote (training/votes.py)
    query: str
    positive: str
    negatives: tuple[str, ...]
    section: str  # the positive's section, for the held-out split


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP]


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75) over the chunks, for hard negatives."""

    def __init__(self, texts: list[str]):
        docs = [tokens(t) for t in texts]
        self.n = len(docs)
        avg = (sum(map(len, docs)) / self.n) if self.n else 1.0
        df = collections.Counter(t for d in docs for t in set(d))
        self.idf = {t: math.log((self.n - m + 0.5) / (m + 0.5) + 1) for t, m in df.items()}
        self.postings: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        for i, d in enumerate(docs):
            norm = 1.5 * (0.25 + 0.75 * len(d) / max(avg, 1e-9))
            for t, f in collections.Counter(d).items():
                self.postings[t].append((i, f * 2.5 / (f + norm)))

    def top(self, query: str, k: int) -> list[int]:
        scores = np.zeros(self.n)
        for t in sorted(set(tokens(query))):
            for i, w in self.postings.get(t, ()):
                scores[i] += self.idf[t] * w
        order = np.argsort(-scores, kind="stable")[:k]
        return [int(i) for i in order if scores[i] > 0]


def _heading_query(heading: str) -> str:
    parts = [p.strip() for p in heading.split(" > ") if p.strip()]
    return " ".join(parts[-2:]) if len(parts) > 1 and len(parts[-1].split()) <= 2 else (parts[-1] if parts else "")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if 6 <= len(s.split()) <= 40]


class HardNegatives:
    """For a query, the chunks Okapi BM25 ranks highest outside the excluded sections (random chunks of other sections
    when BM25 barely matches it): what a model must learn to rank below the positive."""

    def __init__(self, chunks: list[CorpusChunk], rng: random.Random, negatives: int = 3):
        self.chunks, self.rng, self.negatives = chunks, rng, negatives
        self.bodies = [c.body for c in chunks]
        self.index = BM25(self.bodies)

    def __call__(self, query: str, excluded: set[tuple[str, str]], positive: str,
                 first: tuple[str, ...] = ()) -> tuple[str, ...]:
        """`first`: negatives known already (a passage users voted wrong for this query), kept ahead of BM25's."""
        picked = [t for t in dict.fromkeys(first) if t != positive][: self.negatives]
        for i in self.index.top(query, 8 * self.negatives + 8):
            if len(picked) >= self.negatives:
                break
            if self.chunks[i].section in excluded or self.bodies[i] == positive or self.bodies[i] in picked:
                continue
            picked.append(self.bodies[i])
        if len(picked) < self.negatives:  # a query BM25 barely matches: random chunks of other sections
            others = sorted({self.bodies[i] for i, c in enumerate(self.chunks)
                             if c.section not in excluded and self.bodies[i] != positive and self.bodies[i] not in picked})
            picked += self.rng.sample(others, min(self.negatives - len(picked), len(others)))
        return tuple(picked)


def build_pairs(chunks: list[CorpusChunk], *, negatives: int = 3, seed: int = 13,
                max_per_kind: int | None = None) -> list[Pair]:
    """Weak pairs with BM25 hard negatives, deterministic for the same chunks and seed."""
    rng = random.Random(seed)
    chunks = sorted(chunks, key=lambda c: (c.doc_uri, c.ordinal))
    hard_negatives = HardNegatives(chunks, rng, negatives)
    bodies = hard_negatives.bodies
    by_section: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    by_doc: dict[str, list[int]] = collections.defaultdict(list)
    for i, c in enumerate(chunks):
        by_section[c.section].append(i)
        by_doc[c.doc_uri].append(i)

    heading, title, neighbour = [], [], []
    for section, members in by_section.items():
        query = _heading_query(section[1])
        if len(tokens(query)) < 1:
            continue
        for i in members:
            if len(tokens(bodies[i])) >= 5:
                heading.append(Pair("heading", query, bodies[i], hard_negatives(query, {section}, bodies[i]),
                                    "|".join(section)))
        for a, b in zip(members, members[1:]):
            for source, target in ((a, b), (b, a)):
                sentences = _sentences(bodies[source])
                if sentences and len(tokens(bodies[target])) >= 5:
                    query = rng.choice(sentences)
                    neighbour.append(Pair("neighbour", query, chunks[target].text,
                                          hard_negatives(query, {section}, chunks[target].text), "|".join(section)))
    for doc_uri, members in by_doc.items():
        name = chunks[members[0]].title
        if len(tokens(name)) < 1:
            continue
        sections = {chunks[i].section for i in members}
        for i in rng.sample(members, min(len(members), 8)):
            title.append(Pair("title", name, chunks[i].text, hard_negatives(name, sections, chunks[i].text),
                              "|".join(chunks[i].section)))
    pairs = []
    for group in (heading, title, neighbour):
        rng.shuffle(group)
        pairs.extend(group[:max_per_kind] if max_per_kind else group)
    return [p for p in pairs if p.negatives]


def split(pairs: list[Pair], held_out: float = 0.1, seed: int = 13) -> tuple[list[Pair], list[Pair]]:
    """Train and held-out pairs, split by section: a held-out section is never trained on."""
    sections = sorted({p.section for p in pairs})
    random.Random(seed).shuffle(sections)
    held = set(sections[: max(1, int(round(held_out * len(sections))))]) if len(sections) > 1 else set()
    return [p for p in pairs if p.section not in held], [p for p in pairs if p.section in held]


def data_hash(pairs: list[Pair]) -> str:
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(json.dumps(asdict(pair), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def counts(pairs: list[Pair]) -> dict[str, int]:
    return dict(sorted(collections.Counter(p.kind for p in pairs).items()))
