"""Where hullscan keeps its data and how a scan is bounded: one object, read from a file and the environment.

The command line, the service and the workers build one `Settings` and hand it down; nothing below them reads
the environment. Sources, strongest first: arguments given to the constructor, `HULLSCAN_*` environment
variables, the TOML file named by `HULLSCAN_CONFIG` (or `<user config dir>/hullscan/config.toml` when it exists),
then the defaults here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import ByteSize, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from hullscan.vulndb.sources import DEFAULT_CVE_URL, DEFAULT_EPSS_URL, DEFAULT_KEV_URL, DEFAULT_OSV_URL

APP = "hullscan"
THREE_HOURS = 3 * 3600.0


def config_file() -> Path | None:
    """The settings file: $HULLSCAN_CONFIG, else the user's config.toml when present."""
    named = os.environ.get("HULLSCAN_CONFIG")
    if named:
        return Path(named).expanduser()
    default = Path(platformdirs.user_config_dir(APP)) / "config.toml"
    return default if default.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HULLSCAN_", extra="ignore", validate_default=True)

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP)),
                           description="Scan store, vulnerability database, base catalogue, end-of-life tables")
    cache_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_cache_dir(APP)),
                            description="Per-layer facts cache")
    cache: Literal["auto", "fs", "postgres", "none"] = Field(
        "auto", description="Layer-facts cache: fs (files in cache_dir), postgres (one for the fleet, at the "
        "shared store), none; auto: postgres when a shared store is configured, else fs")
    db: Path | None = Field(None, description="Vulnerability database file [default: <data_dir>/db/hullscan.db]")
    base_catalogue: Path | None = Field(None, description="Known base images [default: <data_dir>/base-catalogue.json]")
    work_dir: Path | None = Field(None, description="Where scans keep their temporary files [default: the system's]")
    scan_timeout: float = Field(THREE_HOURS, gt=0, description="Seconds a scan may run before it ends with TIMEOUT")
    layer_concurrency: int = Field(3, ge=1, le=16, description="Layers of one image fetched and read at once")
    pool_workers: int | None = Field(None, ge=0, le=64,
                                     description="Processes for heavy analyzers [default: CPUs - 1, at most 4]")
    # Where `db update` fetches its data (vulndb.sources holds the defaults); "" turns an enrichment source off.
    osv_url: str = Field(DEFAULT_OSV_URL, description="OSV bucket: <Ecosystem>/all.zip, modified_id.csv, <ID>.json")
    cve_url: str = Field(DEFAULT_CVE_URL, description="CVE List V5 records (a zip of CVE JSON 5 files)")
    nvd_url: str = Field("", description="NVD CVE API 2.0 JSON (a file or a zip) [default: off]")
    epss_url: str = Field(DEFAULT_EPSS_URL, description="FIRST EPSS daily CSV (gzipped)")
    kev_url: str = Field(DEFAULT_KEV_URL, description="CISA Known Exploited Vulnerabilities catalogue (JSON)")

    # -- the service (hullscan serve, worker, scheduler, gate) --
    database_url: str | None = Field(None, description="SQLAlchemy URL of the service database, e.g. "
                                     "postgresql://user@host/hullscan [default: SQLite in <data_dir>/service.db]")
    store_url: str | None = Field(None, description="PostgreSQL URL of the fleet's shared store: layer facts and "
                                  "published vulnerability database builds [default: database_url when it is "
                                  "PostgreSQL]")
    broker_url: str | None = Field(None, description="Celery broker, e.g. redis://127.0.0.1:6379/0 (fleet mode)")
    admin_password: SecretStr | None = Field(None, description="Creates the user admin on the first start")
    secret_key: SecretStr | None = Field(None, description="Key that encrypts registry credentials at rest "
                                         "[default: <data_dir>/secret.key, created 0600 on first start]")
    login_attempts: int = Field(10, ge=1, le=10000, description="Failed log-ins one user name may have from one "
                                "address within login_window before that address must wait (HTTP 429)")
    login_window: float = Field(900.0, gt=0, le=86400, description="Seconds over which failed log-ins are "
                                "counted, and the longest wait they impose")
    max_scans_per_registry: int = Field(10, ge=1, le=1000, description="Scans running at once per registry")
    max_running_scans: int = Field(10, ge=1, le=10000, description="Scans running at once in all")
    scan_attempts: int = Field(3, ge=1, le=10, description="Tries of a scan whose worker died, or that met a "
                               "transient registry failure, before it is failed")
    retry_delay: float = Field(30.0, ge=0, le=86400, description="Seconds before a scan that met a transient "
                               "registry failure is tried again; doubled at each further try")
    scheduler_interval: float = Field(15.0, gt=0, le=3600, description="Seconds between two looks at the schedules")
    # -- a fleet (hullscan worker, scheduler; serve with a broker) --
    worker_lost_after: float = Field(60.0, ge=1, le=86400, description="Seconds without a heartbeat after which "
                                     "the worker running a scan is taken for dead and the scan is queued again")
    broker_visibility_timeout: float = Field(600.0, ge=1, le=86400, description="Seconds before the broker hands "
                                             "a task a worker took but never acknowledged to another worker")
    max_image_size: ByteSize = Field(ByteSize(50 * 10**9), gt=0, description="Largest image the service scans, "
                                     "e.g. 50GB")
    max_layer_size: ByteSize = Field(ByteSize(10 * 10**9), gt=0, description="Largest layer the service scans, "
                                     "e.g. 10GB")
    webhook_attempts: int = Field(6, ge=1, le=20, description="Tries of a webhook delivery (network errors, 5xx, "
                                  "429) before it is given up with its reason")
    webhook_retry_delay: float = Field(10.0, ge=0, le=86400, description="Seconds before a failed webhook delivery "
                                       "is tried again; doubled at each further try (at most an hour)")
    webhook_timeout: float = Field(10.0, gt=0, le=300, description="Seconds a webhook receiver has to answer")
    webhook_pull_blocked_window: float = Field(60.0, ge=0, le=86400, description="Repeated refused pulls of one "
                                               "image within this many seconds make one PULL_BLOCKED event")
    # Harbor reads Refresh-After as an 8-bit integer, hence at most 127.
    harbor_refresh_after: int = Field(5, ge=1, le=127, description="Seconds the Harbor scanner adapter tells "
                                      "Harbor to wait before asking again for a report still being made")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def db_path(self) -> Path:
        return (self.db or self.data_dir / "db" / "hullscan.db").expanduser()

    @property
    def scans_dir(self) -> Path:
        return self.data_dir / "scans"

    @property
    def service_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'service.db'}"

    @property
    def shared_store_url(self) -> str | None:
        """Where a fleet's processes share layer facts and database builds; None on a single machine."""
        for url in (self.store_url, self.database_url):
            if url and url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
                return url
        return None

    @property
    def layer_cache(self) -> Literal["fs", "postgres", "none"]:
        """The layer-facts cache in use (`cache` with auto resolved)."""
        if self.cache == "auto":
            return "postgres" if self.shared_store_url else "fs"
        return self.cache

    @property
    def catalogue_path(self) -> Path:
        return (self.base_catalogue or self.data_dir / "base-catalogue.json").expanduser()
