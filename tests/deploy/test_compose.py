"""docker-compose.yaml, read structurally (no Docker here): start-up order, health checks, restart policies, pinned
images, the settings it passes, and the files beside it (.env.example, the Dockerfile, scripts/compose-env.sh)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
from importlib.resources import files
from urllib.parse import urlparse

import pytest
import yaml

from support import REPO

COMPOSE_TEXT = (REPO / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
ONE_SHOT = {"ragops-data-init", "airflow-init"}
AIRFLOW = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
           "airflow-worker"}
SECRETS = {"POSTGRES_PASSWORD", "REGISTRY_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET",
           "AIRFLOW_API_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD", "WEAVIATE_API_KEY", "WEAVIATE_READER_API_KEY"}
PUBLISHED = {"airflow-apiserver": ["8080"], "serving": ["8000"], "grafana": ["3000"]}  # each behind a login or key
OPT_IN = {"prometheus": "9090", "alertmanager": "9093", "weaviate": "8080"}  # deploy/compose/publish-<name>.yaml
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's substitution for the forms this file uses: ${X}, ${X:-default}, ${X:?error}; $$ escapes."""
    def one(match):
        name, op, arg = match.groups()
        current = env.get(name, "")
        if op == ":?" and not current:
            raise KeyError(f"{name}: {arg}")
        return current or (arg if op == ":-" else "")

    return VARIABLE.sub(one, value).replace("$$", "$")


def dotenv(path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def env_of(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    raw = SERVICES[service].get("environment") or {}
    return {k: interpolate(str(v), env or {n: "x" for n in SECRETS}) for k, v in raw.items()}


def test_services_wait_for_the_init_jobs_and_for_healthy_dependencies():
    assert {"postgres", "redis", "weaviate", "serving", "prometheus", "grafana", "alertmanager"} | AIRFLOW <= set(SERVICES)
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions starts too early"
        for dependency, rule in depends.items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if dependency in ONE_SHOT:
                assert rule == {"condition": "service_completed_successfully"}, f"{name} -> {dependency}"
            else:
                assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    for name in AIRFLOW - {"airflow-init"} | {"serving"}:
        assert SERVICES[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert {"postgres", "redis"} <= set(SERVICES[name]["depends_on"]), name
    assert SERVICES["airflow-init"]["depends_on"]["ragops-data-init"] == {"condition": "service_completed_successfully"}
    assert {"weaviate", "airflow-apiserver"} <= set(SERVICES["airflow-worker"]["depends_on"])
    assert "weaviate" in SERVICES["serving"]["depends_on"]
    assert "serving" not in SERVICES["prometheus"].get("depends_on", {})  # it must run to report serving down


def test_every_service_has_a_restart_policy_and_every_daemon_a_health_check():
    for name, service in SERVICES.items():
        if name in ONE_SHOT:  # jobs that exit: others wait for them to complete, and they must not restart
            assert service["restart"] == "no" and "healthcheck" not in service, name
            continue
        assert service["restart"] in ("always", "unless-stopped"), name
        check = service["healthcheck"]
        assert not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert all(k in check for k in ("interval", "timeout", "retries", "start_period")), name
    assert "/v1/.well-known/ready" in " ".join(SERVICES["weaviate"]["healthcheck"]["test"])
    assert "8974/health" in " ".join(SERVICES["airflow-scheduler"]["healthcheck"]["test"])
    assert env_of("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert "inspect ping" in " ".join(SERVICES["airflow-worker"]["healthcheck"]["test"])
    used = {dep for s in SERVICES.values() for dep, rule in (s.get("depends_on") or {}).items()
            if rule["condition"] == "service_healthy"}
    assert all("healthcheck" in SERVICES[dep] for dep in used)


def test_images_are_pinned_to_exact_versions():
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        exact = r"\d+\.\d+" if repository == "postgres" else r"v?\d+\.\d+\.\d+"  # PostgreSQL: 16.8 is a release
        assert re.fullmatch(exact, tag), f"{name}: {image} is not pinned to an exact version"
        if "build" in service:
            assert image == f"ragops:{version}", name
    weaviate = tuple(int(p) for p in SERVICES["weaviate"]["image"].rpartition(":")[2].split("."))
    assert weaviate >= (1, 32, 0)  # collection aliases
    base = re.search(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert re.fullmatch(r"apache/airflow:\d+\.\d+\.\d+-python3\.11", base), base
    import airflow

    assert base.split(":")[1].startswith(airflow.__version__ + "-"), "the image's Airflow differs from the pinned one"


def test_airflow_components_share_the_secrets_and_reach_the_execution_api():
    envs = {name: env_of(name) for name in AIRFLOW}
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL"):
            assert env[key] == envs["airflow-apiserver"][key], f"{name}: {key} differs"
    url = urlparse(envs["airflow-worker"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == "airflow-apiserver" and url.path == "/execution/"
    assert SERVICES["airflow-apiserver"]["command"] == "api-server"
    assert str(url.port) == SERVICES["airflow-apiserver"]["ports"][0].rsplit(":", 1)[1]
    assert SERVICES["airflow-worker"]["command"] == "celery worker"
    assert SERVICES["airflow-worker"]["deploy"]["replicas"] >= 2


def test_airflow_talks_to_postgres_through_psycopg_3():
    """The driver requirements.txt pins, as tests/production runs Airflow: the sync and the async engine and the
    Celery result backend alike (left unset, the async URL would ask for asyncpg, which is not installed)."""
    import importlib.util

    env = env_of("airflow-scheduler")
    sync = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert sync.startswith("postgresql+psycopg://") and env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == sync
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + sync
    assert env["RAGOPS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert importlib.util.find_spec("psycopg") is not None
    requirements = (REPO / "requirements.txt").read_text()
    assert re.search(r"^psycopg\[binary\]==3\.", requirements, re.MULTILINE)
    assert re.search(r"^celery==5\.6\.3$", requirements, re.MULTILINE)  # the celery provider's imports need it


def test_airflow_settings_exist_in_the_installed_airflow():
    """Every AIRFLOW__SECTION__KEY is an option of Airflow 3's config templates or of the Celery provider's."""
    from airflow.providers.celery.get_provider_info import get_provider_info

    sections = yaml.safe_load(files("airflow").joinpath("config_templates/config.yml").read_text())
    sections |= get_provider_info()["config"]
    names = {k for s in SERVICES.values() for k in (s.get("environment") or {}) if k.startswith("AIRFLOW__")}
    assert len(names) > 10
    for name in names:
        section, key = name.removeprefix("AIRFLOW__").lower().split("__", 1)
        assert key in sections.get(section, {}).get("options", {}), f"{name} is not an Airflow option"


def test_ragops_settings_in_compose_env_example_and_dockerfile_exist():
    from ragops.config import Settings

    fields = {f"RAGOPS_{name.upper()}" for name in Settings.model_fields}
    texts = {"docker-compose.yaml": COMPOSE_TEXT, ".env.example": (REPO / ".env.example").read_text(),
             "Dockerfile": (REPO / "Dockerfile").read_text()}
    for source, text in texts.items():
        names = set(re.findall(r"\bRAGOPS_[A-Z0-9_]+", text))
        assert names - fields == set(), f"{source} names settings that ragops.config.Settings lacks"
    assert {"RAGOPS_PUBLIC_URL", "RAGOPS_SLACK_TOKEN", "RAGOPS_DATABASE_URL"} <= set(re.findall(r"RAGOPS_[A-Z_]+", COMPOSE_TEXT))


def test_public_url_points_at_the_serving_service():
    url = urlparse(env_of("airflow-scheduler")["RAGOPS_PUBLIC_URL"])
    command = SERVICES["serving"]["command"]
    assert url.hostname == "serving" and str(url.port) == command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from the other containers
    for name in AIRFLOW:
        assert env_of(name)["RAGOPS_PUBLIC_URL"] == "http://serving:8000", name


def test_an_unset_slack_token_selects_the_outbox(monkeypatch, tmp_path):
    from ragops.config import Settings
    from ragops.notify import OutboxNotifier, build_notifier

    env = {k: v for k, v in env_of("airflow-worker", dotenv(REPO / ".env.example") | {n: "x" for n in SECRETS}).items()
           if k.startswith("RAGOPS_")}
    assert env["RAGOPS_SLACK_TOKEN"] == ""  # what compose passes when .env leaves it empty
    for key in [k for k in os.environ if k.startswith("RAGOPS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAGOPS_HOME", str(tmp_path))
    settings = Settings()
    assert settings.slack_token is None and settings.store == "weaviate" and settings.llm_base_url is None
    assert isinstance(build_notifier(settings), OutboxNotifier)


def test_the_data_volume_is_writable_by_the_airflow_user():
    home = env_of("airflow-worker")["RAGOPS_HOME"]
    volume = next(v.split(":")[0] for v in SERVICES["airflow-worker"]["volumes"] if v.split(":")[1] == home)
    init = SERVICES["ragops-data-init"]
    assert init["user"] == "0:0" and f"{volume}:{home}" in init["volumes"]
    assert re.search(rf"chown -R 50000:0 [^&]*{re.escape(home)}", " ".join(init["command"]))
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"mkdir -p {re.escape(home)}.*chown -R airflow:0 /opt/ragops", dockerfile)
    serving_home = env_of("serving")["RAGOPS_HOME"]
    assert not any(v.endswith(serving_home) for v in SERVICES["serving"].get("volumes", []))


def test_monitoring_is_provisioned():
    prometheus = SERVICES["prometheus"]["volumes"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in prometheus
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "ragops-serving")
    assert job["dns_sd_configs"][0]["names"] == ["serving"] and job["dns_sd_configs"][0]["port"] == 8000
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


def test_only_the_uis_and_the_api_are_published_and_on_bind_address():
    published = {name: [p.rsplit(":", 1)[1] for p in s["ports"]] for name, s in SERVICES.items() if s.get("ports")}
    assert published == PUBLISHED, "Prometheus, Alertmanager and Weaviate stay inside the compose network"
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"
    example = dotenv(REPO / ".env.example")
    assert example["BIND_ADDRESS"] == "127.0.0.1"
    assert "0.0.0.0" not in [v for v in example.values()]
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Production"):]
    for url in ("http://localhost:8080", "http://localhost:8000/docs", "http://localhost:3000"):
        assert url in section, url
    assert "scripts/compose-env.sh" in section and "docker compose up" in section


def test_each_internal_service_can_be_published_by_its_own_opt_in_file():
    for name, port in OPT_IN.items():
        path = REPO / "deploy" / "compose" / f"publish-{name}.yaml"
        override = yaml.safe_load(path.read_text())
        assert set(override["services"]) == {name}, path  # one port per file: nothing else opens with it
        (mapping,) = override["services"][name]["ports"]
        assert mapping.startswith("${BIND_ADDRESS:-127.0.0.1}:") and mapping.endswith(f":{port}"), mapping
        assert f"deploy/compose/publish-{name}.yaml" in (REPO / "README.md").read_text()
    assert "COMPOSE_FILE=docker-compose.yaml:deploy/compose/publish-" in (REPO / ".env.example").read_text()


def test_weaviate_requires_the_api_keys_that_ragops_sends():
    weaviate = env_of("weaviate", {n: f"secret-{n}" for n in SECRETS})
    assert weaviate["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert weaviate["AUTHENTICATION_APIKEY_ENABLED"] == "true"
    for name in AIRFLOW:
        env = env_of(name, {n: f"secret-{n}" for n in SECRETS})
        assert env["RAGOPS_WEAVIATE_API_KEY"] == "secret-WEAVIATE_API_KEY", name
    for secret in ("WEAVIATE_API_KEY", "WEAVIATE_READER_API_KEY"):  # no key: compose refuses, never anonymous
        with pytest.raises(KeyError, match=secret):
            env_of("weaviate", {n: "x" for n in SECRETS - {secret}})
    assert "ports" not in SERVICES["weaviate"]


def test_the_serving_app_holds_only_the_read_only_weaviate_key():
    """Keys and users pair by position; the reader's user is on the read-only list alone, and serving never holds the
    writer's key under any name."""
    secrets = {n: f"secret-{n}" for n in SECRETS}
    weaviate = env_of("weaviate", secrets)
    users = dict(zip(weaviate["AUTHENTICATION_APIKEY_ALLOWED_KEYS"].split(","),
                     weaviate["AUTHENTICATION_APIKEY_USERS"].split(",")))
    writer, reader = users["secret-WEAVIATE_API_KEY"], users["secret-WEAVIATE_READER_API_KEY"]
    assert len(users) == 2 and writer != reader
    assert weaviate["AUTHORIZATION_ADMINLIST_ENABLED"] == "true"
    assert weaviate["AUTHORIZATION_ADMINLIST_USERS"].split(",") == [writer]
    assert weaviate["AUTHORIZATION_ADMINLIST_READONLY_USERS"].split(",") == [reader]
    serving = env_of("serving", secrets)
    assert serving["RAGOPS_WEAVIATE_READER_API_KEY"] == "secret-WEAVIATE_READER_API_KEY"
    assert "RAGOPS_WEAVIATE_API_KEY" not in serving
    assert not [k for k, v in serving.items() if "secret-WEAVIATE_API_KEY" in v]


def test_the_event_spool_lives_on_a_named_volume_the_serving_user_owns():
    env = env_of("serving")
    spool = env["RAGOPS_EVENT_SPOOL"]
    mounts = dict(v.split(":")[:2][::-1] for v in SERVICES["serving"]["volumes"])  # container path -> source
    mount = next(path for path in mounts if spool.startswith(path + "/"))
    volume = mounts[mount]
    assert volume in COMPOSE["volumes"], "a named volume: it outlives a re-created container"
    assert not spool.startswith(env["RAGOPS_HOME"])  # not the per-container home cleared at start
    init = SERVICES["ragops-data-init"]
    assert f"{volume}:{mount}" in init["volumes"] and mount in " ".join(init["command"])
    from ragops.config import Settings

    assert Settings(home=env["RAGOPS_HOME"], event_spool=spool).event_spool_path.as_posix() == spool


def _render(tmp_path, **env) -> subprocess.CompletedProcess:
    script = REPO / "deploy" / "alertmanager" / "start.sh"
    base = {"PATH": os.environ["PATH"], "ALERTMANAGER_SECRETS_DIR": str(tmp_path / "secrets"),
            "ALERTMANAGER_RENDERED": str(tmp_path / "alertmanager.yml")}
    return subprocess.run(["sh", str(script), "--render-only"], env=base | env, capture_output=True, text=True)


def test_alertmanager_starts_through_the_script_that_renders_its_receivers():
    service = SERVICES["alertmanager"]
    assert service["entrypoint"] == ["/bin/sh", "/etc/alertmanager/start.sh"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in service["volumes"]
    env = env_of("alertmanager", {"RAGOPS_SLACK_TOKEN": "xoxb-1"})
    assert env["RAGOPS_SLACK_TOKEN"] == "xoxb-1" and "ALERTMANAGER_SLACK_WEBHOOK_URL" in env
    assert env_of("airflow-worker")["RAGOPS_SLACK_TOKEN"] == env_of("alertmanager")["RAGOPS_SLACK_TOKEN"]


def test_alertmanager_posts_to_slack_with_the_token_ragops_uses(tmp_path):
    result = _render(tmp_path, RAGOPS_SLACK_TOKEN="xoxb-secret", RAGOPS_SLACK_CHANNEL="#ops-alerts")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert "xoxb-secret" not in result.stdout  # the token is in a file, never in the config
    assert config["route"]["receiver"] == "team" and {r["name"] for r in config["receivers"]} == {"pager", "team"}
    for receiver in config["receivers"]:
        (slack,) = receiver["slack_configs"]
        assert slack["api_url"] == "https://slack.com/api/chat.postMessage" and slack["channel"] == "#ops-alerts"
        token_file = slack["http_config"]["authorization"]["credentials_file"]
        assert open(token_file).read() == "xoxb-secret"
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert "Slack channel #ops-alerts" in result.stderr


def test_a_webhook_wins_and_without_either_the_null_receivers_say_so(tmp_path):
    hook = "https://hooks.slack.com/services/T0/B0/xyz"
    result = _render(tmp_path, RAGOPS_SLACK_TOKEN="xoxb-secret", ALERTMANAGER_SLACK_WEBHOOK_URL=hook)
    for receiver in yaml.safe_load(result.stdout)["receivers"]:
        assert open(receiver["slack_configs"][0]["api_url_file"]).read() == hook
    bare = _render(tmp_path / "bare")
    assert bare.returncode == 0
    assert yaml.safe_load(bare.stdout)["receivers"] == [{"name": "pager"}, {"name": "team"}]
    assert "WARNING" in bare.stderr and "reach no one" in bare.stderr
    hostile = _render(tmp_path / "hostile", RAGOPS_SLACK_TOKEN="x", RAGOPS_SLACK_CHANNEL="#a'\nroute: {}")
    assert hostile.returncode != 0 and "not a Slack channel name" in hostile.stderr


def test_the_rendered_alertmanager_configs_pass_amtool(tmp_path):
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian package prometheus-alertmanager; .ci/run installs it)")
    for case, env in {"token": {"RAGOPS_SLACK_TOKEN": "xoxb-1"}, "none": {},
                      "hook": {"ALERTMANAGER_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}}.items():
        rendered = _render(tmp_path / case, **env)
        (tmp_path / f"{case}.yml").write_text(rendered.stdout)
        checked = subprocess.run([amtool, "check-config", str(tmp_path / f"{case}.yml")], capture_output=True, text=True)
        assert checked.returncode == 0, case + checked.stdout + checked.stderr


def test_env_example_defines_every_variable_compose_requires():
    example = dotenv(REPO / ".env.example")
    required = {m.group(1) for m in VARIABLE.finditer(COMPOSE_TEXT) if m.group(2) == ":?"}
    assert required == SECRETS and SECRETS <= set(example)
    bare = {m.group(1) for m in VARIABLE.finditer(COMPOSE_TEXT) if m.group(2) is None}
    assert bare <= set(example), "a ${VAR} without a default must be in .env.example"
    with pytest.raises(KeyError, match="AIRFLOW_FERNET_KEY"):  # an unfilled secret stops compose with a message
        env_of("airflow-worker", {n: "x" for n in SECRETS - {"AIRFLOW_FERNET_KEY"}})


def test_compose_env_script_writes_fresh_secrets_once(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "compose-env.sh", tmp_path / "scripts")
    shutil.copy(REPO / ".env.example", tmp_path)
    result = subprocess.run(["bash", str(tmp_path / "scripts" / "compose-env.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    env = dotenv(tmp_path / ".env")
    assert set(env) == set(dotenv(REPO / ".env.example"))
    assert all(len(env[name]) >= 32 for name in SECRETS)
    assert len(base64.urlsafe_b64decode(env["AIRFLOW_FERNET_KEY"])) == 32
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    again = subprocess.run(["bash", str(tmp_path / "scripts" / "compose-env.sh")], capture_output=True, text=True)
    assert again.returncode == 1 and dotenv(tmp_path / ".env") == env  # never overwrites secrets in use


def test_a_webhook_or_token_that_is_not_one_is_refused_before_anything_is_written(tmp_path):
    """Attacked after landing: a newline or a quote in .env reached the secret files (then Alertmanager's URL or an
    Authorization header) and showed only when the first alert failed to go out."""
    for env in ({"ALERTMANAGER_SLACK_WEBHOOK_URL": "https://hooks.slack.com/x'\nevil: 1"},
                {"ALERTMANAGER_SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/T0/B0/xyz"},
                {"RAGOPS_SLACK_TOKEN": "xoxb-1\r\nX-Evil: 1"}):
        result = _render(tmp_path / "h", **env)
        assert result.returncode == 64 and "is not a" in result.stderr
        assert not (tmp_path / "h" / "secrets").exists() or not any((tmp_path / "h" / "secrets").iterdir())
