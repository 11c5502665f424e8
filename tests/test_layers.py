"""The package's folders follow the data, and imports flow one way (README, Layout):

    cli -> deploy -> {train -> native, reference} -> format -> spec, errors

An AST walk over every edgeq/**.py (imports inside functions included) checks each import of an
edgeq module against the layer table below, that torch is imported only under edgeq/train/, and
that the modules behind `edgeq run/info/flash/stream` never reach a torch-importing module.
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "edgeq"

# layer -> the layers it may import (itself included)
BASE = {"base"}
ALLOWED = {
    "base": BASE,
    "format": BASE | {"format"},
    "reference": BASE | {"format", "reference"},
    "native": BASE | {"format", "native"},
    "train": BASE | {"format", "reference", "native", "train"},
    "deploy": BASE | {"format", "reference", "native", "train", "deploy"},
    "cli": BASE | {"format", "reference", "native", "train", "deploy", "cli"},
    "top": BASE | {"format", "reference", "native", "train", "deploy", "cli", "top"},
    "micro": set(),  # MicroPython: runs on a board with none of the host package
}
# modules outside the layer folders
TOP = {"edgeq.__main__", "edgeq.api", "edgeq.demo", "edgeq.nn"}
BASE_MODULES = {"edgeq", "edgeq.spec", "edgeq.errors", "edgeq._native"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(mod: str) -> str:
    if mod in BASE_MODULES:
        return "base"
    if mod in TOP:
        return "top"
    parts = mod.split(".")
    if len(parts) >= 2 and parts[1] in ALLOWED:
        return parts[1]
    raise AssertionError(f"{mod}: not in a layer; add it to a folder (or to tests/test_layers.py)")


def edgeq_imports(path: Path, mod: str | None = None):
    """(line, imported module, names) for every import in the file (module `mod`, default its own)."""
    mod = mod or module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target, tuple(a.name for a in node.names)))
    return out


def resolve(target: str, names) -> list[str]:
    """`from edgeq.x import y` imports module edgeq.x.y when that is a module, else edgeq.x."""
    mods = []
    for n in names or ():
        sub = f"{target}.{n}"
        if (PKG.parent / sub.replace(".", "/")).with_suffix(".py").is_file() or \
                (PKG.parent / sub.replace(".", "/") / "__init__.py").is_file():
            mods.append(sub)
    return mods or [target]


FILES = sorted(PKG.rglob("*.py"))


def test_every_module_is_in_a_layer():
    for f in FILES:
        layer(module_name(f))


def test_imports_flow_one_way():
    bad = []
    for f in FILES:
        src = module_name(f)
        for line, target, names in edgeq_imports(f):
            if not (target == "edgeq" or target.startswith("edgeq.")):
                continue
            for dst in resolve(target, names):
                if layer(dst) not in ALLOWED[layer(src)]:
                    bad.append(f"{f.relative_to(PKG.parent)}:{line}: {layer(src)} ({src}) imports "
                               f"{layer(dst)} ({dst})")
    assert not bad, "imports against the flow cli -> deploy -> {train -> native, reference} -> format:\n" + \
        "\n".join(bad)


def imports_torch(path: Path) -> bool:
    return any(t == "torch" or t.startswith("torch.") for _, t, _ in edgeq_imports(path))


def test_torch_is_imported_only_under_train():
    bad = [str(f.relative_to(PKG.parent)) for f in FILES if imports_torch(f) and layer(module_name(f)) not in
           ("train", "top")]
    assert not bad, f"torch imported outside edgeq/train/: {bad}"


def closure(start: str) -> set[str]:
    by_name = {module_name(f): f for f in FILES}
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m in seen or m not in by_name:
            continue
        seen.add(m)
        if "." in m:
            todo.append(m.rsplit(".", 1)[0])  # importing a module runs its package's __init__
        for _, target, names in edgeq_imports(by_name[m]):
            if target == "edgeq" or target.startswith("edgeq."):
                todo += resolve(target, names)
    return seen


@pytest.mark.parametrize("command_module", ["edgeq.cli.app", "edgeq.cli.stream", "edgeq.cli.board"])
def test_run_info_flash_stream_never_reach_torch(command_module):
    """run/info live in cli.app, stream in cli.stream, flash/deploy in cli.board: every module they can
    import, at the top or inside a function, is torch-free."""
    by_name = {module_name(f): f for f in FILES}
    reach = closure(command_module)
    torchy = sorted(m for m in reach if imports_torch(by_name[m]))
    assert not torchy, f"{command_module} can import torch through {torchy}"


def test_the_check_sees_a_wrong_way_import(tmp_path):
    """The walk resolves relative imports inside functions: a format module importing deploy is caught."""
    fake = tmp_path / "pack.py"
    fake.write_text((PKG / "format" / "pack.py").read_text() + "\n\ndef _x():\n    from ..deploy import protocol\n")
    src = "edgeq.format.pack"
    wrong = [d for _, t, n in edgeq_imports(fake, src) if t.startswith("edgeq.") for d in resolve(t, n)
             if layer(d) not in ALLOWED[layer(src)]]
    assert wrong == ["edgeq.deploy.protocol"]


def test_readme_layout_names_every_module():
    """README's Layout table lists each edgeq/ folder with every module in it, and nothing that is gone."""
    import re

    readme = (PKG.parent / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) > 2:
            for folder in re.findall(r"`(edgeq/\w+/)`", cells[1]):
                rows[folder] = set(re.findall(r"`(\w+\.py)`", cells[2]))
    for d in sorted(p for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        folder = f"edgeq/{d.name}/"
        assert folder in rows, f"README Layout has no row for {folder}"
        if d.name == "micro":
            continue  # the MicroPython files are named in docs/micropython.md
        on_disk = {p.name for p in d.glob("*.py") if not p.name.startswith("__")}
        assert rows[folder] == on_disk, f"README Layout row {folder}: names {sorted(rows[folder])}, " \
                                        f"the folder holds {sorted(on_disk)}"
    for path in re.findall(r"`(edgeq/[\w/]+\.py)`", table):
        assert (PKG.parent / path).is_file(), f"README Layout names {path}, which does not exist"
