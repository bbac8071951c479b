"""Every example runs (in quick mode), shows its figure, and has what the documentation's gallery needs."""

import ast
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_a_gallery_title(path):
    """sphinx-gallery takes the title and text of an example from its module docstring: a title underlined
    with ``=`` and at least one paragraph saying what it shows."""
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=True)
    assert doc, f"{path.name}: no module docstring"
    lines = doc.splitlines()
    assert len(lines) >= 4 and set(lines[1]) == {"="} and len(lines[1]) >= len(lines[0]), \
        f"{path.name}: the docstring must start with a title underlined by '=' (as long as the title)"
    assert lines[3:] and any(line.strip() for line in lines[3:]), f"{path.name}: no text under the title"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(path, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    plt.close("all")
    monkeypatch.setenv("MEANFIELD_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    pngs = list(tmp_path.rglob("*.png"))
    assert all(p.stat().st_size > 10_000 for p in pngs)
    # what the gallery shows: the figures left open (figure examples: meanfield.figures.show of their PNG)
    shown = [plt.figure(n) for n in plt.get_fignums()]
    assert shown, f"{path.name} leaves no figure open: the gallery would show no image"
    for i, fig in enumerate(shown):
        fig.savefig(tmp_path / f"shown-{i}.png")
        assert (tmp_path / f"shown-{i}.png").stat().st_size > 10_000, f"{path.name}: figure {i} looks empty"
    plt.close("all")


def test_show_gives_back_the_saved_pixels(tmp_path):
    """meanfield.figures.show: what the gallery scrapes is the saved PNG, at its size and dpi."""
    import matplotlib.pyplot as plt
    import numpy as np

    from meanfield.figures import show

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    fig.savefig(tmp_path / "a.png", dpi=110)
    plt.close(fig)
    again = show(tmp_path / "a.png")
    again.savefig(tmp_path / "b.png")
    plt.close(again)
    a, b = plt.imread(tmp_path / "a.png"), plt.imread(tmp_path / "b.png")
    assert a.shape == b.shape == (330, 440, 4)
    np.testing.assert_allclose(a, b, atol=1 / 255)
