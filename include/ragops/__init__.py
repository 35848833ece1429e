"""ragops: the core library of the RAG + MCP assistant platform. It never imports Airflow."""

__version__ = "0.1.0"
