"""Array files: hostile `.npy`/`.npz` content is refused before any large allocation."""

from __future__ import annotations

import tracemalloc
import zipfile

import numpy as np
import pytest

from composer.arrays import atomic_write, read_arrays, write_arrays
from composer.errors import DataError


def _header(shape, descr="<f8") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    return b"\x93NUMPY\x01\x00v\x00" + text.ljust(117) + b"\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("big.npy", _header((100000, 100000, 1000)), "over the 8 GiB limit"),
        ("cut.npy", _header((2, 5, 3)) + b"\0" * 100, "truncated; shape (2, 5, 3) needs 240"),
        ("text.npz", b"1,2,3\n4,5,6\n", "not a .npy or .npz file"),
        ("w.pt", b"\x80\x04anything", "PyTorch pickle is not supported"),
        ("w.pkl", b"\x80\x04anything", "Python pickle is not supported"),
        ("w.h5", b"\x89HDF\r\n", "HDF5 file is not supported"),
        ("obj.npy", _header((2,), descr="|O"), "dtype object is not allowed"),
        ("bad.npy", b"\x93NUMPY\x09\x00garbage", "not a valid .npy array"),
    ],
)
def test_hostile_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        read_arrays(path)
    assert str(path) in str(err.value)


def test_a_zip_bomb_is_refused_before_decompressing(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(_header((2, 2)))
            zeros = bytes(1 << 20)
            for _ in range(256):  # 256 MiB of zeros, a few hundred KiB on disk
                member.write(zeros)
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    with pytest.raises(DataError, match="bytes do not match shape"):
        read_arrays(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20


def test_round_trip_and_no_pickles(tmp_path):
    path = tmp_path / "a.npz"
    write_arrays(path, {"a.Wx": np.arange(6.0).reshape(2, 3)})
    assert read_arrays(path)["a.Wx"].tolist() == [[0, 1, 2], [3, 4, 5]]
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="not allowed"):
        read_arrays(path)


def test_a_full_disk_is_a_write_error_and_keeps_the_old_file(tmp_path):
    import errno

    from composer.errors import WriteError

    out = tmp_path / "w.npz"
    out.write_bytes(b"old")

    def full(handle):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match="cannot write .*w.npz: No space left on device"):
        atomic_write(out, full)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["w.npz"]
    assert WriteError.exit_code == 5


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "start.yaml"
    out.write_text("old")

    def interrupted(handle):
        handle.write(b"half a fi")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, interrupted)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["start.yaml"]


# -- headers that overflow, bombs of valid members (issue 18, items 12 and 19) -----------


def _npy_with_header(shape_text: str) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}"
    header += " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


@pytest.mark.parametrize(
    "shape", ["(10**200, 10**200)", f"({10**200}, {10**200})", f"({2**64}, 2)", "(-1, 4)"]
)
def test_absurd_declared_shapes_are_data_errors(tmp_path, shape):
    path = tmp_path / "huge.npy"
    try:
        path.write_bytes(_npy_with_header(str(eval(shape))))
    except ValueError:
        return
    with pytest.raises(DataError):
        read_arrays(path)
    zipped = tmp_path / "huge.npz"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("x.npy", path.read_bytes())
    with pytest.raises(DataError):
        read_arrays(zipped)
    from composer.arrays import declared_bytes

    with pytest.raises(DataError):
        declared_bytes(path)


def _bomb(path, members: int = 3, size: int = 16 << 20):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            with archive.open(f"m{i}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(
                    member, {"descr": "<f8", "fortran_order": False, "shape": (size // 8,)}
                )
                zeros = bytes(1 << 20)
                for _ in range(size >> 20):
                    member.write(zeros)
    return path


def test_declared_bytes_reads_headers_only(tmp_path):
    from composer.arrays import declared_bytes

    path = _bomb(tmp_path / "bomb.npz")
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        assert declared_bytes(path) == 3 * (16 << 20)
        assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()


def test_too_many_members_are_refused(tmp_path, monkeypatch):
    from composer import arrays

    monkeypatch.setattr(arrays, "MAX_MEMBERS", 5)
    path = tmp_path / "many.npz"
    write_arrays(path, {f"k{i}": np.zeros(1) for i in range(6)})
    with pytest.raises(DataError, match="over the limit of 5"):
        read_arrays(path)
    with pytest.raises(DataError, match="over the limit of 5"):
        arrays.declared_bytes(path)


def test_a_header_only_python_2_parsing_reads_is_refused_without_a_warning(tmp_path):
    import warnings

    path = tmp_path / "py2.npy"
    header = b"{'\x01descr': '<f4', 'fortran_order': False, 'shape': (2, 5, 3), }\n"
    path.write_bytes(b"\x93NUMPY\x01\x00v\x00" + header + b" " * 54)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match="not a valid .npy array"):
            read_arrays(path)


def test_an_npz_holding_one_member_twice_is_refused(tmp_path):
    """Python's zipfile writes a second `x.npy` beside the first; numpy would keep one."""
    path = tmp_path / "twice.npz"
    write_arrays(path, {"x": np.zeros((2, 3))})
    with zipfile.ZipFile(path, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        with archive.open("x.npy", "w") as member:
            np.lib.format.write_array(member, np.ones((2, 3)))
    with pytest.raises(DataError, match=r"holds the member 'x\.npy' twice") as err:
        read_arrays(path)
    assert str(path) in str(err.value)
