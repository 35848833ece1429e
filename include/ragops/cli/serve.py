"""ask, serve and mcp. The serving package is launched by name (as uvicorn does), never imported by the library."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

from ragops.config import Settings


def ask(args):
    from ragops.answer.llm import build_chat_model
    from ragops.answer.pipeline import AnswerService
    from ragops.mcp_client import ToolConfig
    from ragops.monitoring.events import EventWriter, request_event

    settings = Settings()
    service = AnswerService(settings, chat_model=build_chat_model(settings),
                            tools=[ToolConfig.from_dict(t) for t in settings.mcp_tools])
    user = args.user or f"cli:{os.getenv('USER', 'unknown')}"

    async def answer():
        if service.tools:  # the same pins hold here as in the app: a changed tool is not called
            from ragops.mcp_tools.guard import ToolGuard
            from ragops.mcp_tools.sampling import LiveSampler

            service.tool_guard = ToolGuard(service.registry, service.tools,
                                           sampler=LiveSampler.from_settings(settings, service.tools))
            await service.tool_guard.start()
        return await service.ask(args.question, user_key=user, k=args.k)

    result = asyncio.run(answer())
    events = EventWriter(service.registry, spool=settings.event_spool_path)
    events.record("request", **request_event(os.urandom(8).hex(), "cli.ask", user, result.status, result.latency_ms,
                                             variant=result.variant, release_id=result.release_id,
                                             fallback=result.fallback, chunk_ids=result.chunk_ids,
                                             verified=True))  # whoever runs the CLI holds the registry's credentials
    events.close()
    payload = result.to_dict()
    human = result.answer + "".join(f"\n  [{c['n']}] {c['doc_uri']}" for c in result.citations)
    if result.status >= 500:
        payload["error"] = {"code": result.fallback, "message": result.answer}
        return payload, human, 1
    return payload, human, 0


def serve(args):
    """One worker runs in this process with these settings. Several workers are uvicorn's children: they are started
    with their configuration in their own environment (this process's is never modified)."""
    settings = Settings()
    settings.ensure_home()
    public_url = settings.public_url if "public_url" in settings.model_fields_set else f"http://{args.host}:{args.port}"
    if args.workers <= 1:
        import uvicorn

        app = importlib.import_module("serving.app").create_app(settings.model_copy(update={"public_url": public_url}))
        # proxy_headers off: uvicorn would believe X-Forwarded-For from loopback; the app trusts RAGOPS_TRUSTED_PROXIES
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False, proxy_headers=False,
                    http=importlib.import_module("serving.protocol").HTTP_PROTOCOL)  # unparsable requests get JSON
        return None
    metrics_dir = settings.home / "prometheus"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    env = dict(os.environ, RAGOPS_PUBLIC_URL=public_url, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))  # /metrics sums workers
    argv = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory", "--host", args.host,
            "--port", str(args.port), "--workers", str(args.workers), "--log-level", "info", "--no-access-log",
            "--no-proxy-headers", "--http", "serving.protocol:HTTP_PROTOCOL"]
    os.execve(sys.executable, argv, env)


def mcp_stdio(args):
    importlib.import_module("serving.mcp_server").run_stdio(Settings())
    return None


def add_parsers(sub, common) -> None:
    p = sub.add_parser("ask", parents=[common], help="answer a question from the live index")
    p.add_argument("question")
    p.add_argument("--user", help="user id (routing to stable or canary is sticky per user)")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.set_defaults(handler=ask)

    p = sub.add_parser("serve", parents=[common], help="run the HTTP app and the MCP server (/mcp)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(handler=serve)

    p = sub.add_parser("mcp", parents=[common], help="run the MCP server over stdio")
    p.set_defaults(handler=mcp_stdio)
