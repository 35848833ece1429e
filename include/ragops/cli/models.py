"""models: train the reader from the corpus, list the trained models, propose one as a candidate release."""

from __future__ import annotations

from ragops.config import Settings


def models(args):
    settings = Settings()
    if args.action == "list":
        from ragops.training.run import list_models

        found = list_models(settings)
        human = "\n".join(f"{m['ref']}: index version {m['index_version']}, held-out MRR "
                          f"{(m['held_out'] or {}).get('before_cosine', {}).get('mrr')} -> "
                          f"{(m['held_out'] or {}).get('after', {}).get('mrr')}" for m in found) or "no trained models"
        return {"models": found}, human, 0
    if args.action == "train":
        from ragops.evaluation.growth import evaluation_questions
        from ragops.training.run import train_models

        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        result = train_models(settings, kinds=kinds, max_seconds=args.max_seconds,
                              evaluation_questions=evaluation_questions(settings))
        human = "\n".join(f"{m['ref']}: held-out MRR {m['held_out']['before_cosine']['mrr']} (embedding cosine) -> "
                          f"{m['held_out']['after']['mrr']}, {m['training']['steps']} steps in "
                          f"{m['training']['seconds']} s" for m in result["models"].values())
        if not result["votes"].get("off"):
            human += f"\nusers' votes: {result['votes']['pairs']} pairs from {result['votes']['votes']} votes"
        if args.propose:
            from ragops.rollout.retrain import propose

            result["proposed"] = propose(settings, [m["ref"] for m in result["models"].values()],
                                         actor="ragops models train")
            human += "\n" + "\n".join(p.get("release") and f"{p['ref']}: candidate release {p['release']}"
                                      or f"{p['ref']}: not registered: {p['rejected']}" for p in result["proposed"])
        return result, human, 0
    from ragops.errors import ConfigError
    from ragops.rollout.retrain import propose

    if not args.refs:
        raise ConfigError("`ragops models propose` needs the trained models to propose, e.g. trained:reranker/1")
    proposed = propose(settings, args.refs, actor="ragops models propose")
    human = "\n".join(p.get("release") and f"{p['ref']}: candidate release {p['release']}"
                      or f"{p['ref']}: not registered: {p['rejected']}" for p in proposed)
    return {"proposed": proposed}, human, 0 if all("release" in p for p in proposed) else 5


def add_parsers(sub, common) -> None:
    p = sub.add_parser("models", parents=[common], help="the reader trained from the corpus: train, list, propose")
    p.add_argument("action", choices=["train", "list", "propose"])
    p.add_argument("refs", nargs="*", help="propose: trained models, e.g. trained:reranker/1")
    p.add_argument("--kinds", default="reranker,embedder", help="train: reranker, embedder or both (comma-separated)")
    p.add_argument("--max-seconds", type=float, default=840.0, help="train: the time budget of the whole run (training, held-out scoring, saving)")
    p.add_argument("--propose", action="store_true", help="train: then evaluate each model as a candidate release")
    p.set_defaults(handler=models)
