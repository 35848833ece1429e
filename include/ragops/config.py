"""One settings object. Nothing else in ragops reads os.environ."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = "all-MiniLM-L6-v2"
MASK = "***"
# query or fragment parameters that carry a credential (token, api_key, access_token, X-Amz-Signature, sig, ...)
_SECRET_PARAM = re.compile(r"token|key|pass|pwd|secret|signature|^sig$|auth|credential|session", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


class Settings(BaseSettings):
    """Every knob of ragops, read from the environment with the prefix RAGOPS_."""

    # An empty variable means "unset": compose passes `RAGOPS_SLACK_TOKEN: ${RAGOPS_SLACK_TOKEN:-}`, which must select
    # the outbox rather than a Slack client with the token ''.
    model_config = SettingsConfigDict(env_prefix="RAGOPS_", extra="ignore", env_ignore_empty=True)

    home: Path = Field(default=Path(".ragops"), description="data directory")
    source: str = Field(default_factory=lambda: (REPO_ROOT / "docs").as_uri())
    database_url: str | None = None
    store: str = "lance"
    weaviate_url: str | None = None
    weaviate_grpc_port: int = 50051
    weaviate_api_key: SecretStr | None = Field(default=None, description="the Weaviate API key with write rights "
                                               "(an AUTHORIZATION_ADMINLIST_USERS user): refreshes, promotion, "
                                               "pruning; Airflow and the CLI")
    weaviate_reader_api_key: SecretStr | None = Field(default=None, description="the read-only Weaviate API key (an "
                                                      "AUTHORIZATION_ADMINLIST_READONLY_USERS user) the serving app "
                                                      "connects with; unset there: RAGOPS_WEAVIATE_API_KEY, with a "
                                                      "warning")
    weaviate_read_only: bool = Field(default=False, description="this process only reads Weaviate and connects with "
                                     "RAGOPS_WEAVIATE_READER_API_KEY; the serving app sets it itself")
    # The approximate vector index (index/ann.py, docs/configuration.md#approximate-vector-index)
    ann_min_rows: int = Field(default=20_000, ge=256, description="a collection with at least this many chunks gets "
                              "an approximate vector index (IVF-SQ on LanceDB); below it dense search is exact")
    ann_nprobes: int = Field(default=20, ge=1, le=4096, description="IVF partitions a LanceDB dense query searches: "
                             "more is better recall and slower")
    ann_refine_factor: int = Field(default=10, ge=1, le=100, description="LanceDB re-scores this many times the "
                                   "wanted candidates with their full vectors")
    ann_ef: int = Field(default=-1, ge=-1, le=4096, description="Weaviate's HNSW query list size; -1: dynamic (8 x "
                        "the limit, 100 to 500)")
    ann_min_indexed_share: float = Field(default=0.9, gt=0, le=1, description="the index is retrained when it holds "
                                         "less than this share of the rows")
    ann_recall_floor: float = Field(default=0.9, gt=0, le=1, description="the index is retrained when recall@10 "
                                    "measured after a write falls below this")
    ann_recall_sample: int = Field(default=8, ge=0, le=1000, description="queries per write that measure recall "
                                   "against an exact scan (each costs one full scan); 0 measures none")
    weaviate_prefix: str = Field(default="Ragops", pattern=r"^[A-Z][A-Za-z0-9]{0,39}$", description="the prefix of "
                                 "every Weaviate collection and of the live alias (<prefix>_live): one per deployment "
                                 "sharing a Weaviate, so neither prunes nor promotes the other's versions")
    weaviate_index_wait_s: float = Field(default=600.0, gt=0, le=86400, description="how long a write waits for "
                                         "Weaviate to index its vectors; past it the write fails (index_wait_timeout), "
                                         "its half-built version is deleted and the refresh lease released")
    retention_days: float = Field(default=30.0, ge=0, description="index versions made within this many days stay "
                                  "readable (the rollback window), on every backend")
    retention_min_versions: int = Field(default=3, ge=2, description="the newest versions of a collection always kept, "
                                        "however old")
    embedding_model: str = DEFAULT_MODEL
    embed_batch_size: int = Field(default=16, description="texts per forward pass; on 2 CPU cores 8-32 encode "
                                  "fastest (64 pads more: 11% slower at bfloat16, 33% at float32; docs/benchmarks.md)")
    embedding_precision: str = Field(default="auto", description="auto (bfloat16 where the CPU has native bfloat16, "
                                     "else float32) | float32 | bfloat16 | int8; see docs/benchmarks.md")
    embedding_endpoint: str | None = Field(default=None, description="a remote embedding server's base URL (e.g. "
                                           "http://gpu-1:8080); unset: the model runs here. RAGOPS_EMBEDDING_MODEL "
                                           "then names the served model")
    embedding_protocol: Literal["openai", "tei"] = Field(default="openai", description="openai: POST /v1/embeddings "
                                                         "(OpenAI, vLLM, Infinity, TEI); tei: text-embeddings-inference's "
                                                         "POST /embed")
    embedding_api_key: SecretStr | None = Field(default=None, description="sent as Authorization: Bearer to the "
                                                "embedding endpoint")
    embedding_timeout_s: float = Field(default=30.0, gt=0, description="one request to a remote embedding or rerank "
                                       "endpoint")
    embedding_max_batch: int = Field(default=32, ge=1, description="texts per request to a remote endpoint (TEI's "
                                     "--max-client-batch-size is 32 by default)")
    embedding_dim: int | None = Field(default=None, ge=1, description="the dimension the embedding model's vectors "
                                      "must have, checked before anything is written; unset: a remote model's first "
                                      "answer sets it")
    embedding_tokenizer: str | None = Field(default=None, description="a local tokenizer (path or cached name) that "
                                            "sizes chunks for a remote model; unset: the packaged MiniLM's")
    reranker_model: str | None = Field(default=None, description="a sentence-transformers CrossEncoder by name (from "
                                       "the local Hugging Face cache, offline) or path; unset: no reranker")
    reranker_endpoint: str | None = Field(default=None, description="a text-embeddings-inference server's base URL "
                                          "whose POST /rerank scores passages; wins over RAGOPS_RERANKER_MODEL")
    reranker_api_key: SecretStr | None = Field(default=None, description="sent as Authorization: Bearer to the "
                                               "rerank endpoint")
    dag_batch_chunks: int = 512
    chunk_max_tokens: int | None = Field(default=128, description="tokens per chunk, heading line included; at most "
                                         "the model's max_seq_length (None: that length)")
    query_batching: bool = True  # concurrent queries are embedded in one batch
    query_batch_max: int = 32
    query_batch_window_ms: float = 1.0  # waited only when other queries are already queued
    query_cache_size: int = 4096  # hot query vectors kept (LRU); 0 turns the cache off
    max_document_bytes: int = 5_000_000
    mass_delete_ratio: float = 0.2
    source_timeout_s: float = Field(default=30.0, description="total timeout of one request to an http(s) source")
    source_feed: bool = Field(default=True, description="plan a refresh from the source's change feed (a local "
                              "folder's journal under RAGOPS_HOME/feeds) when it can vouch for every change since the "
                              "last refresh; false: list and fingerprint the whole source every time")
    source_full_listing_days: float = Field(default=7.0, gt=0, description="a refresh lists the whole source when "
                                            "the last full listing is older than this, whatever the feed says (the "
                                            "periodic reconciliation)")
    parse_budget_s: float = Field(default=30.0, description="CPU seconds one document may take to parse and "
                                   "chunk")
    lock_ttl_s: float = Field(default=300.0, description="a lease not renewed for this long is taken over")
    lock_heartbeat_s: float = Field(default=60.0, description="how often a lease holder renews its lease")
    refresh_stale_after_s: float = Field(default=21600.0, description="a stepwise (DAG) refresh run idle this long "
                                                                        "is abandoned: marked failed, staged rows removed")
    pause_at: Literal["embedding", "index_write", "index_committed"] | None = Field(
        default=None, description="testing only: block a refresh at this point until the process is killed")

    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 10.0  # one attempt
    llm_deadline_s: float = 15.0  # one answer, retries included: a hanging model gives llm_unavailable within it
    llm_answer_max_chars: int = Field(default=20000, ge=1, description="an answer's characters at most, streamed or "
                                      "not: a model that runs on is cut there (truncated, llm_unavailable)")

    slack_token: SecretStr | None = None
    slack_channel: str = "#ragops"
    slack_base_url: str | None = None

    eval_testset: str | None = Field(default=None, description="JSONL test set; default: the bundled one")
    eval_unanswerable: str | None = Field(default=None, description="JSONL of questions the corpus does not answer "
                                          "(default: the bundled set; 'none' skips abstention metrics)")
    eval_alpha: float = 0.05  # hit_rate at alpha first, then the other metrics Holm-corrected at alpha
    # A passing run becomes the baseline only if it has not declined by more than this (absolute, on any compared
    # metric) since the reference: the run a person last accepted, else the first accepted run (evaluation.md).
    eval_max_cumulative_drop: float = Field(default=0.10, ge=0)
    eval_floors: dict[str, float] = Field(default_factory=dict, description='JSON, e.g. {"hit_rate": 0.6}; '
                                           'without a baseline these override the defaults (hit_rate and '
                                           'answer_token_recall 0.5)')
    # Content gaps (docs/content-gaps.md): the failed questions of a period, clustered.
    gaps_max_questions: int = Field(default=100_000, ge=10, description="newest failed questions clustered per period; "
                                    "bounds the monthly job's time and memory (docs/benchmarks.md)")
    gaps_min_cluster_size: int = Field(default=5, ge=2, description="fewest questions that make a content gap")
    gaps_top_clusters: int = Field(default=20, ge=1, description="clusters a report keeps, largest reach first")
    grown_testset_dir: Path | None = Field(default=None, description="versions of the grown test set; default: "
                                           "testsets/grown under RAGOPS_HOME")
    slo_p95_latency_ms: float = 1500.0
    slo_error_rate: float = 0.01
    slo_availability: float = 0.995
    # A pipeline whose last successful run is older than this is overdue; /metrics exports the windows for the alerts.
    freshness_refresh_hours: float = 192.0  # weekly refresh, plus a day
    freshness_eval_hours: float = 768.0  # monthly evaluation, plus a day
    freshness_audit_hours: float = 768.0  # monthly audit, plus a day
    status_metrics_interval_s: float = Field(default=30.0, gt=0, description="how often /metrics re-reads the registry")

    rollout_stages: list[float] = Field(default_factory=lambda: [10.0, 25.0, 50.0, 100.0])
    rollout_min_window_minutes: float = 30.0
    rollout_min_requests: int = 50
    rollout_min_users: int = 20
    rollout_false_rollback: float = 0.01  # over the whole rollout, for a candidate as good as stable
    rollout_false_promotion: float = 0.05  # for a candidate worse than the allowed regressions below
    rollout_error_mde: float = 0.02
    rollout_fallback_mde: float = 0.05
    rollout_latency_ratio: float = 1.2
    # Callers without an API key can be anyone, as often as they like: by default the gate does not count them.
    rollout_anonymous: Literal["exclude", "address"] = Field(
        default="exclude", description="how the canary gate counts requests without an API key: exclude (none of "
        "them) | address (each client address one user, its first RAGOPS_ROLLOUT_ANONYMOUS_CAP requests only)")
    rollout_anonymous_cap: int = Field(default=5, ge=1, description="requests per client address the gate counts "
                                       "under RAGOPS_ROLLOUT_ANONYMOUS=address")
    # The canary's latency limit is max(ratio x stable's p95, stable's p95 + this fraction of the p95 objective): 1% of
    # the default 1,500 ms is 15 ms, so a few ms of jitter pass and a 25 ms service made 2x slower fails.
    rollout_latency_margin_slo_fraction: float = Field(default=0.01, ge=0, le=1)
    # Low traffic (docs/releases.md): a stage that cannot reach the minimum of users within its horizon raises the
    # canary's share up to this bound (never past the next stage), then extends the horizon, then asks a person; one
    # whose evidence stays unsure for a quarter of the horizon (the minimum met) raises it to the same bound.
    rollout_stage_horizon_hours: float = Field(default=24.0, gt=0)
    rollout_low_traffic_max_percent: float = Field(default=25.0, ge=0, le=100)
    rollout_low_traffic_extension: float = Field(default=2.0, ge=1)

    # Live quality drift (docs/monitoring.md#live-quality-signals): the last `window` hours of answers, per release and
    # variant, against the accepted baseline, by the canary's always-valid test; a shift alerts once it has crossed
    # the boundary at `sustain` consecutive checks.
    quality_window_hours: float = Field(default=24.0, gt=0, le=24 * 31)
    quality_baseline: Literal["release", "trailing"] = Field(
        default="release", description="release: the first RAGOPS_QUALITY_BASELINE_DAYS days the stable release "
        "served | trailing: the RAGOPS_QUALITY_BASELINE_DAYS days before the window")
    quality_baseline_days: float = Field(default=7.0, gt=0, le=366)
    quality_alpha: float = Field(default=0.01, gt=0, lt=1, description="chance of a false alarm per signal group, "
                                 "split over the signals")
    quality_tau: float = Field(default=0.05, gt=0, le=1,
                               description="the shift size the test is tuned to (mixing scale)")
    quality_score_quantile: float = Field(default=0.10, gt=0, lt=1, description="evidence and similarity below this "
                                          "quantile of the baseline's count as weak")
    quality_min_users: int = Field(default=20, ge=2)
    quality_sustain_checks: int = Field(default=2, ge=1)
    quality_max_answers: int = Field(default=100_000, ge=1_000, le=10_000_000, description="the most answers one "
                                     "window (current or baseline) is read as; above it, an even sample by registry id")
    quality_user_answers_per_day: float = Field(default=20.0, gt=0, le=100_000, description="one user (an address "
                                                "without a key) counts as at most this many answers a day of a window")
    quality_endpoints: list[str] = Field(default_factory=lambda: ["/v1/ask", "/v1/chat/completions"])

    redis_url: str | None = None
    rate_limit_enabled: bool = True
    request_events: bool = True  # one registry row per request; off only to measure its cost
    rate_limit: str = "120/minute"  # per verified API key (a key's entry may set its own)
    rate_limit_address: str = "30/minute"  # per client address, for requests without a key
    rate_limit_global: str = "30/second"  # the whole service: below the 35 req/s capacity bench/load.py measured
    rate_limit_mcp: str | None = None  # per MCP client (token); unset: RAGOPS_RATE_LIMIT
    rate_limit_mcp_address: str | None = None  # per address for MCP calls, the bucket /v1 uses; unset: the same limit
    mcp_refusal_log_window_s: float = Field(default=60.0, gt=0, description="repeats of one failed authentication or "
                                            "rate-limit refusal within this window share one access-log summary row")
    # Admission by cost (serving/admission.py): a question of at least this many units (about chars/4 x k) is
    # expensive; this many run at once per process, this many more wait, the rest get 429 with scope "cost".
    expensive_cost: int = Field(default=500, ge=1)
    expensive_concurrency: int = Field(default=1, ge=1)
    expensive_queue: int = Field(default=2, ge=0)
    api_keys: Path | None = Field(default=None, description="the API keys file (`ragops keys issue` writes it)")
    api_key: SecretStr | None = Field(default=None, description="the key ragops' own callers (eval --url) send")
    probe_key: str = Field(default="ragops-probe", description="the name of the API key whose requests are the "
                           "platform's probe traffic: the only requests the gate treats as synthetic")
    probe_api_key: SecretStr | None = Field(default=None, description="that key's secret, sent by the gate's probes "
                                            "(`--probe-requests`); unset: no probes are sent")
    session_secret: SecretStr | None = Field(default=None, description="signs the X-Ragops-Session tokens issued to "
                                             "callers without a key; the same on every replica. Unset: a random "
                                             "secret per process, so sessions end with it")
    trusted_proxies: list[str] = Field(default_factory=list, description="addresses/CIDRs whose X-Forwarded-For is believed")
    max_body_bytes: int = 64 * 1024
    # /v1/chat/completions (serving/openai_api.py): the conversation a client may send, and condensing follow-ups
    chat_max_turns: int = Field(default=40, ge=1, description="messages per chat request at most (all roles); "
                                "beyond it 400 conversation_too_long")
    chat_max_chars: int = Field(default=24000, ge=1, description="characters of all messages of a chat request at "
                                "most; beyond it 400 conversation_too_long")
    chat_condense_timeout_s: float = Field(default=5.0, gt=0, description="how long the language model may take to "
                                           "rewrite a follow-up question; past it the deterministic rule does")
    event_spool: Path | None = Field(default=None, description="the file request events go to while the registry is "
                                     "away, replayed at the next start; default: events-spool.jsonl under "
                                     "RAGOPS_HOME. Put it on a volume that outlives the container")
    store_timeout_s: float = 10.0  # an index search or registry statement past this gives store_unavailable
    registry_retry_s: float = 5.0  # how often the app retries a registry that was down when it started
    ready_check_timeout_s: float = Field(default=10.0, gt=0, description="the total deadline of each /readyz check "
                                         "(registry, index, llm): past it that check fails, and only that one")
    mcp_permissions: Path | None = None
    public_url: str = Field(default="http://127.0.0.1:8000", description="where clients reach the serving app")
    mcp_tools: list[dict] = Field(default_factory=list, description='JSON: [{"url", "tool", "token", "timeout_s"}]')
    mcp_tool_contracts: Path | None = Field(default=None, description="contract probes; default: "
                                            "mcp-tool-contracts.yaml beside RAGOPS_MCP_PERMISSIONS")
    mcp_tool_check_interval_s: float = Field(default=300.0, gt=0, description="how often serving re-checks tool pins")
    # The access log's key lives outside the registry it protects (ragops.audit.anchor): rows are MACed with it and
    # the published chain heads are signed with it, so database access alone cannot rewrite the log unseen.
    audit_signing_key: SecretStr | None = Field(default=None, description="the HMAC key of the MCP access log; "
                                                "unset: RAGOPS_AUDIT_SIGNING_KEY_FILE")
    audit_signing_key_file: Path | None = Field(default=None, description="a file holding that key, readable by its "
                                                "owner alone (0600)")
    audit_anchor_file: Path | None = Field(default=None, description="the append-only file of signed chain heads; "
                                           "default: audit-anchors.jsonl under RAGOPS_HOME")
    mcp_tool_probes_per_check: int = Field(default=3, ge=1, description="probes drawn at random from a tool's set per check")
    mcp_tool_probe_spacing_s: float = Field(default=30.0, ge=0, description="the longest random pause before each probe")
    mcp_tool_sample_rate: float = Field(default=0.05, ge=0, le=1, description="share of real tool calls whose output "
                                        "is checked against the tool's contract")

    # Privacy of what users type (docs/privacy.md): redacted before it is stored, cleared after the retention period.
    redact: bool = Field(default=True, description="redact e-mail addresses, secrets and long digit runs from "
                         "questions, searched queries and feedback comments before they are stored (on|off)")
    redact_patterns: list[str] = Field(default_factory=list, description='JSON list of extra regular expressions '
                                       'whose matches are replaced by [redacted], e.g. ["EMP-\\\\d{6}"]')
    redact_min_digits: int = Field(default=9, ge=4, le=64, description="a run of at least this many digits (spaces "
                                   "and dashes between them allowed) is replaced by [number]")
    question_retention_days: int = Field(default=90, ge=1, description="after this many days the text of questions, "
                                         "searched queries and feedback comments is cleared; counts, ratings, "
                                         "reasons and scores stay")
    feedback_wait_s: float = Field(default=2.0, ge=0, le=30, description="how long a vote waits for its request "
                                   "event to be stored (events are written in batches, maybe by another replica)")
    # What the reader learns from users' votes (training/votes.py, the model_training DAG).
    train_votes: bool = Field(default=True, description="the model training also learns from users' votes: an up "
                              "vote's question against its answer's first chunk, a 'wrong' vote's chunks as negatives")
    train_votes_verified_only: bool = Field(default=True, description="learn only from votes of callers with a key "
                                            "(an anonymous caller cannot teach the reader)")
    train_votes_per_user: int = Field(default=20, ge=0, le=10_000, description="at most this many of one caller's "
                                      "votes (up, or 'wrong') are learned from in a run")

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value not in ("lance", "weaviate"):
            raise ValueError(f"RAGOPS_STORE must be 'lance' or 'weaviate', not {value!r}")
        return value

    @field_validator("redact", mode="before")
    @classmethod
    def _on_off(cls, value):
        return {"on": True, "off": False}.get(value.strip().lower(), value) if isinstance(value, str) else value

    @field_validator("embedding_precision")
    @classmethod
    def _known_precision(cls, value: str) -> str:
        if value not in ("auto", "float32", "bfloat16", "int8"):
            raise ValueError(f"RAGOPS_EMBEDDING_PRECISION must be auto, float32, bfloat16 or int8, not {value!r}")
        return value

    @field_validator("lock_heartbeat_s")
    @classmethod
    def _heartbeat_within_ttl(cls, value: float, info) -> float:
        ttl = info.data.get("lock_ttl_s", 300.0)
        if not 0 < value <= ttl / 2:
            raise ValueError(f"RAGOPS_LOCK_HEARTBEAT_S must be positive and at most half of RAGOPS_LOCK_TTL_S ({ttl})")
        return value

    @property
    def registry_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'registry.sqlite').resolve()}"

    @property
    def lance_dir(self) -> Path:
        return self.home / "lance"

    @property
    def event_spool_path(self) -> Path:
        return self.event_spool or self.home / "events-spool.jsonl"

    @property
    def outbox_path(self) -> Path:
        return self.home / "outbox.jsonl"

    @property
    def audit_anchor_path(self) -> Path:
        return self.audit_anchor_file or self.home / "audit-anchors.jsonl"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def mask_url(url: str) -> str:
    """`url` as it may be shown or stored: a userinfo password (or a userinfo without one, often a token) and every
    credential-like query or fragment parameter replaced by ***; a user beside a password, the host, port and path
    stay, so the operator still sees which service is meant.

    Configured URLs (MCP tools, the registry, model endpoints) can carry credentials; this is the one place that
    takes them out. Malformed input is masked as far as it can be read, never passed through whole.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ in the host: nothing in it can be trusted to be harmless
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # userinfo without a password is a token as often as a name (https://<token>@host): masked whole
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    elif "@" in url:  # no authority (no "//"): e.g. user:password@host, which reads as a scheme and a path
        return f"{MASK}@{url.rpartition('@')[2]}"
    # spelled out, not urlunsplit, which drops an empty authority: sqlite:////abs/path must stay as it was
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    authority = f"//{netloc}" if url[len(scheme):].startswith("//") else ""
    query = f"?{_mask_params(parts.query)}" if parts.query else ""
    fragment = f"#{_mask_params(parts.fragment)}" if parts.fragment else ""
    return f"{scheme}{authority}{parts.path}{query}{fragment}"


def mask_urls(text: str) -> str:
    """`text` (an exception's message, say) with every URL in it masked as `mask_url` does."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)


def _mask_params(params: str) -> str:
    def one(param: str) -> str:
        name, has_value, _ = param.partition("=")
        return f"{name}={MASK}" if has_value and _SECRET_PARAM.search(unquote(name)) else param

    return "&".join(one(param) for param in params.split("&")) if params else params
