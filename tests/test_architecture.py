"""The package's layout keeps its rules: imports flow one way through the stages, the
graphs hold plain data, each subpackage names its public functions, and no stage outside
`composer.kinds` knows a layer kind by name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from composer.graph.folded import build
from composer.spec.reader import load_spec
from tests.conftest import ROOT, SPECS

PACKAGE = ROOT / "composer"

#: each module's stage, left to right: a module may import from its own stage and those
#: before it, never from a later one. `base` holds what every stage uses (errors, files).
STAGES = [
    "base",
    "spec",
    "kinds",
    "graph",
    "draw",
    "engine",
    "training",
    "interop",
    "api",
    "network",
    "cli",
    "top",
]
BASE = {
    "errors",
    "arrays",
    "dtypes",
    "finite",
    "readable",
    "output_files",
    "signals",
    "reading",
    "threads",
}


def _stage(module: str) -> str:
    """The stage of a module given as `composer.x.y`."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return "top"
    if parts[1] in BASE:
        return "base"
    return parts[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every `composer...` module a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    modules = _modules()
    return {name for name in names if name in modules and name != "composer"}


def test_every_module_has_a_stage():
    for module in _modules():
        assert _stage(module) in STAGES, module


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_flow_one_way(module):
    rank = STAGES.index(_stage(module))
    against = [name for name in _imports(_modules()[module]) if STAGES.index(_stage(name)) > rank]
    assert not against, f"{module} ({_stage(module)}) imports from later stages: {against}"


def test_the_rule_catches_an_arrow_against_the_flow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from composer.engine.executor import run\n")
    assert "composer.engine.executor" in _imports(bad)
    assert STAGES.index(_stage("composer.engine.executor")) > STAGES.index("graph")


def test_datasets_and_the_loss_curve_need_nothing_of_the_pipeline():
    modules = _modules()
    assert {_stage(n) for n in _imports(modules["composer.training.example_data"])} <= {"base"}
    assert {_stage(n) for n in _imports(modules["composer.draw.curve"])} <= {"base"}


def _plain(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, (str, int, float, bool))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_folded_graph_holds_plain_data(path):
    graph = build(load_spec(path))
    assert all(_plain(value) for value in graph.graph.values()), graph.graph
    for node, data in graph.nodes(data=True):
        assert all(_plain(value) for value in data.values()), node
    for tail, head, data in graph.edges(data=True):
        assert all(_plain(value) for value in data.values()), (tail, head)


SUBPACKAGES = ["spec", "kinds", "graph", "engine", "training", "draw", "api", "cli"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_subpackage_names_its_public_functions(name):
    package = importlib.import_module(f"composer.{name}")
    source = (PACKAGE / name / "__init__.py").read_text()
    assert package.__doc__ and package.__all__, name
    assert all(hasattr(package, item) for item in package.__all__), name
    assert len(source.splitlines()) <= 60, f"composer/{name}/__init__.py is not short"


def test_the_package_re_exports_the_stage_functions():
    import composer

    for name in [
        "load_spec",
        "build",
        "unroll",
        "compile_plan",
        "execute",
        "run",
        "grad",
        "train",
        "dependencies",
        "folded_dot",
        "unfolded_dot",
    ]:
        assert callable(getattr(composer, name)), name


KIND_NAMES = {"elman", "lstm", "gru"}


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_stage_outside_the_kinds_knows_a_kind_by_name(module):
    """`dense` is also a vector's role, so only the recurrent kinds' names are looked for;
    the spec's models name every kind, and that is where a new kind's model goes. The one
    other place is the converters' registry (`composer.interop.native`): which `torch.nn`
    module and ONNX operator compute a kind whole, keyed by kind, as PyTorch's exporter
    keeps ONNX's gate order; a kind absent from it leaves as its step."""
    if _stage(module) in ("kinds", "spec") or module == "composer.interop.native":
        return
    tree = ast.parse(_modules()[module].read_text())
    named = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in KIND_NAMES
    ]
    assert not named, f"{module} names the kinds {named}"


def test_a_kind_holds_no_converter_facts():
    """`Kind` is the mathematics (weights, step, fast paths, backward, picture): no torch.nn
    module, no ONNX operator, gate order or step written for one library, and no variant
    switches an inherited feature off."""
    from composer.kinds import KINDS, Kind

    for kind in [Kind(), *KINDS.values()]:
        held = [name for name in dir(kind) if name.startswith(("torch_", "onnx_", "tensor_"))]
        assert not held, (kind.name, held)
    for kind in KINDS.values():  # every kind writes its step; none sets one back to Kind's
        assert kind.stateful is False or type(kind).step is not Kind.step, kind.name
    text = "\n".join(p.read_text() for p in (PACKAGE / "kinds").glob("*.py"))
    assert "= Kind." not in text and 'torch_class = ""' not in text


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_underscore_name_is_imported_across_modules(module):
    """A name with a leading underscore is its module's own: another module that needs it
    needs it public, in the module its concept belongs to."""
    tree = ast.parse(_modules()[module].read_text())
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("composer")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert not private, f"{module} imports private names {private}"


#: modules over `LONGEST` lines, each one concept, and why it stays whole
LONG_MODULES = {
    "composer/spec/model.py": "the spec's Pydantic models, one small class per spec object",
    "composer/training/loop.py": "`train`: its checks, its data split and its epoch loop",
    "composer/engine/stepper.py": "the stepper: one step's walk and `run_stepped` over it",
    "composer/engine/executor.py": "the executor: one walk over a plan in bounded memory",
}
LONGEST = 450


def test_long_modules_are_few_and_each_says_why():
    """Lines per module (tinygrad's sz.py): a module over `LONGEST` lines is most often
    two concepts, so each one left is listed above with its reason; one that shrinks
    below comes off the list."""
    lengths = {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    long = {path for path, lines in lengths.items() if lines > LONGEST}
    assert long <= set(LONG_MODULES), f"over {LONGEST} lines: {sorted(long - set(LONG_MODULES))}"
    assert set(LONG_MODULES) <= long, f"no longer long: {sorted(set(LONG_MODULES) - long)}"


TOOLS = ROOT / "tools"


def _imported(path: Path) -> set[str]:
    """Every module a file names in an import, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(TOOLS.glob("*.py")), ids=lambda p: p.name)
def test_tools_import_no_cli(path):
    """The tools build on the library; the command line is something they document and run
    (through the `rnn-composer` script pyproject.toml declares), not a library."""
    against = sorted(
        n for n in _imported(path) if n == "composer.cli" or n.startswith("composer.cli.")
    )
    assert not against, f"tools/{path.name} imports the command line: {against}"


def test_the_tools_rule_catches_a_cli_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from composer.cli.commands import spec_schema\n")
    assert "composer.cli.commands" in _imported(bad)


#: the stages the command line may import freely: the API (`composer.api`, `Network`),
#: the spec it reads, the base modules it reports with, and its own modules
CLI_MAY_IMPORT = {"base", "spec", "api", "network", "cli"}
#: the one allow-list of what the command line still imports from the stages' internals,
#: by module: it may only shrink (a name no longer imported must leave it); 72 names,
#: from 98 before the commands called `composer.api`
CLI_INTERNALS = {
    "composer.draw.curve": {"loss_curve_svg"},
    "composer.draw.curve_png": {"loss_curve_png", "require_matplotlib"},
    "composer.draw.graphviz": {"FORMATS", "render_options", "write_diagrams"},
    "composer.draw.highlight": {"parse_highlight"},
    "composer.draw.style": {"Style", "parse_weight_names"},
    "composer.engine.generation": {"beam_search", "find_feedback", "generate", "generation_bytes"},
    "composer.engine.inputs": {"input_bytes", "read_inputs"},
    "composer.engine.lengths": {"parse_lengths"},
    "composer.engine.memory": {
        "DEFAULT_MAX_MEMORY",
        "check_memory",
        "deps_bytes",
        "deps_json_bytes",
        "drawing_bytes",
        "params_bytes",
        "parse_size",
        "tape_bytes",
        "text_data_bytes",
    },
    "composer.engine.pipeline": {"unroll_within"},
    "composer.engine.stepper": {"Stepper", "check_steppable", "run_stepped"},
    "composer.graph.deps": {"dependencies"},
    "composer.graph.folded": {"build"},
    "composer.graph.handover": {"given_states"},
    "composer.graph.unrolled": {"Unrolled"},
    "composer.graph.unused": {"unused_parts"},
    "composer.graph.weights": {"init_params", "load_params", "param_table"},
    "composer.interop.launch": {"process_group"},
    "composer.interop.torch": {"import_state"},
    "composer.interop.torch_engine": {"TorchEngine"},
    "composer.kinds": {"KINDS"},
    "composer.training.checkpoint": {"CHECKPOINT", "saved_history"},
    "composer.training.example_data": {"ACCEPTORS", "DATASETS"},
    "composer.training.history": {"HistoryFile", "check_suffix"},
    "composer.training.loop": {"Epoch", "TrainResult", "plan_for", "train"},
    "composer.training.schedules": {"GRAMMAR", "parse_schedule"},
    "composer.training.scoring": {"score"},
    "composer.training.series": {"parse_split", "read_series", "series_data"},
    "composer.training.stopping": {"stopped_warning"},
    "composer.training.summary": {"epoch_row", "history_row"},
    "composer.training.text": {
        "LEVELS",
        "build_vocab",
        "decode_ids",
        "encode_text",
        "read_text",
        "read_vocab",
        "text_windows",
        "token_count",
        "unigram_bits",
        "vocab_json",
        "window_count",
    },
    "composer.training.trace": {"write_trace"},
}


def _cli_internals(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every import of a stage outside CLI_MAY_IMPORT in a file; a
    plain `import composer.x` is (module, "*")."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            named = [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            named = [(alias.name, "*") for alias in node.names]
        else:
            continue
        for module, name in named:
            if module.startswith("composer.") and _stage(module) not in CLI_MAY_IMPORT:
                found.add((module, name))
    return found


def test_cli_imports_only_the_api_and_reporting():
    """The commands parse, call the API and report: an import of the stages' internals
    outside the allow-list fails, and so does an allowance nothing uses any more."""
    used = set()
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        found = _cli_internals(path)
        against = sorted(f"{m}.{n}" for m, n in found if n not in CLI_INTERNALS.get(m, ()))
        assert not against, f"composer/cli/{path.name} imports internals: {against}"
        used |= found
    allowed = {(module, name) for module, names in CLI_INTERNALS.items() for name in names}
    stale = sorted(f"{m}.{n}" for m, n in allowed - used)
    assert not stale, f"no command imports these any more; remove them from the list: {stale}"


def test_the_cli_rule_catches_an_internal_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from composer.engine.executor import execute\n")
    assert _cli_internals(bad) == {("composer.engine.executor", "execute")}
    assert "execute" not in CLI_INTERNALS.get("composer.engine.executor", ())
