"""The `secret` scan item: file detections from every layer, plus the image config and history.

File secrets were found by the secret analyzer while the layers were walked (kept for every layer, so
a secret deleted by a later layer is still reported, with `in_final_image` false). This detector turns
them into findings and scans what the walk never sees: the config's Env, Labels, Cmd and Entrypoint,
and each history entry's `created_by` (a `RUN` line with a literal token, `--build-arg PASSWORD=...`, an
`ENV` or `ARG` line). A history line is its own finding unless the final Env still holds the same secret
(then the Env finding names the line): an ENV line keeps its value in the history even after a later step
emptied the variable, so that case is reported from the history.

History lines end up in reports (a layer's `created_by`), so the detector also masks the secrets it
finds there in the facts' layer records, and every `created_by` it puts in a finding is masked too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding, severity_rank
from hullscan.model import Detection, ImageFacts
from hullscan.redact import redact_history
from hullscan.secrets.analyzer import detection
from hullscan.secrets.config import SecretConfig, default_config
from hullscan.secrets.engine import SecretEngine, SecretHit, redact

ITEM = "secret"


def redact_text(text: str, engine: SecretEngine | None = None) -> str:
    """`text` with every secret the rules find in it replaced by its redacted form."""
    if not text:
        return text
    eng = engine if engine is not None else default_config().engine()
    data = text.encode("utf-8", "surrogateescape")
    hits = eng.scan("text", data)
    if not hits:
        return text
    out = bytearray(data)
    for hit in sorted(hits, key=lambda h: h.start, reverse=True):
        shown = redact(data[hit.start:hit.end].decode("utf-8", "replace")).encode()
        out[hit.start:hit.end] = shown
    return out.decode("utf-8", "replace")


class SecretDetector:
    item = ITEM

    def __init__(self, config: SecretConfig | None = None) -> None:
        self.config = config if config is not None else default_config()

    @property
    def engine(self) -> SecretEngine:
        return self.config.engine()

    def detect(self, facts: ImageFacts, context: DetectContext | None = None) -> list[CheckFinding]:
        masker = _Masker(self.engine)
        findings = [self._from_detection(d, masker) for d in facts.detections if d.kind == ITEM]
        findings.extend(self._config_findings(facts, masker))
        _mask_layer_history(facts, masker)
        findings.sort(key=lambda f: (-severity_rank(f.severity), f.path, f.line, f.id))
        return findings

    # -- file detections --

    def _from_detection(self, d: Detection, masker: _Masker) -> CheckFinding:
        where = f"{d.path}:{d.line}" if d.line else d.path
        description = f"{d.title} found in {where} (layer {d.layer_index})."
        if not d.in_final_image:
            description += (" A later layer deleted or replaced the file, but the secret is still in the layer "
                            "that added it: anyone who can pull the image can read it.")
        return CheckFinding(
            item=ITEM, id=d.rule_id, title=d.title, severity=d.severity, description=description,
            remediation=d.remediation, path=d.path, line=d.line, evidence=d.match, layer_index=d.layer_index,
            layer_diff_id=d.layer_diff_id, layer_created_by=masker(d.layer_created_by),
            metadata={"category": d.category, "in_final_image": "true" if d.in_final_image else "false",
                      "source": "file"},
        )

    # -- image config and history --

    def _config_findings(self, facts: ImageFacts, masker: _Masker) -> list[CheckFinding]:
        cfg: dict[str, Any] = facts.config if isinstance(facts.config, dict) else {}
        inner: dict[str, Any] = cfg["config"] if isinstance(cfg.get("config"), dict) else {}
        history = [h for h in cfg.get("history") or [] if isinstance(h, dict)]
        layer_of = _history_layers(history)
        out: list[CheckFinding] = []
        seen: set[tuple[str, str]] = set()  # (rule, secret fingerprint) found in Env/Labels/Cmd

        def add(path: str, text: str, hist: int | None, what: str) -> None:
            for hit in self.engine.scan(path, text.encode("utf-8", "surrogateescape")):
                seen.add((hit.rule.id, hit.fingerprint))
                out.append(self._config_finding(facts, hit, path, what, hist, layer_of, history, masker))

        for i, env in enumerate(_strings(inner.get("Env"))):
            key = env.split("=", 1)[0]
            add(f"config:Env[{i}]", env, _defined_in(history, ("ENV", "ARG"), key), f"environment variable {key}")
        labels: dict[Any, Any] = inner["Labels"] if isinstance(inner.get("Labels"), dict) else {}
        for key in sorted(labels, key=str):
            text = f"{key}={labels[key]}"
            add(f"config:Labels[{key}]", text, _defined_in(history, ("LABEL",), str(key)), f"label {key}")
        for field in ("Entrypoint", "Cmd"):
            words = _strings(inner.get(field))
            if words:
                hist = _defined_in(history, (field.upper(),), "")
                add(f"config:{field}", " ".join(words), hist, field)
        for i, h in enumerate(history):
            created_by = str(h.get("created_by") or "")
            for hit in self.engine.scan(f"history[{i}]", created_by.encode("utf-8", "surrogateescape")):
                if (hit.rule.id, hit.fingerprint) in seen:
                    continue  # the ENV/LABEL line that set a variable already reported
                out.append(self._config_finding(facts, hit, f"history[{i}]", "build history", i, layer_of, history,
                                                masker))
        return out

    def _config_finding(self, facts: ImageFacts, hit: SecretHit, path: str, what: str, hist: int | None,
                        layer_of: list[int], history: list[dict[str, Any]], masker: _Masker) -> CheckFinding:
        d = detection(hit, path)
        layer = layer_of[hist] if hist is not None and hist < len(layer_of) else -1
        diff_id = next((la.diff_id for la in facts.layers if la.index == layer), "") if layer >= 0 else ""
        created_by = str(history[hist].get("created_by") or "") if hist is not None else ""
        if path.startswith("history["):
            step = _instruction(created_by)
            description = f"{d.title} in the image's build history ({path}, {_STEP_NAMES.get(step, 'a build step')}): "
            if step == "ENV":
                description += ("the final image's environment no longer holds this value, but the ENV line that "
                                "set it stays in the image config, ")
            else:
                description += "the line is stored in the image config, "
            description += "readable by anyone who can pull the image."
            remediation = (d.remediation + " Pass build-time secrets with a secret mount (docker build --secret), "
                           "never with ENV, as a build argument or as a literal in a RUN line: a later ENV or "
                           "unset does not remove the value from the history.")
        else:
            description = (f"{d.title} in the image config's {what}: the config is readable by anyone who can "
                           "pull the image, and every container started from it gets the value.")
            if hist is not None:
                step = _STEP_NAMES.get(_instruction(created_by), "a build step")
                description += (f" The build step that set it ({step}, history[{hist}]) keeps the value in the build "
                                "history too, even if a later step overrides it.")
            remediation = (d.remediation + " Set the value when the container starts (from a secret store or an "
                           "orchestrator secret), not with ENV or LABEL in the image.")
        return CheckFinding(
            item=ITEM, id=d.rule_id, title=d.title, severity=d.severity, description=description,
            remediation=remediation, path=path, line=0, evidence=d.match, layer_index=layer, layer_diff_id=diff_id,
            layer_created_by=masker(created_by),
            metadata={"category": d.category, "in_final_image": "true", "source": "config",
                      **({"history_index": str(hist)} if hist is not None else {})},
        )


class _Masker:
    """A history line as reports may show it: build arguments, secret-named values and URL credentials masked
    (`redact_history`), then every secret our rules find; cached, as the same line is shown in many findings."""

    def __init__(self, engine: SecretEngine) -> None:
        self.engine = engine
        self.cache: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if text not in self.cache:
            self.cache[text] = redact_text(redact_history(text), self.engine) if text else text
        return self.cache[text]


def _mask_layer_history(facts: ImageFacts, masker: _Masker) -> None:
    """Reports show each layer's created_by: mask the secrets in it wherever the facts carry it."""
    layers = []
    for la in facts.layers:
        masked = masker(la.created_by)
        layers.append(la if masked == la.created_by else dataclasses.replace(la, created_by=masked))
    facts.layers = layers
    for p in facts.packages:
        p.layer_created_by = masker(p.layer_created_by)
    for d in facts.detections:
        d.layer_created_by = masker(d.layer_created_by)


_STEP_NAMES = {"ENV": "an ENV line", "ARG": "an ARG line", "RUN": "a RUN line", "LABEL": "a LABEL line"}
# BuildKit records `ENV K=v`, `ARG K=v`, `RUN |1 K=v /bin/sh -c ...`; the classic builder `/bin/sh -c #(nop)  ENV K=v`,
# `|1 K=v /bin/sh -c ...` (a RUN with build arguments) and `/bin/sh -c ...` (a RUN).
_STEP = re.compile(r"\s*(?:/bin/sh -c #\(nop\)\s+)?(?P<word>[A-Z]{2,12})\s")
_CLASSIC_RUN = re.compile(r"\s*(?:\|\d+\s|/bin/sh -c\s|/bin/bash -c\s)")


def _instruction(created_by: str) -> str:
    """The Dockerfile instruction that made a history entry (ENV, ARG, RUN, ...), "" when it does not say."""
    m = _STEP.match(created_by)
    if m:
        return m.group("word")
    return "RUN" if _CLASSIC_RUN.match(created_by) else ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    return []


def _history_layers(history: list[dict[str, Any]]) -> list[int]:
    """The layer each history entry belongs to: its own for a layer-making entry, else the next layer made
    (an ENV or LABEL line is part of the build step that follows it), else the last layer."""
    own: list[int] = []
    n = 0
    for h in history:
        if h.get("empty_layer"):
            own.append(-1)
        else:
            own.append(n)
            n += 1
    out = list(own)
    nxt = n - 1 if n else -1
    for i in range(len(history) - 1, -1, -1):
        if own[i] >= 0:
            nxt = own[i]
        else:
            out[i] = nxt
    return out


def _defined_in(history: list[dict[str, Any]], instructions: Iterable[str], key: str) -> int | None:
    """The last history entry whose instruction (ENV, LABEL, ...) names `key`; None when none does."""
    names = "|".join(re.escape(i) for i in instructions)
    pattern = re.compile(rf"(?:^|\s|\)\s*)(?:{names})\b" + (rf".*?(?<![\w.-]){re.escape(key)}(?:=|\s|$)" if key
                                                             else ""), re.S)
    for i in range(len(history) - 1, -1, -1):
        if pattern.search(str(history[i].get("created_by") or "")):
            return i
    return None
