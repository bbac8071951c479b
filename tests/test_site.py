"""The documentation site builds with warnings as errors, its API pages document every public name, and its
gallery has every example, executed (figure, run time, script and notebook downloads).

The build runs on a copy of docs/ and examples/ (the working tree is left as it is), in quick mode, with the
session's quick figures (``MEANFIELD_FIGURES_DIR``, tests/conftest.py): this file sorts after
test_examples.py and test_figures.py, so the figure examples find their figures made already. Named test_site
so that it runs last.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
GENERATED = ("_build", "auto_examples", "api", "sg_execution_times.rst", "runs", "results", "__pycache__",
             "figures-data", ".ipynb_checkpoints")

for _module in ("sphinx", "sphinx_gallery", "numpydoc", "myst_parser", "furo"):
    pytest.importorskip(_module, reason='the documentation tools: pip install ".[docs]"')


def _copy(src: Path, dst: Path) -> None:
    """Copy a folder without what builds and examples generate (an example's own PNG or JSON output)."""
    def ignore(folder, names):
        outputs = Path(folder).name == "examples"
        return [n for n in names if n in GENERATED or outputs and n.endswith((".png", ".json"))]

    shutil.copytree(src, dst, ignore=ignore)


@pytest.fixture(scope="module")
def site(tmp_path_factory, figures_dir):
    work = tmp_path_factory.mktemp("site")
    _copy(ROOT / "docs", work / "docs")
    _copy(ROOT / "examples", work / "examples")
    path = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    env = {**os.environ, "MEANFIELD_QUICK": "1", "MEANFIELD_FIGURES_DIR": str(figures_dir),
           "MPLBACKEND": "Agg", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(work / "doctrees"),
           str(work / "docs"), str(work / "html")]
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    print(f"sphinx-build: {seconds:.0f} s")
    assert r.returncode == 0, f"sphinx-build -W failed (exit {r.returncode}):\n{r.stderr[-6000:]}"
    return work / "html", seconds


def test_site_builds_with_warnings_as_errors(site):
    html, seconds = site
    for page in ("index", "conventions", "tour", "config", "hdf5-format", "sweeps", "performance", "search",
                 "api/index", "auto_examples/index"):
        assert (html / f"{page}.html").is_file(), page
    if (ROOT / "docs" / "figures.md").is_file():
        assert (html / "figures.html").is_file()
    assert seconds < 900, f"the build took {seconds:.0f} s"


def _public_modules():
    import meanfield

    names = ["meanfield"] + [m.name for m in pkgutil.walk_packages(meanfield.__path__, prefix="meanfield.")]
    return [n for n in sorted(names) if not any(part.startswith("_") for part in n.split("."))]


def test_api_pages_document_every_public_name(site):
    html, _ = site
    ids = set()
    for page in (html / "api").glob("*.html"):
        ids |= set(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', page.read_text()))
    modules = {name: importlib.import_module(name) for name in _public_modules()}
    missing = []
    for name, module in modules.items():
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            where = {f"{name}.{attr}"}
            if inspect.isclass(obj) or inspect.isroutine(obj):
                where.add(f"{obj.__module__}.{obj.__name__}")
            where |= {f"{other}.{attr}" for other, mod in modules.items()
                      if attr in getattr(mod, "__all__", ()) and getattr(mod, attr, None) is obj}
            if not where & ids:
                missing.append(f"{name}.{attr}")
    assert not missing, f"not in the API pages: {missing}"
    assert {f"api/{m}.html" for m in modules} <= {f"api/{p.name}" for p in (html / "api").glob("*.html")}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_gallery_shows_every_example_executed(site, path):
    html, _ = site
    page = html / "auto_examples" / f"{path.stem}.html"
    assert page.is_file(), f"{path.name} is not in the gallery"
    text = page.read_text()
    figure = rf'src="[^"]*sphx_glr_{path.stem}_\d+\.png"'
    assert re.search(figure, text), f"{path.name}: no figure in the gallery"
    assert "Total running time of the script" in text
    for ext in ("py", "ipynb"):
        assert re.search(rf'href="[^"]*{path.stem}\.{ext}"', text), f"{path.name}: no .{ext} download"
    assert path.stem in (html / "auto_examples" / "index.html").read_text()
