"""File information: the final image's file inventory and findings about risky files.

Findings (scan item "file"):
- file-setuid: setuid/setgid executables beyond the known-good list of distribution tools;
- file-world-writable: world-writable files, and world-writable directories without the sticky bit;
- file-unknown-owner: files owned by a uid or gid that the image's /etc/passwd or /etc/group lacks;
- file-exec-unusual-location: executables under /tmp, /var/tmp, /dev/shm, /dev or /run, and hidden
  executables inside system directories (/usr/lib/.x/miner).

Everything is read from ImageFacts.files (the merged tree with the layer of each entry), so each
finding names the layer that put the file there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import IO

from hullscan.checks.accounts import Accounts
from hullscan.detectors import DetectContext
from hullscan.findings import CheckFinding
from hullscan.model import FileEntry, FileFacts, ImageFacts
from hullscan.redact import redact_history

ITEM = "file"

# Beyond this many findings of one check, one summary finding stands for the rest.
MAX_FINDINGS_PER_CHECK = 50

# Tools that distributions ship setuid or setgid on purpose. Known by name only in system directories.
KNOWN_SETUID = frozenset({
    # shadow, util-linux, login
    "passwd", "su", "chsh", "chfn", "newgrp", "sg", "gpasswd", "expiry", "chage", "newuidmap", "newgidmap",
    "mount", "umount", "wall", "write", "write.ul", "bsd-write", "unix_chkpwd", "unix2_chkpwd",
    "pam_timestamp_check", "pwdb_chkpwd",
    # sudo, polkit, dbus
    "sudo", "sudoedit", "pkexec", "polkit-agent-helper-1", "dbus-daemon-launch-helper",
    # networking, openssh, mail, cron, at
    "ping", "ping6", "traceroute6.iputils", "arping", "ssh-agent", "ssh-keysign", "crontab", "at",
    "dotlockfile", "lockfile", "procmail", "mail-lock", "mail-unlock", "mail-touchlock", "postdrop", "postqueue",
    # fuse, mounts
    "fusermount", "fusermount3", "mount.nfs", "mount.cifs", "mount.ecryptfs_private", "ntfs-3g",
    # misc distribution helpers
    "utempter", "Xorg.wrap", "chrome-sandbox", "snap-confine", "plocate", "mlocate", "locate", "screen",
    "usernetctl", "userhelper", "staprun", "bbsuid", "doas", "ksu", "pt_chown",
    "fping", "fping6", "mtr-packet", "dumpcap", "qemu-bridge-helper", "Xorg",
})
SYSTEM_DIRS = ("bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/lib/", "usr/lib64/", "usr/lib32/", "usr/libexec/",
               "lib/", "lib64/", "usr/local/bin/", "usr/local/sbin/", "opt/google/chrome/")
SCRATCH_DIRS = ("tmp/", "var/tmp/", "dev/shm/", "run/", "var/run/")
PSEUDO_DIRS = ("proc/", "sys/", "dev/")
HIDDEN_CHECK_ROOTS = ("bin/", "sbin/", "usr/", "lib/", "lib64/", "lib32/", "etc/", "var/", "boot/", "dev/", "opt/",
                      "srv/")
HIDDEN_OK_PARTS = (".bin", ".git", ".github", ".husky", ".hooks", ".build-id", ".cargo", ".rustup", ".npm", ".nvm",
                   ".local", ".cache", ".config", ".venv", ".dotnet", ".m2", ".gradle", ".gem", ".bundle", ".yarn",
                   ".pnpm", ".pnpm-store", ".devcontainer", ".circleci", ".vscode", ".idea", ".tox", ".nox",
                   ".mypy_cache")
PACKAGE_TREES = ("/node_modules/", "/site-packages/", "/dist-packages/", "/vendor/", "/gems/")


def layer_fields(facts: ImageFacts, index: int) -> tuple[str, str]:
    """(diff_id, created_by) of layer `index`, or empty strings."""
    for layer in facts.layers:
        if layer.index == index:
            return layer.diff_id, layer.created_by
    return "", ""


def finding(facts: ImageFacts, item: str, check_id: str, title: str, severity: str, *, description: str = "",
            remediation: str = "", path: str = "", line: int = 0, evidence: str = "", layer: int = -1,
            created_by: str | None = None, metadata: dict[str, str] | None = None) -> CheckFinding:
    """A CheckFinding attributed to a layer of the image (paths are shown absolute). The layer's history
    line is redacted: BuildKit records build-argument values in it."""
    diff_id, layer_created_by = layer_fields(facts, layer)
    layer_created_by = redact_history(layer_created_by) if layer_created_by else ""
    return CheckFinding(item=item, id=check_id, title=title, severity=severity, description=description,
                        remediation=remediation, path=("/" + path.lstrip("/")) if path else "", line=line,
                        evidence=evidence, layer_index=layer, layer_diff_id=diff_id,
                        layer_created_by=layer_created_by if created_by is None else created_by,
                        metadata=dict(metadata or {}))


def mode_text(mode: int) -> str:
    return f"{mode & 0o7777:04o}"


# -- inventory ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRow:
    path: str  # absolute, as inside the image
    type: str  # f, d, l, h, c, b, p
    size: int
    mode: str  # octal, four digits: "4755"
    uid: int
    gid: int
    layer: int
    linkname: str = ""
    sha256: str = ""  # with_sha256 and the file-hash analyzer ran: the content's digest


def file_hashes(facts: ImageFacts) -> dict[str, str]:
    """path -> sha256 hex of the final image's regular files, when the scan ran `file_hash_analyzer()`.

    The merge keeps analyzer hints of the files that survive in the final image; it surfaces the
    "sha256" hints as ImageFacts.file_hashes.
    """
    hashes = getattr(facts, "file_hashes", None)
    return dict(hashes) if isinstance(hashes, dict) else {}


def file_inventory(facts: ImageFacts, with_sha256: bool = False) -> list[FileRow]:
    """The final file tree, one row per entry, sorted by path."""
    hashes = file_hashes(facts) if with_sha256 else {}
    rows = []
    for entry, layer in sorted(facts.files, key=lambda n: n[0].path):
        rows.append(FileRow("/" + entry.path, entry.type, entry.size, mode_text(entry.mode), entry.uid, entry.gid,
                            layer, entry.linkname, hashes.get(entry.path, "")))
    return rows


class FileHashAnalyzer:
    """Hashes every regular file of every layer (hint "sha256"). Costly: reads every byte of the image,
    so it is not among the default analyzers; the scan adds it for `--list-files` with sha256."""

    name = "file-hash"
    version = 1

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size

    def claims(self, path: str, entry: FileEntry) -> bool:
        return entry.type in ("f", "h")  # a hard link shares its target's digest (walker and merge)

    def analyze(self, path: str, entry: FileEntry, content: IO[bytes]) -> FileFacts | None:
        h = hashlib.sha256()
        while chunk := content.read(1 << 20):
            h.update(chunk)
        return FileFacts(hints={"sha256": h.hexdigest()})


def file_hash_analyzer(max_size: int = 4 << 30) -> FileHashAnalyzer:
    """An analyzer to add to ScanOptions.analyzers (with the defaults) to get sha256 in the inventory."""
    return FileHashAnalyzer(max_size)


# -- findings ------------------------------------------------------------------------------------------


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return path.startswith(prefixes)  # one C call: detectors run this for every file of the image


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def is_setid_executable(entry: FileEntry) -> bool:
    return entry.type == "f" and bool(entry.mode & 0o6000) and bool(entry.mode & 0o111)


def _hidden_part(path: str) -> str | None:
    """The first hidden component (".x") of a path under a system root, unless it is a known tool's dir."""
    if not _under(path, HIDDEN_CHECK_ROOTS) or any(t in "/" + path for t in PACKAGE_TREES):
        return None
    for part in path.split("/"):
        if part.startswith(".") and part not in HIDDEN_OK_PARTS and part not in (".", ".."):
            return part
    return None


class _Capped:
    """Collects findings per check id, replacing the overflow with one summary finding."""

    def __init__(self, facts: ImageFacts) -> None:
        self.facts = facts
        self.by_check: dict[str, list[CheckFinding]] = {}
        self.overflow: dict[str, int] = {}

    def add(self, f: CheckFinding) -> None:
        kept = self.by_check.setdefault(f.id, [])
        if len(kept) < MAX_FINDINGS_PER_CHECK:
            kept.append(f)
        else:
            self.overflow[f.id] = self.overflow.get(f.id, 0) + 1

    def result(self) -> list[CheckFinding]:
        out: list[CheckFinding] = []
        for check_id, kept in self.by_check.items():
            out.extend(kept)
            more = self.overflow.get(check_id, 0)
            if more:
                top = max(kept, key=lambda f: _RANK.get(f.severity, 0))
                out.append(finding(self.facts, ITEM, check_id, f"{more:,} more files like the above ({check_id})",
                                   top.severity, description=f"Only the first {MAX_FINDINGS_PER_CHECK} findings of "
                                   f"this check are listed one by one; {more:,} more matched.",
                                   remediation=top.remediation, metadata={"count": str(more)}))
        return out


_RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1, "UNKNOWN": 0}


class FileInfoDetector:
    item = ITEM

    def detect(self, facts: ImageFacts, context: DetectContext) -> list[CheckFinding]:
        accounts = Accounts.of(facts)
        out = _Capped(facts)
        sticky_dirs = {e.path for e, _ in facts.files if e.type == "d" and e.mode & 0o1000}
        for entry, layer in facts.files:
            path = entry.path
            if _under(path, ("proc/", "sys/")):
                continue
            if is_setid_executable(entry):
                self._setid(facts, entry, layer, out)
            if entry.type in ("f", "d") and entry.mode & 0o002:
                self._world_writable(facts, entry, layer, sticky_dirs, out)
            if entry.executable:
                self._unusual_exec(facts, entry, layer, out)
        findings = out.result()
        findings.extend(_unknown_owners(facts, accounts))
        return findings

    def _setid(self, facts: ImageFacts, entry: FileEntry, layer: int, out: _Capped) -> None:
        path, name = entry.path, entry.path.rsplit("/", 1)[-1]
        bits = [b for b, m in (("setuid", 0o4000), ("setgid", 0o2000)) if entry.mode & m]
        kind = "/".join(bits)
        if name in KNOWN_SETUID and _under(path, SYSTEM_DIRS):
            return
        odd_place = _under(path, SCRATCH_DIRS) or _hidden_part(path) is not None or _under(path, ("home/", "root/"))
        if odd_place:
            severity = "HIGH"
        elif entry.mode & 0o4000 and entry.uid == 0:
            severity = "MEDIUM"
        else:
            severity = "LOW"
        owner = f"uid {entry.uid}" if entry.mode & 0o4000 else f"gid {entry.gid}"
        out.add(finding(
            facts, ITEM, "file-setuid", f"{kind} executable not in the known-good list: /{path}", severity,
            description=f"/{path} runs with the privileges of {owner} whoever starts it (mode {mode_text(entry.mode)})."
            + (" It sits where no privileged program belongs." if odd_place else ""),
            remediation=f"Remove the {kind} bit (chmod u-s,g-s /{path}) in the Dockerfile, or delete the file, "
            "unless the container needs it.",
            path=path, evidence=f"mode {mode_text(entry.mode)} uid {entry.uid} gid {entry.gid}", layer=layer,
            metadata={"mode": mode_text(entry.mode), "bits": kind, "cis": "4.8"}))

    def _world_writable(self, facts: ImageFacts, entry: FileEntry, layer: int, sticky_dirs: set[str],
                        out: _Capped) -> None:
        path = entry.path
        if _under(path, PSEUDO_DIRS):
            return
        if entry.type == "d":
            if entry.mode & 0o1000:
                return  # /tmp-style: anyone may create, only owners may delete
            out.add(finding(
                facts, ITEM, "file-world-writable", f"World-writable directory without the sticky bit: /{path}",
                "MEDIUM", description=f"Any user in the container can create, replace or delete files in /{path} "
                f"(mode {mode_text(entry.mode)}), including files other users own.",
                remediation=f"chmod o-w /{path} (or chmod +t when it is a shared scratch directory).",
                path=path, evidence=f"mode {mode_text(entry.mode)}", layer=layer,
                metadata={"mode": mode_text(entry.mode), "type": "directory"}))
            return
        # A file lying in a sticky scratch directory (/tmp) is transient data, not a planted hole.
        if _parent(path) in sticky_dirs and _under(path, SCRATCH_DIRS):
            return
        severe = entry.executable or _under(path, SYSTEM_DIRS) or _under(path, ("etc/",))
        out.add(finding(
            facts, ITEM, "file-world-writable", f"World-writable file: /{path}", "HIGH" if severe else "MEDIUM",
            description=f"Any user in the container can change /{path} (mode {mode_text(entry.mode)})"
            + ("; it is executable or lives in a system directory, so changing it changes what others run."
               if severe else "."),
            remediation=f"chmod o-w /{path} in the Dockerfile.",
            path=path, evidence=f"mode {mode_text(entry.mode)}", layer=layer,
            metadata={"mode": mode_text(entry.mode), "type": "file"}))

    def _unusual_exec(self, facts: ImageFacts, entry: FileEntry, layer: int, out: _Capped) -> None:
        path = entry.path
        if _under(path, SCRATCH_DIRS):
            where = "/" + next(p for p in SCRATCH_DIRS if path.startswith(p)).rstrip("/")
            out.add(finding(
                facts, ITEM, "file-exec-unusual-location", f"Executable in {where}: /{path}", "MEDIUM",
                description=f"/{path} is an executable file in {where}, a scratch directory where images normally "
                "ship nothing; malware droppers and leftover build tools end up there.",
                remediation=f"Delete /{path} in the same RUN step that created it, or move it to /usr/local/bin.",
                path=path, evidence=f"mode {mode_text(entry.mode)}", layer=layer, metadata={"where": where}))
            return
        if path.startswith("dev/"):
            out.add(finding(
                facts, ITEM, "file-exec-unusual-location", f"Executable regular file under /dev: /{path}", "HIGH",
                description="/dev holds device nodes; a regular executable file there is a known hiding place.",
                remediation=f"Delete /{path}.", path=path, evidence=f"mode {mode_text(entry.mode)}", layer=layer,
                metadata={"where": "/dev"}))
            return
        hidden = _hidden_part(path)
        if hidden is not None:
            out.add(finding(
                facts, ITEM, "file-exec-unusual-location", f"Hidden executable: /{path}", "MEDIUM",
                description=f"/{path} is an executable inside the hidden name {hidden!r} in a system directory; "
                "rootkits and miners hide this way.",
                remediation=f"Find out what installed /{path} (see the layer) and delete it if nothing needs it.",
                path=path, evidence=f"mode {mode_text(entry.mode)}", layer=layer,
                metadata={"where": "hidden", "hidden": hidden}))


def _unknown_owners(facts: ImageFacts, accounts: Accounts) -> list[CheckFinding]:
    """One finding per (unknown uid or gid, layer): a layer unpacked with foreign ids makes thousands."""
    uids = accounts.uids() if accounts.passwd is not None else None  # None: no such file, nothing to check
    gids = accounts.gids() if accounts.group is not None else None
    groups: dict[tuple[str, int, int], list[str]] = {}
    for entry, layer in facts.files:  # every file of the image, on every re-scan: the common case does two look-ups
        if entry.type == "l" or _under(entry.path, ("proc/", "sys/")):
            continue
        if uids is not None and entry.uid not in uids:
            groups.setdefault(("uid", entry.uid, layer), []).append(entry.path)
        if gids is not None and entry.gid not in gids:
            groups.setdefault(("gid", entry.gid, layer), []).append(entry.path)
    out = []
    source = {"uid": "/etc/passwd", "gid": "/etc/group"}
    for (kind, value, layer), paths in sorted(groups.items()):
        paths.sort(key=lambda p: (p.count("/"), p))
        sample = ", ".join("/" + p for p in paths[:5]) + (", ..." if len(paths) > 5 else "")
        out.append(finding(
            facts, ITEM, "file-unknown-owner",
            f"{len(paths):,} file{'s' if len(paths) != 1 else ''} owned by {kind} {value}, which {source[kind]} lacks",
            "LOW", description=f"{kind} {value} is not defined in the image's {source[kind]}; a user created later "
            f"with that {kind} would own these files ({sample}). Usually a layer unpacked with the build host's ids.",
            remediation="Set ownership explicitly (COPY --chown=user:group, or chown in the same RUN step).",
            path=paths[0], evidence=f"{kind} {value}: {len(paths):,} entries", layer=layer,
            metadata={kind: str(value), "count": str(len(paths))}))
    return out
