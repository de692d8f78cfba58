"""The hand-written tar reader against the stdlib's tarfile and GNU tar on every format images use."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from hullscan.layers.tarstream import MAX_META, TarFormatError, TarReader, TarTruncated

LONG = "usr/lib/python3/dist-packages/" + "very-long-directory-name/" * 8 + "module_with_a_long_name.py"


def _members(fmt: int) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []

    def add(name: str, data: bytes | None = None, **attrs: object) -> None:
        ti = tarfile.TarInfo(name)
        for k, v in attrs.items():
            setattr(ti, k, v)
        if data is not None:
            ti.size = len(data)
        out.append((ti, data))

    add("etc", type=tarfile.DIRTYPE, mode=0o755)
    add("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n", mode=0o644)
    add("empty", b"")
    add("exact-block", b"x" * 512)
    add(LONG, b"print('long')\n", uid=1000, gid=1000)
    add("bin/sh", type=tarfile.SYMTYPE, linkname="/usr/lib/" + "target/" * 20 + "dash")
    add("bin/sh-hard", type=tarfile.LNKTYPE, linkname="etc/passwd")
    add("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    add("run/fifo", type=tarfile.FIFOTYPE)
    add("tmp", type=tarfile.DIRTYPE, mode=0o1777)
    add("usr/bin/sudo", b"\x7fELF" + bytes(3000), mode=0o4755)
    if fmt != tarfile.USTAR_FORMAT:
        add("srv/big-ids", b"ids", uid=3_000_000, gid=2_500_000)  # over 7 octal digits
        add("srv/ünïcödé/名前.txt", b"utf-8 names\n")
    return out


def _tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tf:
        for ti, data in _members(fmt):
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _read_all(tar: bytes, chunk: int = 1 << 20) -> list[tuple[str, bytes, int, int, int, int, str, bytes]]:
    out = []
    reader = TarReader(_Chunked(tar, chunk))
    for m in reader:
        data = reader.read() if m.type in (b"0", b"\0") else b""
        out.append((m.name, m.type, m.size if m.type in (b"0", b"\0") else 0, m.mode, m.uid, m.gid, m.linkname,
                    data))
    return out  # type: ignore[return-value]


def _stdlib(tar: bytes) -> list[tuple[str, bytes, int, int, int, int, str, bytes]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isreg() else None
            out.append((m.name, m.type, m.size if m.isreg() else 0, m.mode, m.uid, m.gid, m.linkname,
                        f.read() if f else b""))
    return out  # type: ignore[return-value]


class _Chunked:
    """A stream that hands out fixed-size pieces, so headers and data straddle reads."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data, self._chunk, self._pos = data, chunk, 0

    def read(self, n: int = -1) -> bytes:
        piece = self._data[self._pos:self._pos + min(n if n >= 0 else self._chunk, self._chunk)]
        self._pos += len(piece)
        return piece


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1 << 20, 700, 512, 1])
def test_reads_what_tarfile_reads(fmt: int, chunk: int) -> None:
    tar = _tar(fmt) if fmt != tarfile.USTAR_FORMAT else _ustar_tar()  # ustar holds no long link targets
    ours = _read_all(tar, chunk)
    assert ours == _stdlib(tar)
    assert len(ours) >= 10


def _ustar_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for ti, data in _members(tarfile.USTAR_FORMAT):
            if len(ti.linkname) > 100:
                continue
            if len(ti.name) > 100:
                ti.name = "usr/lib/python3/dist-packages/" + "d/" * 60 + "m.py"  # needs the prefix field
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def test_ustar_prefix_field_joins_the_name() -> None:
    names = [m[0] for m in _read_all(_ustar_tar())]
    assert "usr/lib/python3/dist-packages/" + "d/" * 60 + "m.py" in names


def test_pax_global_header_applies_to_later_members() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"uid": "4242", "comment": "global"}) as tf:
        for name in ("a", "b"):
            ti = tarfile.TarInfo(name)
            ti.size = 1
            tf.addfile(ti, io.BytesIO(b"x"))
    ours = _read_all(buf.getvalue())
    assert [(m[0], m[4]) for m in ours] == [("a", 4242), ("b", 4242)]
    assert ours == _stdlib(buf.getvalue())


def test_old_style_directory_by_trailing_slash() -> None:
    ti = tarfile.TarInfo("olddir/")
    ti.type = tarfile.AREGTYPE
    header = bytearray(ti.tobuf(tarfile.USTAR_FORMAT))
    header[156] = 0  # V7: NUL typeflag
    header[148:156] = b"%06o\0 " % (sum(header[:148]) + sum(header[156:]) + 256)
    (m,) = list(TarReader(io.BytesIO(bytes(header) + bytes(1024))))
    assert (m.name, m.type) == ("olddir", b"5")


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
def test_gnu_sparse_members_are_passed_over_exactly(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with (root / "sparse.img").open("wb") as f:
        for i in range(8):  # many holes: the sparse map needs extension blocks (4 entries fit in the header)
            f.seek(i * 1_000_000)
            f.write(b"data%d" % i)
    (root / "after.txt").write_bytes(b"read after the sparse file\n")
    for fmt, sparse_type in (("gnu", b"S"), ("posix", b"0")):
        out = tmp_path / f"{fmt}.tar"
        subprocess.run(["tar", f"--format={fmt}", "-S", "-cf", str(out), "-C", str(root), "sparse.img", "after.txt"],
                       check=True)
        reader = TarReader(io.BytesIO(out.read_bytes()))
        members = list(reader)
        first = members[0]
        assert first.sparse and first.type == sparse_type
        assert members[1].name == "after.txt"
    reader = TarReader(io.BytesIO((tmp_path / "gnu.tar").read_bytes()))
    reader.next()
    assert reader.next() is not None and reader.read() == b"read after the sparse file\n"


def _valid_header(name: str = "a", size: int = 0) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti.tobuf(tarfile.USTAR_FORMAT)


def test_bad_checksum_is_an_error_with_its_offset() -> None:
    good = _valid_header("first", 3) + b"abc".ljust(512, b"\0")
    bad = bytearray(_valid_header("second"))
    bad[0] ^= 1
    reader = TarReader(io.BytesIO(good + bytes(bad)))
    assert reader.next() is not None
    with pytest.raises(TarFormatError, match="checksum") as err:
        reader.next()
    assert err.value.offset == 1024


def test_signed_checksums_of_old_writers_are_accepted() -> None:
    header = bytearray(_valid_header("caf\xe9".encode("latin-1").decode("latin-1")))
    header[0:5] = b"caf\xe9\0"
    signed = sum(b if b < 128 else b - 256 for b in header[:148] + header[156:]) + 256
    header[148:156] = b"%06o\0 " % signed
    (m,) = list(TarReader(io.BytesIO(bytes(header) + bytes(1024))))
    assert m.name == "caf\udce9"  # not UTF-8: kept with surrogate escapes for the walker to report


@pytest.mark.parametrize("cut", [100, 512 + 1, 512 + 300])
def test_truncation_is_reported(cut: int) -> None:
    tar = _valid_header("f", 1000) + b"y" * 1000 + bytes(24) + _valid_header("g")
    reader = TarReader(io.BytesIO(tar[:cut]))
    with pytest.raises(TarTruncated):
        for _ in reader:
            reader.read()


def test_pax_header_without_member_and_hostile_pax() -> None:
    pax = tarfile.TarInfo("a")
    pax.pax_headers = {"path": "x" * 300}
    header = pax.tobuf(tarfile.PAX_FORMAT)
    only_extended = header[: len(header) - 512]  # the extended header, then the end of the archive
    with pytest.raises(TarFormatError, match="followed by no member"):
        list(TarReader(io.BytesIO(only_extended + bytes(1024))))
    big = bytearray(_valid_header("././@PaxHeader", MAX_META + 1))
    big[156] = ord("x")
    big[148:156] = b"%06o\0 " % (sum(big[:148]) + sum(big[156:]) + 256)
    with pytest.raises(TarFormatError, match="extended header of"):
        list(TarReader(io.BytesIO(bytes(big))))
    broken = bytearray(_valid_header("././@PaxHeader", 12))
    broken[156] = ord("x")
    broken[148:156] = b"%06o\0 " % (sum(broken[:148]) + sum(broken[156:]) + 256)
    with pytest.raises(TarFormatError, match="PAX record"):
        list(TarReader(io.BytesIO(bytes(broken) + b"99 path=abc\n".ljust(512, b"\0") + _valid_header())))


def test_base256_numbers() -> None:
    ti = tarfile.TarInfo("huge")
    ti.uid = 10**12
    ti.size = 0
    (m,) = list(TarReader(io.BytesIO(ti.tobuf(tarfile.GNU_FORMAT) + bytes(1024))))
    assert m.uid == 10**12
