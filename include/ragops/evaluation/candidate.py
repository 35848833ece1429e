"""Comparing a blue/green candidate with the stable release on the test set, before it may become a release."""

from __future__ import annotations

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.registry import Registry
from ragops.releases import ReleaseInfo, current_rollout


class CandidateWorse(RagopsError):
    code = "candidate_rejected"
    exit_code = 5


def evaluate_candidate(settings: Settings, index_version_id: int, name: str, *, answer_config: dict | None = None,
                       testset: str | None = None, registry: Registry | None = None, service=None) -> dict:
    """Evaluate stable, then the candidate, on the same test set; the candidate is compared with stable's baseline.

    Stable's run is compared with stable's last accepted run and, if it passes, becomes the baseline the candidate
    is judged against (question by question, by the same paired tests as every evaluation). Raises CandidateWorse.
    """
    from ragops.answer.pipeline import AnswerService
    from ragops.evaluation.report import cumulative_decline
    from ragops.evaluation.runner import evaluate_releases
    from ragops.evaluation.testset import load_testset

    registry = registry or Registry(settings.registry_url)
    service = service or AnswerService(settings, registry)
    candidate = ReleaseInfo(-index_version_id, name, index_version_id, answer_config or {})
    stable, candidate_report = evaluate_releases(settings, load_testset(testset or settings.eval_testset), service,
                                                 [("stable", current_rollout(registry).stable),
                                                  ("candidate", candidate)], registry)
    result = {"stable": stable.to_dict(), "candidate": candidate_report.to_dict()}
    if candidate_report.regressed:
        c = candidate_report.comparison
        worse = [f"{d['metric']} {d['current']:.3f} < {d['previous']:.3f} (p={d['p']:.4f})" for d in c["drops"]]
        worse += [f"{b['metric']} {b['current']:.3f} beyond its floor {b['floor']:.3f}" for b in c["below_floor"]]
        worse += [cumulative_decline(c)] if cumulative_decline(c) else []
        lost = [q["id"] for q in c["questions"] if q["worse"]][:10]
        raise CandidateWorse(f"the candidate evaluates worse than the stable release (run {candidate_report.run_id}): "
                             + ", ".join(worse) + (f"; questions lost: {', '.join(lost)}" if lost else ""))
    return result
