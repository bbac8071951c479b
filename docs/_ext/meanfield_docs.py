"""Sphinx extension of the meanfield documentation: API pages generated from the code, and links from the
docstrings to the Markdown pages.

API pages
    At ``builder-inited`` the pages ``docs/api/index.rst`` (the modules grouped by concept, :data:`GROUPS`)
    and ``docs/api/<module>.rst`` (one per public module) are written from the code: every public module of
    the package (no leading underscore in its dotted name, found by walking the package) gets a page, and
    every name in its ``__all__`` is documented there with autodoc (numpydoc formats the docstrings), or,
    when the name is imported from the public module that defines it, listed with a link to that module's
    entry (an object is documented once). Modules under ``meanfield.figures`` join the figures group by
    themselves; any other public module that no group names lands in "Other modules", so a new module is
    never missing from the reference.
    ``docs/api/`` is generated: edit :data:`GROUPS` here, not the pages.

Links from docstrings to the pages
    Docstrings name the Markdown pages by their path in the repository, so that they read well in a terminal:
    ``See docs/conventions.md`` or ``docs/conventions.md, "The mean-field PDE on a grid"`` (a section by its
    exact title, in double quotes). In the built site an ``autodoc-process-docstring`` handler turns the first
    form into a link to the page and the second into a link to the section. The sections of the Markdown pages
    are registered as labels ``<page>:<title>`` (what ``sphinx.ext.autosectionlabel`` does, for these pages
    only), so a section title that no longer exists is an undefined label: a warning, an error under ``-W``. A
    page that is not part of the site (``docs/figures.md`` before ``meanfield figures`` made it) stays plain
    text. Mentions inside literal text (double backquotes, ``::`` blocks, doctests) are left alone.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from docutils import nodes

PACKAGE = "meanfield"

#: The API reference, by concept: (title, one line about it, modules). Order is the page's order.
GROUPS = [
    ("The package", "The names ``import meanfield as mf`` gives, and where each is documented.",
     ["meanfield"]),
    ("Models and data", "The network, its activations and scalings, and the data sets it is trained on.",
     ["meanfield.model", "meanfield.activations", "meanfield.scaling", "meanfield.data"]),
    ("Dynamics", "Particle flow on a finite training set, on the population risk (Gaussian inputs, online "
     "SGD), the linearised network, the mean-field PDE on a grid, and the threads their kernels use.",
     ["meanfield.flow", "meanfield.population", "meanfield.linearized", "meanfield.pde", "meanfield.threads"]),
    ("Neural tangent kernel", "Empirical and infinite-width kernels.", ["meanfield.ntk"]),
    ("Optimal transport", "Wasserstein distances between particle measures.", ["meanfield.transport"]),
    ("Files", "Recording trajectories to HDF5 (H5MD) and reading them back.",
     ["meanfield.h5md", "meanfield.trajectory"]),
    ("Runs and sweeps", "Configurations, runs, parameter sweeps on Dask, what is measured, the command line.",
     ["meanfield.config", "meanfield.run", "meanfield.sweep", "meanfield.observers", "meanfield.cli",
      "meanfield.interrupt"]),
    ("Errors and validation", "What meanfield raises on purpose, and the checks of user input.",
     ["meanfield.errors", "meanfield.validate"]),
    ("Figures", "The canonical figures (``meanfield figures``), their shared machinery and the animations.",
     ["meanfield.figures", "meanfield.figures._figure"]),
]
FIGURES_PACKAGE = "meanfield.figures"
OTHER = ("Other modules", "Public modules that no group above names yet.")

_PAGE_RE = re.compile(r'(?<![\w/`.-])docs/(?P<page>[A-Za-z0-9_-]+)\.md(?P<section>,\s+"(?P<title>[^"]+)")?')


# ----------------------------------------------------------------------------------------------------------
# API pages


def public_modules(package: str = PACKAGE) -> list:
    """Dotted names of the public modules: no component starts with an underscore (``__main__`` left out)."""
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def grouped_modules(package: str = PACKAGE) -> list:
    """``[(title, blurb, [module, ...]), ...]``: :data:`GROUPS`, with the figure modules and the ungrouped
    public modules added."""
    modules = public_modules(package)
    named = {m for _, _, mods in GROUPS for m in mods}
    groups = []
    for title, blurb, mods in GROUPS:
        mods = list(mods)
        if FIGURES_PACKAGE in mods:
            mods += [m for m in modules if m.startswith(FIGURES_PACKAGE + ".") and m not in named]
        groups.append((title, blurb, mods))
    taken = {m for _, _, mods in groups for m in mods}
    other = [m for m in modules if m not in taken]
    if other:
        groups.append((*OTHER, other))
    return groups


def _assigned_names(module) -> set:
    """Names a module assigns at its top level (its own constants, as opposed to imported ones)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return set()
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    names.add(n.id)
    return names


def home(module_name: str, name: str, documented: set) -> tuple:
    """``(module, name)`` under which ``module_name.name`` is documented: the public module that defines it
    and exports it (``meanfield.load_config`` is ``meanfield.config.load``), where that module has a page
    (``documented``), else ``(module_name, name)`` itself."""
    module = importlib.import_module(module_name)
    obj = getattr(module, name)
    if inspect.isclass(obj) or inspect.isroutine(obj):
        owner, own_name = getattr(obj, "__module__", None), getattr(obj, "__name__", name)
        if owner in documented and (owner, own_name) != (module_name, name):
            mod = importlib.import_module(owner)
            if own_name in getattr(mod, "__all__", ()) and getattr(mod, own_name, None) is obj:
                return owner, own_name
        return module_name, name
    if name in _assigned_names(module):
        return module_name, name
    for other in sorted(documented):  # a constant imported from the public module that assigns it
        if other == module_name:
            continue
        mod = importlib.import_module(other)
        exported = name in getattr(mod, "__all__", ()) and getattr(mod, name, None) is obj
        if exported and name in _assigned_names(mod):
            return other, name
    return module_name, name


def _directive(module_name: str, name: str) -> list:
    obj = getattr(importlib.import_module(module_name), name)
    target = f"{module_name}.{name}"
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return [f".. autoexception:: {target}", "   :members:", ""]
        return [f".. autoclass:: {target}", "   :members:", ""]
    if inspect.isroutine(obj):
        return [f".. autofunction:: {target}", ""]
    lines = [f".. autodata:: {target}"]
    text = repr(obj)
    if len(text) > 100 or " at 0x" in text or "\n" in text:
        lines.append("   :no-value:")
    return lines + [""]


def _title(text: str, char: str) -> list:
    return [text, char * len(text), ""]


def module_page(module_name: str, documented: set) -> str:
    """reST of one module's page: its docstring, a summary table of ``__all__``, then every name it owns."""
    module = importlib.import_module(module_name)
    names = list(getattr(module, "__all__", []))
    homes = {n: home(module_name, n, documented) for n in names}
    own = [n for n in names if homes[n] == (module_name, n)]
    elsewhere = [(n, ".".join(homes[n])) for n in names if n not in own]
    lines = [".. This page is generated by docs/_ext/meanfield_docs.py from the code; do not edit.", ""]
    lines += _title(f"``{module_name}``", "=")
    lines += [f".. automodule:: {module_name}", "   :no-members:", ""]
    if own:
        lines += [".. rubric:: Contents", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {n}" for n in own] + [""]
    if elsewhere:
        lines += [".. rubric:: Also here (documented in the module that defines them)", ""]
        lines += [f"* :py:obj:`{module_name}.{n} <{where}>`" for n, where in elsewhere] + [""]
    for n in own:
        lines += _directive(module_name, n)
    return "\n".join(lines)


def index_page(groups: list) -> str:
    lines = [".. This page is generated by docs/_ext/meanfield_docs.py from the code; do not edit.", ""]
    lines += _title("API reference", "=")
    lines += ["Every public module of meanfield, grouped by concept; each page documents the names in the "
              "module's ``__all__``. The mathematics they follow is stated once, in :doc:`/conventions`.", ""]
    for title, blurb, mods in groups:
        lines += _title(title, "-") + [blurb, "", ".. autosummary::", ""]
        lines += [f"   {m}" for m in mods] + [""]
        lines += [".. toctree::", "   :hidden:", ""] + [f"   {m}" for m in mods] + [""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (unchanged pages are not read again)."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def generate_api(app) -> None:
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    groups = grouped_modules()
    documented = {m for _, _, mods in groups for m in mods}
    pages = {"index": index_page(groups)} | {m: module_page(m, documented) for m in sorted(documented)}
    for stale in out.glob("*.rst"):
        if stale.stem not in pages:
            stale.unlink()
    for name, text in pages.items():
        _write(out / f"{name}.rst", text)


# ----------------------------------------------------------------------------------------------------------
# links from docstrings to the Markdown pages


def _is_markdown_page(app, docname: str) -> bool:
    return app.env.doc2path(docname).suffix == ".md"


def register_page_sections(app, document) -> None:
    """Label every section of a Markdown page ``<page>:<title>`` (lower case, as :rst:role:`ref` wants)."""
    docname = app.env.current_document.docname
    if not _is_markdown_page(app, docname):
        return
    domain = app.env.domains.standard_domain
    for node in document.findall(nodes.section):
        title = node[0]
        name = nodes.fully_normalize_name(f"{docname}:{getattr(title, 'rawsource', '') or title.astext()}")
        domain.anonlabels[name] = docname, node["ids"][0]
        domain.labels[name] = docname, node["ids"][0], title.astext()


def _literal_lines(lines: list) -> set:
    """Indices of the lines in literal blocks (after a line ending in ``::``) and doctests."""
    skip, block_indent = set(), None
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if not line.strip() or indent > block_indent:
                skip.add(i)
                continue
            block_indent = None
        if line.lstrip().startswith(">>>") or line.lstrip().startswith("..."):
            skip.add(i)
        if line.rstrip().endswith("::"):
            block_indent = indent
            if line.lstrip().startswith(".."):  # a directive: its own line too
                skip.add(i)
    return skip


def link_pages(app, what, name, obj, options, lines) -> None:
    """Turn ``docs/<page>.md`` and ``docs/<page>.md, "<section>"`` in a docstring into links."""
    found = app.env.found_docs
    skip = _literal_lines(lines)
    # work on runs of consecutive lines outside literal blocks, so a section title may wrap
    i = 0
    while i < len(lines):
        if i in skip:
            i += 1
            continue
        j = i
        while j < len(lines) and j not in skip and lines[j].strip():
            j += 1
        if j == i:
            i += 1
            continue
        text = "\n".join(lines[i:j])

        def repl(match):
            page = match["page"]
            before = text[: match.start()]
            if page not in found or before.count("``") % 2 or before.endswith("`"):
                return match[0]
            if match["title"]:
                title = " ".join(match["title"].split())
                return f":ref:`{match[0]} <{page}:{title}>`"
            return f":doc:`{match[0]} </{page}>`"

        new = _PAGE_RE.sub(repl, text).split("\n")
        lines[i:j] = new
        i = j
    return None


# ----------------------------------------------------------------------------------------------------------
# docstring sections numpydoc does not know

#: The sections numpydoc renders; the text of any other section of a function or class docstring is dropped.
NUMPYDOC_SECTIONS = {"Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Other Parameters",
                     "Attributes", "Methods", "See Also", "Notes", "Warnings", "References", "Examples"}


def _sections(lines: list) -> list:
    """``[(title, header, end), ...]``: the numpydoc-style sections (titles underlined by dashes)."""
    heads = [i for i in range(len(lines) - 1) if lines[i].strip() and not lines[i].startswith(" ")
             and set(lines[i + 1].strip()) == {"-"} and len(lines[i + 1].strip()) == len(lines[i].strip())]
    return [(lines[h].strip(), h, (heads[k + 1] if k + 1 < len(heads) else len(lines)))
            for k, h in enumerate(heads)]


def keep_extra_sections(app, what, name, obj, options, lines) -> None:
    """Keep the text of the sections named in ``meanfield_extra_sections`` (``Accuracy``: the accuracy
    contract of a function), which numpydoc would drop: each becomes a paragraph "**Accuracy.** ..." at the
    end of the Notes section (created if there is none). Any other section numpydoc does not know is a
    warning."""
    if what == "module":  # numpydoc leaves module docstrings alone: their sections are page sections
        return
    from sphinx.util import logging

    extra = set(app.config.meanfield_extra_sections)
    for title, head, end in reversed(_sections(lines)):
        if title in NUMPYDOC_SECTIONS:
            continue
        if title not in extra:
            logging.getLogger(__name__).warning(
                "%s: docstring section %r is not one numpydoc renders (its text would be lost); use Notes, "
                "or add it to meanfield_extra_sections in docs/conf.py", name, title)
            continue
        body = lines[head + 2:end]
        del lines[head:end]
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        if not body:
            continue
        body[0] = f"**{title}.** {body[0]}"
        notes = [(h, e) for t, h, e in _sections(lines) if t == "Notes"]
        if notes:
            h, e = notes[0]
            while e > h + 2 and not lines[e - 1].strip():
                e -= 1
            lines[e:e] = [""] + body
        else:
            while lines and not lines[-1].strip():
                lines.pop()
            lines += ["", "Notes", "-----"] + body


# ----------------------------------------------------------------------------------------------------------
# pages that may not exist yet


def drop_missing_optional(app, docname, source) -> None:
    """In a toctree, drop the entries of ``meanfield_optional_docs`` that are not in the project.

    docs/figures.md is generated by ``meanfield figures``; the index lists it, and before it exists the entry
    is removed here instead of being a warning (Sphinx cannot suppress an empty toctree glob in this version).
    """
    missing = [d for d in app.config.meanfield_optional_docs if d not in app.env.found_docs]
    if missing:
        lines = source[0].split("\n")
        source[0] = "\n".join(line for line in lines if line.strip() not in missing)


def setup(app):
    app.add_config_value("meanfield_optional_docs", [], "env")
    app.add_config_value("meanfield_extra_sections", ["Accuracy"], "env")
    app.connect("autodoc-process-docstring", keep_extra_sections, priority=400)  # before numpydoc (500)
    app.connect("source-read", drop_missing_optional)
    app.connect("builder-inited", generate_api)
    app.connect("doctree-read", register_page_sections)
    app.connect("autodoc-process-docstring", link_pages, priority=600)  # after numpydoc has made it reST
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
