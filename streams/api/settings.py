"""Settings of the alerts service ``envwatch api`` (env prefix ``ENVWATCH_API_``; docs/api.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from alerts.secretfiles import SecretFilesMixin


class ApiSettings(SecretFilesMixin):
    """A ``SecretStr`` field ``x`` may be given as a file: ``ENVWATCH_API_X_FILE``."""

    model_config = SettingsConfigDict(env_prefix="ENVWATCH_API_", frozen=True, extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8090, ge=0, le=65535, description="port to listen on (0: a free one)")
    principals: Path | None = Field(None, description="principals file (YAML; docs/api.md §3)")
    config: Path = Field(Path("deploy/config"), description="catalogue directory")
    #: How long a resolved alert stays in the view. envwatch's choice [MEM]: a duty shift and
    #: the next day's review see yesterday's resolved alerts; older ones are in alerts.jsonl.
    retention_hours: float = Field(48.0, gt=0, description="hours a resolved alert is kept")
    #: Command results kept for ``GET /api/v1/commands/{id}`` [MEM].
    keep_results: int = Field(10_000, ge=100)
    #: Per-principal token bucket on POST/DELETE: a burst, then a steady rate. envwatch's choice
    #: [MEM]: a person acknowledging a storm clicks a few dozen times a minute at most.
    rate_burst: int = Field(30, ge=1, description="commands a principal may send at once")
    rate_per_minute: float = Field(60.0, gt=0, description="steady commands per minute")
    #: Largest request body (bytes) [MEM]: a silence with a dozen matchers is under 4 KiB.
    max_body: int = Field(16_384, ge=1024)
    #: How long a POST waits for its CommandResult before answering ``pending`` (s) [MEM].
    command_wait: float = Field(5.0, ge=0)
    #: Console base URL for AlertOut.url (empty: relative ``/console/alerts/{id}``).
    external_url: str = Field("", description="public base URL of this service")
