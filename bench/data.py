"""Build the RHDH evaluation set from the public dataset repository; prints one JSON summary, logs on stderr.

Source: https://github.com/redhat-ai-dev/lightspeed-evaluation-dataset, given as a local clone, a bare git directory
or a URL (cloned with `git clone --depth 1` into a temporary folder). It writes the layout the benchmarks and tests
read (docs/benchmarks.md, "Evaluation data"):

- docs/<guide>/master.txt: rhdh-product-docs-1.8-Nov19-2025/<guide>/master.txt, byte for byte;
- dev.jsonl: one line per entry of dataset/dataset_raw.yaml, in its order: `id` (metadata.uuid), `question`
  (user_input), `reference_answer` (response), `reference_contexts` (context, whitespace-normalised);
- README.md: provenance, commit and build date.

The full set. The maintainers' copy holds a fixed subset of 140 questions and keeps the rest
back for independent checks; which 140 cannot be derived from public data. So this writes every question (501 at
commit 70293f8), and the benchmarks run on all of them: their figures are not those of docs/benchmarks.md, which
are on the subset. `--subset FILE` keeps only the ids of an existing dev.jsonl (how the maintainers' copy is
rebuilt byte for byte).

    .venv/bin/python bench/data.py --from <clone, bare git dir or URL> [--out DIR] [--subset dev.jsonl] [--force]

--out defaults to $RAGOPS_EVAL_RHDH. It must lie outside this repository (the data is never copied into the
tree) and be empty, or, with --force, hold an earlier build only (docs/, dev.jsonl, README.md), which is replaced.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = "redhat-ai-dev/lightspeed-evaluation-dataset"
DOCS = "rhdh-product-docs-1.8-Nov19-2025"
RAW = "dataset/dataset_raw.yaml"
BUILT = {"docs", "dev.jsonl", "README.md"}
GUIDE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
log = logging.getLogger("bench.data")


class DatasetError(Exception):
    """The input is not the dataset, or the output folder cannot be written; the message says which and why."""


@dataclass
class EvalSet:
    guides: dict[str, Path]  # guide name -> its master.txt in the source
    questions: list[dict]
    commit: str | None


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def git(*args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0"}  # a private URL fails instead of waiting for a password
    return subprocess.run(["git", *args], env=env, capture_output=True, text=True, timeout=600)


def clone(source: str, into: Path) -> Path:
    log.info("cloning %s", source)
    done = git("clone", "--quiet", "--depth", "1", "--", source, str(into))
    if done.returncode:
        raise DatasetError(f"git clone {source} failed: {done.stderr.strip()}")
    return into


def is_bare(path: Path) -> bool:
    done = git("-C", str(path), "rev-parse", "--is-bare-repository")
    return done.returncode == 0 and done.stdout.strip() == "true"


def commit_of(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    done = git("-C", str(root), "rev-parse", "HEAD")
    return done.stdout.strip() if done.returncode == 0 else None


def read_guides(root: Path) -> dict[str, Path]:
    folder = root / DOCS
    if not folder.is_dir():
        raise DatasetError(f"{root} is not the {UPSTREAM} repository: it has no {DOCS}/ folder")
    if not inside(folder, root):
        raise DatasetError(f"{DOCS}/ leads outside {root}")
    guides = {}
    for entry in sorted(folder.iterdir()):
        text = entry / "master.txt"
        if not GUIDE.fullmatch(entry.name):
            raise DatasetError(f"{DOCS}/{entry.name!r}: not a guide name (letters, digits, '.', '_', '-')")
        if not entry.is_dir() or not text.is_file() or not inside(text, folder):
            raise DatasetError(f"{DOCS}/{entry.name}: expected a folder holding master.txt, inside {DOCS}/")
        guides[entry.name] = text
    if not guides:
        raise DatasetError(f"{folder} holds no guide")
    return guides


def read_questions(root: Path) -> list[dict]:
    path = root / RAW
    if not path.is_file():
        raise DatasetError(f"{root} is not the {UPSTREAM} repository: it has no {RAW}")
    if not inside(path, root):
        raise DatasetError(f"{RAW} leads outside {root}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DatasetError(f"{RAW} is not readable YAML: {error}") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise DatasetError(f"{RAW}: expected a mapping with a `data` list")
    questions, seen = [], set()
    for n, entry in enumerate(raw["data"]):
        try:
            uuid, question, answer, contexts = (entry["metadata"]["uuid"], entry["user_input"], entry["response"],
                                                entry["context"])
        except (KeyError, TypeError):
            raise DatasetError(f"{RAW}: entry {n}: expected metadata.uuid, user_input, response and context") from None
        if not isinstance(contexts, list) or not all(isinstance(v, str) for v in (uuid, question, answer, *contexts)):
            raise DatasetError(f"{RAW}: entry {n} ({uuid!r}): expected strings and a list of strings")
        if uuid in seen:
            raise DatasetError(f"{RAW}: entry {n}: id {uuid} repeats")
        seen.add(uuid)
        questions.append({"id": uuid, "question": question, "reference_answer": answer,
                          "reference_contexts": [" ".join(c.split()) for c in contexts]})
    return questions


def read_dataset(root: Path) -> EvalSet:
    return EvalSet(read_guides(root), read_questions(root), commit_of(root))


def keep_ids(questions: list[dict], subset: Path) -> list[dict]:
    try:
        ids = [json.loads(line)["id"] for line in subset.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"--subset {subset}: expected a dev.jsonl with an `id` on each line ({error})") from None
    missing = set(ids) - {q["id"] for q in questions}
    if missing:
        raise DatasetError(f"--subset {subset}: {len(missing)} ids are not in {RAW}, e.g. {sorted(missing)[0]}")
    wanted = set(ids)
    return [q for q in questions if q["id"] in wanted]


def check_out(out: Path, force: bool) -> None:
    if inside(out, REPO) or inside(REPO, out):
        raise DatasetError(f"--out {out} is inside this repository or holds it: the data is never copied into the tree")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is not a folder")
    present = {p.name for p in out.iterdir()} if out.exists() else set()
    if present and not force:
        raise DatasetError(f"--out {out} is not empty (--force replaces an earlier build)")
    if present - BUILT:
        raise DatasetError(f"--out {out} holds more than an earlier build ({', '.join(sorted(present - BUILT))})")
    if (out / "docs").is_symlink():
        raise DatasetError(f"--out {out}/docs is a symbolic link")


def readme(evalset: EvalSet, origin: str, subset: Path | None) -> str:
    commit = f", commit {evalset.commit}" if evalset.commit else ""
    which = (f"The questions whose ids are in {subset} ({len(evalset.questions)})." if subset else
             f"The full set ({len(evalset.questions)} questions), not the maintainers' fixed 140-question subset: "
             "benchmark figures differ from those in docs/benchmarks.md.")
    paragraphs = [
        "# RHDH product-docs evaluation set",
        f"Built by ragops' bench/data.py on {datetime.date.today().isoformat()} from {origin}{commit}.",
        "- `docs/<guide>/master.txt`: the Red Hat Developer Hub 1.8 product documentation, one guide per folder, "
        f"flattened to text ({len(evalset.guides)} guides).\n"
        "- `dev.jsonl`: one JSON object per line: `id`, `question`, `reference_answer`, `reference_contexts` "
        f"(passages from the docs, whitespace-normalised). {which}",
        f"Provenance: the public repository {UPSTREAM} (folder {DOCS} and {RAW}). Its authors generated the "
        "questions with the ragas test-set generator and did not validate them by hand: expect some noisy pairs.",
        "Rules: read it through `RAGOPS_EVAL_RHDH` at test or benchmark time, and never copy it into the ragops tree.",
    ]
    return "\n\n".join(paragraphs) + "\n"


def write(evalset: EvalSet, out: Path, text: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "docs", ignore_errors=True)
    for guide, source in evalset.guides.items():
        target = out / "docs" / guide / "master.txt"
        if not inside(target, out):
            raise DatasetError(f"guide {guide!r} would be written outside {out}")
        target.parent.mkdir(parents=True)
        target.write_bytes(source.read_bytes())
    lines = "".join(json.dumps(q) + "\n" for q in evalset.questions)  # json.dumps' defaults, as in the shared copy
    (out / "dev.jsonl").write_text(lines, encoding="utf-8")
    (out / "README.md").write_text(text, encoding="utf-8")


def checkout(source: str, work: Path) -> tuple[Path, str]:
    """The dataset's folder for `source` (cloned into `work` when it is a bare git dir or a URL), and its origin."""
    local = Path(source)
    if local.is_dir() and (local / DOCS).exists():
        return local, f"a local copy ({local.resolve()})"
    if local.is_dir() and is_bare(local):
        return clone(local.resolve().as_uri(), work), f"a local git directory ({local.resolve()})"
    if local.exists():
        raise DatasetError(f"{source} is not the {UPSTREAM} repository: it has no {DOCS}/ folder")
    if "://" in source or source.startswith("git@"):
        return clone(source, work), source
    raise DatasetError(f"{source}: no such folder, and not a URL")


def build(source: str, out: Path, subset: Path | None = None, force: bool = False) -> dict:
    check_out(out, force)
    with tempfile.TemporaryDirectory(prefix="ragops-eval-data-") as work:
        root, origin = checkout(source, Path(work) / "repo")
        evalset = read_dataset(root)
        if subset:
            evalset.questions = keep_ids(evalset.questions, subset)
        log.info("%d guides, %d questions -> %s", len(evalset.guides), len(evalset.questions), out)
        write(evalset, out, readme(evalset, origin, subset))
    return {"docs": len(evalset.guides), "questions": len(evalset.questions), "out": str(out.resolve()),
            "subset": str(subset) if subset else None, "commit": evalset.commit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help=f"a clone, bare git dir or URL of {UPSTREAM}")
    parser.add_argument("--out", default=os.environ.get("RAGOPS_EVAL_RHDH") or None,
                        help="the folder to write (default: $RAGOPS_EVAL_RHDH); outside this repository")
    parser.add_argument("--subset", type=Path, help="keep only the ids of this dev.jsonl (default: every question)")
    parser.add_argument("--force", action="store_true", help="replace an earlier build in --out")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("--out is required when RAGOPS_EVAL_RHDH is not set")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="data: %(message)s")
    try:
        summary = build(args.source, Path(args.out), args.subset, args.force)
    except DatasetError as error:
        log.error("%s", error)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
