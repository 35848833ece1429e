"""Knowing when the knowledge base does not answer: calibrated evidence, not a list of words.

Two signals, both measured on what retrieval returned:
- `similarity`: the best cosine similarity of the query to any chunk (the semantic score);
- `coverage`: the share of the question's distinctive terms that occur in the top passages, each term weighted by
  its inverse document frequency in the indexed corpus. A term the corpus never uses weighs most, so "FIPS mode on
  RHEL" asked of a portal's docs scores low even when "mode" and "enable" match everywhere. Misspelt terms are
  matched to the corpus vocabulary first (edit similarity), so typos do not read as unknown concepts. An unknown
  term that is an everyday word (whole in the embedding model's general-English vocabulary: "trying", "stuff")
  weighs `common_weight` times as much: the corpus not using it says nothing about the topic.
The question is refused when `coverage + sim_weight * similarity < threshold`. The weight and the threshold were
fitted by cross-validation (bench/quality.py, docs/benchmarks.md) and a release's answer config can override them.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

from ragops.index import SearchHit

_TOKEN = re.compile(r"[a-z0-9][a-z0-9\-]*[a-z0-9]|[a-z0-9]")
# Function words and the words every question uses; they carry no evidence about the corpus either way.
STOP = frozenset("""a an the of to and or in on for with is are be by as at from that this it its can could would
should will you your i me my we our us they them their there here what which who whom whose when where why how do
does did done doing use using used about into onto over under than then so if not no yes any all some each more most
other such only own same too very just also get set make need want way ways something anything please tell explain
describe give show help know like new one two was were been being have has had may might must shall happen happens
happened mean means meant see sees go goes going hold holds work works called""".split())  # + the verbs questions are built with


@dataclass(frozen=True)
class AbstentionPolicy:
    sim_weight: float = 2.0  # fitted by 5-fold cross-validation, docs/benchmarks.md
    threshold: float = 1.56
    top_passages: int = 3  # where the question's terms must occur
    fuzzy_min: float = 85.0  # rapidfuzz ratio for mapping a term the corpus lacks onto one it has
    common_weight: float = 0.0

    @classmethod
    def from_config(cls, config: dict | None) -> "AbstentionPolicy":
        config = config or {}
        return cls(**{k.removeprefix("abstain_"): v for k, v in config.items()
                      if k.startswith("abstain_") and k.removeprefix("abstain_") in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Evidence:
    similarity: float
    coverage: float
    missing: tuple[str, ...]  # distinctive terms absent from the top passages, most distinctive first

    def score(self, policy: AbstentionPolicy) -> float:
        return self.coverage + policy.sim_weight * self.similarity

    def answerable(self, policy: AbstentionPolicy) -> bool:
        return self.score(policy) >= policy.threshold

    def to_dict(self) -> dict:
        return {"similarity": round(self.similarity, 4), "coverage": round(self.coverage, 4),
                "missing": list(self.missing)}


def terms(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP and len(t) > 1]


class Vocabulary:
    """Document frequencies of the indexed chunks (one pinned index version never changes, so neither does this)."""

    def __init__(self, texts: Iterable[str], is_common: Callable[[str], bool] = lambda term: False):
        self.is_common = is_common
        self.df: Counter[str] = Counter()
        self.n = 0
        for text in texts:
            self.n += 1
            self.df.update(set(terms(text)))
        self._known = list(self.df)
        self._mapped: dict[str, str | None] = {}

    def idf(self, term: str) -> float:
        return math.log((self.n + 1) / (self.df.get(term, 0) + 0.5))

    def canonical(self, term: str, fuzzy_min: float) -> str | None:
        """The term itself when the corpus has it, else its closest corpus term (a typo), else None."""
        if term in self.df:
            return term
        if term not in self._mapped:
            from rapidfuzz import fuzz, process

            found = process.extractOne(term, self._known, scorer=fuzz.ratio, score_cutoff=fuzzy_min) if len(term) > 3 \
                else None
            self._mapped[term] = found[0] if found else None
        return self._mapped[term]


def evidence(question: str, passages: list[SearchHit], similarity: float | None, vocabulary: Vocabulary,
             policy: AbstentionPolicy) -> Evidence:
    wanted = dict.fromkeys(terms(question))
    if not wanted:
        return Evidence(similarity or 0.0, 0.0, ())
    seen = set(terms(" ".join(p.text for p in passages[: policy.top_passages])))
    weights, found, missing = {}, 0.0, []
    for term in wanted:
        canonical = vocabulary.canonical(term, policy.fuzzy_min)
        weight = vocabulary.idf(canonical or term)
        if canonical is None and vocabulary.is_common(term):
            weight *= policy.common_weight
        weights[term] = weight
        if canonical is not None and (canonical in seen or term in seen):
            found += weight
        else:
            missing.append(term)
    total = sum(weights.values())
    missing.sort(key=lambda t: -weights[t])
    return Evidence(similarity or 0.0, found / total if total else 0.0, tuple(missing))


_DECLINE = re.compile(
    r"\b(no (matching|relevant) information (was|is|could be) found|(the )?(provided |given )?(context|passages|"
    r"documentation|sources) (do|does) not (contain|include|mention|cover|provide)|i (don't|do not|cannot|can't) "
    r"(know|find|answer)|not (covered|mentioned|found) in the (provided |given )?(context|passages|documentation))\b",
    re.IGNORECASE)


def is_decline(reply: str) -> bool:
    """Whether a language model's reply says the context does not answer (as the system prompt asks it to).

    A reply that cites a passage ([1]) is an answer, even if it notes a gap; a decline leads the reply.
    """
    if re.search(r"\[\d+\]", reply):
        return False
    return bool(_DECLINE.search(reply.strip()[:300]))
