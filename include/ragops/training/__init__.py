"""The reader trained here, from the corpus alone: weak pairs, a cross-encoder reranker and an adapted embedder.

`train_models` (run.py) is the one entry point, for `ragops models train` and the `model_training` DAG. It never
changes what users get: a trained model is an artefact (models/artifacts.py) that reaches them only through the
release path (`ragops.rollout.retrain`: candidate, evaluation against the accepted run, canary).
"""
