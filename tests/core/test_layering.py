"""The import structure of ``src/scenemaker``, read from the source (imports inside functions
included): no cycle between subpackages, and nothing ``scenemaker run`` can load reaches the
data generator (``synth``), the evaluation (``eval``) or training code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "scenemaker"
# training code (training loops, their data): may import synth and the metrics; nothing that
# run loads may import it
TRAINING_NAMES = ("train", "train_", "triplet", "data")


def _is_training(module: str) -> bool:
    parts = module.split(".")
    if module == "scenemaker.training":
        return True
    return (
        len(parts) > 2
        and parts[1] in ("pose", "deocclusion")
        and parts[-1].startswith(TRAINING_NAMES)
    )


# command-line entry points sit above everything (nothing imports them)
ENTRY = {"scenemaker.cli", "scenemaker.cli_pipeline", "scenemaker.cli_deocclusion",
         "scenemaker.cli_pose", "scenemaker.demo", "scenemaker.__main__"}  # fmt: skip


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                # the deepest module named (``from .x import y``: x.y if y is a module, else x)
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("scenemaker") and target != name:
                    graph[name].add(target)
    return graph


def _unit(module: str) -> str:
    if _is_training(module):
        return "training"
    if module in ENTRY:
        return "entry"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "scenemaker"


@pytest.fixture(scope="module")
def graph():
    return _graph()


def test_the_reader_sees_function_level_imports(graph):
    # render_compare imports the alignment module inside its methods only
    assert "scenemaker.refine.alignment" in graph["scenemaker.refine.render_compare"]
    assert "scenemaker.pose.estimator" in graph["scenemaker.pose.chain"]


def test_no_cycle_between_subpackages(graph):
    units: dict[str, set[str]] = {}
    why: dict[tuple[str, str], str] = {}
    for module, targets in graph.items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            if a != b:
                units.setdefault(a, set()).add(b)
                why.setdefault((a, b), f"{module} -> {target}")
    # depth-first search for a back edge
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(units.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                edges = [why[(cycle[i], cycle[i + 1])] for i in range(len(cycle) - 1)]
                pytest.fail("import cycle: " + "; ".join(edges))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(units):
        if node not in state:
            visit(node, [node])
    assert "entry" not in {b for targets in units.values() for b in targets}


def test_what_run_loads_needs_no_generator_evaluation_or_training(graph):
    from scenemaker.backends import SPECS

    roots = {"scenemaker.pipeline", "scenemaker.backends"}
    roots |= {s.target.split(":")[0] for s in SPECS}
    seen, todo = set(), list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.get(module, ()))
    forbidden = sorted(
        m for m in seen if _is_training(m) or m.startswith(("scenemaker.synth", "scenemaker.eval"))
    )
    assert not forbidden, f"run can load {forbidden}"
    assert "scenemaker.sources" in seen  # the retrieval library's object sources


def test_no_source_file_over_the_size_limit():
    """Files hold one idea each: over 500 lines only where one idea needs it (listed)."""
    allowed = {}  # path: why
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500 and str(p.relative_to(SRC)) not in allowed
    }
    assert not long, f"files over 500 lines: {long}"


def test_tests_mirror_the_subpackages():
    """One test folder per subpackage of src/scenemaker (core: the top-level modules)."""
    tests = Path(__file__).resolve().parents[1]
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    folders = {p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders - {"core"} == packages, (sorted(packages), sorted(folders))
    assert not list(tests.glob("test_*.py")), "test files belong in a subpackage's folder"
