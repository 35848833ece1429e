"""Shared fixtures: isolated settings per test, a small corpus, the shared RHDH set, real Postgres and Redis."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

import fault_matrix
from services import detect

REPO = Path(__file__).resolve().parents[1]
# `make test-fast` sets it: the loop that needs no Airflow process, browser, Celery or model load.
FAST = os.environ.get("RAGOPS_TEST_FAST") == "1"
# What makes a test slow, by marker; each of them also marks the test `slow`, which `make test-fast` deselects.
RESOURCES = {
    "model": "loads the embedding model",
    "airflow": "runs Airflow (a DagBag, dag.test(), airflow standalone or its CLI)",
    "browser": "drives Chromium",
    "celery": "runs Celery workers",
}
# Fixtures that bring a resource with them: a test using one (directly or through another fixture) is marked.
RESOURCE_FIXTURES = {"embedder": "model", "airflow_db": "airflow", "dagbag": "airflow"}
MISSING = detect()  # before any test reads RAGOPS_TEST_DATABASE_URL / RAGOPS_TEST_REDIS_URL
RHDH = Path(os.environ.get("RAGOPS_EVAL_RHDH") or REPO.parent / "shared" / "eval" / "rhdh")  # bench/data.py builds it

CORPUS = {
    "guide/install.md": "# Installing\n\nRun make up to start the platform on one machine.\n\n## Requirements\n\n"
    "You need Python 3.11 and two gigabytes of disk for the virtual environment.\n",
    "guide/refresh.md": "# Refresh\n\nThe refresh DAG runs weekly and whenever the source changes.\n\n## Guards\n\n"
    "A refresh that would delete more than a fifth of the documents is blocked.\n\n## Quarantine\n\n"
    "Documents that fail validation are quarantined with a reason.\n",
    "notes.txt": "# Slack\n\nReports go to the Slack channel, or to the outbox when no token is set.\n",
    "page.html": "<html><head><title>Serving</title></head><body><h1>Serving</h1><p>The serving app answers "
    "from the index and rate-limits heavy traffic.</p><h2>Fallbacks</h2><p>When nothing matches it says so "
    "honestly.</p></body></html>",
    "ops.rst": "Operations\n==========\n\nThe monitoring DAG reviews latency and errors daily.\n",
    "audit.adoc": "= Audit\n\n== Permissions\n\nThe MCP permission audit runs monthly over the access log.\n",
}


def pytest_configure(config):
    for name, what in RESOURCES.items():
        config.addinivalue_line("markers", f"{name}: {what} (also marks the test slow)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & RESOURCE_FIXTURES.keys():
            item.add_marker(RESOURCE_FIXTURES[fixture])
        if any(item.get_closest_marker(name) for name in RESOURCES) and not item.get_closest_marker("slow"):
            item.add_marker("slow")


@pytest.fixture(autouse=True)
def _fast_loop_loads_no_model(request, monkeypatch):
    """In the fast loop a model load is a mistake of marking: fail the test and say which marker it needs."""
    if not FAST:
        return

    def refuse(path, precision="float32"):
        raise RuntimeError(f"{request.node.nodeid} loads the embedding model ({path}) in the fast loop: use the "
                           "`embedder` fixture or mark it @pytest.mark.model")

    monkeypatch.setattr("ragops.ingest.embedding._build_model", refuse)


def clear_ragops_env(monkeypatch) -> None:
    """No RAGOPS_* setting of the shell reaches a test (RAGOPS_TEST_* name the test services and stay)."""
    for key in list(os.environ):
        if key.startswith("RAGOPS_") and not key.startswith("RAGOPS_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    clear_ragops_env(monkeypatch)
    from ragops.config import Settings

    return Settings(home=tmp_path / "home", source=(tmp_path / "corpus").as_uri())


@pytest.fixture
def cli(monkeypatch, capfd):
    """`ragops ARGS` run in this process, as the console script runs it: the test's settings and `env` are its whole
    RAGOPS_* environment, then the exit code, stdout and stderr (captured at the file descriptors) come back as a
    CompletedProcess. A model a command loads stays loaded for the session's later commands;
    tests/include/ragops/cli/test_cli.py keeps one run of the real `python -m ragops`."""
    import subprocess

    from ragops.cli.main import QUIET

    def run(settings, *args, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """`settings` None: the env alone configures the command."""
        from ragops.cli.main import main

        clear_ragops_env(monkeypatch)  # as a fresh process: nothing left from the shell or an earlier call
        home = {"RAGOPS_HOME": str(settings.home), "RAGOPS_SOURCE": settings.source} if settings is not None else {}
        for key, value in {**home, **(env or {})}.items():
            monkeypatch.setenv(key, value)
        capfd.readouterr()
        # main() sets up logging with basicConfig, which does nothing where pytest's handlers are on the root logger
        # already: give the command the stderr handler it would have in its own process, and afterwards put back
        # the levels it changes.
        root, handler = logging.getLogger(), logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        levels = {name: logging.getLogger(name).level for name in ("", *QUIET)}
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if "-v" in args or "--verbose" in args else logging.INFO)
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exc:  # argparse's usage errors, as the console script would exit
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            root.removeHandler(handler)
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
        out, err = capfd.readouterr()
        if check:
            assert code == 0, err[-2000:]
        return subprocess.CompletedProcess(["ragops", *args], code, out, err)

    return run


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def embedder():
    """The session's one embedder. It remembers the vector of every text it has embedded: the same documents and
    questions come back in test after test, and the model runs once per distinct text. Refreshes still embed only
    what the registry's cache lacks, so what a test counts (chunks embedded, reused) is unchanged."""
    import numpy as np

    from ragops.ingest.embedding import Embedder

    class RememberingEmbedder(Embedder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._seen: dict[str, np.ndarray] = {}

        def encode(self, texts, progress: bool = False) -> np.ndarray:
            texts = list(texts)
            new = [text for text in dict.fromkeys(texts) if text not in self._seen]
            if new:
                self._seen.update(zip(new, super().encode(new, progress=progress)))
            if not texts:
                return super().encode(texts)
            return np.stack([self._seen[text] for text in texts])

    return RememberingEmbedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def rhdh() -> Path:
    if not (RHDH / "dev.jsonl").exists():
        pytest.skip(f"the RHDH evaluation set is absent ({RHDH}; RAGOPS_EVAL_RHDH, docs/benchmarks.md)")
    return RHDH


@contextmanager
def throwaway_postgres(template: str | None = None):
    """A new database on the test PostgreSQL server (a copy of `template` when given), dropped afterwards."""
    from support import throwaway_database

    base = os.environ.get("RAGOPS_TEST_DATABASE_URL")
    if not base:
        pytest.skip("RAGOPS_TEST_DATABASE_URL is not set (no PostgreSQL for production-path tests)")
    with throwaway_database(base, "ragops_test", template) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template():
    """The name of a database holding an empty registry at the head revision, migrated once per session."""
    from sqlalchemy.engine import make_url

    from ragops.registry import Registry

    with throwaway_postgres() as url:
        Registry(url).dispose()  # migrates; no connection may stay open on a template that is copied
        yield make_url(url).database


@pytest.fixture
def postgres_url(postgres_template):
    """A database with an empty registry at head, copied from the session's template (CREATE DATABASE ... TEMPLATE),
    dropped afterwards."""
    with throwaway_postgres(postgres_template) as url:
        yield url


@pytest.fixture
def empty_postgres_url():
    """A new, empty database: for the tests of the migrations themselves."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def redis_url():
    url = os.environ.get("RAGOPS_TEST_REDIS_URL")
    if not url:
        pytest.skip("RAGOPS_TEST_REDIS_URL is not set (no Redis for production-path tests)")
    return url


def _fingerprint(root: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def write_corpus(root: Path) -> Path:
    """The small corpus, and nothing else, under `root`."""
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    for rel, text in CORPUS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def refresh_template(home: Path, source: str, embedder) -> None:
    """Index `source` into `home` with the default settings, whatever RAGOPS_* the shell has."""
    from ragops.config import Settings
    from ragops.ingest.refresh import Refresher
    from ragops.registry import Registry

    with pytest.MonkeyPatch.context() as monkeypatch:
        clear_ragops_env(monkeypatch)
        settings = Settings(home=home, source=source)
        registry = Registry(settings.registry_url)
        try:
            Refresher(settings, registry, embedder=embedder).run()
        finally:
            registry.dispose()  # the copies are taken from the files alone


def copy_home(template: Path, settings, fixture: str) -> None:
    import shutil

    assert not settings.home.exists(), f"{fixture} copies an index into {settings.home}, which another fixture filled"
    shutil.copytree(template, settings.home)


@pytest.fixture(scope="session")
def indexed_template(tmp_path_factory, embedder) -> tuple[Path, Path, dict]:
    """(corpus, home, corpus fingerprint): the small corpus refreshed once per session, with the default settings."""
    root = tmp_path_factory.mktemp("indexed-template")
    corpus = write_corpus(root / "corpus")
    refresh_template(root / "home", corpus.as_uri(), embedder)
    return corpus, root / "home", _fingerprint(corpus)


@pytest.fixture
def indexed(settings, indexed_template):
    """Settings whose home holds a refreshed index of the small corpus: a copy of the session's template home, so
    a test writes to its own registry and index. The corpus is the template's, shared and read-only: a test that
    changes documents and refreshes again uses `indexed_own_corpus`; one that writes here fails at teardown, and the
    corpus is written afresh for the tests after it."""
    corpus, home, fingerprint = indexed_template
    copy_home(home, settings, "indexed")
    yield settings.model_copy(update={"source": corpus.as_uri()})
    if _fingerprint(corpus) != fingerprint:
        write_corpus(corpus)
        pytest.fail("this test changed the shared template corpus: use indexed_own_corpus", pytrace=False)


DOCS = REPO / "docs"


@pytest.fixture(scope="session")
def docs_template(tmp_path_factory, embedder) -> Path:
    """A home holding the repository's docs/ (the default corpus) indexed once per session, default settings."""
    home = tmp_path_factory.mktemp("docs-template") / "home"
    refresh_template(home, DOCS.as_uri(), embedder)
    return home


@pytest.fixture
def docs_index(settings, docs_template):
    """Settings whose home is a copy of the session's index of docs/, which is the source."""
    copy_home(docs_template, settings, "docs_index")
    return settings.model_copy(update={"source": DOCS.as_uri()})


@pytest.fixture
def indexed_own_corpus(settings, corpus, embedder):
    """Settings whose home holds a refresh of this test's own copy of the small corpus, which the test may change."""
    from ragops.ingest.refresh import Refresher

    Refresher(settings, embedder=embedder).run()
    return settings


def pytest_runtest_logreport(report):
    fault_matrix.gather(report)


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # under xdist, the controller has every report
        fault_matrix.write()


def pytest_terminal_summary(terminalreporter):
    """One line: the suites that could not run on this machine, and why."""
    reasons = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]).removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else ""
        reasons[reason] = reasons.get(reason, 0) + 1
    parts = [f"{name} ({why})" for name, why in MISSING.items()]
    parts += [f"{n} test{'s' if n > 1 else ''}: {reason}" for reason, n in sorted(reasons.items())
              if reason and not any(name in reason for name in MISSING)]
    if parts:
        terminalreporter.write_line("not run here: " + "; ".join(parts))
