# ruff: noqa: E501  (a table reads better one rule a line)
"""A positive and a near-miss sample for every built-in secret rule, built by code.

Every secret here is fake: random characters in the rule's format, made from a seeded generator, so
the tests are reproducible and nothing real is ever checked in.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from hullscan.secrets.rules import Rule

RNG = random.Random(424242)
ALNUM = string.ascii_letters + string.digits
LETTERS = string.ascii_letters
LOWER_ALNUM = string.ascii_lowercase + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
DIGITS = string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "_-"
B32 = string.ascii_uppercase + "234567"


def r(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def uid() -> str:
    return str(uuid.UUID(int=RNG.getrandbits(128), version=4))


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64url(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def pem_body(nbytes: int = 600) -> str:
    text = b64(RNG.randbytes(nbytes))
    return "\n".join(text[i:i + 64] for i in range(0, len(text), 64))


@dataclass
class Sample:
    secret: str  # what the rule must report (its secret group)
    text: str  # a file holding it
    miss: str  # a near miss the rule must not report
    path: str = "srv/app/notes.txt"
    miss_path: str | None = None


def S(secret: str, template: str, miss: str, path: str = "srv/app/notes.txt", miss_path: str | None = None) -> Sample:
    return Sample(secret, template.replace("{}", secret), miss, path, miss_path)


def _pem(label: str) -> Sample:
    body = pem_body()
    return S(body, f"-----BEGIN {label}-----\n{{}}\n-----END {label}-----\n",
             f"-----BEGIN {label}-----\nMIIBOgIBAAJBAK\n-----END {label}-----\n", "root/.ssh/key")


def _url(scheme: str, user: str = "app", host: str = "db.internal:5432/app") -> Sample:
    pw = r(16)
    return S(pw, f"URL={scheme}://{user}:{{}}@{host}\n", f"URL={scheme}://{user}@{host}\n", "srv/app/run.sh")


def _gcp_service_account() -> Sample:
    body = pem_body(900)
    key = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    doc = {"type": "service_account", "project_id": "acme-prod", "private_key_id": r(40, HEX),
           "private_key": key, "client_email": "deployer@acme-prod.iam.gserviceaccount.com"}
    text = json.dumps(doc, indent=2)
    secret = json.dumps(body)[1:-1] + "\\n"  # as the JSON file spells it: escaped newlines
    miss = json.dumps({**doc, "type": "authorized_user"}, indent=2)
    return Sample(secret, text, miss, "srv/app/sa.json")


def _jwt() -> Sample:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = b64url(json.dumps({"sub": r(12), "iat": 1700000000, "role": "admin"}))
    token = f"{header}.{payload}.{r(43, URLSAFE)}"
    miss = f"{b64url(json.dumps({'typ': 'JWT', 'kid': 'k1'}))}.{payload}.{r(43, URLSAFE)}"
    return S(token, "session={}\n", f"session={miss}\n")


def _sas() -> Sample:
    sig = quote(b64(RNG.randbytes(32)), safe="")
    bad = quote(b64(RNG.randbytes(33)), safe="")
    base = "https://acct1.blob.core.windows.net/c/b.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig="
    return S(sig, base + "{}\n", base + bad + "\n")


def _putty() -> Sample:
    priv = "\n".join(r(64, B64) for _ in range(3))
    head = f"PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key\nPublic-Lines: 2\n{r(64, B64)}\n{r(40, B64)}\n"
    text = head + f"Private-Lines: 3\n{priv}\nPrivate-MAC: {r(40, HEX)}\n"
    return Sample(priv + "\n", text, head + f"Private-MAC: {r(40, HEX)}\n", "root/key.ppk")


def _pem_encrypted() -> Sample:
    body = pem_body()
    head = f"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{r(32, '0123456789ABCDEF')}\n\n"
    return S(body, head + "{}\n-----END RSA PRIVATE KEY-----\n",
             "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END RSA PRIVATE KEY-----\n",
             "root/.ssh/id_rsa")


def _pgp() -> Sample:
    body = pem_body(700)
    armored = body + "\n=" + r(4, B64)  # the body and its checksum line
    return S(armored, "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{}\n-----END PGP PRIVATE KEY BLOCK-----\n",
             "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + body + "\n-----END PGP PUBLIC KEY BLOCK-----\n",
             "root/secring.asc")


def _ssh2() -> Sample:
    body = pem_body()
    return S(body, '---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: "rsa-key"\n{}\n'
                   "---- END SSH2 ENCRYPTED PRIVATE KEY ----\n",
             "---- BEGIN SSH2 PUBLIC KEY ----\n" + body + "\n---- END SSH2 PUBLIC KEY ----\n", "root/key.ssh2")


def _docker_auth() -> Sample:
    auth = b64("deploy:" + r(20))
    doc = json.dumps({"auths": {"registry.acme.io": {"auth": auth}}}, indent=2)
    miss = json.dumps({"auths": {"registry.acme.io": {"auth": b64("nocolon" + r(12))}}}, indent=2)
    return Sample(auth, doc, miss, "root/.docker/config.json")


def _kube() -> Sample:
    key = b64("-----BEGIN RSA PRIVATE KEY-----\n" + r(300, B64) + "\n-----END RSA PRIVATE KEY-----\n")
    return S(key, "users:\n- name: admin\n  user:\n    client-key-data: {}\n",
             "users:\n- name: admin\n  user:\n    client-key-data: " + b64(r(300)) + "\n", "root/.kube/config")


def _discord() -> Sample:
    token = f"M{r(25, URLSAFE)}.{r(6, URLSAFE)}.{r(38, URLSAFE)}"
    return S(token, "DISCORD_BOT_TOKEN={}\n", f"DISCORD_BOT_TOKEN=X{token[1:]}\n")


def _basic() -> Sample:
    cred = b64("admin:" + r(12))
    return S(cred, "Authorization: Basic {}\n", "Authorization: Basic " + b64("adminonly" + r(6)) + "\n",
             "srv/app/request.http")


SAMPLES: dict[str, Sample] = {
    # AWS
    "aws-access-key-id": S("AKIA" + r(16, B32), "key_id: {}\n", "key_id: AKIA" + r(15, B32) + "\n"),
    "aws-secret-access-key": S(r(40, B64), "aws_secret_access_key = {}\n",
                               "aws_secret_access_key = " + r(39, B64) + "\n", "root/.aws/credentials"),
    "aws-session-token": S(r(300, B64), "aws_session_token = {}\n", "aws_session_token = " + r(80, B64) + "\n",
                           "root/.aws/credentials"),
    "aws-sts-token": S("IQoJb3JpZ2luX2Vj" + r(200, B64), "token: {}\n", "token: IQoJb3JpZ2luX2Vj" + r(50, B64) + "\n"),
    "aws-mws-auth-token": S("amzn.mws." + uid(), "mws={}\n", "mws=amzn.mws." + uid()[:-2] + "\n"),
    # Google
    "gcp-service-account-key": _gcp_service_account(),
    "gcp-api-key": S("AIza" + r(35, URLSAFE), "key={}\n", "key=AIza" + r(30, URLSAFE) + "\n"),
    "gcp-oauth-client-secret": S("GOCSPX-" + r(28, URLSAFE), "secret={}\n", "secret=GOCSPX-" + r(20) + "\n"),
    "gcp-oauth-access-token": S("ya29." + r(100, URLSAFE), "tok={}\n", "tok=ya29." + r(20) + "\n"),
    "gcp-oauth-refresh-token": S("1//0" + r(60, URLSAFE), "refresh={}\n", "refresh=1//0" + r(20) + "\n"),
    # Azure
    "azure-storage-connection-string": S(
        r(86, B64) + "==", "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={};EndpointSuffix=core.windows.net\n",
        "DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=" + r(80, B64) + "==\n"),
    "azure-storage-account-key": S(r(86, B64) + "==", "storage_account_key: {}\n",
                                   "storage_account_key: " + r(60, B64) + "==\n"),
    "azure-ad-client-secret": S(r(3) + "8Q~" + r(34, ALNUM + "_~.-"), "secret {}\n", "secret " + r(3) + "8Q~" + r(20) + "\n"),
    "azure-sas-token": _sas(),
    "azure-service-bus-key": S(
        r(43, B64) + "=", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={}\n",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=" + r(30, B64) + "=\n"),
    "azure-container-registry-password": S(r(42, B64) + "+ACR" + r(6), "acr {}\n", "acr " + r(30, ALNUM) + "+ACR" + r(6) + "\n"),
    "azure-devops-pat": S(r(52) + "JQQJ99" + r(3) + "AZDO" + r(4), "pat {}\n",
                          "pat " + r(52) + "JQQJ99" + r(3) + "AZDX" + r(4) + "\n"),
    "azure-devops-pat-legacy": S(r(52, "abcdefghijklmnopqrstuvwxyz234567"), "AZURE_DEVOPS_PAT={}\n",
                                 "AZURE_DEVOPS_PAT=" + r(40, "abcdefghijklmnopqrstuvwxyz234567") + "\n"),
    # Alibaba, Tencent, DigitalOcean, Heroku, Cloudflare, Fastly
    "alibaba-access-key-id": S("LTAI" + r(20), "id: {}\n", "id: LTAI" + r(8) + "\n"),
    "alibaba-access-key-secret": S(r(30), "alibaba_cloud_access_key_secret = {}\n",
                                   "alibaba_cloud_access_key_secret = " + r(20) + "\n"),
    "tencent-secret-id": S("AKID" + r(32), "id: {}\n", "id: AKID" + r(20) + "\n"),
    "tencent-secret-key": S(r(32), "TENCENTCLOUD_SECRET_KEY={}\n", "TENCENTCLOUD_SECRET_KEY=" + r(20) + "\n"),
    "digitalocean-pat": S("dop_v1_" + r(64, HEX), "t={}\n", "t=dop_v1_" + r(60, HEX) + "\n"),
    "digitalocean-oauth-token": S("doo_v1_" + r(64, HEX), "t={}\n", "t=doo_v1_" + r(63, HEX) + "\n"),
    "heroku-api-key": S(uid(), "HEROKU_API_KEY={}\n", "HEROKU_API_KEY=" + uid()[:-2] + "\n"),
    "heroku-api-key-v2": S("HRKU-" + r(60, URLSAFE), "t={}\n", "t=HRKU-" + r(40) + "\n"),
    "cloudflare-api-token": S(r(40, URLSAFE), "CLOUDFLARE_API_TOKEN={}\n", "CLOUDFLARE_API_TOKEN=" + r(30) + "\n"),
    "cloudflare-origin-ca-key": S("v1.0-" + r(24, HEX) + "-" + r(146, HEX), "k={}\n",
                                  "k=v1.0-" + r(24, HEX) + "-" + r(100, HEX) + "\n"),
    "fastly-api-token": S(r(32, URLSAFE), "FASTLY_API_TOKEN={}\n", "FASTLY_API_TOKEN=" + r(20) + "\n"),
    # GitHub, GitLab, Atlassian
    "github-pat": S("ghp_" + r(36), "token: {}\n", "token: ghp_" + r(30) + "\n"),
    "github-oauth-token": S("gho_" + r(36), "token: {}\n", "token: gho_" + r(30) + "\n"),
    "github-user-to-server-token": S("ghu_" + r(36), "token: {}\n", "token: ghu_" + r(30) + "\n"),
    "github-server-to-server-token": S("ghs_" + r(36), "token: {}\n", "token: ghs_" + r(30) + "\n"),
    "github-refresh-token": S("ghr_" + r(76), "token: {}\n", "token: ghr_" + r(30) + "\n"),
    "github-fine-grained-pat": S("github_pat_" + r(22) + "_" + r(59), "token: {}\n",
                                 "token: github_pat_" + r(22) + "_" + r(40) + "\n"),
    "gitlab-pat": S("glpat-" + r(20, URLSAFE), "token: {}\n", "token: glpat-" + r(12) + "\n"),
    "gitlab-deploy-token": S("gldt-" + r(20, URLSAFE), "token: {}\n", "token: gldt-" + r(12) + "\n"),
    "gitlab-runner-token": S("glrt-" + r(20, URLSAFE), "token: {}\n", "token: glrt-" + r(12) + "\n"),
    "gitlab-runner-registration-token": S("GR1348941" + r(20, URLSAFE), "token: {}\n", "token: GR1348941" + r(12) + "\n"),
    "gitlab-pipeline-trigger-token": S("glptt-" + r(40, URLSAFE), "token: {}\n", "token: glptt-" + r(20) + "\n"),
    "gitlab-oauth-app-secret": S("gloas-" + r(64, URLSAFE), "token: {}\n", "token: gloas-" + r(30) + "\n"),
    "gitlab-feed-token": S("glft-" + r(20, URLSAFE), "token: {}\n", "token: glft-" + r(12) + "\n"),
    "gitlab-agent-token": S("glagent-" + r(60, URLSAFE), "token: {}\n", "token: glagent-" + r(30) + "\n"),
    "gitlab-incoming-mail-token": S("glimt-" + r(25, URLSAFE), "token: {}\n", "token: glimt-" + r(15) + "\n"),
    "gitlab-scim-token": S("glsoat-" + r(20, URLSAFE), "token: {}\n", "token: glsoat-" + r(12) + "\n"),
    "gitlab-ci-job-token": S("glcbt-" + r(2) + "_" + r(20, URLSAFE), "token: {}\n", "token: glcbt-" + r(10) + "\n"),
    "bitbucket-app-password": S("ATBB" + r(32), "pw: {}\n", "pw: ATBB" + r(10) + "\n"),
    "atlassian-api-token": S("ATATT3" + r(186, URLSAFE + "="), "token: {}\n", "token: ATATT3" + r(100) + "\n"),
    "atlassian-legacy-api-token": S(r(24), "JIRA_API_TOKEN={}\n", "JIRA_API_TOKEN=" + r(16) + "\n"),
    # Chat
    "slack-bot-token": S(f"xoxb-{r(12, DIGITS)}-{r(13, DIGITS)}-{r(24)}", "t={}\n", f"t=xoxb-{r(12, DIGITS)}-{r(24)}\n"),
    "slack-user-token": S(f"xoxp-{r(12, DIGITS)}-{r(12, DIGITS)}-{r(12, DIGITS)}-{r(32, HEX)}", "t={}\n",
                          f"t=xoxp-{r(12, DIGITS)}-{r(12, DIGITS)}-{r(32, HEX)}\n"),
    "slack-legacy-token": S(f"xoxs-{r(10, DIGITS)}-{r(30)}", "t={}\n", f"t=xoxs-{r(30)}\n"),
    "slack-app-token": S(f"xapp-1-{r(11, UPPER_ALNUM)}-{r(13, DIGITS)}-{r(64, HEX)}", "t={}\n",
                         f"t=xapp-1-{r(11, UPPER_ALNUM)}-{r(13, DIGITS)}-{r(20, HEX)}\n"),
    "slack-config-token": S("xoxe.xoxp-1-" + r(160, UPPER_ALNUM), "t={}\n", "t=xoxe.xoxp-1-" + r(100, UPPER_ALNUM) + "\n"),
    "slack-webhook": S(r(24), f"hook: https://hooks.slack.com/services/T{r(10, UPPER_ALNUM)}/B{r(10, UPPER_ALNUM)}/{{}}\n",
                       f"hook: https://hooks.slack.com/services/T{r(10, UPPER_ALNUM)}/B{r(10, UPPER_ALNUM)}/{r(20)}\n"),
    "slack-workflow-webhook": S(
        r(32), f"hook: https://hooks.slack.com/workflows/T{r(10, UPPER_ALNUM)}/A{r(10, UPPER_ALNUM)}/{r(18, DIGITS)}/{{}}\n",
        f"hook: https://hooks.slack.com/workflows/T{r(10, UPPER_ALNUM)}/A{r(10, UPPER_ALNUM)}/{r(18, DIGITS)}/{r(20)}\n"),
    "discord-bot-token": _discord(),
    "discord-webhook": S(r(68, URLSAFE), f"https://discord.com/api/webhooks/{r(18, DIGITS)}/{{}}\n",
                         f"https://discord.com/api/webhooks/{r(18, DIGITS)}/{r(40)}\n"),
    "telegram-bot-token": S(r(10, DIGITS) + ":AA" + r(33, URLSAFE), "bot {}\n", "bot " + r(10, DIGITS) + ":BB" + r(33) + "\n"),
    "teams-webhook": S(r(32, HEX), f"https://acme.webhook.office.com/webhookb2/{uid()}@{uid()}/IncomingWebhook/{{}}/{uid()}\n",
                       f"https://acme.webhook.office.com/webhookb2/{uid()}@{uid()}/IncomingWebhook/{r(20, HEX)}/{uid()}\n"),
    # Payments and commerce
    "stripe-secret-key": S("sk_live_" + r(24), "k={}\n", "k=sk_test_" + r(24) + "\n"),
    "stripe-restricted-key": S("rk_live_" + r(24), "k={}\n", "k=rk_test_" + r(24) + "\n"),
    "webhook-signing-secret": S("whsec_" + r(32), "k={}\n", "k=whsec_" + r(20) + "\n"),
    "square-access-token": S("sq0atp-" + r(22, URLSAFE), "k={}\n", "k=sq0atp-" + r(10) + "\n"),
    "square-production-token": S("EAAA" + r(60, ALNUM + "_+-"), "k={}\n", "k=EAAA" + r(40) + "\n"),
    "square-oauth-secret": S("sq0csp-" + r(43, URLSAFE), "k={}\n", "k=sq0csp-" + r(20) + "\n"),
    "braintree-access-token": S(f"access_token$production${r(16, LOWER_ALNUM)}${r(32, HEX)}", "k={}\n",
                                f"k=access_token$sandbox${r(16, LOWER_ALNUM)}${r(32, HEX)}\n"),
    "paypal-client-secret": S(r(80, URLSAFE), "PAYPAL_CLIENT_SECRET={}\n", "PAYPAL_CLIENT_SECRET=" + r(40) + "\n"),
    "shopify-access-token": S("shpat_" + r(32, HEX), "k={}\n", "k=shpat_" + r(20, HEX) + "\n"),
    "shopify-custom-app-token": S("shpca_" + r(32, HEX), "k={}\n", "k=shpca_" + r(20, HEX) + "\n"),
    "shopify-private-app-token": S("shppa_" + r(32, HEX), "k={}\n", "k=shppa_" + r(20, HEX) + "\n"),
    "shopify-shared-secret": S("shpss_" + r(32, HEX), "k={}\n", "k=shpss_" + r(20, HEX) + "\n"),
    "razorpay-key": S("rzp_live_" + r(14), "k={}\n", "k=rzp_test_" + r(14) + "\n"),
    "flutterwave-secret-key": S("FLWSECK-" + r(32, HEX) + "-X", "k={}\n", "k=FLWSECK-" + r(32, HEX) + "\n"),
    "plaid-access-token": S("access-production-" + uid(), "k={}\n", "k=access-production-" + r(10) + "\n"),
    "easypost-api-key": S("EZAK" + r(54), "k={}\n", "k=EZAK" + r(20) + "\n"),
    "shippo-api-token": S("shippo_live_" + r(40, HEX), "k={}\n", "k=shippo_live_" + r(20, HEX) + "\n"),
    # Communications
    "twilio-api-key": S("SK" + r(32, HEX), "k={}\n", "k=SK" + r(31, HEX) + "\n"),
    "twilio-auth-token": S(r(32, HEX), "TWILIO_AUTH_TOKEN={}\n", "TWILIO_AUTH_TOKEN=" + r(20, HEX) + "\n"),
    "twilio-account-sid": S("AC" + r(32, HEX), "twilio account: {}\n", "twilio account: AC" + r(20, HEX) + "\n"),
    "sendgrid-api-key": S(f"SG.{r(22, URLSAFE)}.{r(43, URLSAFE)}", "k={}\n", f"k=SG.{r(22, URLSAFE)}.{r(30)}\n"),
    "mailgun-api-key": S("key-" + r(32, HEX), "MAILGUN_API_KEY={}\n", "MAILGUN_API_KEY=key-" + r(20, HEX) + "\n"),
    "mailgun-private-key": S("key-" + r(32, HEX), "k: {}\n", "k: key-" + r(31, HEX) + "\n"),
    "mailchimp-api-key": S(r(32, HEX) + "-us12", "MAILCHIMP_API_KEY={}\n", "MAILCHIMP_API_KEY=" + r(32, HEX) + "-eu12\n"),
    "brevo-api-key": S(f"xkeysib-{r(64, HEX)}-{r(16)}", "k={}\n", f"k=xkeysib-{r(60, HEX)}\n"),
    # Package registries
    "npm-access-token": S("npm_" + r(36), "k={}\n", "k=npm_" + r(20) + "\n"),
    "npmrc-auth": S(uid(), "//registry.npmjs.org/:_authToken={}\n", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n",
                    "root/.npmrc"),
    "pypi-token": S("pypi-AgEIcHlwaS5vcmc" + r(70, URLSAFE), "k={}\n", "k=pypi-AgEIcHlwaS5vcmc" + r(20) + "\n"),
    "test-pypi-token": S("pypi-AgENdGVzdC5weXBpLm9yZw" + r(70, URLSAFE), "k={}\n",
                         "k=pypi-AgENdGVzdC5weXBpLm9yZw" + r(20) + "\n"),
    "pypirc-password": S(r(16), "[pypi]\nusername = alice\npassword = {}\n",
                         "[pypi]\nusername = alice\npassword = ${PYPI_PASSWORD}\n", "root/.pypirc"),
    "rubygems-api-key": S("rubygems_" + r(48, HEX), "k={}\n", "k=rubygems_" + r(40, HEX) + "\n"),
    "nuget-api-key": S("oy2" + r(43, LOWER_ALNUM), "k={}\n", "k=oy2" + r(30, LOWER_ALNUM) + "\n"),
    "dockerhub-token": S("dckr_pat_" + r(27, URLSAFE), "k={}\n", "k=dckr_pat_" + r(10) + "\n"),
    "docker-config-auth": _docker_auth(),
    "docker-config-identity-token": S(r(40), '{"auths": {"r.acme.io": {"identitytoken": "{}"}}}',
                                      '{"auths": {"r.acme.io": {"identitytoken": ""}}}', "root/.docker/config.json"),
    "jfrog-api-key": S("AKCp" + r(69), "k={}\n", "k=AKCp" + r(40) + "\n"),
    "jfrog-reference-token": S("cmVmdGtuOjAxOj" + r(50), "k={}\n", "k=cmVmdGtuOjAxOj" + r(20) + "\n"),
    "clojars-token": S("CLOJARS_" + r(60, LOWER_ALNUM), "k={}\n", "k=CLOJARS_" + r(40, LOWER_ALNUM) + "\n"),
    # Infrastructure
    "terraform-cloud-token": S(r(14) + ".atlasv1." + r(67, URLSAFE + "="), "k={}\n", "k=" + r(14) + ".atlasv1." + r(30) + "\n"),
    "vault-service-token": S("hvs." + r(95, URLSAFE), "k={}\n", "k=hvs." + r(10) + "\n"),
    "vault-batch-token": S("hvb." + r(140, URLSAFE), "k={}\n", "k=hvb." + r(50) + "\n"),
    "vault-legacy-token": S("s." + r(24), "VAULT_TOKEN={}\n", "VAULT_TOKEN=s." + r(12) + "\n"),
    "pulumi-access-token": S("pul-" + r(40, HEX), "k={}\n", "k=pul-" + r(30, HEX) + "\n"),
    "doppler-token": S("dp.st." + r(40), "k={}\n", "k=dp.st." + r(20) + "\n"),
    "kubeconfig-client-key": _kube(),
    # Observability
    "datadog-api-key": S(r(32, HEX), "DD_API_KEY={}\n", "DD_API_KEY=" + r(20, HEX) + "\n"),
    "datadog-app-key": S(r(40, HEX), "DD_APP_KEY={}\n", "DD_APP_KEY=" + r(30, HEX) + "\n"),
    "new-relic-user-api-key": S("NRAK-" + r(27, UPPER_ALNUM), "k={}\n", "k=NRAK-" + r(20, UPPER_ALNUM) + "\n"),
    "new-relic-insert-key": S("NRII-" + r(32, URLSAFE), "k={}\n", "k=NRII-" + r(20) + "\n"),
    "new-relic-license-key": S(r(36, HEX) + "NRAL", "k={}\n", "k=" + r(30, HEX) + "NRAL\n"),
    "new-relic-browser-key": S("NRJS-" + r(19, HEX), "k={}\n", "k=NRJS-" + r(10, HEX) + "\n"),
    "sentry-auth-token": S("sntryu_" + r(64, HEX), "k={}\n", "k=sntryu_" + r(40, HEX) + "\n"),
    "sentry-dsn": S(r(32, HEX), f"SENTRY_DSN=https://{{}}@o{r(6, DIGITS)}.ingest.sentry.io/{r(7, DIGITS)}\n",
                    f"SENTRY_DSN=https://{r(20, HEX)}@o{r(6, DIGITS)}.ingest.sentry.io/{r(7, DIGITS)}\n"),
    "grafana-cloud-token": S("glc_" + r(60, B64) + "==", "k={}\n", "k=glc_" + r(20) + "\n"),
    "grafana-service-account-token": S(f"glsa_{r(32)}_{r(8, HEX)}", "k={}\n", f"k=glsa_{r(20)}\n"),
    "grafana-api-key": S("eyJrIjoi" + r(80) + "=", "k={}\n", "k=eyJrIjoi" + r(30) + "\n"),
    "dynatrace-api-token": S(f"dt0c01.{r(24, UPPER_ALNUM)}.{r(64, UPPER_ALNUM)}", "k={}\n", f"k=dt0c01.{r(30, UPPER_ALNUM)}\n"),
    "pagerduty-api-key": S(r(20, ALNUM + "_+-"), "PAGERDUTY_API_KEY={}\n", "PAGERDUTY_API_KEY=" + r(12) + "\n"),
    # Identity and productivity
    "okta-api-token": S("00" + r(40, URLSAFE), "OKTA_API_TOKEN={}\n", "OKTA_API_TOKEN=11" + r(40, URLSAFE) + "\n"),
    "linear-api-key": S("lin_api_" + r(40), "k={}\n", "k=lin_api_" + r(20) + "\n"),
    "notion-token": S("ntn_" + r(11, DIGITS) + r(35), "k={}\n", "k=ntn_" + r(20) + "\n"),
    "notion-legacy-token": S("secret_" + r(43), "k={}\n", "k=secret_" + r(30) + "\n"),
    "postman-api-key": S(f"PMAK-{r(24, HEX)}-{r(34, HEX)}", "k={}\n", f"k=PMAK-{r(20, HEX)}\n"),
    "dropbox-short-lived-token": S("sl." + r(140, URLSAFE), "k={}\n", "k=sl." + r(60) + "\n"),
    "dropbox-long-lived-token": S(r(11, LOWER_ALNUM) + "AAAAAAAAAA" + r(43, LOWER_ALNUM + "_-"), "k={}\n",
                                  "k=" + r(11, LOWER_ALNUM) + "AAAAAAAAAB" + r(43, LOWER_ALNUM) + "\n"),
    "figma-token": S("figd_" + r(40, URLSAFE), "k={}\n", "k=figd_" + r(20) + "\n"),
    "airtable-token": S(f"pat{r(14)}.{r(64, HEX)}", "k={}\n", f"k=pat{r(14)}.{r(32, HEX)}\n"),
    "typeform-token": S("tfp_" + r(59, URLSAFE), "k={}\n", "k=tfp_" + r(30) + "\n"),
    "contentful-token": S("CFPAT-" + r(43, URLSAFE), "k={}\n", "k=CFPAT-" + r(20) + "\n"),
    "databricks-token": S("dapi" + r(32, HEX), "k={}\n", "k=dapi" + r(20, HEX) + "\n"),
    "netlify-token": S("nfp_" + r(36), "k={}\n", "k=nfp_" + r(20) + "\n"),
    "flyio-token": S("fo1_" + r(43, URLSAFE), "k={}\n", "k=fo1_" + r(20) + "\n"),
    "supabase-token": S("sbp_" + r(40, HEX), "k={}\n", "k=sbp_" + r(20, HEX) + "\n"),
    "planetscale-token": S("pscale_tkn_" + r(43, ALNUM + "_"), "k={}\n", "k=pscale_tkn_" + r(20) + "\n"),
    "prefect-api-key": S("pnu_" + r(36), "k={}\n", "k=pnu_" + r(20) + "\n"),
    "twitter-bearer-token": S("A" * 21 + r(60, ALNUM + "%"), "k={}\n", "k=" + "A" * 15 + r(60) + "\n"),
    "facebook-access-token": S("EAACEdEose0cBA" + r(60), "k={}\n", "k=EAACEdEose0cBA" + r(10) + "\n"),
    "mapbox-secret-token": S(f"sk.eyJ1Ijoi{r(40, URLSAFE)}.{r(22, URLSAFE)}", "k={}\n",
                             f"k=pk.eyJ1Ijoi{r(40, URLSAFE)}.{r(22, URLSAFE)}\n"),
    # AI services
    "openai-api-key": S(f"sk-proj-{r(74, URLSAFE)}T3BlbkFJ{r(74, URLSAFE)}", "k={}\n", "k=sk-" + r(48) + "\n"),
    "openai-project-key": S("sk-proj-" + r(156, URLSAFE), "k={}\n", "k=sk-proj-" + r(40) + "\n"),
    "openai-service-account-key": S("sk-svcacct-" + r(156, URLSAFE), "k={}\n", "k=sk-svcacct-" + r(40) + "\n"),
    "openai-admin-key": S("sk-admin-" + r(156, URLSAFE), "k={}\n", "k=sk-admin-" + r(40) + "\n"),
    "anthropic-api-key": S("sk-ant-api03-" + r(93, URLSAFE) + "AA", "k={}\n", "k=sk-ant-api03-" + r(93, URLSAFE) + "BB\n"),
    "anthropic-admin-key": S("sk-ant-admin01-" + r(93, URLSAFE) + "AA", "k={}\n", "k=sk-ant-admin01-" + r(50) + "AA\n"),
    "huggingface-token": S("hf_" + r(34, LETTERS), "k={}\n", "k=hf_" + r(20, LETTERS) + "\n"),
    "huggingface-org-token": S("api_org_" + r(34, LETTERS), "k={}\n", "k=api_org_" + r(20, LETTERS) + "\n"),
    "groq-api-key": S("gsk_" + r(52), "k={}\n", "k=gsk_" + r(30) + "\n"),
    "replicate-api-token": S("r8_" + r(37), "k={}\n", "k=r8_" + r(20) + "\n"),
    "perplexity-api-key": S("pplx-" + r(48), "k={}\n", "k=pplx-" + r(30) + "\n"),
    "xai-api-key": S("xai-" + r(80), "k={}\n", "k=xai-" + r(40) + "\n"),
    "langsmith-api-key": S(f"lsv2_pt_{r(32, HEX)}_{r(10, HEX)}", "k={}\n", f"k=lsv2_pt_{r(32, HEX)}\n"),
    "ai-provider-api-key": S(r(40), "COHERE_API_KEY={}\n", "COHERE_API_KEY=" + r(20) + "\n"),
    # Private keys
    "private-key-rsa": _pem("RSA PRIVATE KEY"),
    "private-key-ec": _pem("EC PRIVATE KEY"),
    "private-key-dsa": _pem("DSA PRIVATE KEY"),
    "private-key-openssh": _pem("OPENSSH PRIVATE KEY"),
    "private-key-pkcs8": _pem("PRIVATE KEY"),
    "private-key-pkcs8-encrypted": _pem("ENCRYPTED PRIVATE KEY"),
    "private-key-pem-encrypted": _pem_encrypted(),
    "private-key-pgp": _pgp(),
    "private-key-ssh2": _ssh2(),
    "private-key-putty": _putty(),
    "age-secret-key": S("AGE-SECRET-KEY-1" + r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"), "{}\n",
                        "AGE-SECRET-KEY-1" + r(40, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L") + "\n", "root/key.txt"),
    # Standard formats
    "jwt": _jwt(),
    "http-basic-auth": _basic(),
    "http-bearer-token": S(r(40, ALNUM + "._-"), "Authorization: Bearer {}\n", "Authorization: Bearer ${API_TOKEN}\n",
                           "srv/app/request.http"),
    # URLs
    "postgres-url": _url("postgresql"),
    "mysql-url": _url("mysql+pymysql"),
    "mongodb-url": _url("mongodb+srv", host="cluster0.mongo.internal/app"),
    "redis-url": _url("redis", user="", host="cache.internal:6379/0"),
    "amqp-url": _url("amqps", host="mq.internal:5671/vhost"),
    "database-url": _url("mssql+pyodbc", user="sa", host="sql.internal:1433/app"),
    "jdbc-password": S(r(14), "url=jdbc:sqlserver://db:1433;databaseName=app;user=sa;password={}\n",
                       "url=jdbc:sqlserver://db:1433;databaseName=app;user=sa;password=${DB_PASS}\n",
                       "srv/app/application.properties"),
    "git-credentials": S(r(20), "https://alice:{}@git.acme.io\n", "https://alice@git.acme.io\n", "root/.git-credentials"),
    "url-credentials": S(r(14), "index-url = https://deploy:{}@artifacts.acme.io/simple\n",
                         f"index-url = https://deploy:{r(14)}@artifacts.example.com/simple\n", "etc/pip.conf"),
    # Credential files
    "netrc-password": S(r(16), "machine api.acme.io\n  login alice\n  password {}\n",
                        "machine api.acme.io login alice\n", "root/.netrc"),
    "pgpass-password": S(r(16), "db.acme.io:5432:app:alice:{}\n", "db.acme.io:5432:app:alice\n", "root/.pgpass"),
    "htpasswd-hash": S(f"$apr1${r(8, ALNUM + './')}${r(22, ALNUM + './')}", "alice:{}\n",
                       f"alice:$apr1${r(8, ALNUM)}${r(22, ALNUM)}\n", "etc/nginx/.htpasswd", "etc/shadow"),
    "redis-requirepass": S(r(20), "bind 127.0.0.1\nrequirepass {}\n", "bind 127.0.0.1\n# requirepass foobared\n",
                           "etc/redis/redis.conf"),
    "wordpress-db-password": S(r(16), "define( 'DB_PASSWORD', '{}' );\n", "define( 'DB_PASSWORD', 'password_here' );\n",
                               "var/www/html/wp-config.php"),
    "django-secret-key": S(r(50, ALNUM + "!@#^&*-_=+"), "SECRET_KEY = '{}'\n", "SECRET_KEY = os.environ['SECRET_KEY']\n",
                           "srv/app/settings.py"),
    "rails-secret-key-base": S(r(128, HEX), "secret_key_base: {}\n", "secret_key_base: " + r(40, HEX) + "\n",
                               "srv/app/config/secrets.yml"),
    "curl-user-password": S(r(12), "curl -u admin:{} https://api.acme.io/v1\n", "curl -u admin https://api.acme.io/v1\n",
                            "srv/app/deploy.sh"),
    "sshpass-password": S(r(12), "sshpass -p '{}' ssh root@host\n", "sshpass -f /run/pw ssh root@host\n", "srv/app/deploy.sh"),
    "mysql-cli-password": S(r(12), "mysql -u root -p{} app < dump.sql\n", "mysql -u root -p app < dump.sql\n",
                            "srv/app/restore.sh"),
    # Generic
    "xml-password": S(r(14), "<server><id>x</id><username>u</username><password>{}</password></server>\n",
                      "<server><password>${env.REPO_PASS}</password></server>\n", "root/.m2/settings.xml"),
    "env-secret": S(r(24), "export API_TOKEN={}\n", "export API_TOKEN_FILE=/run/secrets/token\n", "srv/app/start.sh"),
    "generic-password": S(r(12), "[db]\nhost = db.internal\npassword = {}\n", "[db]\npassword = changeme\n",
                          "srv/app/app.ini"),
    "generic-api-key": S(r(32), 'api_key = "{}"\n', 'api_key = "settings.THIRD_PARTY_API_KEY"\n', "srv/app/client.py"),
}


def pathological_inputs(rule: Rule) -> list[bytes]:
    """1 MiB hostile inputs for a rule: runs of one byte, floods of its keyword, near-matches, its sample's head
    repeated. The tests bound the rule's work on them; benchmarks/bench_secrets.py times them."""
    kw = (rule.keywords[0] if rule.keywords else "password").encode()
    size = 1 << 20
    inputs = [bytes([c]) * size for c in b"Aa0f =-/\n."]
    inputs.append((kw * (size // len(kw) + 1))[:size])
    inputs.append(((kw + b"A" * 300 + b"\n") * (size // (len(kw) + 301) + 1))[:size])
    inputs.append(((kw + b"a1b2c3d4e5" * 30 + b" ") * (size // (len(kw) + 301) + 1))[:size])
    inputs.append(((kw + b"=" + b"x" * 200 + b":" + b"y" * 200 + b"@") * 2000)[:size])
    head = SAMPLES[rule.id].text.encode()[:200]
    inputs.append((head * (size // max(len(head), 1) + 1))[:size])
    return inputs
