"""The built-in secret rules, allow rules and file filters.

Every rule is a regular expression over the raw bytes of a file, gated by keywords: a rule's regex
runs on a file only when one of its (lower-case) keywords occurs in the file, case-insensitively, so
the common case costs one multi-keyword search per file. The secret itself is the regex's `secret`
group (the whole match when there is none); it is checked against an entropy floor and the
placeholder allow rules before it becomes a finding.

Writing a rule, for speed and safety:
- start the regex with a literal (``ghp_``) or a short case-insensitive name: Python's `re` then skips
  ahead with a fast literal search; a leading lookbehind or ``\\b`` makes it try every position, so
  token rules set ``boundary=True`` instead (the engine checks the byte before the match);
- bound every repetition (``{20,64}``, never ``+`` or ``*``) so no input can make a rule backtrack
  for long; the tests run every rule against 1 MiB pathological inputs.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from hullscan import safejson

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")

# A key/value separator as config files, JSON, YAML, env files, shell and code write it:
# `key = "v"`, `"key": "v"`, `key: v`, `KEY=v`, `key => 'v'`, `key := v`.
SEP = r"[\"']?[ \t]{0,4}(?:=>|:=|[:=])[ \t]{0,4}[\"'`]?"
END = r"(?![A-Za-z0-9])"
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

Validator = Callable[[bytes], bool]


@dataclass(frozen=True)
class Rule:
    """One secret rule. Patterns are text; the engine compiles them for bytes."""

    id: str
    title: str
    severity: str
    regex: str
    keywords: tuple[str, ...] = ()  # lower-case; empty = always run (only for path-limited rules)
    category: str = "general"
    entropy: float = 0.0  # minimum Shannon entropy (bits per byte) of the secret
    path: str | None = None  # only files whose path matches (re.search)
    secret_group: str = "secret"  # the named group holding the secret; the whole match when absent
    boundary: bool = False  # the byte before the match must not be a letter or a digit
    generic: bool = False  # a key=value rule: values must look like a real secret, not code or a word
    kind: str = "token"  # token | key | password | url | hash: picks the remediation text
    remediation: str = ""
    allow_match: str | None = None  # a match whose whole text matches this is a known non-secret
    allow_paths: str | None = None  # paths this rule never reports in
    # What must come right before the match (looked for in the 64 bytes before it), for rules whose regex
    # starts at a literal in the middle of what they find (`://` of a URL rather than its scheme): regexes
    # that start with a literal are searched for fast. Without a `secret` group, the secret includes it.
    prefix: str | None = None
    # Every match starts at most 64 bytes before one of the rule's keywords (key=value rules start with the
    # key's name): the regex then runs only around the keyword's occurrences, not over the whole file.
    near_keyword: bool = False
    validate: Validator | None = field(default=None, compare=False)  # built-in rules only


@dataclass(frozen=True)
class AllowRule:
    """Skip a file, or a secret whose value matches, for every rule or only the rules named.

    Every field given must match (re.search): `path` the file's path, `dir` its directory with a
    trailing slash (decided once per directory), `name` its file name, `regex` the secret's value.
    """

    id: str
    description: str = ""
    path: str | None = None
    regex: str | None = None
    rules: tuple[str, ...] = ()  # empty = every rule
    dir: str | None = None
    name: str | None = None


REMEDIATION = {
    "token": "Revoke this credential at its issuer and issue a new one. Rebuild the image without it (deleting "
             "it in a later layer leaves it in the earlier one) and supply it at run time from a secret store "
             "or a mounted secret.",
    "key": "Treat the private key as compromised: replace the key pair and revoke what trusted it. Rebuild the "
           "image without the key (a later layer's delete does not remove it) and mount it at run time.",
    "password": "Change this password wherever it is used. Rebuild the image without it and supply it at run "
                "time (environment from a secret store, or a mounted secret file).",
    "url": "Change the password embedded in this URL, then rebuild the image with a URL that carries no "
           "credentials; pass them at run time from a secret store.",
    "hash": "Password hashes can be cracked offline: change the passwords, and mount the file at run time "
            "instead of baking it into the image.",
}


# -- validators ---------------------------------------------------------------------------------------


def _b64(text: bytes, urlsafe: bool = False) -> bytes | None:
    padded = text + b"=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _printable(data: bytes) -> bool:
    return all(32 <= b < 127 for b in data)


def docker_auth(secret: bytes) -> bool:
    """A Docker config `auth`: base64 of `user:password`, both parts present."""
    raw = _b64(secret)
    if raw is None or not _printable(raw):
        return False
    user, sep, password = raw.partition(b":")
    return bool(sep and user and password)


def basic_auth(secret: bytes) -> bool:
    return docker_auth(secret)


def jwt(secret: bytes) -> bool:
    """A JWT: its header decodes to a JSON object naming an algorithm."""
    raw = _b64(secret.split(b".", 1)[0], urlsafe=True)
    if raw is None:
        return False
    try:
        header = safejson.loads(raw, what="a JWT header")
    except safejson.DocumentError:
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


def azure_sas_signature(secret: bytes) -> bool:
    """A SAS `sig`: an HMAC-SHA256, 32 bytes once URL- and base64-decoded."""
    raw = _b64(unquote(secret.decode("ascii", "replace")).encode())
    return raw is not None and len(raw) == 32


def kube_client_key(secret: bytes) -> bool:
    raw = _b64(secret)
    return raw is not None and b"PRIVATE KEY" in raw


# -- helpers to write rules ----------------------------------------------------------------------------


def ctx(names: str, value: str, gap: int = 20, end: str = END) -> str:
    """`value` assigned to a key named like `names` (case-insensitive, with up to `gap` more name chars)."""
    # The value is atomic: once found, no backtracking into it when what follows does not fit.
    return rf"(?i:{names})[A-Za-z0-9_.-]{{0,{gap}}}{SEP}(?P<secret>(?>{value})){end}"


# Key blocks are also written inside strings, their line ends escaped: `\n` in JSON, YAML and .env values, `\\n`
# in JSON held in a JSON string (a kubectl annotation, a Terraform state), `\\\\n` one level deeper; a YAML
# double-quoted string folds long lines with a backslash at the end of a line, then indentation.
EOL = r"(?:\r?\n|\\{1,7}(?:r\\{1,7})?n)"  # a line end, as written or escaped
# white space (YAML indentation, a fold: `\` at a line's end) or an escaped line end; the alternatives start with
# different bytes, so a run of blanks matches in one way only (no backtracking between them)
BLANK = r"(?:\\(?:\\{0,6}[rn]|\s)|\s)"
# base64 lines; the backslashes of escaped line ends and of escaped slashes (`\/`, as PHP and Java write JSON) pass
B64_BODY = r"(?:\\{1,7}/|[A-Za-z0-9+/=])[A-Za-z0-9+/=\s\\]"
# The body holds no '-', so the first "-----" after it is the end line; its label is not checked (a YAML fold
# may split it: `-----END ENCRYPTED PRIVATE\` newline, indentation, `\ KEY-----`).
PEM_END = r"-----END[^-]{1,96}?-----"
# `Version: ...`, `Comment: ...` header lines of PGP and SSH2 armour (escaped quotes allowed, as in JSON)
# (the value is possessive: it can never take the line end that follows it, so giving characters back is pointless)
# (the next line's indentation is taken with the line end, all of it: nothing after a header starts with a blank)
ARMOR_HEADERS = rf"(?:[A-Za-z-]{{1,32}}: (?:[^\r\n\\]|\\{{1,7}}[^\\rn\r\n]){{0,200}}+{EOL}[ \t]{{0,32}}+){{0,8}}"


def pem(label: str) -> str:
    """A PEM block with this label; the secret is the base64 body (also when written with escaped newlines)."""
    lab = label.replace(" ", "[ ]")
    return rf"-----BEGIN[ ]{lab}-----{BLANK}{{0,64}}+(?P<secret>{B64_BODY}{{63,16383}}?){PEM_END}"


def url(schemes: str, user_min: int = 1) -> str:
    return (rf"{schemes}://(?P<user>[^:@/\s\"'<>{{}}]{{{user_min},128}}):"
            r"(?P<secret>[^@/\s\"'<>{}]{1,256})@(?P<host>[A-Za-z0-9_.\[\]-]{1,253})")


KEY_ENTROPY = 4.0  # bits per byte; base64 key bodies have 5.3 (a short Ed25519 key) to 6
CONFIG_FILES = (r"(?i)(?:\.(?:ini|conf|cfg|cnf|config|properties|prop|ya?ml|toml|env|json|xml|pgpass|pypirc|"
                r"tfvars|hcl|settings|credentials?|secrets?)|(?:^|/)\.?env(?:\.[\w-]{1,32})?|(?:^|/)\.pypirc"
                r"|(?:^|/)\.s3cfg|(?:^|/)credentials)$")
EXAMPLE_HOST = r"@(?:[A-Za-z0-9-]{1,63}\.){0,4}(?:example|test|invalid|localdomain)(?:\.(?:com|org|net))?(?:[:/]|$)"


def R(rule_id: str, title: str, severity: str, category: str, keywords: list[str] | str, regex: str,
      **kw: object) -> Rule:
    kws = tuple([keywords] if isinstance(keywords, str) else keywords)
    kw.setdefault("near_keyword", regex.startswith("(?i:"))  # a case-insensitive key name comes first
    if kw.get("kind") == "key":
        # Key material is long and random, so it holds placeholder words by chance (a 2048-bit key's base64 spells
        # "todo", in some case, in roughly one key in 600): keys are exempt from the placeholder allow rule, and an
        # entropy floor tells a real body from "xxxx..." or a repeated word instead.
        kw.setdefault("entropy", KEY_ENTROPY)
    return Rule(id=rule_id, title=title, severity=severity, category=category, keywords=kws, regex=regex,
                **kw)  # type: ignore[arg-type]


# -- the rules -------------------------------------------------------------------------------------------
# Specific formats come first: where two rules find the same secret, the earlier rule's finding is kept.

_AWS_ID = r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"

RULES: list[Rule] = [
    # Cloud: AWS
    R("aws-access-key-id", "AWS access key ID", "HIGH", "AWS", ["akia", "asia", "abia", "acca", "a3t"],
      _AWS_ID + END, boundary=True, entropy=3.0),
    R("aws-secret-access-key", "AWS secret access key", "CRITICAL", "AWS",
      ["secretaccesskey", "secret_access_key", "secret-access-key", "aws_secret", "aws-secret", "awssecret"],
      ctx(r"(?:aws[_.-]?)?secret[_.-]?access[_.-]?key|aws[_.-]?secret(?:[_.-]?key)?", r"[A-Za-z0-9/+]{40}",
          gap=8, end=r"(?![A-Za-z0-9/+=])"), entropy=3.5),
    R("aws-session-token", "AWS session token", "HIGH", "AWS",
      ["session_token", "session-token", "sessiontoken", "security_token", "security-token", "securitytoken"],
      ctx(r"(?:aws[_.-]?)?session[_.-]?token|aws[_.-]?security[_.-]?token", r"[A-Za-z0-9/+=]{100,2048}", gap=4,
          end=r"(?![A-Za-z0-9/+=])"), entropy=4.0),
    R("aws-sts-token", "AWS temporary credentials token", "HIGH", "AWS", ["iqojb3jpz2lux2vj", "fwogzxivyxdz"],
      r"(?:IQoJb3JpZ2luX2Vj|FwoGZXIvYXdz)[A-Za-z0-9/+=]{100,2048}", boundary=True, entropy=4.0),
    R("aws-mws-auth-token", "Amazon MWS auth token", "HIGH", "AWS", "amzn.mws.",
      r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + END),
    # Cloud: Google
    R("gcp-service-account-key", "GCP service account private key", "CRITICAL", "GCP", "service_account",
      r"\"private_key\\{0,7}\"[ \t]{0,4}:[ \t]{0,4}\\{0,7}\"-----BEGIN (?:RSA )?PRIVATE KEY-----(?:\\{1,7}r)?\\{1,7}n"
      r"(?P<secret>[A-Za-z0-9+/=\\]{64,16384}?)-----END (?:RSA )?PRIVATE KEY-----(?:\\{1,7}n)?\\{0,7}\"", kind="key"),
    R("gcp-api-key", "Google API key", "HIGH", "GCP", "aiza", r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])",
      boundary=True, entropy=3.0),
    R("gcp-oauth-client-secret", "Google OAuth client secret", "HIGH", "GCP", "gocspx-",
      r"GOCSPX-[0-9A-Za-z_-]{28}(?![0-9A-Za-z_-])", entropy=3.0),
    R("gcp-oauth-access-token", "Google OAuth access token", "MEDIUM", "GCP", "ya29.",
      r"ya29\.[0-9A-Za-z_-]{30,1024}", boundary=True, entropy=3.5),
    R("gcp-oauth-refresh-token", "Google OAuth refresh token", "HIGH", "GCP", "1//0",
      r"1//0[0-9A-Za-z_-]{40,512}", boundary=True, entropy=3.5),
    # Cloud: Azure
    R("azure-storage-connection-string", "Azure account key in a connection string", "CRITICAL", "Azure",
      "accountkey=", r"(?i:AccountKey)=(?P<secret>[A-Za-z0-9+/]{86}==)", entropy=4.0),
    R("azure-storage-account-key", "Azure storage account key", "CRITICAL", "Azure",
      ["storage_key", "storagekey", "storage-key", "storage_account_key", "account_key", "accountkey",
       "account-key"],
      ctx(r"(?:azure[_.-]?)?storage[_.-]?(?:account[_.-]?)?key|account[_.-]?key", r"[A-Za-z0-9+/]{86}==", gap=8,
          end=""), entropy=4.0),
    R("azure-ad-client-secret", "Azure AD (Entra ID) client secret", "HIGH", "Azure", "q~",
      r"Q~[A-Za-z0-9_~.-]{31,34}+(?![A-Za-z0-9_~.-])", prefix=r"[A-Za-z0-9_~.-]{3}[0-9]", boundary=True,
      entropy=3.5),
    R("azure-sas-token", "Azure shared access signature", "HIGH", "Azure", "sig=",
      r"[?&]sig=(?P<secret>[A-Za-z0-9%+/]{40,100}(?:%3[Dd]|=){0,2})(?![A-Za-z0-9%+/=])",
      validate=azure_sas_signature),
    R("azure-service-bus-key", "Azure Service Bus / Event Hubs shared access key", "HIGH", "Azure",
      "sharedaccesskey=", r"(?i:SharedAccessKey)=(?P<secret>[A-Za-z0-9+/]{43}=)", entropy=4.0),
    R("azure-container-registry-password", "Azure Container Registry password", "HIGH", "Azure", "+acr",
      r"\+ACR[A-Za-z0-9]{6}" + END, prefix=r"[A-Za-z0-9+/]{42}", boundary=True, entropy=4.0),
    R("azure-devops-pat", "Azure DevOps personal access token", "HIGH", "Azure", "jqqj99",
      r"JQQJ99[A-Za-z0-9]{3}AZDO[A-Za-z0-9]{4}" + END, prefix=r"[A-Za-z0-9]{52}", boundary=True, entropy=4.0),
    R("azure-devops-pat-legacy", "Azure DevOps personal access token", "HIGH", "Azure",
      ["devops", "vsts", "azdo"], ctx(r"azure[_.-]?devops|vsts|azdo", r"[a-z2-7]{52}", gap=24), entropy=4.0),
    # Cloud: Alibaba, Tencent, DigitalOcean, Heroku, Cloudflare, Fastly
    R("alibaba-access-key-id", "Alibaba Cloud AccessKey ID", "HIGH", "Alibaba", "ltai",
      r"LTAI[A-Za-z0-9]{12,20}+" + END, boundary=True, entropy=3.0),
    R("alibaba-access-key-secret", "Alibaba Cloud AccessKey secret", "CRITICAL", "Alibaba",
      ["alibaba", "aliyun", "alicloud", "accesskeysecret", "access_key_secret", "access-key-secret"],
      ctx(r"(?:alibaba|aliyun|alicloud)[A-Za-z0-9_.-]{0,20}secret|access[_.-]?key[_.-]?secret",
          r"[A-Za-z0-9]{30}", gap=8), entropy=3.5),
    R("tencent-secret-id", "Tencent Cloud SecretId", "HIGH", "Tencent", "akid", r"AKID[A-Za-z0-9]{32}" + END,
      boundary=True, entropy=3.5),
    R("tencent-secret-key", "Tencent Cloud SecretKey", "CRITICAL", "Tencent", ["tencent", "qcloud", "tccli"],
      ctx(r"(?:tencent(?:cloud)?|qcloud|tccli)[A-Za-z0-9_.-]{0,20}secret[_.-]?key", r"[A-Za-z0-9]{32}", gap=4),
      entropy=3.5),
    R("digitalocean-pat", "DigitalOcean personal access token", "CRITICAL", "DigitalOcean", "dop_v1_",
      r"dop_v1_[a-f0-9]{64}" + END, boundary=True),
    R("digitalocean-oauth-token", "DigitalOcean OAuth token", "HIGH", "DigitalOcean", ["doo_v1_", "dor_v1_"],
      r"do[or]_v1_[a-f0-9]{64}" + END, boundary=True),
    R("heroku-api-key", "Heroku API key", "HIGH", "Heroku", "heroku",
      ctx(r"heroku", UUID, gap=24)),
    R("heroku-api-key-v2", "Heroku API key", "HIGH", "Heroku", "hrku-",
      r"HRKU-[0-9A-Za-z_-]{60}(?![0-9A-Za-z_-])", boundary=True, entropy=3.5),
    R("cloudflare-api-token", "Cloudflare API token or key", "HIGH", "Cloudflare",
      ["cloudflare", "cf_api", "cf-api", "cf_token", "cf_key"],
      ctx(r"cloudflare[A-Za-z0-9_.-]{0,20}(?:token|key)|cf[_-]api[_-]?(?:token|key)?|cf[_-](?:token|key)",
          r"[A-Za-z0-9_-]{40}|[a-f0-9]{37}", gap=8, end=r"(?![A-Za-z0-9_-])"), entropy=3.5),
    R("cloudflare-origin-ca-key", "Cloudflare Origin CA key", "HIGH", "Cloudflare", "v1.0-",
      r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}" + END, boundary=True),
    R("fastly-api-token", "Fastly API token", "HIGH", "Fastly", "fastly",
      ctx(r"fastly[A-Za-z0-9_.-]{0,20}(?:token|key)", r"[A-Za-z0-9_-]{32}", gap=4, end=r"(?![A-Za-z0-9_-])"),
      entropy=3.5),
    # Code hosting
    R("github-pat", "GitHub personal access token", "CRITICAL", "GitHub", "ghp_", r"ghp_[A-Za-z0-9]{36}" + END,
      boundary=True, entropy=3.0),
    R("github-oauth-token", "GitHub OAuth access token", "CRITICAL", "GitHub", "gho_",
      r"gho_[A-Za-z0-9]{36}" + END, boundary=True, entropy=3.0),
    R("github-user-to-server-token", "GitHub App user-to-server token", "CRITICAL", "GitHub", "ghu_",
      r"ghu_[A-Za-z0-9]{36}" + END, boundary=True, entropy=3.0),
    R("github-server-to-server-token", "GitHub App installation token", "CRITICAL", "GitHub", "ghs_",
      r"ghs_[A-Za-z0-9]{36}" + END, boundary=True, entropy=3.0),
    R("github-refresh-token", "GitHub refresh token", "CRITICAL", "GitHub", "ghr_",
      r"ghr_[A-Za-z0-9]{36,76}+" + END, boundary=True, entropy=3.0),
    R("github-fine-grained-pat", "GitHub fine-grained personal access token", "CRITICAL", "GitHub",
      "github_pat_", r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}" + END, boundary=True, entropy=3.5),
    R("gitlab-pat", "GitLab personal access token", "CRITICAL", "GitLab", "glpat-",
      r"glpat-[A-Za-z0-9_-]{20,64}(?:\.[A-Za-z0-9_-]{2,40}){0,3}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-deploy-token", "GitLab deploy token", "HIGH", "GitLab", "gldt-",
      r"gldt-[A-Za-z0-9_-]{20,64}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-runner-token", "GitLab runner authentication token", "HIGH", "GitLab", "glrt-",
      r"glrt-[A-Za-z0-9_-]{20,64}(?:\.[A-Za-z0-9_-]{2,40}){0,3}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-runner-registration-token", "GitLab runner registration token", "HIGH", "GitLab", "gr1348941",
      r"GR1348941[A-Za-z0-9_-]{20,64}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", "HIGH", "GitLab", "glptt-",
      r"glptt-[A-Za-z0-9_-]{40}(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-oauth-app-secret", "GitLab OAuth application secret", "HIGH", "GitLab", "gloas-",
      r"gloas-[A-Za-z0-9_-]{64}(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-feed-token", "GitLab feed token", "MEDIUM", "GitLab", "glft-",
      r"glft-[A-Za-z0-9_-]{20,64}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-agent-token", "GitLab agent for Kubernetes token", "HIGH", "GitLab", "glagent-",
      r"glagent-[A-Za-z0-9_-]{50,1024}", boundary=True, entropy=3.0),
    R("gitlab-incoming-mail-token", "GitLab incoming mail token", "MEDIUM", "GitLab", "glimt-",
      r"glimt-[A-Za-z0-9_-]{25}(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-scim-token", "GitLab SCIM token", "HIGH", "GitLab", "glsoat-",
      r"glsoat-[A-Za-z0-9_-]{20,64}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("gitlab-ci-job-token", "GitLab CI job token", "MEDIUM", "GitLab", "glcbt-",
      r"glcbt-[A-Za-z0-9]{1,5}_[A-Za-z0-9_-]{20,64}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("bitbucket-app-password", "Bitbucket app password", "HIGH", "Atlassian", "atbb",
      r"ATBB[A-Za-z0-9_=.-]{28,64}+(?![A-Za-z0-9_=.-])", boundary=True, entropy=3.5),
    R("atlassian-api-token", "Atlassian API token", "HIGH", "Atlassian", "atatt3",
      r"ATATT3[A-Za-z0-9_=-]{180,220}+(?![A-Za-z0-9_=-])", boundary=True, entropy=3.5),
    R("atlassian-legacy-api-token", "Atlassian (Jira, Confluence) API token", "MEDIUM", "Atlassian",
      ["atlassian", "jira", "confluence"],
      ctx(r"(?:atlassian|jira|confluence)[A-Za-z0-9_.-]{0,20}token", r"[A-Za-z0-9]{24}", gap=4), entropy=3.5),
    # Chat and messaging
    R("slack-bot-token", "Slack bot token", "HIGH", "Slack", "xoxb-",
      r"xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,34}+" + END, boundary=True),
    R("slack-user-token", "Slack user token", "HIGH", "Slack", "xoxp-",
      r"xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{28,34}+" + END, boundary=True),
    R("slack-legacy-token", "Slack legacy, app or session token", "HIGH", "Slack", ["xoxa-", "xoxr-", "xoxs-"],
      r"xox[ars]-(?:[0-9]{1,13}-){1,3}[A-Za-z0-9]{10,64}+" + END, boundary=True, entropy=3.0),
    R("slack-app-token", "Slack app-level token", "HIGH", "Slack", "xapp-",
      r"xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,14}-[a-f0-9]{32,64}+" + END, boundary=True),
    R("slack-config-token", "Slack configuration token", "HIGH", "Slack", "xoxe",
      r"xoxe(?:\.xox[bp])?-[0-9]-[A-Z0-9]{140,170}+" + END, boundary=True),
    R("slack-webhook", "Slack incoming webhook URL", "HIGH", "Slack", "hooks.slack.com",
      r"hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/(?P<secret>[A-Za-z0-9]{24})" + END),
    R("slack-workflow-webhook", "Slack workflow webhook URL", "MEDIUM", "Slack", "hooks.slack.com",
      r"hooks\.slack\.com/(?:workflows|triggers)/T[A-Z0-9]{8,12}/A[A-Z0-9]{8,12}/[0-9]{17,20}/"
      r"(?P<secret>[A-Za-z0-9]{32})" + END),
    R("discord-bot-token", "Discord bot token", "HIGH", "Discord", "discord",
      ctx(r"discord[A-Za-z0-9_.-]{0,20}(?:token|secret)",
          r"[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}", gap=4, end=r"(?![A-Za-z0-9_-])")),
    R("discord-webhook", "Discord webhook URL", "MEDIUM", "Discord", "discord",
      r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/"
      r"(?P<secret>[A-Za-z0-9_-]{60,70})(?![A-Za-z0-9_-])"),
    R("telegram-bot-token", "Telegram bot token", "HIGH", "Telegram", ":aa",
      r":AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])", prefix=r"(?<![0-9])[0-9]{8,10}", boundary=True, entropy=3.5),
    R("teams-webhook", "Microsoft Teams incoming webhook URL", "MEDIUM", "Microsoft", "webhook.office.com",
      r"https://[a-z0-9-]{1,64}\.webhook\.office\.com/webhookb2/[a-f0-9-]{36}@[a-f0-9-]{36}/IncomingWebhook/"
      r"(?P<secret>[a-f0-9]{32})/[a-f0-9-]{36}"),
    # Payments and commerce
    R("stripe-secret-key", "Stripe live secret key", "CRITICAL", "Stripe", "sk_live_",
      r"sk_live_[A-Za-z0-9]{24,247}+" + END, boundary=True, entropy=3.0),
    R("stripe-restricted-key", "Stripe live restricted key", "HIGH", "Stripe", "rk_live_",
      r"rk_live_[A-Za-z0-9]{24,247}+" + END, boundary=True, entropy=3.0),
    R("webhook-signing-secret", "Webhook signing secret (Stripe, Svix)", "HIGH", "Stripe", "whsec_",
      r"whsec_[A-Za-z0-9+/=]{32,88}+(?![A-Za-z0-9+/=])", boundary=True, entropy=3.5),
    R("square-access-token", "Square access token", "HIGH", "Square", "sq0atp-",
      r"sq0atp-[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("square-production-token", "Square production access token", "HIGH", "Square", "eaaa",
      r"EAAA[A-Za-z0-9_+-]{60}(?![A-Za-z0-9_+-])", boundary=True, entropy=3.5),
    R("square-oauth-secret", "Square OAuth secret", "HIGH", "Square", "sq0csp-",
      r"sq0csp-[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("braintree-access-token", "PayPal Braintree access token", "CRITICAL", "PayPal", "access_token$production$",
      r"access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}" + END),
    R("paypal-client-secret", "PayPal client secret", "HIGH", "PayPal", "paypal",
      ctx(r"paypal[A-Za-z0-9_.-]{0,20}secret", r"[A-Za-z0-9_-]{80}", gap=4, end=r"(?![A-Za-z0-9_-])"),
      entropy=3.5),
    R("shopify-access-token", "Shopify access token", "HIGH", "Shopify", "shpat_",
      r"shpat_[a-fA-F0-9]{32}" + END, boundary=True),
    R("shopify-custom-app-token", "Shopify custom app access token", "HIGH", "Shopify", "shpca_",
      r"shpca_[a-fA-F0-9]{32}" + END, boundary=True),
    R("shopify-private-app-token", "Shopify private app access token", "HIGH", "Shopify", "shppa_",
      r"shppa_[a-fA-F0-9]{32}" + END, boundary=True),
    R("shopify-shared-secret", "Shopify shared secret", "HIGH", "Shopify", "shpss_",
      r"shpss_[a-fA-F0-9]{32}" + END, boundary=True),
    R("razorpay-key", "Razorpay live key", "HIGH", "Razorpay", "rzp_live_",
      r"rzp_live_[A-Za-z0-9]{14}" + END, boundary=True, entropy=3.0),
    R("flutterwave-secret-key", "Flutterwave secret key", "HIGH", "Flutterwave", "flwseck",
      r"FLWSECK(?:_TEST)?-[a-f0-9]{32}-X" + END, boundary=True),
    R("plaid-access-token", "Plaid access token", "MEDIUM", "Plaid",
      ["access-production-", "access-development-", "access-sandbox-"],
      r"access-(?:production|development|sandbox)-" + UUID + END, boundary=True),
    R("easypost-api-key", "EasyPost API key", "HIGH", "EasyPost", "ezak", r"EZAK[A-Za-z0-9]{54}" + END,
      boundary=True, entropy=3.5),
    R("shippo-api-token", "Shippo API token", "MEDIUM", "Shippo", "shippo_",
      r"shippo_(?:live|test)_[a-f0-9]{40}" + END, boundary=True),
    # Communications
    R("twilio-api-key", "Twilio API key", "HIGH", "Twilio", "sk", r"SK[0-9a-fA-F]{32}" + END, boundary=True,
      entropy=3.2),
    R("twilio-auth-token", "Twilio auth token", "HIGH", "Twilio", "twilio",
      ctx(r"twilio[A-Za-z0-9_.-]{0,20}(?:token|secret)", r"[0-9a-f]{32}", gap=4), entropy=3.0),
    R("twilio-account-sid", "Twilio account SID", "LOW", "Twilio", "twilio", r"AC[0-9a-f]{32}" + END,
      boundary=True, entropy=3.0),
    R("sendgrid-api-key", "SendGrid API key", "HIGH", "SendGrid", "sg.",
      r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", boundary=True, entropy=3.5),
    R("mailgun-api-key", "Mailgun API key", "HIGH", "Mailgun", "mailgun",
      ctx(r"mailgun", r"key-[0-9a-f]{32}|[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}", gap=24)),
    R("mailgun-private-key", "Mailgun private API key", "MEDIUM", "Mailgun", "key-",
      r"key-[0-9a-f]{32}" + END, boundary=True, entropy=3.2),
    R("mailchimp-api-key", "Mailchimp API key", "HIGH", "Mailchimp", ["mailchimp", "chimp"],
      ctx(r"(?:mail)?chimp", r"[0-9a-f]{32}-us[0-9]{1,2}", gap=24)),
    R("brevo-api-key", "Brevo (Sendinblue) API key", "HIGH", "Brevo", "xkeysib-",
      r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}" + END, boundary=True),
    # Package registries and artifact stores
    R("npm-access-token", "npm access token", "CRITICAL", "npm", "npm_", r"npm_[A-Za-z0-9]{36}" + END,
      boundary=True, entropy=3.0),
    R("npmrc-auth", "Registry credentials in .npmrc / .yarnrc", "HIGH", "npm",
      ["_authtoken", "_auth", "_password", "npmauth"],
      r"(?:_authToken|_auth|_password|npmAuthToken|npmAuthIdent)[\"']?[ \t]{0,4}[=:][ \t]{0,4}[\"']?"
      r"(?P<secret>[^\s\"'#]{8,512})", path=r"(?:^|/)\.(?:npmrc|yarnrc(?:\.yml)?)$"),
    R("pypi-token", "PyPI upload token", "CRITICAL", "PyPI", "pypi-ageichlwas5vcmc",
      r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}", boundary=True),
    R("test-pypi-token", "TestPyPI upload token", "MEDIUM", "PyPI", "pypi-agendgvzdc5wexbplm9yzw",
      r"pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9_-]{50,1000}", boundary=True),
    R("pypirc-password", "Password in .pypirc", "HIGH", "PyPI", "password",
      r"(?m)^[ \t]{0,8}password[ \t]{0,4}[:=][ \t]{0,4}(?P<secret>[^\s]{4,256})", path=r"(?:^|/)\.pypirc$",
      kind="password", generic=True),
    R("rubygems-api-key", "RubyGems API key", "HIGH", "RubyGems", "rubygems_",
      r"rubygems_[a-f0-9]{48}" + END, boundary=True),
    R("nuget-api-key", "NuGet API key", "HIGH", "NuGet", "oy2", r"oy2[a-z0-9]{43}" + END, boundary=True,
      entropy=3.5),
    R("dockerhub-token", "Docker Hub access token", "HIGH", "Docker", ["dckr_pat_", "dckr_oat_"],
      r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,64}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("docker-config-auth", "Registry credentials in a Docker config", "HIGH", "Docker", '"auth"',
      r"\"auth\"[ \t]{0,4}:[ \t]{0,4}\"(?P<secret>[A-Za-z0-9+/]{4,1024}={0,2})\"",
      path=r"(?i)\.json$|(?:^|/)\.dockercfg$", validate=docker_auth, kind="password"),
    R("docker-config-identity-token", "Registry identity token in a Docker config", "HIGH", "Docker",
      '"identitytoken"', r"\"identitytoken\"[ \t]{0,4}:[ \t]{0,4}\"(?P<secret>[^\"\s]{16,4096})\"",
      path=r"(?i)\.json$|(?:^|/)\.dockercfg$"),
    R("jfrog-api-key", "JFrog Artifactory API key", "HIGH", "JFrog", "akcp", r"AKCp[A-Za-z0-9]{69}" + END,
      boundary=True, entropy=3.5),
    R("jfrog-reference-token", "JFrog reference token", "HIGH", "JFrog", "cmvmdgtuojaxoj",
      r"cmVmdGtuOjAxOj[A-Za-z0-9]{40,80}+" + END, boundary=True),
    R("clojars-token", "Clojars deploy token", "HIGH", "Clojars", "clojars_",
      r"CLOJARS_[a-z0-9]{60}" + END, boundary=True),
    # Infrastructure
    R("terraform-cloud-token", "Terraform Cloud / Enterprise API token", "HIGH", "HashiCorp", ".atlasv1.",
      r"\.atlasv1\.[A-Za-z0-9_=-]{60,70}+(?![A-Za-z0-9_=-])", prefix=r"[A-Za-z0-9]{14}", boundary=True,
      entropy=3.5),
    R("vault-service-token", "HashiCorp Vault service token", "HIGH", "HashiCorp", "hvs.",
      r"hvs\.[A-Za-z0-9_-]{24,130}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.5),
    R("vault-batch-token", "HashiCorp Vault batch token", "HIGH", "HashiCorp", "hvb.",
      r"hvb\.[A-Za-z0-9_-]{100,300}+(?![A-Za-z0-9_-])", boundary=True, entropy=3.5),
    R("vault-legacy-token", "HashiCorp Vault token", "HIGH", "HashiCorp", "vault",
      ctx(r"vault[A-Za-z0-9_.-]{0,20}token", r"s\.[A-Za-z0-9]{24}", gap=4), entropy=3.5),
    R("pulumi-access-token", "Pulumi access token", "HIGH", "Pulumi", "pul-", r"pul-[a-f0-9]{40}" + END,
      boundary=True),
    R("doppler-token", "Doppler token", "HIGH", "Doppler", ["dp.st.", "dp.ct.", "dp.sa.", "dp.scim.", "dp.audit.",
                                                            "dp.pt."],
      r"dp\.(?:st|ct|sa|scim|audit|pt)\.(?:[a-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,44}+" + END, boundary=True,
      entropy=3.5),
    R("kubeconfig-client-key", "Client private key in a kubeconfig", "CRITICAL", "Kubernetes", "client-key-data",
      r"client-key-data:[ \t]{0,4}[\"']?(?P<secret>[A-Za-z0-9+/=]{100,16384})", validate=kube_client_key,
      kind="key"),
    # Observability
    R("datadog-api-key", "Datadog API key", "HIGH", "Datadog", ["datadog", "dd_api", "dd-api", "ddapi"],
      ctx(r"(?:datadog|dd)[_.-]?api[_.-]?key", r"[a-f0-9]{32}", gap=4), entropy=3.0),
    R("datadog-app-key", "Datadog application key", "HIGH", "Datadog", ["datadog", "dd_app", "dd-app", "ddapp"],
      ctx(r"(?:datadog|dd)[_.-]?app(?:lication)?[_.-]?key", r"[a-f0-9]{40}", gap=4), entropy=3.0),
    R("new-relic-user-api-key", "New Relic user API key", "HIGH", "New Relic", "nrak-",
      r"NRAK-[A-Z0-9]{27}" + END, boundary=True, entropy=3.0),
    R("new-relic-insert-key", "New Relic insert key", "HIGH", "New Relic", "nrii-",
      r"NRII-[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])", boundary=True, entropy=3.0),
    R("new-relic-license-key", "New Relic license key", "HIGH", "New Relic", "nral",
      r"NRAL" + END, prefix=r"[a-f0-9]{36}", boundary=True, entropy=3.0),
    R("new-relic-browser-key", "New Relic browser API key", "MEDIUM", "New Relic", "nrjs-",
      r"NRJS-[a-f0-9]{19}" + END, boundary=True),
    R("sentry-auth-token", "Sentry auth token", "HIGH", "Sentry", ["sntrys_", "sntryu_"],
      r"(?:sntrys_[A-Za-z0-9+/=_]{40,400}|sntryu_[a-f0-9]{64})" + END, boundary=True, entropy=3.5),
    R("sentry-dsn", "Sentry DSN", "LOW", "Sentry", "sentry.io",
      r"https?://(?P<secret>[a-f0-9]{32})(?::[a-f0-9]{32})?@[A-Za-z0-9.-]{0,100}sentry\.io/[0-9]{1,20}"),
    R("grafana-cloud-token", "Grafana Cloud API token", "HIGH", "Grafana", "glc_",
      r"glc_[A-Za-z0-9+/]{32,400}={0,2}", boundary=True, entropy=3.5),
    R("grafana-service-account-token", "Grafana service account token", "HIGH", "Grafana", "glsa_",
      r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}" + END, boundary=True, entropy=3.5),
    R("grafana-api-key", "Grafana API key", "HIGH", "Grafana", "eyjrijoi",
      r"eyJrIjoi[A-Za-z0-9]{60,400}={0,2}", boundary=True, entropy=3.5),
    R("dynatrace-api-token", "Dynatrace API token", "HIGH", "Dynatrace", "dt0c01.",
      r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}" + END, boundary=True),
    R("pagerduty-api-key", "PagerDuty API key", "MEDIUM", "PagerDuty", "pagerduty",
      ctx(r"pagerduty[A-Za-z0-9_.-]{0,20}(?:token|key)", r"u\+[A-Za-z0-9_+-]{18}|[A-Za-z0-9_+-]{20}", gap=4,
          end=r"(?![A-Za-z0-9_+-])"), entropy=3.0),
    # Identity and productivity
    R("okta-api-token", "Okta API token", "HIGH", "Okta", "okta",
      ctx(r"okta[A-Za-z0-9_.-]{0,20}(?:token|key)", r"00[A-Za-z0-9_-]{40}", gap=4, end=r"(?![A-Za-z0-9_-])"),
      entropy=3.5),
    R("linear-api-key", "Linear API key", "HIGH", "Linear", "lin_api_", r"lin_api_[A-Za-z0-9]{40}" + END,
      boundary=True, entropy=3.5),
    R("notion-token", "Notion integration token", "HIGH", "Notion", "ntn_", r"ntn_[0-9]{11}[A-Za-z0-9]{35}" + END,
      boundary=True, entropy=3.5),
    R("notion-legacy-token", "Notion integration token", "HIGH", "Notion", "secret_",
      r"secret_[A-Za-z0-9]{43}" + END, boundary=True, entropy=4.0),
    R("postman-api-key", "Postman API key", "HIGH", "Postman", "pmak-",
      r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}" + END, boundary=True),
    R("dropbox-short-lived-token", "Dropbox access token", "HIGH", "Dropbox", "sl.",
      r"sl\.[A-Za-z0-9_-]{130,1500}+(?![A-Za-z0-9_-])", boundary=True, entropy=4.0),
    R("dropbox-long-lived-token", "Dropbox long-lived access token", "HIGH", "Dropbox", "aaaaaaaaaa",
      r"AAAAAAAAAA[a-z0-9_-]{43}(?![A-Za-z0-9_-])", prefix=r"[a-z0-9]{11}", boundary=True, entropy=3.5),
    R("figma-token", "Figma personal access token", "HIGH", "Figma", "figd_",
      r"figd_[A-Za-z0-9_-]{40}(?![A-Za-z0-9_-])", boundary=True, entropy=3.5),
    R("airtable-token", "Airtable personal access token", "HIGH", "Airtable", "pat",
      r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}" + END, boundary=True, entropy=3.5),
    R("typeform-token", "Typeform personal access token", "MEDIUM", "Typeform", "tfp_",
      r"tfp_[A-Za-z0-9_.=-]{59}(?![A-Za-z0-9_.=-])", boundary=True, entropy=3.5),
    R("contentful-token", "Contentful personal access token", "HIGH", "Contentful", "cfpat-",
      r"CFPAT-[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", boundary=True, entropy=3.5),
    R("databricks-token", "Databricks access token", "HIGH", "Databricks", "dapi",
      r"dapi[a-f0-9]{32}(?:-[0-9])?" + END, boundary=True, entropy=3.0),
    R("netlify-token", "Netlify access token", "HIGH", "Netlify", "nfp_", r"nfp_[A-Za-z0-9]{36}" + END,
      boundary=True, entropy=3.5),
    R("flyio-token", "Fly.io access token", "HIGH", "Fly.io", "fo1_", r"fo1_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])",
      boundary=True, entropy=3.5),
    R("supabase-token", "Supabase access token", "HIGH", "Supabase", "sbp_", r"sbp_[a-f0-9]{40}" + END,
      boundary=True),
    R("planetscale-token", "PlanetScale token or password", "HIGH", "PlanetScale", "pscale_",
      r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}+(?![A-Za-z0-9_.-])", boundary=True, entropy=3.5),
    R("prefect-api-key", "Prefect API key", "HIGH", "Prefect", "pnu_", r"pnu_[A-Za-z0-9]{36}" + END,
      boundary=True, entropy=3.5),
    R("twitter-bearer-token", "Twitter/X bearer token", "MEDIUM", "Twitter", "aaaaaaaaaaaaaaaaaaaaa",
      r"AAAAAAAAAAAAAAAAAAAAA(?<![A-Za-z0-9%]AAAAAAAAAAAAAAAAAAAAA)[A-Za-z0-9%]{30,200}+(?![A-Za-z0-9%])",
      boundary=True, entropy=3.0),
    R("facebook-access-token", "Facebook access token", "HIGH", "Facebook", "eaacedeose0cba",
      r"EAACEdEose0cBA[A-Za-z0-9]{20,300}+" + END, boundary=True),
    R("mapbox-secret-token", "Mapbox secret token", "HIGH", "Mapbox", "sk.eyj1ijoi",
      r"sk\.eyJ1Ijoi[A-Za-z0-9_-]{20,200}\.[A-Za-z0-9_-]{20,40}+(?![A-Za-z0-9_-])", boundary=True),
    # AI services
    R("openai-api-key", "OpenAI API key", "CRITICAL", "OpenAI", "t3blbkfj",
      r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,200}T3BlbkFJ[A-Za-z0-9_-]{20,200}"
      r"(?![A-Za-z0-9_-])", boundary=True),
    R("openai-project-key", "OpenAI project API key", "CRITICAL", "OpenAI", "sk-proj-",
      r"sk-proj-[A-Za-z0-9_-]{80,200}+(?![A-Za-z0-9_-])", boundary=True, entropy=4.0),
    R("openai-service-account-key", "OpenAI service account key", "CRITICAL", "OpenAI", "sk-svcacct-",
      r"sk-svcacct-[A-Za-z0-9_-]{80,200}+(?![A-Za-z0-9_-])", boundary=True, entropy=4.0),
    R("openai-admin-key", "OpenAI admin key", "CRITICAL", "OpenAI", "sk-admin-",
      r"sk-admin-[A-Za-z0-9_-]{80,200}+(?![A-Za-z0-9_-])", boundary=True, entropy=4.0),
    R("anthropic-api-key", "Anthropic API key", "CRITICAL", "Anthropic", "sk-ant-api",
      r"sk-ant-api03-[A-Za-z0-9_-]{93}AA(?![A-Za-z0-9_-])", boundary=True, entropy=4.0),
    R("anthropic-admin-key", "Anthropic admin key", "CRITICAL", "Anthropic", "sk-ant-admin",
      r"sk-ant-admin01-[A-Za-z0-9_-]{93}AA(?![A-Za-z0-9_-])", boundary=True, entropy=4.0),
    R("huggingface-token", "Hugging Face access token", "HIGH", "Hugging Face", "hf_",
      r"hf_[A-Za-z]{34}" + END, boundary=True, entropy=3.5),
    R("huggingface-org-token", "Hugging Face organization token", "HIGH", "Hugging Face", "api_org_",
      r"api_org_[A-Za-z]{34}" + END, boundary=True, entropy=3.5),
    R("groq-api-key", "Groq API key", "HIGH", "Groq", "gsk_", r"gsk_[A-Za-z0-9]{52}" + END, boundary=True,
      entropy=3.5),
    R("replicate-api-token", "Replicate API token", "HIGH", "Replicate", "r8_", r"r8_[A-Za-z0-9]{37}" + END,
      boundary=True, entropy=3.5),
    R("perplexity-api-key", "Perplexity API key", "HIGH", "Perplexity", "pplx-", r"pplx-[A-Za-z0-9]{48}" + END,
      boundary=True, entropy=3.5),
    R("xai-api-key", "xAI API key", "HIGH", "xAI", "xai-", r"xai-[A-Za-z0-9]{80}" + END, boundary=True,
      entropy=3.5),
    R("langsmith-api-key", "LangSmith API key", "HIGH", "LangChain", "lsv2_",
      r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}" + END, boundary=True),
    R("ai-provider-api-key", "AI provider API key (Cohere, Mistral)", "HIGH", "AI", ["cohere", "mistral"],
      ctx(r"(?:cohere|mistral)[A-Za-z0-9_.-]{0,20}(?:key|token)", r"[A-Za-z0-9]{32,40}", gap=4), entropy=3.5),
    # Private keys
    R("private-key-rsa", "RSA private key", "CRITICAL", "Private key", "begin rsa private key",
      pem("RSA PRIVATE KEY"), kind="key"),
    R("private-key-ec", "EC private key", "CRITICAL", "Private key", "begin ec private key",
      pem("EC PRIVATE KEY"), kind="key"),
    R("private-key-dsa", "DSA private key", "CRITICAL", "Private key", "begin dsa private key",
      pem("DSA PRIVATE KEY"), kind="key"),
    R("private-key-openssh", "OpenSSH private key", "CRITICAL", "Private key", "begin openssh private key",
      pem("OPENSSH PRIVATE KEY"), kind="key"),
    R("private-key-pkcs8", "PKCS #8 private key", "CRITICAL", "Private key", "begin private key",
      pem("PRIVATE KEY"), kind="key"),
    R("private-key-pkcs8-encrypted", "Encrypted PKCS #8 private key", "MEDIUM", "Private key",
      "begin encrypted private key", pem("ENCRYPTED PRIVATE KEY"), kind="key"),
    R("private-key-pem-encrypted", "Passphrase-protected PEM private key", "MEDIUM", "Private key",
      "proc-type: 4,encrypted",
      rf"-----BEGIN (?:RSA|EC|DSA) PRIVATE KEY-----{BLANK}{{1,64}}Proc-Type:{BLANK}{{1,64}}4,ENCRYPTED{BLANK}{{1,64}}"
      rf"DEK-Info:{BLANK}{{1,64}}[A-Za-z0-9,-]{{1,128}}{BLANK}{{1,64}}+(?P<secret>{B64_BODY}{{63,16383}}?){PEM_END}",
      kind="key"),
    R("private-key-pgp", "PGP private key block", "CRITICAL", "Private key", "begin pgp private key block",
      rf"-----BEGIN PGP PRIVATE KEY BLOCK-----{BLANK}{{1,64}}+{ARMOR_HEADERS}{BLANK}{{0,64}}+"
      rf"(?P<secret>{B64_BODY}{{63,65535}}?){PEM_END}", kind="key"),
    R("private-key-ssh2", "SSH2 (Tectia) private key", "MEDIUM", "Private key", "begin ssh2 encrypted private key",
      rf"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----{BLANK}{{1,64}}+{ARMOR_HEADERS}"
      rf"(?P<secret>{B64_BODY}{{63,16383}}?)---- END SSH2 ENCRYPTED PRIVATE KEY ----", kind="key"),
    R("private-key-putty", "PuTTY private key", "CRITICAL", "Private key", "putty-user-key-file-",
      r"PuTTY-User-Key-File-[23]: [^\r\n]{1,64}+\r?\n(?:[^\r\n]{0,256}+\r?\n){1,40}?Private-Lines: [0-9]{1,4}\r?\n"
      r"(?P<secret>[A-Za-z0-9+/=\r\n]{40,16384}?)Private-(?:MAC|Hash):", kind="key"),
    R("age-secret-key", "age secret key", "CRITICAL", "Private key", "age-secret-key-1",
      r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}" + END, boundary=True, kind="key"),
    # Tokens in standard formats
    R("jwt", "JSON Web Token", "MEDIUM", "JWT", "eyj",
      r"eyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{16,2048}+(?![A-Za-z0-9_-])",
      boundary=True, validate=jwt),
    R("http-basic-auth", "HTTP basic authorization header", "MEDIUM", "HTTP", "authorization",
      r"(?i:authorization)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?i:basic)[ \t]{1,4}(?P<secret>[A-Za-z0-9+/]{8,512}"
      r"={0,2})(?![A-Za-z0-9+/=])", validate=basic_auth, kind="password"),
    R("http-bearer-token", "HTTP bearer token", "MEDIUM", "HTTP", "authorization",
      r"(?i:authorization)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?i:bearer)[ \t]{1,4}"
      r"(?P<secret>[A-Za-z0-9._~+/-]{20,2048}={0,2})(?![A-Za-z0-9._~+/=-])", entropy=3.5, generic=True),
    # Credentials in URLs and connection strings
    R("postgres-url", "PostgreSQL connection URL with a password", "HIGH", "Database", "postgres",
      url(r"postgres(?:ql)?(?:\+[a-z0-9]{1,20})?"), kind="url", generic=True, allow_match=EXAMPLE_HOST),
    R("mysql-url", "MySQL connection URL with a password", "HIGH", "Database", "mysql",
      url(r"(?:mysql[x2]?|mariadb)(?:\+[a-z0-9]{1,20})?"), kind="url", generic=True,
      allow_match=EXAMPLE_HOST),
    R("mongodb-url", "MongoDB connection URL with a password", "HIGH", "Database", "mongodb",
      url(r"mongodb(?:\+srv)?"), kind="url", generic=True, allow_match=EXAMPLE_HOST),
    R("redis-url", "Redis connection URL with a password", "HIGH", "Database", "redis",
      url(r"rediss?", user_min=0), kind="url", generic=True, allow_match=EXAMPLE_HOST),
    R("amqp-url", "AMQP (RabbitMQ) connection URL with a password", "HIGH", "Database", "amqp",
      url(r"amqps?"), kind="url", generic=True, allow_match=EXAMPLE_HOST),
    R("database-url", "Database connection URL with a password", "HIGH", "Database",
      ["mssql", "sqlserver", "oracle", "clickhouse", "cockroach", "neo4j", "bolt", "couchdb", "cassandra",
       "influxdb", "elasticsearch", "opensearch", "snowflake", "db2"],
      url(r"(?:(?:mssql|sqlserver|oracle|clickhouse|cockroachdb|neo4j|bolt|couchdbs?|cassandra|influxdb|elasticsearch"
          r"|opensearch|snowflake|db2|ibm_db_sa)(?:\+[a-z0-9]{1,20})?)"), kind="url", generic=True,
      allow_match=EXAMPLE_HOST),
    R("jdbc-password", "Password in a JDBC URL", "HIGH", "Database", "jdbc:",
      r"jdbc:[a-z0-9]{2,20}:(?:[^\s\"'<>;?&]{0,128}+[;?&]){1,16}?(?i:password|pwd)=(?P<secret>[^;&\s\"'<>]{3,128})",
      kind="url", generic=True),
    R("git-credentials", "Credentials in .git-credentials", "HIGH", "Git", "://",
      url(r"[a-z][a-z0-9+.-]{0,20}"), path=r"(?:^|/)\.?git-credentials$", kind="url"),
    R("url-credentials", "Password embedded in a URL", "MEDIUM", "URL", "://",
      url(""), prefix=r"(?<![A-Za-z0-9+.-])(?:https?|ftps?|sftp|ssh|git|svn|ldaps?|smtps?|imaps?|pop3s?|nats|mqtts?"
                      r"|kafka|wss?|s3|socks[45]h?)", kind="url", generic=True, allow_match=EXAMPLE_HOST),
    # Credential files
    R("netrc-password", "Password in a .netrc file", "HIGH", "netrc", "password",
      r"password[ \t\r\n]{1,16}(?P<secret>[^\s]{1,256})", path=r"(?:^|/)[._]netrc$", kind="password",
      generic=True),
    R("pgpass-password", "Password in a .pgpass file", "HIGH", "Database", [],
      r"(?m)^[^:\s#][^:\r\n]{0,255}:(?:[0-9]{1,5}|\*):[^:\r\n]{1,255}:[^:\r\n]{1,255}:(?P<secret>[^\r\n]{1,256})$",
      path=r"(?:^|/)\.pgpass$", kind="password", generic=True),
    R("htpasswd-hash", "Password hash in an htpasswd file", "MEDIUM", "htpasswd",
      ["$apr1$", "{sha}", "$2y$", "$2a$", "$2b$"],
      r"(?m)^[A-Za-z0-9._@-]{1,64}:(?P<secret>\$apr1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}|\{SHA\}[A-Za-z0-9+/]{27}="
      r"|\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53})", kind="hash", allow_paths=r"^etc/g?shadow-?$"),
    R("redis-requirepass", "Redis password in a configuration file", "HIGH", "Database",
      ["requirepass", "masterauth"],
      r"(?m)^[ \t]{0,8}(?:requirepass|masterauth)[ \t]{1,8}[\"']?(?P<secret>[^\s\"']{4,256})", kind="password",
      generic=True),
    R("wordpress-db-password", "WordPress database password", "HIGH", "WordPress", "db_password",
      r"define\([ \t]{0,4}[\"']DB_PASSWORD[\"'][ \t]{0,4},[ \t]{0,4}[\"'](?P<secret>[^\"'\r\n]{1,128})[\"']",
      kind="password", generic=True),
    R("django-secret-key", "Django SECRET_KEY", "MEDIUM", "Django", "secret_key",
      r"SECRET_KEY[ \t]{0,4}=[ \t]{0,4}[\"'](?P<secret>[^\"'\r\n]{32,128})[\"']", entropy=3.5),
    R("rails-secret-key-base", "Rails secret_key_base", "HIGH", "Rails", "secret_key_base",
      r"(?i:secret_key_base)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?P<secret>[a-f0-9]{64,256})" + END, entropy=3.0),
    R("curl-user-password", "Password passed to curl", "MEDIUM", "Command line", "curl",
      r"curl(?:[ \t][^\r\n]{0,200}?)?[ \t](?:-u|--user)[ =][\"']?[^:\s\"']{1,64}:(?P<secret>[^\s\"']{3,128})",
      kind="password", generic=True),
    R("sshpass-password", "Password passed to sshpass", "MEDIUM", "Command line", "sshpass",
      r"sshpass[ \t]{1,4}-p[ \t]{0,4}[\"']?(?P<secret>[^\s\"']{3,128})", kind="password", generic=True),
    R("mysql-cli-password", "Password passed to a MySQL client", "MEDIUM", "Command line", "mysql",
      r"mysql(?:dump|admin|import|sh)?[ \t](?:[^\r\n]{0,200}?[ \t])?(?:-p|--password=)"
      r"(?P<secret>[^\s\"'-][^\s\"']{2,127})",
      kind="password", generic=True),
    # Generic assignments: last, so a specific rule's finding wins over these
    R("xml-password", "Password in an XML file", "MEDIUM", "Generic", ["password>", "passwd>", "pwd>"],
      r"<(?i:password|passwd|pwd)>(?P<secret>[^<\s]{4,128})</", path=r"(?i)\.(?:xml|config|xsd|jelly)$",
      kind="password", generic=True),
    R("env-secret", "Secret in an environment variable assignment", "MEDIUM", "Generic",
      ["password", "passwd", "secret", "token", "api_key", "apikey", "access_key", "accesskey", "private_key",
       "privatekey", "credential"],
      r"(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)"
      r"(?!_(?:FILE|PATH|DIR|CMD|COMMAND|ENV|NAME|TYPE|LENGTH|URL|ENDPOINT|HOST|PORT|ID|REF|KEY_ID|EXPIRY|TTL)\b)"
      r"(?:_[A-Z0-9]{1,20}){0,2}=[\"']?(?P<secret>[^\s\"'$`;&|<>(){}\\]{6,200}+)(?![$`{(<\\])", kind="password",
      generic=True,
      near_keyword=True),
    R("generic-password", "Password in a configuration file", "MEDIUM", "Generic",
      ["password", "passwd", "passwort", "passphrase", "pwd"],
      r"(?i:password|passwd|passwort|passphrase|(?<![A-Za-z])pwd)"
      r"[\"']?[ \t]{0,4}(?:=>|:=|[:=])[ \t]{0,4}[\"']?(?P<secret>[^\s\"'`#;,]{4,128})", path=CONFIG_FILES,
      kind="password", generic=True),
    R("generic-api-key", "Secret or API key assignment", "MEDIUM", "Generic",
      ["api_key", "api-key", "apikey", "api.key", "api_secret", "api-secret", "apisecret", "client_secret",
       "client-secret", "clientsecret", "app_secret", "app-secret", "appsecret", "secret_key", "secret-key",
       "secretkey", "access_token", "access-token", "accesstoken", "auth_token", "auth-token", "authtoken",
       "private_token", "private-token", "privatetoken"],
      ctx(r"api[_.-]?(?:key|secret)|(?:client|app)[_.-]?secret|secret[_.-]?key|(?:access|auth|private)[_.-]?token",
          r"[A-Za-z0-9_+/=.~-]{16,256}", gap=0, end=r"(?![A-Za-z0-9_+/=.~-])"), entropy=3.5, generic=True),
]


# -- placeholders and allow rules -----------------------------------------------------------------------

# A value containing one of these is documentation or a template, not a secret.
PLACEHOLDER_PARTS = (
    "example", "sample", "placeholder", "changeme", "change_me", "change-me", "changeit", "dummy", "redacted",
    "xxxxx", "*****", "your_", "your-", "yourpass", "<", ">", "${", "{{", "}}", "$(", "%(", "%s", "process.env",
    "os.environ", "getenv", "secretkeyref", "replace_me", "replace-me", "replaceme", "insert_", "enter_",
    "fill_in", "fillme", "todo", "fixme", "notasecret", "not_a_secret", "not-a-secret", "........", "enc(",
    "{cipher}", "vault:", "!vault", "lookup(", "secretsmanager", "ssm:", "arn:aws",
)
# A generic value that is exactly one of these (ignoring case, quotes and punctuation) is no secret.
PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "pass", "pwd", "secret", "token", "none", "null", "nil", "true", "false", "yes", "no",
    "undefined", "empty", "required", "optional", "string", "value", "default", "unset", "unknown", "hidden",
    "masked", "foo", "bar", "foobar", "baz", "qwerty", "xxx", "abc", "test", "testing", "demo", "mypassword",
    "yourpassword", "user", "username", "apikey", "api_key", "secretkey", "secret_key", "token_here", "key",
    "disabled", "off", "on", "prompt", "ask", "stdin", "file", "env", "environment", "random", "generated",
    "auto", "system", "any", "self", "this", "config", "settings", "params", "args", "kwargs", "options",
})

_PARTS_RE = "|".join(re.escape(p) for p in PLACEHOLDER_PARTS)

# Where third-party code lives: language runtimes, package directories, vendored trees.
VENDORED = (r"(?:^|/)(?:site-packages|dist-packages|node_modules|bower_components|vendor|gems|bundle|pkg/mod|"
            r"lib/python[0-9.]{0,8}|lib/ruby|share/perl5?|lib/perl5?|lib/jvm|\.m2/repository|\.cargo/registry|"
            r"composer|usr/(?:local/)?go|usr/lib/go-[0-9.]{1,8}|usr/share)/")
_HEURISTIC_EXTRA = {"jwt", "http-basic-auth", "http-bearer-token"}

_TEST_DIRS = (r"(?i:tests?|testing|__tests__|testdata|test_data|test-data|fixtures?|specs?|idle_test|unittest|"
              r"self_?test|testsuite|test_?cases?)")

# Well-known public dummy values from vendors' documentation and emulators.
WELL_KNOWN_VALUES = (
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # AWS documentation
    # Azurite / Azure Storage Emulator account key (published in Microsoft's documentation)
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",  # the jwt.io sample token's signature
)

BUILTIN_ALLOW: list[AllowRule] = [
    AllowRule("documentation", "Documentation, manual pages, licences, locales and C headers",
              dir=r"^usr/(?:local/)?share/(?:doc|man|info|help|gtk-doc|licenses|common-licenses|locale|i18n|"
                  r"zoneinfo|icons|fonts|mime)/|^usr/(?:local/)?include/"),
    AllowRule("documentation-text", "Text files in documentation and example directories",
              dir=r"(?:^|/)(?:docs?|man|examples?|samples?)/", name=r"\.(?:md|rst|txt|html?|adoc|markdown)$"),
    AllowRule("vendored-tests", "Test directories of vendored packages and language runtimes",
              dir=VENDORED + r"(?:.{0,512}/)?" + _TEST_DIRS + "/"),
    AllowRule("vendored-test-files", "Test sources of vendored packages",
              dir=VENDORED, name=r"^test_.{0,200}\.py$|_tests?\.py$|\.(?:test|spec)\.[cm]?[jt]sx?$|_spec\.rb$"),
    AllowRule("vendored-docs", "Documentation and examples inside vendored packages",
              dir=VENDORED + r"(?:.{0,512}/)?(?i:examples?|samples?|docs?|demos?)/"),
    AllowRule("vendored-doc-files", "Package descriptions and READMEs inside vendored packages",
              dir=VENDORED, name=r"\.(?:md|rst|markdown|adoc)$|^(?:PKG-INFO|METADATA|DESCRIPTION\.rst|README|CHANGE"
                                 r"|HISTORY|NEWS)"),
    AllowRule("vendored-heuristics", "Key=value heuristics, JWTs and HTTP headers in third-party code (their "
              "docstrings and tests are full of sample values); token formats are still looked for there",
              dir=VENDORED, rules=tuple(r.id for r in RULES if r.generic or r.id in _HEURISTIC_EXTRA)),
    AllowRule("go-test-files", "Go test sources", name=r"_test\.go$"),
    AllowRule("example-files", "Example and template files",
              name=r"(?i)\.(?:example|sample|dist|tmpl|template)$|(?:^|[._-])(?:example|sample)s?(?:[._-]|$)"),
    AllowRule("placeholder-values", "Placeholder and documentation values (key material: see KEY_ENTROPY)",
              rules=tuple(r.id for r in RULES if r.kind != "key"),
              regex=r"(?i)" + _PARTS_RE + r"|^(.)\1{5,}$|^\$(?:[A-Za-z_][A-Za-z0-9_]{0,64}$|[{(])"
                    r"|^[%@]\(?[A-Za-z_]{1,64}[)%@]?$|^!"),
    AllowRule("well-known-values", "Dummy credentials published in vendors' documentation",
              regex="|".join(re.escape(v) for v in WELL_KNOWN_VALUES)),
]

# Files whose content is never text worth scanning: skipped by name alone, before being read.
SKIP_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "gif", "bmp", "ico", "icns", "webp", "tif", "tiff", "psd", "xcf", "svgz",
    "woff", "woff2", "ttf", "otf", "eot", "pfb", "pcf",
    "mo", "gmo", "pyc", "pyo", "so", "a", "o", "ko", "lo", "la", "dll", "exe", "dylib", "node", "wasm", "class",
    "gz", "tgz", "bz2", "tbz2", "xz", "txz", "zst", "lz", "lz4", "lzma", "zip", "jar", "war", "ear", "whl",
    "egg", "tar", "deb", "rpm", "apk", "7z", "rar", "cab", "msi", "iso", "img", "squashfs",
    "pdf", "mp3", "mp4", "ogg", "oga", "ogv", "wav", "flac", "avi", "mkv", "mov", "webm",
    "db", "sqlite", "sqlite3", "bin", "dat", "pack", "idx", "cache", "pickle", "pkl", "npy", "npz",
    "h5", "onnx", "pt", "pth", "safetensors", "parquet", "arrow", "feather",
})
