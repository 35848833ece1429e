"""The RAG Ops FastAPI app: the page at /ragops/, its JSON at /ragops/api/summary, both behind the Airflow login.

Airflow mounts plugin apps without authenticating them, so every route here depends on Airflow's own security:
a caller without a valid Airflow token gets 401 (the page redirects a browser to the login instead), a caller
who may not read DAG runs gets 403. The registry is read through `ragops.overview.page_summary` only.
"""

from pathlib import Path
from urllib.parse import quote

PREFIX = "/ragops"
ICON = Path(__file__).with_name("ragops_ops_icon.svg")

def latest_runs(dag_ids: list[str]) -> dict[str, dict]:
    """Each DAG as Airflow knows it: present or not, paused or not, and its latest run."""
    from sqlalchemy import select

    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    found = {}
    with create_session() as session:
        for dag_id in dag_ids:
            dag = session.get(DagModel, dag_id)
            run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)
                                  .order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(1)).first()
            found[dag_id] = {
                "exists": dag is not None and not dag.is_stale,
                "paused": bool(dag.is_paused) if dag is not None else None,
                "latest_run": None if run is None else {
                    "run_id": run.run_id, "state": str(run.state.value if hasattr(run.state, "value") else run.state),
                    "run_type": str(getattr(run.run_type, "value", run.run_type)),
                    "run_after": run.run_after.isoformat() if run.run_after else None,
                    "end_date": run.end_date.isoformat() if run.end_date else None},
            }
    return found

def ui_base(request) -> str:
    """The Airflow UI's path prefix: this app is mounted at <prefix>/ragops."""
    return request.scope.get("root_path", "").removesuffix(PREFIX)

def route(request) -> str:
    """The path inside this app ("/", "/api/summary"), whatever prefix it is mounted under."""
    return request.url.path.removeprefix(request.scope.get("root_path", "")) or "/"

def with_links(summary: dict, runs: dict[str, dict], base: str) -> dict:
    for section in summary["sections"].values():
        dag_id = section["dag_id"]
        dag = runs.get(dag_id) or {"exists": False, "paused": None, "latest_run": None}
        dag_url = f"{base}/dags/{quote(dag_id, safe='')}"
        run = dag["latest_run"]
        if run is not None:
            run = run | {"url": f"{dag_url}/runs/{quote(run['run_id'], safe='')}"}
        section["dag"] = dag | {"dag_id": dag_id, "url": dag_url if dag["exists"] else None, "latest_run": run}
    return summary

def build(request) -> dict:
    from ragops.config import Settings
    from ragops.overview import page_summary

    summary = page_summary(Settings())
    runs = latest_runs([section["dag_id"] for section in summary["sections"].values()])
    return with_links(summary, runs, ui_base(request))

def create_app():
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    from ragops.errors import StoreUnavailable
    from ragops_ops_page import error_page, render

    # Authentication and authorization for every route, declared once so that no route can ship without it.
    app = FastAPI(title="RAG Ops", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))])

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        if exc.status_code == 401 and route(request) == "/":
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return JSONResponse({"error": {"code": "unauthorized" if exc.status_code == 401 else "forbidden",
                                       "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(StoreUnavailable)
    async def registry_down(request: Request, exc: StoreUnavailable):
        if route(request) != "/":
            return JSONResponse(exc.to_dict(), status_code=503)
        return HTMLResponse(error_page(str(exc)), status_code=503)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(render(build(request)), headers={"Cache-Control": "no-store"})

    @app.get("/api/summary")
    def summary(request: Request) -> JSONResponse:
        return JSONResponse(build(request), headers={"Cache-Control": "no-store"})

    @app.get("/icon.svg")
    def icon() -> Response:
        return Response(ICON.read_bytes(), media_type="image/svg+xml")

    return app
