"""The embedded default answer: the most relevant sentences of the best passages, with citations."""

from __future__ import annotations

import re

from ragops.index import SearchHit

STOP = set("the a an of to and or in on for with is are be by as at from that this it its can you your use using "
           "which when what how do does i me my we our there their was were will would should could".split())
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n|…")  # "…" also marks what context packing left out (packing.py)
_WRAPPED = re.compile(r"(?<=\S)\n(?![\n*\-#|.\d])")  # a hard wrap inside a paragraph, not a new bullet
_WORD = re.compile(r"[a-z0-9]+")
LABEL = "Extractive answer (no language model is configured; these sentences are quoted from the sources):"


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP}


def extractive_answer(question: str, hits: list[SearchHit], max_sentences: int = 3) -> tuple[str, list[int]]:
    """Returns the answer text and the indexes of the hits it cites."""
    wanted = content_words(question)
    scored = []
    for i, hit in enumerate(hits):
        body = hit.text.split("\n\n", 1)[-1] if hit.heading and hit.text.startswith(hit.heading) else hit.text
        for position, sentence in enumerate(s.strip(" *-\t") for s in _SENTENCE.split(_WRAPPED.sub(" ", body))):
            if len(sentence.split()) < 6:  # headings, bullets and fragments read badly on their own
                continue
            overlap = len(wanted & content_words(sentence))
            if overlap == 0:
                continue  # a sentence that shares no word with the question does not answer it
            scored.append((overlap - 0.3 * i - 0.05 * position, i, position, sentence))
    best, seen = [], set()
    for item in sorted(scored, reverse=True):
        key = " ".join(item[3].lower().split())
        if key not in seen:  # the same sentence often appears in several guides
            seen.add(key)
            best.append(item)
        if len(best) == max_sentences:
            break
    if not best:
        best = [(0, 0, 0, hits[0].text[:400].strip())]
    best.sort(key=lambda item: (item[1], item[2]))  # reading order within each source
    lines = [f"{sentence} [{i + 1}]" for _, i, _, sentence in best]
    return LABEL + "\n" + " ".join(lines), sorted({i for _, i, _, _ in best})
