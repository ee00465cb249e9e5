"""shallownet as a package: the wheel holds the config tree, the report's templates and
py.typed, `pip install .` leaves nothing in the checkout (no build/, no *.egg-info), and
installed so (not editable) into a fresh virtual environment it runs a study, its report and a
reproduction from an empty directory, with its store in the per-user data directory."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "src" / "shallownet" / "conf"


def _sh(args, **kw):
    res = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=1200, **kw)
    assert res.returncode == 0, f"{args}: exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def _project_copy(dst):
    """The project's files as git knows them (tracked and new, not ignored): what a clone has,
    without this tree's .venv, outputs/ or build leftovers."""
    listed = _sh(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst / rel)
    return dst


def _tree(root):
    """Every file and folder under ``root``, relative to it."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(project copy, bin dir of a fresh venv with shallownet installed by `pip install .`,
    what that install left in the project copy).

    The new venv reaches the dependencies through one .pth line to the running venv's
    site-packages: `make venv` installed them from requirements.lock with every hash checked,
    and installing them twice would test pip, not shallownet. Lines of a .pth add a directory
    to sys.path without reading the .pth files in it, so the running venv's editable
    shallownet stays out of sight: what the new venv imports is the wheel built here."""
    base = tmp_path_factory.mktemp("package")
    src = _project_copy(base / "project")
    env_dir = base / "env"
    _sh([sys.executable, "-m", "venv", "--without-pip", env_dir])
    py = env_dir / "bin" / "python"
    purelib = Path(_sh([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (purelib / "locked-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    before = _tree(src)  # then shallownet alone, built from the copy by the locked build backend
    _sh([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", src])
    return src, env_dir / "bin", sorted(_tree(src) - before)


def test_pip_install_leaves_nothing_in_the_checkout(installed):
    """No build/ folder, no *.egg-info: the wheel is built from the sources as they are."""
    _, _, left = installed
    assert not [x for x in left if x.split("/")[0] == "build" or ".egg-info" in x], left
    assert left == []


def test_the_wheel_holds_the_config_tree_and_py_typed_and_one_package(installed, tmp_path):
    src, bin_dir, _ = installed
    _sh(
        [
            bin_dir / "python",
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            tmp_path,
            src,
        ]
    )
    (wheel,) = tmp_path.glob("shallownet-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    yamls = {f"shallownet/conf/{p.relative_to(CONF).as_posix()}" for p in CONF.rglob("*.yaml")}
    assert (
        "shallownet/conf/train.yaml" in yamls and "shallownet/conf/experiment/tutorial003_toy.yaml" in yamls
    )
    assert yamls <= names, sorted(yamls - names)
    assert "shallownet/py.typed" in names
    templates = {
        f"shallownet/report/templates/{p.name}" for p in (CONF.parent / "report" / "templates").glob("*.j2")
    }
    assert "shallownet/report/templates/report.md.j2" in templates
    assert templates <= names, sorted(templates - names)
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"shallownet", "hydra_plugins"}, top


def test_installed_commands_run_a_study_from_an_empty_directory(installed, tmp_path):
    _, bin_dir, _ = installed
    home, work = tmp_path / "home", tmp_path / "empty"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHALLOWNET_", "PYTHON"))}
    env.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    env.pop("XDG_DATA_HOME", None)
    store = home / ".local" / "share" / "shallownet" / "mlflow.db"

    where = _sh(
        [bin_dir / "python", "-c", "import shallownet; print(shallownet.__file__)"], cwd=work, env=env
    )
    assert where.stdout.startswith(str(bin_dir.parent)), where.stdout  # the wheel's, not the checkout's

    res = _sh([bin_dir / "shallownet-train", "-m", "experiment=tutorial003_toy"], cwd=work, env=env)
    assert f"MLflow store: sqlite:///{store}" in res.stdout, res.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{store}" in res.stdout
    assert "3/3 configs finished" in res.stdout, res.stdout
    assert store.is_file() and not (work / "outputs" / "mlflow.db").exists()

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    exp = client.get_experiment_by_name("shallownet")
    children = client.search_runs([exp.experiment_id], "tags.`shallownet.role` = 'child'")
    assert len(children) == 3 and {r.info.status for r in children} == {"FINISHED"}
    tags = children[0].data.tags
    # not a checkout: no commit of some other repository around the venv, and the version
    assert tags["git_commit"] == "unknown" and tags["version.shallownet"] == "0.1.0"

    res = _sh([bin_dir / "shallownet-report", "--sweep", "latest"], cwd=work, env=env)
    report = Path(re.search(r"^report: (.+)$", res.stdout, re.M).group(1))
    assert (work / report).is_file() and f"MLflow store: sqlite:///{store}" in res.stdout

    run_id = children[0].info.run_id
    res = _sh([bin_dir / "shallownet-reproduce", run_id], cwd=work, env=env)
    assert res.stdout.strip().endswith("identical"), res.stdout + res.stderr
    assert f"MLflow store: sqlite:///{store}" in res.stdout
    assert "warning" not in res.stderr, res.stderr  # recorded and re-run by the same installed code
