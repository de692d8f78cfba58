"""File information: inventory, sha256 via the file-hash analyzer, and the risky-file findings."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from hullscan.analyzers import default_analyzers
from hullscan.checks.files import (
    MAX_FINDINGS_PER_CHECK,
    FileInfoDetector,
    FileRow,
    file_hash_analyzer,
    file_hashes,
    file_inventory,
)
from hullscan.detectors import DetectContext
from hullscan.imagebuild import FileSpec, Image, Layer, layer_tar, write_oci_layout
from hullscan.layers.merge import HARD_LINK_OF, merge
from hullscan.layers.walker import LayerWalker
from hullscan.model import Descriptor, FileEntry, ImageFacts, LayerInfo
from hullscan.oci.source import Limits
from hullscan.scan import Scanner, ScanOptions

PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" \
         "app:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\ndaemon:x:1:\nshadow:x:42:\napp:x:1000:\n"


def _layers(n: int) -> list[LayerInfo]:
    return [LayerInfo(i, Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", f"sha256:{i:064x}", 1),
                      f"sha256:{i + 100:064x}", f"RUN step {i}") for i in range(n)]


def facts_of(entries: list[tuple[FileEntry, int]], config_files: dict[str, str] | None = None) -> ImageFacts:
    base = {"etc/passwd": PASSWD, "etc/group": GROUP} if config_files is None else config_files
    return ImageFacts(reference="test", layers=_layers(3), files=sorted(entries, key=lambda e: e[0].path),
                      config_files=base)


def f(path: str, mode: int = 0o644, uid: int = 0, gid: int = 0, type: str = "f", size: int = 10) -> FileEntry:
    return FileEntry(path, type, size if type == "f" else 0, mode, uid, gid, "target" if type == "l" else "")


def detect(facts: ImageFacts) -> list:  # type: ignore[type-arg]
    return FileInfoDetector().detect(facts, DetectContext())


def ids(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((x.id, x.path) for x in findings)


def test_clean_tree_has_no_findings() -> None:
    facts = facts_of([
        (f("usr/bin/passwd", 0o4755), 0), (f("usr/bin/su", 0o4755), 0), (f("usr/bin/chage", 0o2755, gid=42), 0),
        (f("usr/lib/openssh/ssh-keysign", 0o4755), 1), (f("tmp", 0o1777, type="d"), 0),
        (f("var/tmp", 0o1777, type="d"), 0), (f("usr/bin/tool", 0o755), 1), (f("home/app", 0o755, 1000, 1000, "d"), 2),
        (f("home/app/.bashrc", 0o644, 1000, 1000), 2), (f("usr/lib/x/.keep", 0o644), 1),
        (f("usr/local/lib/node_modules/x/.husky/pre-commit", 0o755), 2),
        (f("app/node_modules/pkg/.hidden/run.sh", 0o755), 2),
        (f("bin/sh", 0o777, type="l"), 0), (f("dev/null", 0o666, type="c"), 0),
        (f("proc/sys/thing", 0o777), 0), (f("tmp/scratch.txt", 0o666), 2),
    ])
    assert detect(facts) == []


def test_setuid_beyond_known_good() -> None:
    facts = facts_of([
        (f("usr/bin/passwd", 0o4755), 0),
        (f("usr/local/bin/backdoor", 0o4755), 1),
        (f("usr/bin/viewer", 0o2755, gid=5), 1),
        (f("tmp/passwd", 0o4755), 2),  # a known name in the wrong place
        (f("usr/bin/nonexec", 0o4644), 1),  # setuid without x runs nothing
    ])
    found = {x.path: x for x in detect(facts) if x.id == "file-setuid"}
    assert set(found) == {"/usr/local/bin/backdoor", "/usr/bin/viewer", "/tmp/passwd"}
    assert found["/usr/local/bin/backdoor"].severity == "MEDIUM"
    assert found["/usr/bin/viewer"].severity == "LOW"
    assert found["/tmp/passwd"].severity == "HIGH"
    b = found["/usr/local/bin/backdoor"]
    assert b.item == "file" and b.layer_index == 1 and b.layer_diff_id == f"sha256:{101:064x}"
    assert b.layer_created_by == "RUN step 1" and "chmod u-s" in b.remediation and b.metadata["mode"] == "4755"


def test_world_writable() -> None:
    facts = facts_of([
        (f("data", 0o777, type="d"), 1),  # no sticky bit
        (f("shared", 0o1777, type="d"), 1),  # sticky: fine
        (f("etc/app.conf", 0o666), 2),
        (f("srv/notes.txt", 0o646), 2),
        (f("usr/local/bin/run", 0o777), 2),
        (f("opt/link", 0o777, type="l"), 2),
    ])
    found = {x.path: x for x in detect(facts) if x.id == "file-world-writable"}
    assert set(found) == {"/data", "/etc/app.conf", "/srv/notes.txt", "/usr/local/bin/run"}
    assert found["/data"].severity == "MEDIUM" and found["/data"].metadata["type"] == "directory"
    assert found["/etc/app.conf"].severity == "HIGH"
    assert found["/srv/notes.txt"].severity == "MEDIUM"
    assert found["/usr/local/bin/run"].severity == "HIGH" and found["/usr/local/bin/run"].layer_index == 2


def test_unknown_owners_grouped_per_id_and_layer() -> None:
    entries = [(f(f"opt/vendor/file{i}", uid=1001, gid=1001), 1) for i in range(30)]
    entries += [(f("home/app/ok", uid=1000, gid=1000), 2), (f("srv/x", uid=0, gid=4242), 2)]
    found = [x for x in detect(facts_of(entries)) if x.id == "file-unknown-owner"]
    by = {(x.metadata.get("uid") or "", x.metadata.get("gid") or ""): x for x in found}
    assert set(by) == {("1001", ""), ("", "1001"), ("", "4242")}
    uid = by[("1001", "")]
    assert uid.metadata["count"] == "30" and uid.layer_index == 1 and "/etc/passwd" in uid.title
    assert by[("", "4242")].path == "/srv/x"


def test_unknown_owners_skipped_without_account_files() -> None:
    facts = facts_of([(f("app/bin", 0o755, uid=1234, gid=1234), 1)], config_files={})
    assert [x for x in detect(facts) if x.id == "file-unknown-owner"] == []


def test_executables_in_unusual_places() -> None:
    facts = facts_of([
        (f("tmp/dropper", 0o755), 2), (f("var/tmp/x.sh", 0o700), 2), (f("dev/shm/m", 0o755), 2),
        (f("usr/lib/.cache-x/kworker", 0o755), 1), (f("dev/.hid", 0o755), 1), (f("etc/.sys/run", 0o755), 1),
        (f("tmp/data.txt", 0o644), 2), (f("root/.local/bin/tool", 0o755), 2),
    ])
    found = {x.path: x for x in detect(facts) if x.id == "file-exec-unusual-location"}
    assert set(found) == {"/tmp/dropper", "/var/tmp/x.sh", "/dev/shm/m", "/usr/lib/.cache-x/kworker", "/dev/.hid",
                          "/etc/.sys/run"}
    assert found["/tmp/dropper"].metadata["where"] == "/tmp" and found["/tmp/dropper"].layer_index == 2
    assert found["/dev/.hid"].severity == "HIGH"
    assert found["/usr/lib/.cache-x/kworker"].metadata["hidden"] == ".cache-x"


def test_findings_are_capped_with_a_summary() -> None:
    entries = [(f(f"data/f{i:04d}", 0o666), 1) for i in range(MAX_FINDINGS_PER_CHECK + 25)]
    found = [x for x in detect(facts_of(entries)) if x.id == "file-world-writable"]
    assert len(found) == MAX_FINDINGS_PER_CHECK + 1
    assert found[-1].metadata["count"] == "25" and found[-1].path == ""


def test_inventory_rows() -> None:
    facts = facts_of([(f("usr/bin/passwd", 0o104755 & 0o7777), 0), (f("etc", 0o755, type="d"), 0),
                      (f("bin", 0o777, type="l"), 1)])
    rows = file_inventory(facts)
    assert rows == [
        FileRow("/bin", "l", 0, "0777", 0, 0, 1, "target"),
        FileRow("/etc", "d", 0, "0755", 0, 0, 0),
        FileRow("/usr/bin/passwd", "f", 10, "4755", 0, 0, 0),
    ]
    assert all(r.sha256 == "" for r in file_inventory(facts, with_sha256=True))


def test_file_hash_analyzer_is_opt_in_and_hashes_during_the_walk(tmp_path: Path) -> None:
    assert all(a.name != "file-hash" for a in default_analyzers())
    big = b"x" * (3 << 20)
    tar = layer_tar([("a.txt", b"hello"), ("dir/big.bin", big), FileSpec("link", type="l", linkname="a.txt"),
                     FileSpec("hard", type="h", linkname="a.txt")])
    walker = LayerWalker([file_hash_analyzer()], Limits(), tmp_path)
    lf = walker.walk_tar(io.BytesIO(tar), "", 0)  # type: ignore[arg-type]
    assert lf.files["a.txt"].hints["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert lf.files["dir/big.bin"].hints["sha256"] == hashlib.sha256(big).hexdigest()
    assert lf.files["hard"].hints == {HARD_LINK_OF: "a.txt"}  # the same bytes: hashed once
    assert "link" not in lf.files
    # ... and listed under both names in the image
    hashes = file_hashes(merge("test", _layers(1), [lf]))
    assert hashes["hard"] == hashes["a.txt"] == hashlib.sha256(b"hello").hexdigest()


def test_inventory_joins_hashes_surfaced_by_the_merge() -> None:
    facts = facts_of([(f("a.txt"), 0), (f("etc", 0o755, type="d"), 0)])
    facts.file_hashes = {"a.txt": "ab" * 32}  # type: ignore[attr-defined]  # set by merge when present
    assert file_hashes(facts) == {"a.txt": "ab" * 32}
    rows = {r.path: r for r in file_inventory(facts, with_sha256=True)}
    assert rows["/a.txt"].sha256 == "ab" * 32 and rows["/etc"].sha256 == ""
    assert file_inventory(facts)[0].sha256 == ""


def test_through_the_scanner(tmp_path: Path) -> None:
    """Built image: the final tree decides (a later layer fixes one file), findings name the right layer."""
    base = Layer(layer_tar([
        FileSpec("etc", type="d"), ("etc/passwd", PASSWD), ("etc/group", GROUP),
        FileSpec("tmp", type="d", mode=0o1777), FileSpec("usr/bin/passwd", b"ELF", mode=0o4755),
        FileSpec("srv/open", b"data", mode=0o666),
    ]), "debootstrap")
    planted = Layer(layer_tar([
        FileSpec("tmp/.x/miner", b"\x7fELF", mode=0o4755), FileSpec("opt/app/run", b"#!/bin/sh", mode=0o755,
                                                                      uid=4321, gid=4321),
        FileSpec("srv/open", b"data", mode=0o644),  # fixed by the later layer
    ]), "RUN make install")
    layout = write_oci_layout(tmp_path / "img", Image([base, planted]))
    facts = Scanner(ScanOptions(cache_dir=tmp_path / "cache", workdir=tmp_path / "work")).scan(str(layout))
    assert facts.config_files["etc/passwd"] == PASSWD  # the config-files analyzer kept it
    found = detect(facts)
    got = {(x.id, x.path, x.layer_index) for x in found}
    assert ("file-setuid", "/tmp/.x/miner", 1) in got
    assert ("file-exec-unusual-location", "/tmp/.x/miner", 1) in got
    assert ("file-unknown-owner", "/opt/app/run", 1) in got
    assert not any(x.path == "/srv/open" for x in found)
    assert all(x.layer_created_by == "RUN make install" for x in found)
    rows = {r.path: r for r in file_inventory(facts)}
    assert rows["/tmp/.x/miner"].mode == "4755" and rows["/tmp/.x/miner"].layer == 1
    assert rows["/usr/bin/passwd"].layer == 0 and rows["/srv/open"].mode == "0644"
