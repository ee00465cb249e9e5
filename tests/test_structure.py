"""The module map is the runtime map: data flows one way (no import circle in src/, lazy imports
included), Hydra and OmegaConf only at the edge (``shallownet.sweep``), MLflow only in the record
(``shallownet.record``, the pyfunc model-from-code file aside), and the computation
(``shallownet.fit``) loads neither them nor MLflow. Read from the source with ``ast``; the
import check runs a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

from conftest import cli_env, client_for

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "shallownet"


def module_name(path):
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imported(module, node, is_package):
    """The modules of src/ an import statement of ``module`` names (absolute names)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".") if is_package else module.split(".")[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module and not module.startswith(name + "."):
            yield name


def import_graph():
    """{module: {modules of src/ it imports anywhere in its text}}."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        is_package = path.name == "__init__.py"
        graph[module] = {
            target
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for target in imported(module, node, is_package)
        }
    return graph


def circles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_of_src_has_no_circle():
    graph = import_graph()
    assert "shallownet.train" in graph["shallownet.sweep.task"]  # the graph is read at all
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def third_party_imports(path):
    """The top-level names of every package a file imports, lazily or not."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_hydra_and_omegaconf_are_imported_only_under_sweep():
    users = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if third_party_imports(p) & {"hydra", "omegaconf"}
    }
    assert users and all(u.startswith("sweep/") for u in users), sorted(users)


def test_mlflow_is_imported_only_under_record_and_by_the_pyfunc_model_file():
    users = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "mlflow" in third_party_imports(p)}
    others = {u for u in users if not u.startswith("record/")}
    assert any(u.startswith("record/") for u in users) and others <= {"pyfunc_model.py"}, sorted(users)


PROBE = "import sys, {module}; print(sorted(m for m in ('mlflow', 'hydra', 'omegaconf') if m in sys.modules))"


def test_importing_the_computation_loads_no_mlflow_hydra_or_omegaconf():
    for module in ("shallownet.fit", "shallownet.config", "shallownet.train", "shallownet.compute"):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
            env=cli_env(),
        ).stdout
        assert out.strip() == "[]", module


RUN_AND_PROBE = """
import atexit, sys
atexit.register(lambda: print("loaded:", sorted(m for m in ("mlflow", "sklearn") if m in sys.modules), file=sys.stderr))
from shallownet.sweep.cli import main
sys.argv = ["shallownet-train", *sys.argv[1:]]
main()
"""


def test_a_single_run_trains_in_a_process_that_never_imports_mlflow(tmp_path):
    """The run's process composes, loads the data and trains; its recorder process (which
    imports mlflow) writes the run, whole, its test AUC included: a run whose data needs no
    scikit-learn (XOR) never imports it (~1.3 s) in the process that trains."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    res = subprocess.run(
        [sys.executable, "-c", RUN_AND_PROBE, "dataset=xor", "train.epochs=50", f"tracking.uri={uri}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=cli_env(),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "loaded: []" in res.stderr, res.stderr
    (run,) = client_for(uri).search_runs(["1"])
    assert run.info.status == "FINISHED" and run.data.metrics["epochs_completed"] == 50
    assert 0.0 <= run.data.metrics["test_auc"] <= 1.0
    assert run.data.tags["shallownet.owner"] and run.data.tags["version.mlflow"]
