"""Great Expectations checks on documents and chunks; failures become quarantine reasons."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from ragops.logs import quiet_libraries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentFacts:
    """What validation needs to know about one document, measured before and after parsing."""

    uri: str
    size_bytes: int
    decodable: bool
    binary: bool
    text_chars: int
    n_chunks: int


def _reason(expectation: str, kwargs: dict, max_bytes: int) -> str:
    column = kwargs.get("column", "")
    if column == "size_bytes":  # one check per bound, so an empty file is never reported as perhaps too large
        return f"over the size limit of {max_bytes} bytes" if kwargs.get("max_value") else "empty (0 bytes)"
    return {
        ("expect_column_values_to_be_in_set", "decodable"): "not decodable as UTF-8 text",
        ("expect_column_values_to_be_in_set", "binary"): "binary content (NUL bytes)",
        ("expect_column_values_to_be_between", "text_chars"): "no text after parsing",
        ("expect_column_values_to_be_between", "n_chunks"): "produced no chunks",
    }.get((expectation, column), f"{expectation} on {column}")


@lru_cache(maxsize=1)
def _gx_batch_definition():
    quiet_libraries()  # before the import, which announces its registry line by line,
    import great_expectations as gx

    quiet_libraries()  # and after it, as GX sets one of its loggers to INFO while it loads

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("ragops").add_dataframe_asset("documents")
    return gx, asset.add_batch_definition_whole_dataframe("refresh")


def document_suite(gx, max_bytes: int):
    suite = gx.ExpectationSuite(name="ragops_documents")
    E = gx.expectations
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="size_bytes", min_value=1))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="size_bytes", max_value=max_bytes))
    suite.add_expectation(E.ExpectColumnValuesToBeInSet(column="binary", value_set=[False]))
    suite.add_expectation(E.ExpectColumnValuesToBeInSet(column="decodable", value_set=[True]))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="text_chars", min_value=1))
    suite.add_expectation(E.ExpectColumnValuesToBeBetween(column="n_chunks", min_value=1))
    suite.add_expectation(E.ExpectColumnValuesToBeUnique(column="uri"))
    return suite


def validate_documents(facts: list[DocumentFacts], max_bytes: int) -> dict[str, str]:
    """Run the document suite; returns {uri: reason} for every document that failed, reasons joined."""
    if not facts:
        return {}
    gx, batch_definition = _gx_batch_definition()
    frame = pd.DataFrame([f.__dict__ for f in facts])
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        document_suite(gx, max_bytes),
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["uri"]},
    )
    reasons: dict[str, list[str]] = {}
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        for row in outcome.result.get("unexpected_index_list") or []:
            reasons.setdefault(row["uri"], []).append(_reason(config.type, config.kwargs, max_bytes))
    return {uri: "; ".join(dict.fromkeys(r)) for uri, r in reasons.items()}


def validate_chunks(frame: pd.DataFrame) -> list[str]:
    """GX checks on an index's chunks (chunk_id, doc_uri, text); returns readable problems, empty when clean."""
    if frame.empty:
        return ["the index has no chunks"]
    gx, batch_definition = _gx_batch_definition()
    suite = gx.ExpectationSuite(name="ragops_chunks")
    E = gx.expectations
    suite.add_expectation(E.ExpectColumnValuesToBeUnique(column="chunk_id"))
    suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column="doc_uri"))
    suite.add_expectation(E.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1))
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    return [f"{r.expectation_config.type} on {r.expectation_config.kwargs.get('column')}: "
            f"{r.result.get('unexpected_count', 0)} bad rows" for r in result.results if not r.success]
