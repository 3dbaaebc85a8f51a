"""Settings, parsed once from the environment at start-up; a bad value fails loudly."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import SettingsError, UserError
from shared.formats.csvrecords import MAX_LINE_BYTES, ReadLimits
from shared.formats.names import validate_bucket

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STORE_BUCKET = "bucketbridge-store"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
LOG_FORMATS = ("text", "json")
CSV_ENGINES = ("auto", "fast", "python")
# Upper bounds: a budget beyond a day is a typo; an interval may be set very long (to keep a
# scheduler from publishing), but not so long that the slot arithmetic overflows.
_DAY_S = 86400
_MAX_INTERVAL_S = 10**9
_MAX_FILE_BYTES = 5 * 1024**4  # S3's largest object
_MAX_LINE_BYTES = 1024**3


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1,
         maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"invalid integer value for {name}: {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def mask_url(url: str) -> str:
    """``url`` with its user, password and query values hidden, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<an unreadable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "****@" + netloc.rpartition("@")[2]
    query = "&".join(f"{name}=****" for name, _ in
                     urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _redis_url(env: Mapping[str, str]) -> str:
    """The Redis URL, checked the way redis-py will read it: the scheme, a port in 1-65535 and
    a database number; errors name the URL with its secrets hidden."""
    url = env.get("BUCKETBRIDGE_REDIS_URL") or DEFAULT_REDIS_URL
    shown = mask_url(url)
    if not url.startswith(_REDIS_SCHEMES):
        raise SettingsError(f"invalid BUCKETBRIDGE_REDIS_URL {shown!r}: use redis://host:port/db, "
                            "rediss://… or unix://…")
    if url.startswith("unix://"):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise SettingsError(f"invalid BUCKETBRIDGE_REDIS_URL {shown!r}: the port must be a "
                            "number from 1 to 65535") from None
    if port == 0:
        raise SettingsError(f"invalid BUCKETBRIDGE_REDIS_URL {shown!r}: the port must be a "
                            "number from 1 to 65535")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise SettingsError(f"invalid BUCKETBRIDGE_REDIS_URL {shown!r}: the path must be a "
                            "database number, like /0")
    return url


def _store_bucket(env: Mapping[str, str]) -> str:
    bucket = env.get("BUCKETBRIDGE_STORE_BUCKET") or DEFAULT_STORE_BUCKET
    try:
        return validate_bucket(bucket, "BUCKETBRIDGE_STORE_BUCKET")
    except UserError as exc:
        raise SettingsError(str(exc)) from None


def _log_format(env: Mapping[str, str]) -> str:
    value = (env.get("BUCKETBRIDGE_LOG_FORMAT") or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise SettingsError(f"invalid BUCKETBRIDGE_LOG_FORMAT {value!r}: use text or json")
    return value


def _queue_url(env: Mapping[str, str]) -> str | None:
    url = (env.get("BUCKETBRIDGE_NOTIFY_QUEUE_URL") or "").strip()
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.count("/") < 2:
        raise SettingsError(f"invalid BUCKETBRIDGE_NOTIFY_QUEUE_URL {mask_url(url)!r}: use the "
                            "queue's URL, like https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")
    return url


def _csv_engine(env: Mapping[str, str]) -> str:
    value = (env.get("BUCKETBRIDGE_CSV_ENGINE") or "auto").strip().lower()
    if value not in CSV_ENGINES:
        raise SettingsError(f"invalid BUCKETBRIDGE_CSV_ENGINE {value!r}: use auto, fast or "
                            "python")
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    store_bucket: str = DEFAULT_STORE_BUCKET
    import_budget_s: int = 300
    export_budget_s: int = 300
    scan_interval_s: int = 3600
    export_interval_s: int = 7200
    export_lookback_days: int = 183
    metrics_port: int = 9191
    s3_endpoint_url: str | None = None
    log_format: str = "text"  # one of LOG_FORMATS
    attention_sites: int = 20  # series per bounded per-site metric family of the scheduler
    # The listener (``bucketbridge listen``): the SQS queue of S3 object-created events, how
    # long one receive waits for messages (SQS allows 0-20 s), and how long it trusts its copy
    # of a bucket's location claims before checking the document's ETag again.
    notify_queue_url: str | None = None
    notify_wait_s: int = 20
    notify_cache_s: int = 30
    # How long a received message stays hidden from other listeners before it comes back
    # (unless deleted); a scan claimed for notifications lapses after half of it.
    notify_visibility_timeout_s: int = 120
    # An import file past either limit is failed whole, with the limit as its reason.
    max_file_bytes: int = ReadLimits.max_file_bytes  # decompressed
    max_line_bytes: int = ReadLimits.max_line_bytes
    csv_engine: str = "auto"  # one of CSV_ENGINES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            redis_url=_redis_url(env),
            store_bucket=_store_bucket(env),
            import_budget_s=_int(env, "BUCKETBRIDGE_IMPORT_BUDGET_S", 300, maximum=_DAY_S),
            export_budget_s=_int(env, "BUCKETBRIDGE_EXPORT_BUDGET_S", 300, maximum=_DAY_S),
            scan_interval_s=_int(env, "BUCKETBRIDGE_SCAN_INTERVAL_S", 3600,
                                 maximum=_MAX_INTERVAL_S),
            export_interval_s=_int(env, "BUCKETBRIDGE_EXPORT_INTERVAL_S", 7200,
                                   maximum=_MAX_INTERVAL_S),
            export_lookback_days=_int(env, "BUCKETBRIDGE_EXPORT_LOOKBACK_DAYS", 183,
                                      maximum=36500),
            metrics_port=_int(env, "BUCKETBRIDGE_METRICS_PORT", 9191, minimum=0, maximum=65535),
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            log_format=_log_format(env),
            attention_sites=_int(env, "BUCKETBRIDGE_ATTENTION_SITES", 20, maximum=500),
            notify_queue_url=_queue_url(env),
            notify_wait_s=_int(env, "BUCKETBRIDGE_NOTIFY_WAIT_S", 20, minimum=0, maximum=20),
            notify_cache_s=_int(env, "BUCKETBRIDGE_NOTIFY_CACHE_S", 30, minimum=0, maximum=3600),
            notify_visibility_timeout_s=_int(env, "BUCKETBRIDGE_NOTIFY_VISIBILITY_TIMEOUT_S",
                                             120, minimum=2, maximum=43200),
            max_file_bytes=_int(env, "BUCKETBRIDGE_MAX_FILE_BYTES", ReadLimits.max_file_bytes,
                                minimum=MAX_LINE_BYTES, maximum=_MAX_FILE_BYTES),
            max_line_bytes=_int(env, "BUCKETBRIDGE_MAX_LINE_BYTES", ReadLimits.max_line_bytes,
                                minimum=MAX_LINE_BYTES, maximum=_MAX_LINE_BYTES),
            csv_engine=_csv_engine(env),
        )

    @property
    def read_limits(self) -> ReadLimits:
        return ReadLimits(max_file_bytes=self.max_file_bytes, max_line_bytes=self.max_line_bytes)

    @property
    def notify_pending_ttl_s(self) -> int:
        """How long a scan claimed by the listener stays claimed at most: shorter than the
        visibility timeout, so a killed listener's messages come back after it lapsed."""
        return self.notify_visibility_timeout_s // 2

    @property
    def import_time_limit_ms(self) -> int:
        """dramatiq's time limit for a scan: a backstop well above the budget, never the plan."""
        return (self.import_budget_s * 2 + 120) * 1000

    @property
    def export_time_limit_ms(self) -> int:
        return (self.export_budget_s * 2 + 120) * 1000
