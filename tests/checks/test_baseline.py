"""Baseline: image configuration (CIS Docker image rules) and OS settings, positive and negative cases."""

from __future__ import annotations

from typing import Any

import pytest

from hullscan.checks.baseline import (
    BaselineDetector,
    build_arg_keys,
    history_steps,
    is_secret_name,
    redact_history,
    sshd_settings,
    sudo_nopasswd_all,
)
from hullscan.checks.crypt import system_crypt
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding
from hullscan.model import Descriptor, FileEntry, ImageFacts, LayerInfo

PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n" \
         "app:x:1000:1000::/home/app:/bin/sh\n"
CLEAN_CONFIG: dict[str, Any] = {
    "config": {
        "User": "app",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "DB_PASSWORD_FILE=/run/secrets/db", "TOKENIZERS_PARALLELISM=false",
                "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D", "API_KEY="],
        "ExposedPorts": {"8080/tcp": {}, "443/tcp": {}},
        "Healthcheck": {"Test": ["CMD-SHELL", "wget -qO- http://localhost:8080/health || exit 1"]},
    },
    "history": [
        {"created_by": "/bin/sh -c #(nop) ADD file:4f1b2c in / "},
        {"created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]", "empty_layer": True},
        {"created_by": "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl "
                       "&& rm -rf /var/lib/apt/lists/* # buildkit"},
        {"created_by": "RUN /bin/sh -c curl -fsSLo /tmp/tool.tgz https://example.com/tool.tgz && "
                       "echo 'abc  /tmp/tool.tgz' | sha256sum -c - && tar -C /usr/local -xzf /tmp/tool.tgz # buildkit"},
        {"created_by": "USER app", "empty_layer": True},
        {"created_by": "HEALTHCHECK &{[\"CMD-SHELL\" \"wget -qO- http://localhost:8080/health || exit 1\"]}",
         "empty_layer": True},
    ],
}


def _layers(n: int) -> list[LayerInfo]:
    return [LayerInfo(i, Descriptor("application/vnd.oci.image.layer.v1.tar", f"sha256:{i:064x}", 1),
                      f"sha256:{i + 50:064x}", f"step {i}") for i in range(n)]


def facts_of(config: dict[str, Any] | None = None, files: dict[str, str] | None = None,
             entries: list[tuple[FileEntry, int]] | None = None) -> ImageFacts:
    cf = {"etc/passwd": PASSWD, "etc/group": "root:x:0:\napp:x:1000:\n", **(files or {})}
    tree = [(FileEntry(p, "f", len(t), 0o644), 1) for p, t in cf.items()] + (entries or [])
    return ImageFacts(reference="base:test", layers=_layers(3), config=config if config is not None else {},
                      config_files=cf, files=sorted(tree, key=lambda e: e[0].path))


def detect(facts: ImageFacts) -> list[CheckFinding]:
    return BaselineDetector(words=[]).detect(facts, DetectContext(password_budget_seconds=5))


def ids(findings: list[CheckFinding]) -> set[str]:
    return {f.id for f in findings}


def with_config(**cfg: Any) -> dict[str, Any]:
    config = {"config": {**CLEAN_CONFIG["config"], **cfg}, "history": list(CLEAN_CONFIG["history"])}
    return {k: v for k, v in config.items()}


def with_history(*created_by: str, empty: bool = False) -> dict[str, Any]:
    config = with_config()
    config["history"] = [*config["history"], *({"created_by": c, **({"empty_layer": True} if empty else {})}
                                               for c in created_by)]
    return config


# -- image configuration --------------------------------------------------------------------------------


def test_clean_control_has_no_findings() -> None:
    assert detect(facts_of(CLEAN_CONFIG)) == []


def test_rootfs_scan_without_config_skips_config_checks() -> None:
    assert detect(facts_of({})) == []


@pytest.mark.parametrize("user", [None, "", "root", "0", "0:0", "root:root", "root:app", "toor"])
def test_runs_as_root(user: str | None) -> None:
    cfg = with_config(User=user)
    if user is None:
        del cfg["config"]["User"]
    facts = facts_of(cfg, {"etc/passwd": PASSWD + "toor:x:0:0::/root:/bin/sh\n"})
    found = [f for f in detect(facts) if f.id == "image-user-root"]
    assert len(found) == 1 and found[0].severity == "MEDIUM" and found[0].metadata["cis"] == "4.1"


@pytest.mark.parametrize("user", ["app", "1000", "1000:1000", "app:root", "65534"])
def test_not_root(user: str) -> None:
    assert "image-user-root" not in ids(detect(facts_of(with_config(User=user))))


@pytest.mark.parametrize("hc", [None, {"Test": ["NONE"]}, {}])
def test_no_healthcheck(hc: dict[str, Any] | None) -> None:
    cfg = with_config(Healthcheck=hc)
    if hc is None:
        del cfg["config"]["Healthcheck"]
    found = [f for f in detect(facts_of(cfg)) if f.id == "image-no-healthcheck"]
    assert len(found) == 1 and found[0].severity == "LOW"


def test_add_remote_url_attributed_to_its_layer() -> None:
    facts = facts_of(with_history("ADD https://user:pa55@example.com/app.tar.gz /opt/ # buildkit"))
    found = [f for f in detect(facts) if f.id == "image-add-remote-url"]
    assert len(found) == 1
    f = found[0]
    assert f.layer_index == 3 and f.metadata["history_index"] == "6"  # four layers before: ADD, RUN, RUN, this
    assert "pa55" not in f.title + f.evidence + f.layer_created_by and "example.com/app.tar.gz" in f.title


@pytest.mark.parametrize("line", ["ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1d"
                                  "c68d https://example.com/app.tar.gz /opt/ # buildkit",
                                  "/bin/sh -c #(nop) ADD file:0123abcd in /opt ",
                                  "COPY https-notes.txt /docs/ # buildkit"])
def test_add_negatives(line: str) -> None:
    assert "image-add-remote-url" not in ids(detect(facts_of(with_history(line))))


@pytest.mark.parametrize("cmd", [
    "RUN /bin/sh -c curl -fsSL https://get.example.sh | sh # buildkit",
    "/bin/sh -c wget -qO- https://example.com/install | bash",
    "RUN /bin/sh -c curl -sL https://deb.example.com/setup_20.x | sudo -E bash - # buildkit",
    "RUN /bin/sh -c sh -c \"$(curl -fsSL https://example.com/install.sh)\" # buildkit",
    "RUN /bin/bash -c bash <(curl -s https://example.com/x.sh) # buildkit",
    "RUN /bin/sh -c curl https://bootstrap.pypa.io/get-pip.py | python3 # buildkit",
    "RUN /bin/sh -c curl -s https://example.com/i.sh | /bin/bash -s -- --yes # buildkit",
])
def test_pipe_to_shell(cmd: str) -> None:
    found = [f for f in detect(facts_of(with_history(cmd))) if f.id == "image-pipe-to-shell"]
    assert len(found) == 1 and found[0].layer_index == 3 and found[0].severity == "MEDIUM"


@pytest.mark.parametrize("cmd", [
    "RUN /bin/sh -c curl -fsSLo x.sh https://example.com/x.sh && sha256sum -c x.sha256 && sh x.sh # buildkit",
    "RUN /bin/sh -c curl -s https://api.example.com/v | jq -r .version > /v # buildkit",
    "RUN /bin/sh -c curl -sL https://example.com/x.tgz | tar -xz -C /opt # buildkit",
    "RUN /bin/sh -c curl -s https://example.com/data.json | python3 -m json.tool # buildkit",
])
def test_pipe_to_shell_negatives(cmd: str) -> None:
    assert "image-pipe-to-shell" not in ids(detect(facts_of(with_history(cmd))))


def test_secret_env_names_only() -> None:
    env = [*CLEAN_CONFIG["config"]["Env"], "MYSQL_ROOT_PASSWORD=hunter2-SEKRIT", "GITHUB_TOKEN=ghp_SEKRIT",
           "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI-SEKRIT", "PWD=/app", "db_pass=lower-SEKRIT"]
    facts = facts_of(with_config(Env=env))
    found = {f.metadata["key"]: f for f in detect(facts) if f.id == "image-secret-env"}
    assert set(found) == {"MYSQL_ROOT_PASSWORD", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "db_pass"}
    for f in found.values():
        assert f.severity == "HIGH"
        assert "SEKRIT" not in f.evidence + f.description + f.title + str(f.metadata) + f.layer_created_by


@pytest.mark.parametrize(("name", "secret"), [
    ("MYSQL_ROOT_PASSWORD", True), ("POSTGRES_PASSWORD", True), ("API_KEY", True), ("apiKey", True),
    ("NPM_TOKEN", True), ("CLIENT_SECRET", True), ("DB_PASS", True), ("PASSPHRASE", True),
    ("PASSWORD_FILE", False), ("PWD", False), ("OLDPWD", False), ("TOKENIZERS_PARALLELISM", False),
    ("GPG_KEY", False), ("PATH", False), ("SECRET_KEY_BASE", True), ("KEYCLOAK_VERSION", False),
    ("TOKEN_URL", False), ("PASSWORD_MIN_LENGTH", False),
])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_build_args_recorded_in_history() -> None:
    facts = facts_of(with_history(
        "RUN |3 API_TOKEN=tok-VALUE VERSION=1.2 DB_PASSWORD=pw VALUE /bin/sh -c make install # buildkit",
        "|1 NPM_TOKEN=npm_VALUE /bin/sh -c npm ci",
    ))
    found = {f.metadata["key"]: f for f in detect(facts) if f.id == "image-secret-build-arg"}
    assert set(found) == {"API_TOKEN", "DB_PASSWORD", "NPM_TOKEN"}
    assert all(f.severity == "HIGH" for f in found.values())
    assert found["NPM_TOKEN"].layer_index == 4
    for f in found.values():
        assert "VALUE" not in f.evidence + f.layer_created_by + f.description


def test_arg_declarations() -> None:
    facts = facts_of(with_history("ARG DB_PASSWORD=changeme-VALUE", "ARG NPM_TOKEN", "ARG VERSION=1", empty=True))
    found = {f.metadata["key"]: f for f in detect(facts) if f.id == "image-secret-build-arg"}
    assert found["DB_PASSWORD"].severity == "HIGH" and found["NPM_TOKEN"].severity == "LOW"
    assert "VERSION" not in found and found["NPM_TOKEN"].layer_index == -1
    assert "VALUE" not in found["DB_PASSWORD"].evidence


def test_build_arg_parsing_and_redaction() -> None:
    line = "RUN |2 A=1 TOKEN=abc def /bin/sh -c echo hi PASSWORD=inline https://u:p@host/x # buildkit"
    assert build_arg_keys(line) == ["A", "TOKEN"]
    red = redact_history(line)
    assert "abc" not in red and "inline" not in red and "u:p@" not in red and "A=***" in red
    assert "echo hi" in red
    assert redact_history("ENV DB_PASSWORD=s3cret LEVEL=debug") == "ENV DB_PASSWORD=*** LEVEL=debug"
    assert len(redact_history("RUN " + "x" * 1000)) == 400


@pytest.mark.parametrize(("line", "secret", "kept"), [
    ("/bin/sh -c echo 'root:hunter2-x' | chpasswd", "hunter2-x", "root:***"),
    ('RUN echo "app:Sup3r$ecret" | sudo chpasswd && useradd x', "Sup3r$ecret", "useradd x"),
    ("/bin/sh -c echo hunter2-x | passwd --stdin root", "hunter2-x", "passwd --stdin root"),
    ("RUN mysqladmin --password=hunter2-x create db", "hunter2-x", "--password=*** create db"),
    ("RUN vault login --token s.hunter2x && curl --api-key 'k-hunter2x' https://h", "hunter2x", "https://h"),
])
def test_history_passwords_given_to_commands_are_masked(line: str, secret: str, kept: str) -> None:
    shown = redact_history(line)
    assert secret not in shown and kept in shown


def test_history_without_secrets_is_unchanged() -> None:
    for line in ("RUN apt-get install -y --no-install-recommends passwd", "RUN chpasswd --help",
                 "RUN useradd --password-file /run/x app", "RUN echo a:b > /etc/x"):
        assert redact_history(line) == line


@pytest.mark.parametrize(("ports", "expect"), [
    ({"22/tcp": {}, "2375/tcp": {}, "8080/tcp": {}}, {"22": "MEDIUM", "2375": "HIGH"}),
    ({"23/tcp": {}, "5900/tcp": {}, "3389/tcp": {}}, {"23": "HIGH", "5900": "MEDIUM", "3389": "MEDIUM"}),
    ({"6379/tcp": {}, "80/tcp": {}, "53/udp": {}}, {}),
    # digits str.isdigit() accepts and int() refuses (superscripts) once crashed the check (hypothesis found it)
    ({"\u00b9/tcp": {}, "2\u00b2": None, "22/tcp": {}}, {"22": "MEDIUM"}),
])
def test_sensitive_ports(ports: dict[str, Any], expect: dict[str, str]) -> None:
    found = {f.metadata["port"]: f.severity for f in detect(facts_of(with_config(ExposedPorts=ports)))
             if f.id == "image-sensitive-port"}
    assert found == expect


@pytest.mark.parametrize(("cmd", "hit"), [
    ("RUN /bin/sh -c apt-get update # buildkit", True),
    ("/bin/sh -c apt-get -q update", True),
    ("RUN /bin/sh -c apk update # buildkit", True),
    ("RUN /bin/sh -c apt update && apt upgrade -y # buildkit", False),
    ("RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit", False),
    ("RUN /bin/sh -c apk add --no-cache curl # buildkit", False),
    ("RUN /bin/sh -c apk update && apk add curl # buildkit", False),
    ("RUN /bin/sh -c dnf makecache # buildkit", True),
    ("RUN /bin/sh -c yum -y update && yum clean all # buildkit", False),
])
def test_update_without_install(cmd: str, hit: bool) -> None:
    assert ("image-update-without-install" in ids(detect(facts_of(with_history(cmd))))) is hit


def test_setuid_heavy() -> None:
    many = [(FileEntry(f"usr/bin/s{i}", "f", 1, 0o4755), 0) for i in range(17)]
    assert "image-setuid-heavy" in ids(detect(facts_of(CLEAN_CONFIG, entries=many)))
    assert "image-setuid-heavy" not in ids(detect(facts_of(CLEAN_CONFIG, entries=many[:10])))


def test_history_layer_mapping() -> None:
    steps = history_steps(facts_of(CLEAN_CONFIG))
    assert [s.layer for s in steps] == [0, -1, 1, 2, -1, -1]
    assert steps[2].instruction.startswith("RUN /bin/sh -c apt-get update")
    assert steps[1].instruction == 'CMD ["bash"]'


# -- sshd_config -----------------------------------------------------------------------------------------


def ssh(main: str, **dropins: str) -> dict[str, str]:
    files = {"etc/ssh/sshd_config": main}
    files.update({f"etc/ssh/sshd_config.d/{k.replace('_', '-')}.conf": v for k, v in dropins.items()})
    return files


def ssh_findings(files: dict[str, str]) -> dict[str, CheckFinding]:
    return {f.id: f for f in detect(facts_of(CLEAN_CONFIG, files)) if f.id.startswith("sshd-")}


def test_sshd_explicit_yes() -> None:
    found = ssh_findings(ssh("Port 22\nPermitRootLogin yes\nPasswordAuthentication yes\nPermitEmptyPasswords yes\n"))
    assert found["sshd-permit-root-login"].severity == "HIGH" and found["sshd-permit-root-login"].line == 2
    assert found["sshd-password-authentication"].severity == "MEDIUM"
    assert found["sshd-permit-empty-passwords"].severity == "HIGH"
    assert found["sshd-permit-root-login"].path == "/etc/ssh/sshd_config"
    assert found["sshd-permit-root-login"].layer_index == 1


def test_sshd_first_match_wins() -> None:
    assert ssh_findings(ssh("PermitRootLogin no\nPermitRootLogin yes\nPasswordAuthentication no\n"
                            "PasswordAuthentication yes\n")) == {}
    found = ssh_findings(ssh("permitrootlogin=YES\nPermitRootLogin no\nPasswordAuthentication no\n"))
    assert set(found) == {"sshd-permit-root-login"}


def test_sshd_include_is_read_where_it_stands() -> None:
    debian = "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication no\n"
    found = ssh_findings(ssh(debian, **{"50_cloud_init": "PermitRootLogin yes\n"}))
    assert set(found) == {"sshd-permit-root-login"}
    assert found["sshd-permit-root-login"].path == "/etc/ssh/sshd_config.d/50-cloud-init.conf"
    # the main file's value comes first when the Include stands after it
    late = "PermitRootLogin no\nPasswordAuthentication no\nInclude sshd_config.d/*.conf\n"
    assert ssh_findings(ssh(late, **{"50_cloud_init": "PermitRootLogin yes\n"})) == {}
    # drop-ins in lexical order: the first one read wins
    two = ssh(debian, **{"10_hardening": "PermitRootLogin no\n", "90_vendor": "PermitRootLogin yes\n"})
    assert ssh_findings(two) == {}
    # a drop-in that is not *.conf is not included
    files = ssh(debian)
    files["etc/ssh/sshd_config.d/old.conf.bak"] = "PermitRootLogin yes\n"
    assert ssh_findings(files) == {}


def test_sshd_default_password_authentication_is_low() -> None:
    found = ssh_findings(ssh("PermitRootLogin no\n#PasswordAuthentication yes\n"))
    assert set(found) == {"sshd-password-authentication"}
    assert found["sshd-password-authentication"].severity == "LOW"
    assert found["sshd-password-authentication"].metadata["value"] == "default"


def test_sshd_match_blocks() -> None:
    text = ("PermitRootLogin no\nPasswordAuthentication no\nMatch User backup\n  PermitRootLogin yes\n"
            "Match all\n  PermitEmptyPasswords yes\n")
    effective, conditional = sshd_settings(ssh(text))
    assert effective["permitrootlogin"].value == "no"
    assert [(c.keyword, c.match) for c in conditional] == [("permitrootlogin", "User backup"),
                                                           ("permitemptypasswords", "all")]
    found = ssh_findings(ssh(text))
    assert found["sshd-permit-root-login"].severity == "MEDIUM" and "backup" in found["sshd-permit-root-login"].title
    assert found["sshd-permit-empty-passwords"].severity == "HIGH"


def test_sshd_not_installed_means_no_checks() -> None:
    files = {"etc/ssh/sshd_config.d/x.conf": "PermitRootLogin yes\n"}
    assert ssh_findings(files) == {}


# -- accounts ------------------------------------------------------------------------------------------


def test_extra_uid0() -> None:
    facts = facts_of(CLEAN_CONFIG, {"etc/passwd": PASSWD + "toor:x:0:0::/root:/bin/sh\n"})
    found = [f for f in detect(facts) if f.id == "passwd-extra-uid0"]
    assert len(found) == 1 and found[0].metadata["user"] == "toor" and found[0].line == 4


def test_empty_password_with_login_shell() -> None:
    shadow = "root:::0:::::\nnobody::19000:0:99999:7:::\napp:*:19000::::::\n"  # Alpine's CVE-2019-5021 root
    passwd = "root:x:0:0:root:/root:/bin/ash\nnobody:x:65534:65534::/:/sbin/nologin\napp:x:1000:1000::/:/bin/sh\n"
    found = [f for f in detect(facts_of(CLEAN_CONFIG, {"etc/shadow": shadow, "etc/passwd": passwd}))
             if f.id == "empty-password"]
    assert [(f.metadata["user"], f.severity, f.path, f.line) for f in found] == [("root", "CRITICAL", "/etc/shadow", 1)]


def test_empty_passwd_field_without_shadow() -> None:
    passwd = PASSWD + "guest::1001:1001::/home/guest:/bin/bash\n"
    found = [f for f in detect(facts_of(CLEAN_CONFIG, {"etc/passwd": passwd})) if f.id == "empty-password"]
    assert [f.metadata["user"] for f in found] == ["guest"] and found[0].path == "/etc/passwd"


def test_weak_hash_algorithms() -> None:
    c = system_crypt()
    strong = "w7#Kq-" + "Zp9!rT"  # not in any list
    shadow = "\n".join([
        f"root:{c.make(strong, '$1$')}:19000:0:99999:7:::",
        f"app:{c.hash(strong, 'Zq')}:19000:0:99999:7:::",
        f"nobody:!{c.make(strong, '$1$')}:19000:0:99999:7:::",
        f"svc:{c.make(strong, '$6$')}:19000:0:99999:7:::",
        f"web:{c.make(strong, '$y$')}:19000:0:99999:7:::",
    ]) + "\n"
    passwd = PASSWD + "svc:x:1001:1001::/:/bin/sh\nweb:x:1002:1002::/:/bin/sh\n"
    found = {f.metadata["user"]: f for f in detect(facts_of(CLEAN_CONFIG, {"etc/shadow": shadow, "etc/passwd": passwd}))
             if f.id == "weak-password-hash"}
    assert found["root"].metadata["algorithm"] == "md5crypt" and found["root"].severity == "MEDIUM"
    assert found["app"].metadata["algorithm"] == "descrypt"
    assert found["nobody"].severity == "LOW"
    assert "svc" not in found and "web" not in found


# -- login.defs, sudoers, ld.so.preload -----------------------------------------------------------------

DEBIAN_LOGIN_DEFS = "MAIL_DIR\t/var/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\n" \
                    "#ENCRYPT_METHOD DES\nENCRYPT_METHOD SHA512\n"


def test_login_defs_debian_defaults() -> None:
    found = {f.id: f for f in detect(facts_of(CLEAN_CONFIG, {"etc/login.defs": DEBIAN_LOGIN_DEFS}))}
    assert set(found) == {"login-defs-password-ageing"}
    f = found["login-defs-password-ageing"]
    assert f.severity == "LOW" and "PASS_MAX_DAYS 99999" in f.evidence and "PASS_MIN_DAYS 0" in f.evidence
    assert f.line == 2


def test_login_defs_weak_method_and_compliant() -> None:
    weak = "PASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\nENCRYPT_METHOD MD5\n"
    assert ids(detect(facts_of(CLEAN_CONFIG, {"etc/login.defs": weak}))) == {"login-defs-encrypt-method"}
    legacy = "PASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\nMD5_CRYPT_ENAB yes\n"
    assert ids(detect(facts_of(CLEAN_CONFIG, {"etc/login.defs": legacy}))) == {"login-defs-encrypt-method"}
    good = "PASS_MAX_DAYS 365\nPASS_MIN_DAYS 1\nENCRYPT_METHOD YESCRYPT\n"
    assert detect(facts_of(CLEAN_CONFIG, {"etc/login.defs": good})) == []


SUDOERS = "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"


def test_sudoers_nopasswd_all_in_includedir() -> None:
    files = {"etc/sudoers": SUDOERS, "etc/sudoers.d/app": "app ALL=(ALL) NOPASSWD: ALL\n",
             "etc/sudoers.d/app.bak": "bak ALL=(ALL) NOPASSWD: ALL\n", "etc/sudoers.d/README": "# nothing\n"}
    found = [f for f in detect(facts_of(CLEAN_CONFIG, files)) if f.id == "sudoers-nopasswd-all"]
    assert [(f.metadata["who"], f.path, f.severity) for f in found] == [("app", "/etc/sudoers.d/app", "MEDIUM")]


@pytest.mark.parametrize(("text", "who"), [
    ("%wheel ALL=(ALL) NOPASSWD:ALL\n", ["%wheel"]),
    ("ops ALL = (root) NOPASSWD:SETENV: ALL\n", ["ops"]),
    ("ALL ALL=(ALL) NOPASSWD: ALL\n", ["ALL"]),
    ("dev ALL=(ALL:ALL) \\\n    NOPASSWD: ALL\n", ["dev"]),
    ("ci ALL=(ALL) NOPASSWD: /usr/bin/apt-get, (root) ALL\n", ["ci"]),  # the tag carries over
    ("Defaults !authenticate\n", ["Defaults"]),
    ("deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl\n", []),
    ("ops ALL=(root) NOPASSWD: /bin/ls, PASSWD: ALL\n", []),
    ("# app ALL=(ALL) NOPASSWD: ALL\n", []),
    ("admin ALL=(ALL) ALL\n", []),
])
def test_sudoers_rules(text: str, who: list[str]) -> None:
    assert [w for _, _, w, _ in sudo_nopasswd_all({"etc/sudoers": text})] == who


def test_sudoers_without_includedir_ignores_dropins() -> None:
    files = {"etc/sudoers": "root ALL=(ALL) ALL\n", "etc/sudoers.d/app": "app ALL=(ALL) NOPASSWD: ALL\n"}
    assert sudo_nopasswd_all(files) == []
    old_syntax = {"etc/sudoers": "root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n",
                  "etc/sudoers.d/app": "app ALL=(ALL) NOPASSWD: ALL\n"}
    assert [w for _, _, w, _ in sudo_nopasswd_all(old_syntax)] == ["app"]
    # sudo not installed: drop-ins alone mean nothing
    assert "sudoers-nopasswd-all" not in ids(detect(facts_of(CLEAN_CONFIG, {"etc/sudoers.d/app": "app ALL=(ALL) "
                                                                                                   "NOPASSWD: ALL\n"})))


def test_ld_so_preload() -> None:
    found = [f for f in detect(facts_of(CLEAN_CONFIG, {"etc/ld.so.preload": "/usr/lib/libprocesshider.so\n"}))
             if f.id == "ld-so-preload"]
    assert len(found) == 1 and found[0].severity == "HIGH" and "libprocesshider" in found[0].evidence
    assert detect(facts_of(CLEAN_CONFIG, {"etc/ld.so.preload": "# nothing here\n\n"})) == []
