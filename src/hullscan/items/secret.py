"""Sensitive information: credentials in files of every layer, in the image config and its history."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hullscan.analyzers.base import Analyzer
from hullscan.findings import ScanReport
from hullscan.items.base import ItemContext, ScanItem
from hullscan.secrets.config import SecretConfig


@dataclass
class SecretOptions:
    config_file: Path | None = None  # YAML adding, disabling or allowing rules (--secret-config)


class SecretItem(ScanItem[SecretOptions]):
    name = "secret"
    title = "Sensitive information"
    options_type = SecretOptions

    def _config(self, options: SecretOptions, ctx: ItemContext) -> SecretConfig | None:
        from hullscan.secrets.config import load_secret_config

        if options.config_file is None:
            return None
        if "secret.config" not in ctx.state:
            ctx.state["secret.config"] = load_secret_config(options.config_file)
        config: SecretConfig = ctx.state["secret.config"]
        return config

    def prepare(self, options: SecretOptions, ctx: ItemContext) -> None:
        self._config(options, ctx)

    def analyzers(self, options: SecretOptions, ctx: ItemContext) -> list[Analyzer]:
        from hullscan.secrets.analyzer import secret_analyzer

        return [secret_analyzer(self._config(options, ctx))]

    def detect(self, report: ScanReport, options: SecretOptions, ctx: ItemContext) -> None:
        from hullscan.detectors import DetectContext
        from hullscan.secrets.detector import SecretDetector

        report.checks.extend(SecretDetector(self._config(options, ctx)).detect(report.facts, DetectContext()))


ITEM = SecretItem()
