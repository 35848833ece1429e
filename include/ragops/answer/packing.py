"""Context packing: fill the context budget with the sentences that answer, not with whole passages.

A passage is about 1,000 characters, so a 4,000-character budget holds four of them, most of each beside the point.
Packing splits the top passages into units (sentences; list items, table rows, a short code block or the lines of a
long one), scores every unit with a reader, and fills the budget greedily, each chosen unit with its neighbours.

- The order fuses two rankings by reciprocal rank (k=60, the constant of retrieval's own fusion, so nothing here
  is fitted): the reader's ranking of the units (its score per unit) and retrieval's ranking of the passages (each
  unit has its passage's rank). Retrieval saw BM25 and the passage's surroundings, which one sentence's score cannot;
  it ranks passages, not sentences, so it has no say within a passage. Ranks need no calibration between the two.
  With k=60, the best unit of passage 20 ties with the 20th best unit of passage 1.
- Each chosen unit brings `neighbours` units before and after it (when they fit), so a sentence keeps the one that
  introduces it and the one that finishes its thought.
- A packed passage keeps its heading line once, its units in document order, "…" where units were left out, and
  the citation of the passage it came from (chunk id, document, title, heading, `extra["chunk_ids"]`). Packed
  passages come in the order their best unit was chosen: the most relevant evidence first.
- The budget is never exceeded: costs are counted per piece (units, separators, headings, fences). With the
  default counter, characters, the packed texts' lengths sum to at most the budget. A token counter (an LLM's
  tokenizer, batched) counts pieces separately, which for common BPE tokenizers is no less than the whole.
- Splitting is line by line with linear-time expressions (one fixed-width look-behind; see ingest/chunking.py).
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ragops.answer.passages import RRF_CONSTANT
from ragops.index import SearchHit

Scorer = Callable[[str, Sequence[str]], list[float]]  # (query, texts) -> one score per text, higher is better
Counter = Callable[[Sequence[str]], list[int]]  # batched sizes in the budget's unit (characters by default)

OMISSION = "…"
MAX_UNIT_CHARS = 400  # a longer run of text is no sentence any more: it is cut at spaces into pieces of this size
_SENTENCE = re.compile(r"(?<=[.!?])(\s+)")  # one fixed-width look-behind and one whitespace run: linear
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]")
_RULE = frozenset("|-: \t")


def characters(texts: Sequence[str]) -> list[int]:
    return [len(t) for t in texts]


@dataclass(frozen=True)
class Unit:
    text: str
    sep: str  # the separator before it when its predecessor is shown too: " ", "\n" or "\n\n"
    group: int = -1  # the code block or table it is a line of (its fences or header are shown once), or -1
    code: bool = False  # a whole fenced block or a line of one: never cut


@dataclass
class Split:
    """A passage as packing sees it: its heading line (never scored) and its units in document order."""

    heading: str
    units: list[Unit]
    groups: list[tuple[str, str]] = field(default_factory=list)  # (opening, closing) text of each group


def _pieces(text: str, limit: int) -> list[str]:
    """`text` cut at whitespace into pieces of at most `limit` characters (a word longer than that is cut)."""
    out, pos, n = [], 0, len(text)
    while pos < n:
        if n - pos <= limit:
            out.append(text[pos:])
            break
        cut = max(text.rfind(" ", pos, pos + limit + 1), text.rfind("\n", pos, pos + limit + 1))
        if cut <= pos:
            cut = pos + limit
        out.append(text[pos:cut])
        pos = cut
        while pos < n and text[pos] in " \n\t":
            pos += 1
    return [p.strip() for p in out if p.strip()]


def _sentences(block: str, sep: str, limit: int) -> list[Unit]:
    item = _ITEM.match(block)  # a list item's marker ("1.", "-") stays with its first sentence
    marker = block[: item.end()].strip() + " " if item else ""
    parts = _SENTENCE.split(block[item.end():] if item else block)  # text, gap, text, gap, ...
    units: list[Unit] = []
    for i in range(0, len(parts), 2):
        gap = parts[i - 1] if i else ""
        first_sep = sep if not units else ("\n" if "\n" in gap else " ")
        for j, piece in enumerate(_pieces(parts[i], limit)):
            units.append(Unit(piece, first_sep if j == 0 else " "))
    if marker and units:
        units[0] = Unit(marker + units[0].text, units[0].sep)
    return units


def _blocks(lines: list[str]) -> list[tuple[str, list[str], bool, bool]]:
    """(kind, lines, blank line before, closed) for paragraphs, list items, tables and fenced code, in one pass."""
    blocks: list[tuple[str, list[str], bool, bool]] = []
    blank, i = False, 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            blank, i = True, i + 1
            continue
        fence = _FENCE.match(line)
        if fence:  # up to the closing fence (at least as long, nothing else on its line), or the end
            mark, j = fence.group(1), i + 1
            while j < len(lines) and not (lines[j].lstrip().startswith(mark) and not lines[j].strip(mark[0] + " \t")):
                j += 1
            blocks.append(("code", lines[i : j + 1], blank, j < len(lines)))
            i = j + 1
        elif line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            blocks.append(("table", lines[i:j], blank, True))
            i = j
        elif _ITEM.match(line) or not blocks or blank or blocks[-1][0] in ("code", "table"):
            blocks.append(("item" if _ITEM.match(line) else "para", [line], blank, True))
            i += 1
        else:  # a wrapped or continued line of the paragraph or item before
            blocks[-1][1].append(line)
            i += 1
        blank = False
    return blocks


def split(hit: SearchHit, limit: int = MAX_UNIT_CHARS) -> Split:
    """Units of one passage; the first line is its heading when it equals `hit.heading`."""
    first, _, rest = hit.text.partition("\n")
    heading = ""
    if hit.heading and first.strip() == hit.heading.strip():
        heading, body = first.strip(), rest
    else:
        body = hit.text
    units: list[Unit] = []
    groups: list[tuple[str, str]] = []
    for kind, lines, blank, closed in _blocks(body.split("\n")):
        sep = "" if not units else "\n\n" if blank else "\n"
        if kind == "code":
            whole = "\n".join(lines).strip("\n")
            inner = lines[1:-1] if closed else lines[1:]
            if len(whole) <= limit or not any(line.strip() for line in inner):
                units.append(Unit(whole, sep, code=True))
                continue
            groups.append((lines[0].rstrip(), lines[-1].strip() if closed else ""))
            gap = sep
            for line in inner:
                if not line.strip():
                    gap = "\n\n"
                    continue
                for j, piece in enumerate(_pieces(line.rstrip(), limit) if len(line) > limit else [line.rstrip()]):
                    units.append(Unit(piece, gap if j == 0 else " ", len(groups) - 1, code=True))
                gap = "\n"
        elif kind == "table":
            header = len(lines) > 2 and set(lines[1].strip()) <= _RULE and "-" in lines[1]
            if header:
                groups.append(("\n".join(line.rstrip() for line in lines[:2]), ""))
            for j, line in enumerate(lines[2:] if header else lines):
                for k, piece in enumerate(_pieces(line.strip(), limit)):
                    units.append(Unit(piece, (sep if j == 0 else "\n") if k == 0 else " ",
                                      len(groups) - 1 if header else -1))
        else:
            units.extend(_sentences("\n".join(lines).strip(), sep, limit))
    return Split(heading, [u for u in units if u.text.strip()], groups)


class _Packing:
    """The chosen units of one passage and their exact cost, kept incrementally (each step is O(log n))."""

    def __init__(self, hit: SearchHit, parts: Split, cost: Callable[[str], int], unit_costs: list[int]):
        self.hit, self.parts, self.cost, self.unit_costs = hit, parts, cost, unit_costs
        self.chosen: list[int] = []
        self.members: set[int] = set()
        self.per_group: dict[int, int] = {}

    def _join(self, a: int | None, b: int | None) -> int:
        if a is None or b is None:
            return 0
        return self.cost(self.parts.units[b].sep) if b == a + 1 else self.cost(self._omission(b))

    def _omission(self, b: int) -> str:
        return f"\n{OMISSION}\n" if "\n" in self.parts.units[b].sep else f" {OMISSION} "

    def add(self, i: int) -> int:
        """Choose unit i; returns how much the packed text grew."""
        at = bisect.bisect_left(self.chosen, i)
        before = self.chosen[at - 1] if at else None
        after = self.chosen[at] if at < len(self.chosen) else None
        grown = self.unit_costs[i] + self._join(before, i) + self._join(i, after) - self._join(before, after)
        if not self.chosen and self.parts.heading:
            grown += self.cost(self.parts.heading) + self.cost("\n\n")
        group = self.parts.units[i].group
        if group >= 0 and not self.per_group.get(group):
            opening, closing = self.parts.groups[group]
            grown += self.cost(opening) + self.cost("\n") + (self.cost("\n") + self.cost(closing) if closing else 0)
        if group >= 0:
            self.per_group[group] = self.per_group.get(group, 0) + 1
        self.chosen.insert(at, i)
        self.members.add(i)
        return grown

    def remove(self, i: int) -> None:
        del self.chosen[bisect.bisect_left(self.chosen, i)]
        self.members.discard(i)
        group = self.parts.units[i].group
        if group >= 0:
            self.per_group[group] -= 1

    def text(self) -> str:
        units, out = self.parts.units, [self.parts.heading, "\n\n"] if self.parts.heading else []
        previous, open_group = None, -1
        for i in self.chosen:
            unit = units[i]
            if previous is not None:
                if open_group >= 0 and unit.group != open_group:
                    out += ["\n", self.parts.groups[open_group][1]] if self.parts.groups[open_group][1] else []
                    open_group = -1
                out.append(unit.sep if i == previous + 1 else self._omission(i))
            if unit.group >= 0 and unit.group != open_group:
                out += [self.parts.groups[unit.group][0], "\n"]
                open_group = unit.group
            out.append(unit.text)
            previous = i
        if open_group >= 0 and self.parts.groups[open_group][1]:
            out += ["\n", self.parts.groups[open_group][1]]
        return "".join(out)


def _fused_order(scores: list[float], passage_rank: list[int]) -> list[int]:
    """Candidates (in retrieval's order) by reciprocal rank fusion of the passage's rank and the reader's rank."""
    n = len(scores)
    by_reader = sorted(range(n), key=lambda c: (-scores[c], c))
    reader_rank = [0] * n
    for rank, c in enumerate(by_reader, start=1):
        reader_rank[c] = rank
    fused = [1 / (RRF_CONSTANT + passage_rank[c]) + 1 / (RRF_CONSTANT + reader_rank[c]) for c in range(n)]
    return sorted(range(n), key=lambda c: (-fused[c], c))


def _cut(text: str, budget: int, count: Counter) -> str:
    """The longest prefix of `text` ending at a space, plus "…", whose size fits `budget` (binary search).

    Sizes grow with the prefix for characters and for any tokenizer, so the search needs log n counts."""
    spaces = [m.start() for m in re.finditer(r"\s", text)] or list(range(1, len(text)))  # one long word: anywhere
    lo, hi, best = 0, len(spaces) - 1, ""
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = text[: spaces[mid]].rstrip() + OMISSION
        if count([candidate])[0] <= budget:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best if best.strip(OMISSION + " ") else ""


def pack(query: str, hits: Sequence[SearchHit], scorer: Scorer, budget: int = 4000, neighbours: int = 1,
         count: Counter = characters, max_unit_chars: int = MAX_UNIT_CHARS) -> list[SearchHit]:
    """The packed passages for `query`: at most `budget` (in `count`'s unit), never an empty one."""
    if budget <= 0 or not hits:
        return []
    splits = [split(hit, max_unit_chars) for hit in hits]
    candidates = [(p, i) for p, parts in enumerate(splits) for i in range(len(parts.units))]
    if not candidates:
        return []
    texts = [splits[p].units[i].text for p, i in candidates]
    scores = [float(s) for s in scorer(query, texts)]
    if len(scores) != len(texts):
        raise ValueError(f"the scorer returned {len(scores)} scores for {len(texts)} texts")
    costs = count(texts)
    fixed: dict[str, int] = {}

    def cost(piece: str) -> int:
        if piece not in fixed:
            fixed[piece] = count([piece])[0]
        return fixed[piece]

    per_passage: list[list[int]] = [[] for _ in splits]
    for (p, _), c in zip(candidates, costs):
        per_passage[p].append(c)
    packings = [_Packing(hit, parts, cost, unit_costs) for hit, parts, unit_costs in zip(hits, splits, per_passage)]
    order, total, first_chosen = _fused_order(scores, [p + 1 for p, _ in candidates]), 0, []
    for c in order:
        p, i = candidates[c]
        packing = packings[p]
        if i in packing.members:
            continue
        window = [i] + [j for d in range(1, neighbours + 1) for j in (i - d, i + d)
                        if 0 <= j < len(packing.parts.units) and j not in packing.members]
        for attempt in (window, [i]) if len(window) > 1 else ([i],):
            was_empty, grown = not packing.chosen, 0
            for j in attempt:
                grown += packing.add(j)
            if total + grown <= budget:
                total += grown
                if was_empty:
                    first_chosen.append(p)
                break
            for j in attempt:
                packing.remove(j)
    if not first_chosen:  # not even one unit fits: the start of the best sentence, cut at a space (code never)
        p, i = next((candidates[c] for c in order if not splits[candidates[c][0]].units[candidates[c][1]].code),
                    (None, None))
        if p is None:
            return []
        heading = splits[p].heading
        room = budget - cost(heading) - cost("\n\n") if heading else 0
        text = _cut(splits[p].units[i].text, room, count) if room > 0 else ""
        text = f"{heading}\n\n{text}" if text else _cut(splits[p].units[i].text, budget, count)
        return [_packed(hits[p], text)] if text else []
    return [_packed(hits[p], packings[p].text()) for p in first_chosen]


def _packed(hit: SearchHit, text: str) -> SearchHit:
    return SearchHit(hit.chunk_id, hit.doc_uri, hit.score, text, hit.heading, hit.title, hit.similarity,
                     dict(hit.extra, packed=True))


class EmbeddingScorer:
    """The default reader, which needs no model beyond the retriever's: cosine of the query and each unit.

    Vectors come from the embedder in one batch per call; unit vectors are kept in a bounded LRU, since the same
    passages come back for related questions.
    """

    def __init__(self, embedder, queries=None, cache_size: int = 8192):
        self.embedder, self.queries, self.cache_size = embedder, queries, cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        q = self.queries.encode(query) if self.queries is not None else self.embedder.encode([query])[0]
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            found.update(zip(missing, self.embedder.encode(missing)))
            with self._lock:
                for t in missing:
                    self._cache[t] = found[t]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return (np.stack([found[t] for t in texts]) @ np.asarray(q, dtype=np.float32)).tolist()
