"""Output files: the checks every command runs on its outputs, and how files are published.

Issue 18, items 1-6 and 9: two outputs naming one file (through links), special files,
the `.dot` fallback, concurrent writers, permission bits, links, and output names that
collide with `numpy.savez`'s own parameters.
"""

from __future__ import annotations

import keyword
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from composer import arrays
from composer.arrays import atomic_write, read_arrays, write_arrays
from composer.cli import app
from composer.errors import OutputExistsError, WriteError
from composer.output_files import output_problem, same_file, shown

ROOT = Path(__file__).parent.parent
SPEC = ROOT / "specs" / "lecture-elman.yaml"
X = ROOT / "specs" / "data" / "lecture-x.csv"
SINE = ROOT / "specs" / "sine.yaml"
SINE_DATA = ROOT / "specs" / "data" / "sine.npz"

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _link_kinds(tmp_path: Path, target: Path) -> dict[str, Path]:
    """Other names for `target`: the same name, a symbolic link, a hard link, `./x`."""
    target.write_bytes(b"keep")
    soft, hard = tmp_path / "soft.npz", tmp_path / "hard.npz"
    soft.symlink_to(target.name)
    os.link(target, hard)
    return {
        "same": target,
        "symlink": soft,
        "hardlink": hard,
        "dotted": tmp_path / "." / target.name,
    }


# -- 1, 2: two outputs of one command naming one file ---------------------------------


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "dotted"])
def test_run_refuses_output_and_saved_weights_in_one_file(tmp_path, alias):
    out = tmp_path / "same.npz"
    other = _link_kinds(tmp_path, out)[alias]
    result = invoke("run", SPEC, "-i", X, "-o", out, "--save-weights", other, "--force")
    assert result.exit_code == 2, result.output
    assert "named by two outputs" in result.output
    assert out.read_bytes() == b"keep"


def test_run_refuses_two_outputs_in_one_new_file(tmp_path):
    out = tmp_path / "new.npz"
    result = invoke("run", SPEC, "-i", X, "-o", out, "--save-weights", out)
    assert result.exit_code == 2 and "named by two outputs" in result.output
    assert not out.exists()


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink"])
def test_train_refuses_curve_over_the_weights(tmp_path, alias):
    out = tmp_path / "w.npz"
    other = _link_kinds(tmp_path, out)[alias]
    args = ("train", SINE, "--data", SINE_DATA, "--epochs", 0, "--force")
    result = invoke(*args, "--output", out, "--curve", other)
    assert result.exit_code == 2 and "named by two outputs" in result.output, result.output
    assert out.read_bytes() == b"keep"


def test_render_views_never_share_a_file(tmp_path):
    out = tmp_path / "pic.svg"
    (tmp_path / "pic.folded.svg").symlink_to("pic.unfolded.svg")
    result = invoke("render", SPEC, "-o", out, "--force")
    assert result.exit_code == 2, result.output


# -- 3: the `.dot` fallback is an output like any other --------------------------------


def _without_dot(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))


def test_dot_fallback_does_not_overwrite_without_force(tmp_path, monkeypatch):
    _without_dot(monkeypatch, tmp_path)
    (tmp_path / "pic.dot").write_text("mine")
    result = invoke("render", SPEC, "--view", "folded", "-f", "png", "-o", tmp_path / "pic.png")
    assert result.exit_code == 6
    assert "not written" in result.stderr and "exists" in result.stderr
    assert (tmp_path / "pic.dot").read_text() == "mine"


def test_dot_fallback_never_overwrites_the_spec(tmp_path, monkeypatch):
    _without_dot(monkeypatch, tmp_path)
    spec = tmp_path / "net.dot"
    spec.write_text(SPEC.read_text())
    args = ("render", spec, "--view", "folded", "-f", "png", "-o", tmp_path / "net.png")
    result = invoke(*args, "--force")
    assert result.exit_code == 6 and "is also an input" in result.stderr
    assert spec.read_text() == SPEC.read_text()


def test_dot_fallback_with_force_replaces_an_old_source(tmp_path, monkeypatch):
    _without_dot(monkeypatch, tmp_path)
    (tmp_path / "pic.dot").write_text("old")
    args = ("render", SPEC, "--view", "folded", "-f", "svg", "-o", tmp_path / "pic.svg")
    result = invoke(*args, "--force")
    assert result.exit_code == 6 and "the DOT source is in" in result.stderr
    assert (tmp_path / "pic.dot").read_text().startswith("digraph")


# -- 4: special files are never replaced -----------------------------------------------


def private_device(folder: Path) -> Path:
    """A character device of our own (a copy of /dev/null's numbers) when we may make one,
    else a Unix socket: never the system's /dev/null, which a broken check would replace."""
    device = folder / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError, AttributeError):
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(device))
        server.close()
    return device


def _special_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to("nowhere.npz")
    loop = tmp_path / "loop.npz"
    loop.symlink_to("loop.npz")
    device = private_device(tmp_path)
    return {"device": device, "fifo": fifo, "dangling": dangling, "loop": loop}


@pytest.mark.parametrize("kind", ["device", "fifo", "dangling", "loop"])
@pytest.mark.parametrize("force", [False, True])
def test_special_outputs_are_refused(tmp_path, kind, force):
    target = _special_files(tmp_path)[kind]
    before = os.lstat(target)
    result = invoke("run", SPEC, "-i", X, "-o", target, *(["--force"] if force else []))
    assert result.exit_code == 2, result.output
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert not stat.S_ISREG(os.stat(target).st_mode) if kind in ("device", "fifo") else True


@pytest.mark.parametrize("kind", ["device", "fifo", "dangling", "loop"])
def test_atomic_write_never_replaces_a_special_file(tmp_path, kind):
    target = _special_files(tmp_path)[kind]
    before = os.lstat(target)
    with pytest.raises(WriteError):
        atomic_write(target, lambda handle: handle.write(b"x"))
    assert os.lstat(target).st_ino == before.st_ino


# -- 5: without --force, a file that appears meanwhile is not overwritten -----------------


def test_a_file_that_appears_meanwhile_is_kept(tmp_path):
    out = tmp_path / "w.npz"

    def racing(handle):
        out.write_bytes(b"the other run's result")
        handle.write(b"ours")

    with pytest.raises(OutputExistsError):
        atomic_write(out, racing, overwrite=False)
    assert out.read_bytes() == b"the other run's result"
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_train_racing_another_run_exits_2_and_keeps_its_result(tmp_path, monkeypatch):
    out = tmp_path / "cw.npz"
    real = arrays._savez

    def racing(handle, data):
        out.write_bytes(b"the other run's result")
        real(handle, data)

    monkeypatch.setattr(arrays, "_savez", racing)
    result = invoke("train", SINE, "--data", SINE_DATA, "--epochs", 0, "--output", out)
    assert result.exit_code == 2 and "appeared while this command ran" in result.output
    assert out.read_bytes() == b"the other run's result"


# -- 6: modes and links ----------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_force_keeps_the_old_files_mode(tmp_path, mode):
    out = tmp_path / "w.npz"
    out.write_bytes(b"old")
    out.chmod(mode)
    result = invoke("run", SPEC, "-i", X, "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert "y" in read_arrays(out)


def test_a_new_file_gets_the_usual_mode(tmp_path):
    out = tmp_path / "new.npz"
    write_arrays(out, {"a": np.zeros(2)})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_force_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    real, link = tmp_path / "real.npz", tmp_path / "link.npz"
    real.write_bytes(b"old")
    link.symlink_to(real.name)
    result = invoke("run", SPEC, "-i", X, "-o", link, "--force")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and "y" in read_arrays(real)


def test_force_on_a_hard_link_replaces_this_name_only(tmp_path):
    out, other = tmp_path / "w.npz", tmp_path / "other.npz"
    out.write_bytes(b"old")
    os.link(out, other)
    assert invoke("run", SPEC, "-i", X, "-o", out, "--force").exit_code == 0
    assert other.read_bytes() == b"old" and "y" in read_arrays(out)


# -- 9: output names are never keyword arguments ----------------------------------------

NAMES = ["file", "allow_pickle", "args", "kwds", "self", "arr", "compress", "x", "a.b"]


@pytest.mark.parametrize("name", NAMES)
def test_any_array_name_round_trips(tmp_path, name):
    out = tmp_path / "o.npz"
    write_arrays(out, {name: np.arange(3.0), "other": np.ones(2)})
    back = read_arrays(out)
    assert sorted(back) == sorted([name, "other"])
    np.testing.assert_array_equal(back[name], np.arange(3.0))


@pytest.mark.parametrize("name", ["file", "allow_pickle", "kwds", "args"])
def test_run_writes_outputs_named_like_savez_parameters(tmp_path, name):
    spec = tmp_path / "net.yaml"
    spec.write_text(SPEC.read_text().replace("name: y, from: s", f"name: {name}, from: s"))
    out = tmp_path / "o.npz"
    result = invoke("run", spec, "-i", X, "-o", out)
    assert result.exit_code == 0, result.output
    assert list(read_arrays(out)) == [name] and read_arrays(out)[name].shape == (4, 3)


def test_written_arrays_are_byte_identical(tmp_path):
    data = {"a": np.arange(6.0).reshape(2, 3), "file": np.zeros(1)}
    write_arrays(tmp_path / "1.npz", data)
    write_arrays(tmp_path / "2.npz", data)
    assert (tmp_path / "1.npz").read_bytes() == (tmp_path / "2.npz").read_bytes()


# -- the checks as a function -----------------------------------------------------------


def test_output_problem_and_same_file(tmp_path):
    a = tmp_path / "a"
    a.write_text("")
    assert same_file(a, tmp_path / "." / "a") and not same_file(a, tmp_path / "b")
    assert output_problem(tmp_path / "b", False) is None
    assert "exists" in output_problem(a, False)
    assert output_problem(a, True) is None
    assert "also an input" in output_problem(a, True, [a])
    for name in ("", ".", "..", "/"):
        assert "folder" in output_problem(Path(name), True)


@pytest.mark.parametrize("name", ["bad\nother.yaml: ok", "a\rb", "esc\x1b[31m", "tab\there"])
def test_shown_names_stay_on_one_line(name):
    assert "\n" not in shown(name) and "\r" not in shown(name) and "\x1b" not in shown(name)


def test_keywords_are_plain_names(tmp_path):
    data = {word: np.zeros(1) for word in keyword.kwlist}
    write_arrays(tmp_path / "k.npz", data)
    assert sorted(read_arrays(tmp_path / "k.npz")) == sorted(keyword.kwlist)
