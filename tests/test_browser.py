"""Browser checks: the HTML report and the MLflow UI, rendered by a real headless Chromium.

One small sweep (tutorial003_toy, 3 seeds, 50 epochs) is run into a fresh SQLite store and
reported; then Playwright drives Debian's /usr/bin/chromium over it:

* the self-contained report.html loads with no console error, no failed or external request,
  no broken image;
* `mlflow ui` on a free loopback port lists the sweep's parent run with its children, and a
  child's Artifacts tab shows plots/loss_curve.png.

Screenshots go to outputs/screenshots/ (report.png, mlflow_ui_runs.png, mlflow_ui_artifacts.png).

A second sweep, the whole tutorial000_activations study (3 activations x 5 seeds), feeds the
README's "compare in the UI" steps, followed as the README words them, in its order: the runs
page opened by the README's link (children of the study sorted by name descending, chart
view), the eye menu's "Show all runs", "Group by" -> activation.name and "train_loss" in the
chart search. Before grouping it counts the runs charted: all 15 rows' eyes open and all 15
runs drawn in the train_loss chart (MLflow charts the first 10 by default, and no URL
parameter changes that); then 3 groups of 5 runs in the study's order (tanh, relu,
leaky_relu, as its config sweeps them). It saves mlflow_ui_grouped_train_loss.png,
mlflow_ui_parent_description.png and mlflow_ui_child_datasets.png (a child's Overview with
its Datasets box): into docs/ for the README with `make screenshots`, else into
outputs/screenshots/ like the others.
A machine without Chromium or the playwright package FAILS here (it does not skip):
run scripts/install-browser.sh.
"""

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import BIN, client_for, run_cli

from shallownet.net import free_port
from shallownet.procs import group_members
from shallownet.report import main as report_main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SCREENSHOTS = ROOT / "outputs" / "screenshots"
CHROMIUM = os.environ.get("SHALLOWNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "run `bash scripts/install-browser.sh` (apt chromium + pip playwright into .venv)"
STUDY = "tutorial003_toy"
SEEDS = 3
UI_START_TIMEOUT = 90.0  # s until GET /health answers (about 15 s here with one worker)
UI_TIMEOUT_MS = 30_000  # per UI step (page load, expanding a row, listing artifacts)
# The README's screenshots: refreshed in docs/ by `make screenshots` (SHALLOWNET_DOCS_SCREENSHOTS=1),
# else written next to the others, so that `make test` leaves the checkout clean (runs made
# from a modified tree are recorded git_dirty).
DOCS = ROOT / "docs"
README_SHOTS = DOCS if os.environ.get("SHALLOWNET_DOCS_SCREENSHOTS") == "1" else SCREENSHOTS
COMPARE_STUDY = "tutorial000_activations"
COMPARE_GROUPS = {"tanh": 5, "relu": 5, "leaky_relu": 5}
# the study's order: its config's sweep over activations
STUDY_ORDER = [
    v.strip()
    for v in yaml.safe_load(
        (ROOT / "src" / "shallownet" / "conf" / "experiment" / f"{COMPARE_STUDY}.yaml").read_text()
    )["hydra"]["sweeper"]["params"]["activation"].split(",")
]
# The README's link: the study's child runs, their sort, chart view (URL state in MLflow 3.17;
# the runs shown in the charts and "Group by" are not: they live in the browser's
# localStorage, hence the clicks).
COMPARE_FILTER = f"tags.`shallownet.role` = 'child' and tags.overrides LIKE '%{COMPARE_STUDY}%'"


# ----------------------------------------------------------------------------- helpers


def require_browser():
    """The sync Playwright API and a Chromium binary, or a failure saying how to get them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"the playwright package is missing ({exc}): {INSTALL_HINT}", pytrace=False)
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    return sync_playwright


@contextlib.contextmanager
def chromium():
    """A headless Debian Chromium driven by Playwright (fresh profile, closed on exit)."""
    sync_playwright = require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


def watch(page):
    """Lists that fill with the page's console errors, uncaught exceptions and failed requests."""
    seen = {"console": [], "pageerror": [], "requestfailed": [], "http_error": []}
    page.on(
        "console",
        lambda m: (
            seen["console"].append(f"{m.text} @ {m.location.get('url')}") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda e: seen["pageerror"].append(str(e)))
    page.on("requestfailed", lambda r: seen["requestfailed"].append(f"{r.url}: {r.failure}"))
    page.on(
        "response", lambda r: seen["http_error"].append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    return seen


def screenshot(page, name, full_page=False, folder=SCREENSHOTS):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 0
    return path


def loopback_page(browser, base, init_script=None):
    """(context, page, outside): a 1600x1000 page of the MLflow UI at ``base`` that may only
    talk to its own server; every other request is aborted and listed in ``outside``."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    if init_script:
        context.add_init_script(init_script)
    outside = []

    def loopback_only(route):
        url = route.request.url
        if url.startswith((base + "/", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", loopback_only)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    return context, page, outside


def stop_group(proc, grace=15.0):
    """SIGTERM the process group led by ``proc``, SIGKILL it after ``grace`` s; live pids left."""
    pgid = proc.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
        deadline = time.monotonic() + wait
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pgid):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return group_members(pgid)


def start_mlflow_ui(uri, cwd, log_path):
    """`mlflow ui` on a free loopback port in its own process group: (Popen, base url)."""
    port = free_port()
    env = dict(os.environ)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"):
        env.pop(var, None)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no huey job runner to start and stop
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "ui",
                "--backend-store-uri",
                uri,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc, base, log_path, timeout=UI_START_TIMEOUT):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui exited with {proc.returncode}:\n{tail(log_path)}", pytrace=False)
        try:
            with opener.open(f"{base}/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    pytest.fail(
        f"mlflow ui: no healthy /health at {base} within {timeout:.0f} s ({last}):\n{tail(log_path)}",
        pytrace=False,
    )


def tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# ----------------------------------------------------------------------------- the sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One tutorial003_toy sweep in a fresh store, reported: ids, names and paths."""
    work = tmp_path_factory.mktemp("browser")
    uri = f"sqlite:///{work / 'mlflow.db'}"  # absolute path: sqlite:////tmp/...
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            f"experiment={STUDY}",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={work / 'multirun'}",
            "train.epochs=50",
        ],
        work,
        timeout=300,
    )
    assert res.returncode == 0, f"sweep failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"

    client = client_for(uri)
    exp = client.get_experiment_by_name("shallownet")
    assert exp is not None, "the sweep created no 'shallownet' experiment"
    parents = client.search_runs([exp.experiment_id], "tags.`shallownet.role` = 'parent'")
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == SEEDS, [c.info.run_name for c in children]
    for child in children:
        arts = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert "plots/loss_curve.png" in arts, (child.info.run_name, arts)

    report = work / "report"
    # in-process: the command line of shallownet-report is tested as a process elsewhere
    assert report_main(["--sweep", "latest", "--tracking-uri", uri, "--out", str(report)]) == 0
    assert (report / "report.html").is_file()

    return {
        "work": work,
        "uri": uri,
        "exp_id": exp.experiment_id,
        "sweep_id": parent.data.tags["sweep_id"],
        "parent": (parent.info.run_id, parent.info.run_name),
        "children": sorted((c.info.run_name, c.info.run_id) for c in children),
        "report": report / "report.html",
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The whole tutorial000_activations sweep (15 children) in a fresh store: ids."""
    work = tmp_path_factory.mktemp("browser-study")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    res = run_cli(
        [
            "shallownet-train",
            "-m",
            f"experiment={COMPARE_STUDY}",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={work / 'multirun'}",
            "tracking.log_model=false",
        ],
        work,
        timeout=600,
    )
    assert res.returncode == 0, f"sweep failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    client = client_for(uri)
    exp = client.get_experiment_by_name("shallownet")
    parents = client.search_runs([exp.experiment_id], "tags.`shallownet.role` = 'parent'")
    assert len(parents) == 1, [p.info.run_name for p in parents]
    parent = parents[0]
    children = client.search_runs([exp.experiment_id], COMPARE_FILTER)
    assert len(children) == sum(COMPARE_GROUPS.values()), [c.info.run_name for c in children]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    child = sorted(children, key=lambda c: c.info.run_name)[0]
    # reported, as the README shows it: the parent's description then holds the verdicts
    assert report_main(["--sweep", "latest", "--tracking-uri", uri, "--out", str(work / "report")]) == 0
    return {
        "work": work,
        "uri": uri,
        "exp_id": exp.experiment_id,
        "parent": parent,
        "child": child,
        "children": sorted(c.info.run_name for c in children),
        "child_datasets": [d.dataset.name for d in child.inputs.dataset_inputs],
    }


def compare_url(base, exp_id):
    """The README's link itself (its experiment id and address made this UI's): the study's
    children in the runs page's chart view."""
    link = re.search(r"`http://127\.0\.0\.1:5000/#/experiments/1/runs\?([^`]+)`", README).group(1)
    assert urllib.parse.parse_qs(link)["searchFilter"] == [COMPARE_FILTER]
    return f"{base}/#/experiments/{exp_id}/runs?{link}"


def compare_steps():
    """The README's numbered steps after its compare link, in order, each on one line."""
    section = README.split("**Compare in the UI**", 1)[1].split("\n![", 1)[0]
    return [" ".join(s.split()) for s in re.findall(r"^\d+\. (.+?)(?=^\d+\. |\Z)", section, re.M | re.S)]


def shown_runs(page):
    """Run name -> whether its row's eye is open (the run is charted), for every listed run."""
    rows = page.locator(".ag-row", has=page.locator("input.is-visibility-toggle-checkbox"))
    return dict(
        rows.evaluate_all(
            "rows => rows.map(r => [r.querySelector('a[href*=\"/runs/\"]').innerText.trim(),"
            " r.querySelector('input.is-visibility-toggle-checkbox').checked])"
        )
    )


def drawn_runs(page, metric, expected, timeout=10.0):
    """The run names drawn in the chart view's ``metric`` line chart (plotly's traces, one or
    more per run), read until they are ``expected`` or ``timeout`` s passed. Charts out of
    view are not rendered: the chart area is scrolled until the chart is there."""
    card = page.locator(
        "[data-testid='experiment-view-compare-runs-card']", has=page.get_by_text(metric, exact=True)
    )
    page.get_by_test_id("experiment-view-compare-runs-chart-area").hover()
    for _ in range(40):
        if card.count():
            break
        page.mouse.wheel(0, 400)
        page.wait_for_timeout(250)
    card.first.scroll_into_view_if_needed()
    plot = card.first.locator(".js-plotly-plot").first
    deadline = time.monotonic() + timeout
    while True:
        names = sorted(set(plot.evaluate("g => (g.data || []).map(d => d.name).filter(n => n)")))
        if names == sorted(expected) or time.monotonic() > deadline:
            return names
        page.wait_for_timeout(250)


# ----------------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_report_html_in_browser(sweep):
    html = sweep["report"]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        seen = watch(page)
        external = []  # the report is self-contained: only file: and data: URLs may load
        page.on(
            "request", lambda r: external.append(r.url) if not r.url.startswith(("file:", "data:")) else None
        )
        page.goto(html.as_uri(), wait_until="load", timeout=UI_TIMEOUT_MS)
        page.wait_for_function(
            "() => Array.from(document.images).every(i => i.complete)", timeout=UI_TIMEOUT_MS
        )
        images = page.eval_on_selector_all(
            "img",
            "els => els.map(e => ({alt: e.alt, src: e.src.slice(0, 40),"
            " w: e.naturalWidth, h: e.naturalHeight}))",
        )
        n_tables = page.locator("table").count()
        text = page.inner_text("body")
        title = page.locator("h1").first.inner_text()
        screenshot(page, "report.png", full_page=True)

    assert not seen["console"], f"console errors: {seen['console']}"
    assert not seen["pageerror"], f"uncaught exceptions: {seen['pageerror']}"
    assert not seen["requestfailed"], f"failed requests: {seen['requestfailed']}"
    assert not external, f"report.html is not self-contained, it fetched: {external}"
    assert len(images) >= 3, images
    broken = [i for i in images if i["w"] <= 0 or i["h"] <= 0]
    assert not broken, f"broken images: {broken}"
    assert all(i["src"].startswith("data:image/png;base64,") for i in images), images
    assert n_tables >= 1
    assert STUDY in title
    assert sweep["sweep_id"] in text
    assert "seed" in text.lower()
    for _, run_id in sweep["children"]:
        assert run_id in text, f"child run {run_id} missing from the report"


@pytest.mark.slow
def test_mlflow_ui_lists_sweep(sweep):
    require_browser()  # before starting a server: fail fast when the browser is missing
    from playwright.sync_api import expect

    exp_id = sweep["exp_id"]
    parent_id, parent_name = sweep["parent"]
    child_name, child_id = sweep["children"][0]
    log_path = sweep["work"] / "mlflow-ui.log"
    proc, base = start_mlflow_ui(sweep["uri"], sweep["work"], log_path)
    try:
        wait_healthy(proc, base, log_path)
        with chromium() as browser:
            context, page, outside = loopback_page(browser, base)
            seen = watch(page)

            # Runs table. MLflow 3.17 opens #/experiments/<id> on a GenAI overview; the runs
            # table ("Training runs") is #/experiments/<id>/runs. Run names are links to runs.
            page.goto(f"{base}/#/experiments/{exp_id}/runs")
            parent_link = page.locator(f'a[href$="/runs/{parent_id}"]')
            expect(parent_link).to_have_text(parent_name, timeout=UI_TIMEOUT_MS)
            expect(parent_link).to_be_visible(timeout=UI_TIMEOUT_MS)

            # Children are collapsed under the parent: the expander is the only button in the
            # parent's Run Name cell.
            child_links = [
                (name, page.locator(f'a[href$="/runs/{rid}"]').first) for name, rid in sweep["children"]
            ]
            if not child_links[0][1].is_visible():
                cell = page.locator('[role="gridcell"]', has=parent_link)
                cell.locator("button").first.click()
            for name, link in child_links:
                expect(link).to_be_visible(timeout=UI_TIMEOUT_MS)
                expect(link).to_have_text(name, timeout=UI_TIMEOUT_MS)
            close_assistant(page)
            screenshot(page, "mlflow_ui_runs.png")

            # A child's run page -> Artifacts tab -> plots/ -> loss_curve.png (previewed).
            run_url = f"{base}/#/experiments/{exp_id}/runs/{child_id}"
            page.locator(f'a[href$="/runs/{child_id}"]').first.click()
            expect(page).to_have_url(run_url, timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text(child_name).first).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.get_by_role("tab", name="Artifacts").click()
            expect(page).to_have_url(f"{run_url}/artifacts", timeout=UI_TIMEOUT_MS)
            node = '[data-testid="artifact-tree-node"][artifact-name="{}"]'
            plots = page.locator(node.format("plots"))
            expect(plots).to_be_visible(timeout=UI_TIMEOUT_MS)
            for other in ("config.yaml", "curves.parquet"):
                expect(page.locator(node.format(other))).to_be_visible(timeout=UI_TIMEOUT_MS)
            loss_curve = page.locator(node.format("loss_curve.png"))
            if not loss_curve.is_visible():
                plots.click()
            expect(loss_curve).to_be_visible(timeout=UI_TIMEOUT_MS)
            boundary = page.locator(node.format("decision_boundary.png"))
            expect(boundary).to_be_visible(timeout=UI_TIMEOUT_MS)
            loss_curve.click()
            preview = page.locator('img[alt="plots/loss_curve.png"]')
            expect(preview).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.wait_for_function(
                "() => { const i = document.querySelector('img[alt=\"plots/loss_curve.png\"]');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=UI_TIMEOUT_MS,
            )
            screenshot(page, "mlflow_ui_artifacts.png")
            context.close()
        print("mlflow ui page errors (informational):", seen["pageerror"])
        assert not outside, f"the MLflow UI tried to reach beyond its server: {outside}"
    finally:
        leftovers = stop_group(proc)
    assert not leftovers, f"mlflow ui processes still running after stop: {leftovers}"


def close_assistant(page):
    """Close MLflow 3's "MLflow Assistant" side panel so screenshots show the table (cosmetic)."""
    button = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    with contextlib.suppress(Exception):
        if button.is_visible():
            button.click(timeout=5_000)


@pytest.mark.slow
def test_mlflow_ui_grouped_comparison(study):
    """The README's steps: link -> eye menu "Show all runs" -> Group by activation.name ->
    chart search train_loss; every run charted before grouping, groups in the study's order."""
    require_browser()
    from playwright.sync_api import expect

    exp_id = study["exp_id"]
    parent, child = study["parent"], study["child"]
    log_path = study["work"] / "mlflow-ui.log"
    proc, base = start_mlflow_ui(study["uri"], study["work"], log_path)
    try:
        wait_healthy(proc, base, log_path)
        with chromium() as browser:
            # MLflow 3.17 opens its Assistant panel once per browser: say it already did.
            assistant_seen = "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true')"
            context, page, outside = loopback_page(browser, base, init_script=assistant_seen)

            # The link: filter, sort and chart view come from the URL.
            page.goto(compare_url(base, exp_id))
            search = page.get_by_placeholder("Search metric charts")
            expect(search).to_be_visible()
            close_assistant(page)
            # It opens on the children themselves, not on their collapsed parent.
            expect(page.locator(".ag-row", has_text=child.info.run_name).first).to_be_visible()
            expect(page.locator(".ag-row", has_text=parent.info.run_name)).to_have_count(0)
            runs = study["children"]
            expect(page.locator(".ag-row input.is-visibility-toggle-checkbox")).to_have_count(len(runs))

            # Then the README's numbered steps, as it words them, in its order.
            done = []
            for step in compare_steps():
                if step.startswith("Click the eye icon in the run list's header → **"):
                    # the runs-visibility menu in the table's header -> the item the README names
                    item = re.search(r"→ \*\*(.+?)\*\*", step).group(1)
                    page.get_by_test_id("experiment-view-runs-visibility-column-header").click()
                    page.get_by_role("menuitemradio", name=item, exact=True).click()
                    done.append("show runs")
                elif step.startswith("**Group by** → type `activation.name` → pick it."):
                    # Before grouping, every run of the study is charted: counted by the eyes of
                    # the table's rows and by the runs drawn in the train_loss chart.
                    with contextlib.suppress(AssertionError):  # give the eyes time to open
                        expect(
                            page.locator(".ag-row input.is-visibility-toggle-checkbox:checked")
                        ).to_have_count(len(runs), timeout=5_000)
                    shown = shown_runs(page)
                    assert sorted(shown) == runs, shown
                    hidden = [name for name in runs if not shown[name]]
                    assert not hidden, (
                        f"{len(runs) - len(hidden)} of {len(runs)} runs charted, hidden: {hidden}"
                    )
                    drawn = drawn_runs(page, "train_loss", runs)
                    assert drawn == runs, (
                        f"{len(drawn)} of {len(runs)} runs drawn in train_loss, missing: "
                        f"{sorted(set(runs) - set(drawn))}"
                    )
                    # "Group by" -> the param activation.name (aggregate: average, the default,
                    # drawn with a min-max band).
                    page.get_by_role("button", name="Group by").click()
                    page.get_by_placeholder("Search").last.fill("activation.name")
                    page.get_by_text("activation.name", exact=True).last.click()
                    page.keyboard.press("Escape")
                    expect(page.get_by_role("button", name="Group by: activation.name")).to_be_visible()
                    for value, size in COMPARE_GROUPS.items():
                        group = page.get_by_text(f"Group: {value}", exact=True)
                        expect(group).to_be_visible()
                        row = page.locator(".ag-row", has=group)
                        expect(row).to_contain_text(str(size))
                    # the groups in the study's order (the runs' sort)
                    groups = page.get_by_text(re.compile(r"^Group: ")).all_inner_texts()
                    assert [g.removeprefix("Group: ") for g in groups] == STUDY_ORDER, groups
                    done.append("group")
                elif step.startswith("In **Search metric charts** type `train_loss`."):
                    # only the train_loss charts
                    search.fill("train_loss")
                    chart = page.locator(
                        ".react-grid-item, [data-testid^='experiment-view-compare-runs-card']",
                        has=page.get_by_text("train_loss", exact=True),
                    ).first
                    expect(chart).to_be_visible()
                    for value in COMPARE_GROUPS:
                        expect(chart.get_by_text(f"{value} (train_loss)", exact=True)).to_be_visible()
                    legend = chart.get_by_text(re.compile(r"^\S+ \(train_loss\)$")).all_inner_texts()
                    assert legend == [f"{value} (train_loss)" for value in STUDY_ORDER], legend
                    done.append("search")
                else:
                    pytest.fail(f"a README step this test does not follow: {step!r}", pytrace=False)
            assert done == ["show runs", "group", "search"], done
            page.wait_for_timeout(1500)  # let plotly finish drawing the bands
            screenshot(page, "mlflow_ui_grouped_train_loss.png", folder=README_SHOTS)
            state = page.evaluate(
                f"() => JSON.parse(localStorage.getItem("
                f"'MLflowLocalStorage-1.1-ExperimentPage-[\"{exp_id}\"]-ReactComponentState'))"
            )
            assert state["groupBy"]["groupByKeys"] == [{"mode": "param", "groupByData": "activation.name"}], (
                state["groupBy"]
            )
            assert state["groupBy"]["aggregateFunction"] == "average", state["groupBy"]

            # The parent's description: the summary table (Show more unfolds it).
            page.goto(f"{base}/#/experiments/{exp_id}/runs/{parent.info.run_id}")
            expect(page.get_by_text("Description", exact=True).first).to_be_visible()
            sweep_id = parent.data.tags["sweep_id"]
            expect(page.get_by_text(sweep_id).first).to_be_visible()
            more = page.get_by_text("Show more", exact=True)
            if more.count() and more.first.is_visible():
                more.first.click()
            # the report's description: its link, the summary table and the verdicts
            expect(page.get_by_role("link", name="report/report.html")).to_be_visible()
            expect(page.get_by_text("Decided", exact=False).first).to_be_visible()
            close_assistant(page)
            screenshot(page, "mlflow_ui_parent_description.png", folder=README_SHOTS)

            # A child's Overview: its Datasets box (the dataset inputs, or "None").
            page.goto(f"{base}/#/experiments/{exp_id}/runs/{child.info.run_id}")
            expect(page.get_by_text(child.info.run_name).first).to_be_visible()
            datasets = page.get_by_text("Datasets", exact=True).last
            expect(datasets).to_be_visible()
            for name in study["child_datasets"] or ["None"]:
                expect(page.get_by_text(name, exact=True).last).to_be_visible()
            close_assistant(page)
            page.wait_for_timeout(2000)  # let "Child runs" / "Registered prompts" stop loading
            screenshot(page, "mlflow_ui_child_datasets.png", folder=README_SHOTS)
            context.close()
        assert not outside, f"the MLflow UI tried to reach beyond its server: {outside}"
    finally:
        leftovers = stop_group(proc)
    assert not leftovers, f"mlflow ui processes still running after stop: {leftovers}"
