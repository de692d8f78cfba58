"""Sensitive-information scanning: built-in rules, the engine, the user's YAML configuration, the
analyzer that runs during the layer walk and the detector that reports findings (scan item `secret`).

    from hullscan.secrets import SecretDetector, load_secret_config, secret_analyzer

    config = load_secret_config("secret.yaml")          # or None for the built-in rules
    options = ScanOptions(analyzers=default_analyzers() + [secret_analyzer(config)])
    findings = SecretDetector(config).detect(image_facts, DetectContext())
"""

from hullscan.secrets.analyzer import SecretAnalyzer, secret_analyzer
from hullscan.secrets.config import (
    DEFAULT_MAX_FILE_SIZE,
    SecretConfig,
    SecretConfigError,
    default_config,
    load_secret_config,
    parse_secret_config,
)
from hullscan.secrets.detector import SecretDetector, redact_text
from hullscan.secrets.engine import SecretEngine, SecretHit, redact
from hullscan.secrets.rules import BUILTIN_ALLOW, RULES, AllowRule, Rule

__all__ = [
    "BUILTIN_ALLOW", "DEFAULT_MAX_FILE_SIZE", "RULES", "AllowRule", "Rule", "SecretAnalyzer", "SecretConfig",
    "SecretConfigError", "SecretDetector", "SecretEngine", "SecretHit", "default_config", "load_secret_config",
    "parse_secret_config", "redact", "redact_text", "secret_analyzer",
]
