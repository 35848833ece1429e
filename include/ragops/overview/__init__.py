"""The platform at a glance: one read-only summary of the registry for the RAG Ops page in the Airflow UI."""

from ragops.overview.summary import SECTIONS, ops_summary, page_summary

__all__ = ["SECTIONS", "ops_summary", "page_summary"]
