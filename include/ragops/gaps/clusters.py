"""Cluster question vectors and name each cluster by its distinctive terms.

HDBSCAN (scikit-learn) on the normalised embeddings: it finds clusters of any number and size and leaves the one-off
questions out as noise, which a gap report wants; k-means would force every question into some cluster, and
agglomerative clustering needs the full n x n distance matrix (80 GB at 100,000 questions). Above PROJECT_ABOVE
questions HDBSCAN works on a PCA projection, which keeps its tree search fast (trees degrade in 384 dimensions; as
BERTopic reduces before HDBSCAN); below it, the full vectors, since PCA fitted on a few dozen questions distorts
them. docs/benchmarks.md has the cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIMENSIONS = 16  # PCA components HDBSCAN works in, for large sets
PROJECT_ABOVE = 1_000
NOISE = -1


@dataclass
class Cluster:
    members: list[int]  # indices into the clustered questions
    centroid: np.ndarray  # unit vector in the embedding space
    terms: list[str]
    radius: float  # the lowest cosine similarity of a member to the centroid

    def representatives(self, vectors: np.ndarray, n: int = 3) -> list[int]:
        """The members closest to the centroid, closest first."""
        sims = vectors[self.members] @ self.centroid
        return [self.members[i] for i in np.argsort(-sims, kind="stable")[:n]]


def cluster_vectors(vectors: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """A label per row (NOISE for questions in no cluster); deterministic for the same input."""
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    n = len(vectors)
    if n < max(2, min_cluster_size):
        return np.full(n, NOISE)
    if n > PROJECT_ABOVE and vectors.shape[1] > DIMENSIONS:
        vectors = PCA(n_components=DIMENSIONS, random_state=0).fit_transform(vectors)
    return HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(vectors)


def distinctive_terms(texts: list[str], labels: np.ndarray, top: int = 4) -> dict[int, list[str]]:
    """c-TF-IDF: each cluster's questions joined into one document, the rest (noise) into another, and sklearn's
    TfidfVectorizer over those documents; a cluster's highest-weighted terms are the ones its questions use and the
    others do not."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    classes = sorted(set(labels.tolist()))
    documents = [" ".join(t for t, lab in zip(texts, labels) if lab == c) for c in classes]
    try:
        matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True, token_pattern=r"(?u)\b[a-zA-Z][\w-]+\b",
                                 max_features=50_000).fit(documents)
    except ValueError:  # only stop words (or nothing) to go on
        return {c: [] for c in classes if c != NOISE}
    weights = matrix.transform(documents).toarray()
    vocabulary = matrix.get_feature_names_out()
    names = {}
    for row, c in enumerate(classes):
        if c == NOISE:
            continue
        order = np.argsort(-weights[row], kind="stable")
        names[c] = [str(vocabulary[i]) for i in order[:top] if weights[row, i] > 0]
    return names


def clusters(vectors: np.ndarray, texts: list[str], min_cluster_size: int) -> list[Cluster]:
    labels = cluster_vectors(vectors, min_cluster_size)
    names = distinctive_terms(texts, labels) if (labels != NOISE).any() else {}
    out = []
    for label in sorted(set(labels.tolist()) - {NOISE}):
        members = np.flatnonzero(labels == label).tolist()
        mean = vectors[members].mean(axis=0)
        centroid = mean / max(float(np.linalg.norm(mean)), 1e-12)
        out.append(Cluster(members, centroid.astype(np.float32), names.get(label, []),
                           float((vectors[members] @ centroid).min())))
    return out
