"""Scores per question: containment measures always; ragas' non-LLM metrics; ragas' LLM-judged ones with an LLM."""

from __future__ import annotations

import logging
import math

from ragops.evaluation.measures import HIT_RECALL, context_rank, context_until, doc_rank, token_recall
from ragops.evaluation.testset import EvalItem
from ragops.logs import quiet_libraries

log = logging.getLogger(__name__)
RAGAS_NON_LLM = ("non_llm_context_recall", "non_llm_context_precision_with_reference", "non_llm_string_similarity",
                 "rouge_score")


def containment(item: EvalItem, texts: list[str], uris: list[str], answer: str) -> dict:
    context = context_until(texts)
    recall = token_recall(item.reference_answer, context)
    scores = {"answer_token_recall": recall, "hit": float(recall >= HIT_RECALL),
              "answer_recall": token_recall(item.reference_answer, answer)}
    if item.reference_doc_ids:
        rank = doc_rank(uris, item.reference_doc_ids)
        scores |= {"doc_hit@5": float(rank is not None and rank <= 5), "doc_mrr": 1.0 / rank if rank else 0.0}
    if item.reference_contexts:
        rank = context_rank(texts, item.reference_contexts)
        scores |= {"context_hit@5": float(rank is not None and rank <= 5), "context_mrr": 1.0 / rank if rank else 0.0}
    return scores


def ragas_scores(rows: list[dict], llm=None, embeddings=None) -> list[dict]:
    """rows: user_input, retrieved_contexts, reference_contexts, response, reference. Returns one dict per row."""
    from ragas import EvaluationDataset, evaluate
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall, NonLLMStringSimilarity, RougeScore

    quiet_libraries()  # rouge_score logs "Using default tokenizer." through absl once per question
    samples = [SingleTurnSample(**{k: v for k, v in r.items() if v not in (None, [])}) for r in rows]
    with_contexts = all(s.reference_contexts and s.retrieved_contexts for s in samples)
    metrics = [NonLLMStringSimilarity(), RougeScore()]
    if with_contexts:
        metrics = [NonLLMContextRecall(), NonLLMContextPrecisionWithReference()] + metrics
    if llm is not None:
        from ragas.metrics import Faithfulness, LLMContextRecall, ResponseRelevancy

        metrics += [Faithfulness(), ResponseRelevancy(), LLMContextRecall()]
    result = evaluate(EvaluationDataset(samples=samples), metrics=metrics, llm=llm, embeddings=embeddings,
                      show_progress=False, raise_exceptions=False)
    frame = result.to_pandas()
    names = [c for c in frame.columns if c not in ("user_input", "retrieved_contexts", "reference_contexts",
                                                    "response", "reference")]
    out = []
    for _, row in frame.iterrows():
        scores = {}
        for name in names:
            value = row[name]
            key = "rouge_score" if name.startswith("rouge_score") else name
            scores[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
        out.append(scores)
    return out


def llm_judges(settings, embedder):
    """ragas' LLM and embeddings wrappers over the configured chat endpoint and the local embedding model."""
    if not settings.llm_base_url:
        return None, None
    from langchain_core.embeddings import Embeddings
    from langchain_openai import ChatOpenAI
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper

    class LocalEmbeddings(Embeddings):
        def embed_documents(self, texts):
            return embedder.encode(texts).tolist()

        def embed_query(self, text):
            return embedder.encode([text])[0].tolist()

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    chat = ChatOpenAI(base_url=settings.llm_base_url, model=settings.llm_model, api_key=key, temperature=0,
                      timeout=settings.llm_timeout_s, max_retries=2)
    return LangchainLLMWrapper(chat), LangchainEmbeddingsWrapper(LocalEmbeddings())
