"""Settings, parsed once from the environment at start-up; a bad value fails loudly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import SettingsError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STORE_BUCKET = "bucketbridge-store"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
LOG_FORMATS = ("text", "json")


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


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("BUCKETBRIDGE_REDIS_URL") or DEFAULT_REDIS_URL
    if not url.startswith(_REDIS_SCHEMES):
        raise SettingsError(f"invalid BUCKETBRIDGE_REDIS_URL {url!r}: use redis://host:port/db, "
                          "rediss://… or unix://…")
    return url


def _log_format(env: Mapping[str, str]) -> str:
    value = (env.get("BUCKETBRIDGE_LOG_FORMAT") or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise SettingsError(f"invalid BUCKETBRIDGE_LOG_FORMAT {value!r}: use text or json")
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            redis_url=_redis_url(env),
            store_bucket=env.get("BUCKETBRIDGE_STORE_BUCKET") or DEFAULT_STORE_BUCKET,
            import_budget_s=_int(env, "BUCKETBRIDGE_IMPORT_BUDGET_S", 300),
            export_budget_s=_int(env, "BUCKETBRIDGE_EXPORT_BUDGET_S", 300),
            scan_interval_s=_int(env, "BUCKETBRIDGE_SCAN_INTERVAL_S", 3600),
            export_interval_s=_int(env, "BUCKETBRIDGE_EXPORT_INTERVAL_S", 7200),
            export_lookback_days=_int(env, "BUCKETBRIDGE_EXPORT_LOOKBACK_DAYS", 183),
            metrics_port=_int(env, "BUCKETBRIDGE_METRICS_PORT", 9191, minimum=0, maximum=65535),
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            log_format=_log_format(env),
        )

    @property
    def import_time_limit_ms(self) -> int:
        """dramatiq's time limit for a scan: a backstop well above the budget, never the plan."""
        return (self.import_budget_s * 2 + 120) * 1000

    @property
    def export_time_limit_ms(self) -> int:
        return (self.export_budget_s * 2 + 120) * 1000
