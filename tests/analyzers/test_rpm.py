"""The rpm analyzer: SQLite, Berkeley DB (both byte orders) and NDB databases, against real rpm."""

from __future__ import annotations

import io
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from hullscan import licenses
from hullscan.analyzers import rpm, rpmdb
from hullscan.analyzers.base import AnalyzerFailure
from hullscan.analyzers.rpm import ANALYZERS, RpmAnalyzer, split_source_rpm
from hullscan.analyzers.rpmdb.header import Header, HeaderError
from hullscan.model import FileEntry, FileFacts, Package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rpmdb"
ANALYZER = RpmAnalyzer()

# folder -> database file inside it
DATABASES = {
    "bdb-libuuid": "Packages",
    "bdb-mariner-le": "Packages",
    "bdb-mariner-be": "Packages",
    "ndb-sle15-bci": "Packages.db",
    "sqlite-cbl-mariner-2.0": "rpmdb.sqlite",
}

Row = tuple[str, str, str, str, str, str, str]


def expected_rows(folder: str) -> Counter[Row]:
    rows: Counter[Row] = Counter()
    for line in (FIXTURES / f"{folder}.expected.tsv").read_text().splitlines():
        if line.strip():
            name, epoch, version, release, arch, srpm, lic = line.split("\t")
            rows[(name, epoch, version, release, arch, srpm, lic)] += 1
    return rows


def row(p: Package) -> Row:
    return (
        p.name,
        str(p.epoch or 0),
        p.version,
        p.release,
        p.arch,
        p.metadata.get("sourcerpm", ""),
        p.metadata.get("license_raw", ""),
    )


def db_bytes(folder: str) -> bytes:
    return (FIXTURES / folder / DATABASES[folder]).read_bytes()


def analyze(data: bytes, path: str = "var/lib/rpm/Packages") -> FileFacts:
    facts = ANALYZER.analyze(path, FileEntry(path, "f", size=len(data)), io.BytesIO(data))
    assert facts is not None
    return facts


def survive(data: bytes) -> FileFacts | None:
    """Hostile input may fail with AnalyzerFailure or give (partial) results, nothing else."""
    try:
        return analyze(data)
    except AnalyzerFailure as exc:
        assert str(exc)
        return None


# ---------------------------------------------------------------------------------------------
# Builders for synthetic databases


def make_header(tags: dict[int, str | int | list[str]]) -> bytes:
    index = b""
    data = bytearray()
    for tag, value in tags.items():
        if isinstance(value, int):
            data.extend(bytes(-len(data) % 4))
            typ, count, raw = 4, 1, struct.pack(">I", value)
        elif isinstance(value, list):
            typ, count, raw = 8, len(value), b"".join(v.encode() + b"\0" for v in value)
        else:
            typ, count, raw = 6, 1, value.encode() + b"\0"
        index += struct.pack(">IIII", tag, typ, len(data), count)
        data.extend(raw)
    return struct.pack(">II", len(tags), len(data)) + index + bytes(data)


def simple_header(name: str, version: str = "1.0", **extra: str | int) -> bytes:
    tags: dict[int, str | int | list[str]] = {1000: name, 1001: version, 1002: "1.el9", 1022: "x86_64"}
    tags.update({int(k.lstrip("t")): v for k, v in extra.items()})
    return make_header(tags)


def make_ndb(blobs: list[bytes]) -> bytes:
    out = bytearray(4096)
    out[0:20] = struct.pack("<4sIIII", b"RpmP", 0, 1, 1, len(blobs) + 1)
    for off in range(32, 4096, 16):
        out[off : off + 4] = b"Slot"
    block = 4096 // 16
    for i, blob in enumerate(blobs, 1):
        count = (16 + len(blob) + 12 + 15) // 16
        out[32 + (i - 1) * 16 : 32 + i * 16] = struct.pack("<4sIII", b"Slot", i, block, count)
        body = struct.pack("<4sIII", b"BlbS", i, 0, len(blob)) + blob
        body += bytes(count * 16 - len(body) - 12)
        body += struct.pack("<II4s", zlib.adler32(body), len(blob), b"BlbE")
        out += body
        block += count
    return bytes(out)


def make_sqlite(tmp_path: Path, statements: list[str], rows: list[tuple[int, object]] | None = None) -> bytes:
    path = tmp_path / "built.sqlite"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    if rows:
        conn.executemany("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------
# Plug-in surface


def test_exports_one_analyzer_and_subpackage_none() -> None:
    assert len(ANALYZERS) == 1 and isinstance(ANALYZERS[0], RpmAnalyzer)
    assert not hasattr(rpmdb, "ANALYZERS")
    assert ANALYZER.name == "rpm" and ANALYZER.version >= 1
    assert ANALYZER.max_size >= 256 * 1024 * 1024


@pytest.mark.parametrize("directory", ["var/lib/rpm", "usr/lib/sysimage/rpm", "usr/share/rpm"])
@pytest.mark.parametrize("name", ["Packages", "Packages.db", "rpmdb.sqlite"])
def test_claims_database_paths(directory: str, name: str) -> None:
    path = f"{directory}/{name}"
    assert ANALYZER.claims(path, FileEntry(path, "f"))
    assert not ANALYZER.claims(path, FileEntry(path, "l", linkname="x"))
    assert not ANALYZER.claims(path, FileEntry(path, "d"))


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/rpm/Packages",
        "var/lib/rpm/Name",
        "var/lib/rpm/rpmdb.sqlite-wal",
        "x/var/lib/rpm/Packages",
        "var/lib/rpm/Packages/x",
        "var/lib/rpm",
    ],
)
def test_does_not_claim_other_paths(path: str) -> None:
    assert not ANALYZER.claims(path, FileEntry(path, "f"))


@pytest.mark.parametrize(
    ("srpm", "expected"),
    [
        ("util-linux-2.32.1-42.el8_8.src.rpm", ("util-linux", "2.32.1-42.el8_8")),
        ("gcc11-11.2.1+git610-1.3.9.src.rpm", ("gcc11", "11.2.1+git610-1.3.9")),
        ("foo-1-2.nosrc.rpm", ("foo", "1-2")),
        ("", ("", "")),
        ("foo-1.src.rpm", ("", "")),
        ("foo-1-2.rpm", ("", "")),
        ("-1-2.src.rpm", ("", "")),
    ],
)
def test_split_source_rpm(srpm: str, expected: tuple[str, str]) -> None:
    assert split_source_rpm(srpm) == expected


# ---------------------------------------------------------------------------------------------
# Real databases


@pytest.mark.parametrize("folder", sorted(DATABASES))
def test_fixture_yields_exactly_the_expected_packages(folder: str) -> None:
    path = f"var/lib/rpm/{DATABASES[folder]}"
    with (FIXTURES / folder / DATABASES[folder]).open("rb") as stream:
        facts = ANALYZER.analyze(path, FileEntry(path, "f"), stream)
    assert facts is not None
    assert "warnings" not in facts.hints
    assert Counter(row(p) for p in facts.packages) == expected_rows(folder)
    for p in facts.packages:
        assert p.ecosystem == "rpm" and p.path == path and p.purl == ""
        raw = p.metadata.get("license_raw", "")
        assert p.licenses == ([licenses.normalize(raw)] if raw else [])
        name, version = split_source_rpm(p.metadata["sourcerpm"])
        assert (p.source_name, p.source_version) == (name, version) != ("", "")


def test_package_fields_from_bdb() -> None:
    [p] = analyze(db_bytes("bdb-libuuid")).packages
    assert (p.name, p.epoch, p.version, p.release, p.arch) == ("libuuid", None, "2.32.1", "42.el8_8", "x86_64")
    assert (p.source_name, p.source_version) == ("util-linux", "2.32.1-42.el8_8")
    assert p.vendor == "Red Hat, Inc."
    assert p.licenses == [licenses.normalize("BSD")]
    assert p.metadata["license_raw"] == "BSD"
    assert p.metadata["sourcerpm"] == "util-linux-2.32.1-42.el8_8.src.rpm"
    assert p.metadata["summary"] == "Universally unique ID library"
    assert p.metadata["size"] == "35104"


def test_epoch_from_sqlite() -> None:
    packages = {p.name: p for p in analyze(db_bytes("sqlite-cbl-mariner-2.0")).packages}
    assert packages["ca-certificates-tools"].epoch == 1
    assert packages["glibc"].epoch is None
    assert packages["glibc"].vendor == "Microsoft Corporation"


def test_both_byte_orders_give_the_same_packages() -> None:
    le = analyze(db_bytes("bdb-mariner-le")).packages
    be = analyze(db_bytes("bdb-mariner-be")).packages
    assert sorted(map(row, le)) == sorted(map(row, be))
    assert len(le) == 40


def test_sqlite_temp_copy_is_removed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    stream_file = spool / "layer-member"
    stream_file.write_bytes(db_bytes("sqlite-cbl-mariner-2.0"))
    with stream_file.open("rb") as stream:
        facts = ANALYZER.analyze("var/lib/rpm/rpmdb.sqlite", FileEntry("var/lib/rpm/rpmdb.sqlite", "f"), stream)
    assert facts is not None and len(facts.packages) == 129
    assert sorted(os.listdir(spool)) == ["layer-member"]


def test_sqlite_reads_from_unnamed_stream() -> None:
    facts = analyze(db_bytes("sqlite-cbl-mariner-2.0"), "usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert len(facts.packages) == 129
    assert all(p.path == "usr/lib/sysimage/rpm/rpmdb.sqlite" for p in facts.packages)


# ---------------------------------------------------------------------------------------------
# A database written by Debian's rpm, compared with rpm's own query

SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: hullscan test package
License: {license}
{vendor}BuildArch: noarch
%description
hullscan test package
%files
"""

QUERY_FORMAT = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\t%{VENDOR}\\n"


@pytest.mark.skipif(
    shutil.which("rpmbuild") is None or shutil.which("rpm") is None, reason="rpm/rpmbuild not installed"
)
@pytest.mark.timeout(120)
def test_database_built_by_rpm_matches_rpm_query(tmp_path: Path) -> None:
    specs = [
        dict(
            name="hullscan-alpha",
            version="1.2.3",
            release="4.test",
            epoch="Epoch: 2\n",
            license="MIT and (GPLv2+ or BSD)",
            vendor="Vendor: Hullscan Tests\n",
        ),
        dict(
            name="hullscan-beta",
            version="0.9~rc1",
            release="7",
            epoch="",
            license="ASL 2.0",
            vendor="Vendor: Ünïcode Vendor\n",
        ),
    ]
    env = {**os.environ, "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    top = tmp_path / "top"
    for spec in specs:
        spec_file = tmp_path / f"{spec['name']}.spec"
        spec_file.write_text(SPEC.format(**spec))
        subprocess.run(
            ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec_file)],
            check=True,
            capture_output=True,
            env=env,
            timeout=60,
        )
    built = sorted(str(p) for p in top.glob("RPMS/noarch/*.rpm"))
    assert len(built) == 2
    root = tmp_path / "root"
    root.mkdir()
    rpm_args = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    subprocess.run([*rpm_args, "--nodeps", "-i", *built], check=True, capture_output=True, env=env, timeout=60)
    query = subprocess.run(
        [*rpm_args, "-qa", "--qf", QUERY_FORMAT], check=True, capture_output=True, env=env, timeout=60
    )
    expected: Counter[tuple[str, ...]] = Counter()
    for line in query.stdout.decode().splitlines():
        fields = line.split("\t")
        fields[1] = "0" if fields[1] == "(none)" else fields[1]
        fields[7] = "" if fields[7] == "(none)" else fields[7]
        expected[tuple(fields)] += 1
    assert len(expected) == 2

    db = root / "var/lib/rpm/rpmdb.sqlite"
    with db.open("rb") as stream:
        facts = ANALYZER.analyze("var/lib/rpm/rpmdb.sqlite", FileEntry("var/lib/rpm/rpmdb.sqlite", "f"), stream)
    assert facts is not None and "warnings" not in facts.hints
    assert Counter((*row(p), p.vendor) for p in facts.packages) == expected
    alpha = next(p for p in facts.packages if p.name == "hullscan-alpha")
    assert alpha.epoch == 2
    assert (alpha.source_name, alpha.source_version) == ("hullscan-alpha", "1.2.3-4.test")
    assert alpha.licenses == [licenses.normalize("MIT and (GPLv2+ or BSD)")]
    beta = next(p for p in facts.packages if p.name == "hullscan-beta")
    assert beta.epoch is None and beta.vendor == "Ünïcode Vendor" and beta.version == "0.9~rc1"


# ---------------------------------------------------------------------------------------------
# The header blob


def test_header_values() -> None:
    header = Header(make_header({1000: "name", 1003: 7, 1118: ["/a/", "/b/"], 1004: "sum"}))
    assert header.string(1000) == "name"
    assert header.integer(1003) == 7
    assert header.strings(1118) == ["/a/", "/b/"]
    assert header.string(1118) == "/a/"
    assert header.string(1001) is None and header.integer(1001) is None
    assert header.integer(1000) is None  # wrong type reads as absent
    assert header.string(1003) is None


def test_header_with_file_intro_is_accepted() -> None:
    blob = b"\x8e\xad\xe8\x01\0\0\0\0" + make_header({1000: "x"})
    assert Header(blob).string(1000) == "x"


def test_header_latin1_strings() -> None:
    assert Header(make_header({1011: "x"}).replace(b"x\0", b"\xe9\0")).string(1011) == "é"


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\0\0\0",
        struct.pack(">II", 0, 0),
        struct.pack(">II", 5_000_000, 16) + bytes(64),  # index count in the millions
        struct.pack(">II", 0xFFFF, 0) + bytes(64),  # plausible count, blob far too short
        struct.pack(">II", 1, 0xFFFFFFF0) + bytes(64),  # data length beyond any limit
        struct.pack(">II", 1, 100) + struct.pack(">IIII", 1000, 6, 0, 1) + b"abc",  # truncated data
    ],
)
def test_header_rejects_bad_blobs(blob: bytes) -> None:
    with pytest.raises(HeaderError):
        Header(blob)


def test_header_bad_entries_read_as_absent() -> None:
    index = struct.pack(">IIII", 1000, 6, 50, 1)  # offset beyond the data store
    index += struct.pack(">IIII", 1001, 6, 0, 1)  # unterminated string
    index += struct.pack(">IIII", 1003, 4, 2, 1)  # integer running off the end
    index += struct.pack(">IIII", 1118, 8, 0, 0xFFFFFFFF)  # string array claiming 4G strings
    blob = struct.pack(">II", 4, 4) + index + b"abcd"
    header = Header(blob)
    assert header.string(1000) is None
    assert header.string(1001) is None
    assert header.integer(1003) is None
    assert header.strings(1118) == []


def test_millions_of_entries_in_a_database_record() -> None:
    bad = struct.pack(">II", 5_000_000, 16) + bytes(64)
    with pytest.raises(AnalyzerFailure, match="no readable package"):
        analyze(make_ndb([bad]))
    facts = analyze(make_ndb([bad, simple_header("good")]))
    assert [p.name for p in facts.packages] == ["good"]
    assert any("5000000 index entries" in w for w in facts.hints["warnings"])


# ---------------------------------------------------------------------------------------------
# Synthetic NDB databases


def test_ndb_builder_round_trip_and_gpg_pubkey_skipped() -> None:
    blobs = [
        simple_header("gpg-pubkey", "fd431d51", t1004="gpg(Red Hat, Inc.)"),
        simple_header("bash", "5.1.8", t1003=1, t1014="GPLv3+", t1044="bash-5.1.8-6.el9.src.rpm"),
    ]
    facts = analyze(make_ndb(blobs), "usr/lib/sysimage/rpm/Packages.db")
    [bash] = facts.packages
    assert (bash.name, bash.epoch, bash.version, bash.release) == ("bash", 1, "5.1.8", "1.el9")
    assert (bash.source_name, bash.source_version) == ("bash", "5.1.8-6.el9")
    assert bash.licenses == [licenses.normalize("GPLv3+")] and bash.metadata["license_raw"] == "GPLv3+"
    assert "warnings" not in facts.hints


def test_only_pubkeys_gives_empty_facts() -> None:
    facts = analyze(make_ndb([simple_header("gpg-pubkey")]))
    assert facts.packages == [] and not facts.hints


def test_header_without_name_is_reported() -> None:
    facts = analyze(make_ndb([make_header({1001: "1.0"}), simple_header("ok")]))
    assert [p.name for p in facts.packages] == ["ok"]
    assert any("no package name" in w for w in facts.hints["warnings"])


def test_ndb_overlapping_and_out_of_file_slots() -> None:
    data = bytearray(make_ndb([simple_header("one"), simple_header("two"), simple_header("three")]))
    # Slot 2 points into slot 1's blob; slot 3 points past the end of the file.
    _, _, off1, count1 = struct.unpack_from("<4sIII", data, 32)
    struct.pack_into("<I", data, 48 + 8, off1 + 1)
    struct.pack_into("<I", data, 64 + 8, 10**6)
    facts = analyze(bytes(data))
    assert [p.name for p in facts.packages] == ["one"]
    warnings = " ".join(facts.hints["warnings"])
    assert "overlaps" in warnings and "beyond the end" in warnings


@pytest.mark.parametrize("slot_pages", [0, 10**9])
def test_ndb_bad_slot_page_count(slot_pages: int) -> None:
    data = bytearray(make_ndb([simple_header("one")]))
    struct.pack_into("<I", data, 12, slot_pages)
    with pytest.raises(AnalyzerFailure, match="slot pages"):
        analyze(bytes(data))


def test_ndb_slot_pages_claiming_the_blobs() -> None:
    data = bytearray(make_ndb([simple_header("one")]))
    struct.pack_into("<I", data, 12, 2)  # the blob now lies inside the slot area
    with pytest.raises(AnalyzerFailure):
        analyze(bytes(data))


def test_ndb_real_database_with_broken_blob_keeps_the_rest() -> None:
    data = bytearray(db_bytes("ndb-sle15-bci"))
    _, index, off, _ = struct.unpack_from("<4sIII", data, 32)
    data[off * 16 : off * 16 + 4] = b"XXXX"  # break the first blob's head magic
    facts = analyze(bytes(data))
    assert len(facts.packages) == 34
    assert any(f"package {index} has a bad head" in w for w in facts.hints["warnings"])


# ---------------------------------------------------------------------------------------------
# Hostile Berkeley DB


def bdb_pages(data: bytes | bytearray) -> tuple[str, int, int]:
    order = "<" if struct.unpack_from("<I", data, 12)[0] == 0x061561 else ">"
    pagesize = struct.unpack_from(order + "I", data, 20)[0]
    return order, pagesize, len(data) // pagesize


@pytest.mark.timeout(60)
@pytest.mark.parametrize("folder", ["bdb-mariner-le", "bdb-mariner-be"])
def test_bdb_bucket_page_cycle_terminates(folder: str) -> None:
    data = bytearray(db_bytes(folder))
    order, pagesize, npages = bdb_pages(data)
    # Every bucket page points at itself as its successor.
    for pgno in range(1, npages):
        if data[pgno * pagesize + 25] in (2, 13):
            struct.pack_into(order + "I", data, pgno * pagesize + 16, pgno)
    facts = analyze(bytes(data))
    assert Counter(map(row, facts.packages)) == expected_rows(folder)
    assert any("chain cycle" in w for w in facts.hints["warnings"])


@pytest.mark.timeout(60)
def test_bdb_overflow_cycles_terminate() -> None:
    data = bytearray(db_bytes("bdb-mariner-le"))
    order, pagesize, npages = bdb_pages(data)
    looped = 0
    for pgno in range(1, npages):
        base = pgno * pagesize
        if data[base + 25] == 7 and struct.unpack_from(order + "I", data, base + 16)[0] != 0:
            struct.pack_into(order + "I", data, base + 16, pgno)  # overflow page -> itself
            looped += 1
            if looped == 3:
                break
    facts = analyze(bytes(data))
    assert len(facts.packages) == 40 - looped
    assert sum("reuses page" in w for w in facts.hints["warnings"]) == looped


@pytest.mark.timeout(60)
def test_bdb_two_page_overflow_cycle_with_zero_lengths() -> None:
    data = bytearray(db_bytes("bdb-mariner-le"))
    order, pagesize, npages = bdb_pages(data)
    overflow = [p for p in range(1, npages) if data[p * pagesize + 25] == 7]
    a, b = overflow[0], overflow[1]
    struct.pack_into(order + "I", data, a * pagesize + 16, b)
    struct.pack_into(order + "I", data, b * pagesize + 16, a)
    struct.pack_into(order + "H", data, b * pagesize + 22, 0)
    facts = survive(bytes(data))
    assert facts is not None and len(facts.packages) >= 38


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (72, 0xFFFFFFFF, "hash buckets"),  # max_bucket
        (20, 1000, "page size"),
        (16, 7, "hash version"),
    ],
)
def test_bdb_bad_metadata(offset: int, value: int, message: str) -> None:
    data = bytearray(db_bytes("bdb-mariner-le"))
    struct.pack_into("<I", data, offset, value)
    with pytest.raises(AnalyzerFailure, match=message):
        analyze(bytes(data))


def test_bdb_encrypted_and_btree_are_refused() -> None:
    data = bytearray(db_bytes("bdb-libuuid"))
    data[24] = 1
    with pytest.raises(AnalyzerFailure, match="encrypted"):
        analyze(bytes(data))
    data = bytearray(db_bytes("bdb-libuuid"))
    struct.pack_into("<I", data, 12, 0x053162)
    with pytest.raises(AnalyzerFailure, match="btree"):
        analyze(bytes(data))


def test_bdb_spares_pointing_nowhere() -> None:
    data = bytearray(db_bytes("bdb-mariner-le"))
    for i in range(32):
        struct.pack_into("<I", data, 96 + 4 * i, 0xFFFFFF00)
    with pytest.raises(AnalyzerFailure, match="no readable package"):
        analyze(bytes(data))


def test_bdb_truncated_keeps_what_is_readable() -> None:
    data = db_bytes("bdb-mariner-le")
    facts = analyze(data[: len(data) // 2])
    assert 0 < len(facts.packages) < 40
    assert set(map(row, facts.packages)) <= set(expected_rows("bdb-mariner-le"))
    assert any("truncated" in w for w in facts.hints["warnings"])


# ---------------------------------------------------------------------------------------------
# Hostile SQLite


@pytest.mark.timeout(60)
def test_sqlite_view_is_refused(tmp_path: Path) -> None:
    data = make_sqlite(
        tmp_path,
        [
            "CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
            "SELECT x AS hnum, x AS blob FROM c",
        ],
    )
    with pytest.raises(AnalyzerFailure, match="view"):
        analyze(data)


def test_sqlite_generated_column_is_refused(tmp_path: Path) -> None:
    data = make_sqlite(
        tmp_path,
        [
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, seed BLOB, blob BLOB AS (zeroblob(100000000)))",
        ],
    )
    with pytest.raises(AnalyzerFailure, match="generated column"):
        analyze(data)


def test_sqlite_without_packages_table(tmp_path: Path) -> None:
    data = make_sqlite(tmp_path, ["CREATE TABLE Other (x)", "CREATE TABLE Packages2 (hnum, blob)"])
    with pytest.raises(AnalyzerFailure, match="no Packages table"):
        analyze(data)


def test_sqlite_odd_rows_are_skipped(tmp_path: Path) -> None:
    data = make_sqlite(
        tmp_path,
        ["CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"],
        [(1, "text, not a blob"), (2, b"\x01\x02"), (3, simple_header("fine")), (4, 12345)],
    )
    facts = analyze(data, "var/lib/rpm/rpmdb.sqlite")
    assert [p.name for p in facts.packages] == ["fine"]
    assert len(facts.hints["warnings"]) == 3


def test_sqlite_corrupt_pages(tmp_path: Path) -> None:
    data = bytearray(db_bytes("sqlite-cbl-mariner-2.0"))
    rng = random.Random(7)
    for _ in range(2000):
        data[rng.randrange(100, len(data))] = rng.randrange(256)
    facts = survive(bytes(data))
    if facts is not None:
        assert len(facts.packages) <= 129


# ---------------------------------------------------------------------------------------------
# Random bytes, truncations, bit flips: AnalyzerFailure or a result, never another exception


def test_empty_file() -> None:
    with pytest.raises(AnalyzerFailure, match="empty"):
        analyze(b"")


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(seed: int) -> None:
    rng = random.Random(seed)
    noise = rng.randbytes(rng.choice([1, 15, 511, 4096, 70000]))
    with pytest.raises(AnalyzerFailure, match="not an rpm database"):
        analyze(noise)
    # The same noise behind each format's magic number.
    survive(b"SQLite format 3\x00" + noise)
    survive(b"RpmP" + noise)
    survive(b"RpmP\0\0\0\0\0\0\0\0\x01\0\0\0" + noise + bytes(8192))
    for order in "<>":
        survive(noise[:12].ljust(12, b"\0") + struct.pack(order + "I", 0x061561) + noise[16:] + bytes(8192))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("folder", sorted(DATABASES))
def test_truncated_databases(folder: str) -> None:
    data = db_bytes(folder)
    expected = set(expected_rows(folder))
    for cut in sorted({1, 16, 100, 511, 512, 4095, 4096, 4097, len(data) // 3, len(data) // 2, len(data) - 1}):
        facts = survive(data[:cut])
        if facts is not None:
            assert set(map(row, facts.packages)) <= expected


@pytest.mark.timeout(120)
@pytest.mark.parametrize("folder", ["bdb-libuuid", "bdb-mariner-le", "bdb-mariner-be", "ndb-sle15-bci"])
def test_random_corruption(folder: str) -> None:
    original = db_bytes(folder)
    rng = random.Random(folder)
    for _ in range(60):
        data = bytearray(original)
        for _ in range(rng.choice([1, 4, 32])):
            # Aim at the structures: the first pages, then anywhere.
            limit = len(data) if rng.random() < 0.5 else min(len(data), 8192)
            data[rng.randrange(limit)] = rng.randrange(256)
        survive(bytes(data))


@pytest.mark.timeout(60)
def test_hostile_ndb_headers_in_records() -> None:
    rng = random.Random(3)
    good = simple_header("good", t1014="MIT")
    blobs = [good]
    for _ in range(200):
        blob = bytearray(good)
        for _ in range(rng.choice([1, 3, 10])):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        blobs.append(bytes(blob))
    facts = analyze(make_ndb(blobs))
    assert any(p.name == "good" for p in facts.packages)


def test_problem_list_is_bounded() -> None:
    facts = analyze(make_ndb([b"junk" * 3] * 200 + [simple_header("ok")]))
    warnings = facts.hints["warnings"]
    assert len(warnings) == rpmdb.MAX_PROBLEMS + 1 and "more problems" in warnings[-1]


def test_unexpected_internal_errors_become_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> object:
        raise struct.error("boom")

    monkeypatch.setattr(rpm, "package_from_header", broken)
    with pytest.raises(AnalyzerFailure, match="boom"):
        analyze(make_ndb([simple_header("x")]))
