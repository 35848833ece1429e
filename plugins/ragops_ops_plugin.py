"""The "RAG Ops" page in the Airflow UI: index versions, the release and its gates, the evaluation trend, the SLOs,
the health probes and the latest audit, each linked to the DAG that produces it.

The page and its JSON are a FastAPI app mounted at /ragops in the api-server (`fastapi_apps`); "RAG Ops" in the
navigation shows it inside the Airflow UI (`external_views`). Both need an Airflow login. Airflow imports every
module in this folder by its file name and puts the folder on sys.path, so the page's modules are flat files named
ragops_ops_*.py that import each other by those names.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class LazyApp:
    """Task processes import this module too (for plugin macros): the app, FastAPI and Airflow's API security are
    only imported by the api-server, on the first request."""

    def __init__(self) -> None:
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            from ragops_ops_app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class RagOpsPlugin(AirflowPlugin):
    name = "ragops"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": "/ragops", "name": "RAG Ops"}]
    external_views = [{
        "name": "RAG Ops",
        "href": "ragops/",  # relative to the UI's base URL, so it works behind a path prefix too
        "url_route": "rag-ops",  # shown inside the UI, at /plugin/rag-ops
        "destination": "nav",
        "nav_top_level": True,
        "icon": "ragops/icon.svg",
    }]
