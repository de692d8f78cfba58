"""The secret analyzer: runs the secret engine over every text file of every layer.

Not one of `default_analyzers()`: it runs only when the `secret` scan item is selected, so the
pipeline adds it explicitly (`secret_analyzer(config)`). Its version is derived from the rule set and
the configuration, so the layer cache never serves findings made under other rules.
"""

from __future__ import annotations

from typing import IO

from hullscan.analyzers.base import Analyzer
from hullscan.model import Detection, FileEntry, FileFacts
from hullscan.secrets.config import SecretConfig, default_config
from hullscan.secrets.engine import BINARY_SNIFF, SecretEngine, SecretHit
from hullscan.secrets.rules import REMEDIATION, SKIP_EXTENSIONS

MIN_SIZE = 8  # no credential fits in fewer bytes
FILE_BUDGET_SECONDS = 10.0  # a hostile file (keywords everywhere) cannot hold the scan much longer than this


class SecretAnalyzer:
    name = "secret"
    offload = True  # a pure function of the file's bytes, and a quarter of a scan: worker processes may run it

    def __init__(self, config: SecretConfig) -> None:
        self.config = config
        self.max_size = config.max_file_size
        # Analyzer versions are ints: the first 12 hex digits of the configuration's fingerprint.
        self.version = int(config.fingerprint()[:12], 16)
        self._engine: SecretEngine | None = None

    def __getstate__(self) -> dict[str, object]:
        # The compiled engine stays behind: a worker process builds its own (see layers/pool.py).
        return {**self.__dict__, "_engine": None}

    def prepare(self) -> None:
        """Build the engine now, before worker processes are forked from this one (they inherit it)."""
        _ = self.engine

    @property
    def engine(self) -> SecretEngine:
        if self._engine is None:
            self._engine = self.config.engine()
        return self._engine

    def claims(self, path: str, entry: FileEntry) -> bool:
        # Called for every file of every layer: size, extension, the allow rules' path tests, nothing more.
        # A hard link has no size of its own: the walker reuses what its target's analysis found.
        if entry.type != "h" and not MIN_SIZE <= entry.size <= self.max_size:
            return False
        base = path.rsplit("/", 1)[-1]
        dot = base.rfind(".")
        if dot > 0 and base[dot + 1:].lower() in SKIP_EXTENSIONS:
            return False
        return not self.engine.skips_path(path)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        head = content.read(BINARY_SNIFF)
        if b"\0" in head:
            return None
        data = head + content.read(self.max_size + 1 - len(head))
        if len(data) > self.max_size:
            return None
        hits, skipped = self.engine.scan_within(path, data, FILE_BUDGET_SECONDS)
        facts = FileFacts(detections=[detection(hit, path) for hit in hits])
        if skipped:
            facts.hints["warnings"] = [f"secret scan of this file stopped after {FILE_BUDGET_SECONDS:.0f} s; "
                                       f"{len(skipped)} rules did not run"]
        return None if facts.empty() else facts


def detection(hit: SecretHit, path: str) -> Detection:
    rule = hit.rule
    return Detection(kind="secret", rule_id=rule.id, title=rule.title, severity=rule.severity, path=path,
                     line=hit.line, match=hit.excerpt, category=rule.category,
                     remediation=rule.remediation or REMEDIATION.get(rule.kind, REMEDIATION["token"]))


def secret_analyzer(config: SecretConfig | None = None) -> Analyzer:
    """The secret analyzer for the scan pipeline; built-in rules when `config` is None."""
    return SecretAnalyzer(config if config is not None else default_config())
