"""The package's import structure: no cycles, no private names across subpackages.

The graph is read from the source with ``ast`` (every ``import`` statement,
those inside functions included), so it does not depend on import order.
"""

import ast
from pathlib import Path

import skinfluence

ROOT = Path(skinfluence.__file__).parent


def _modules():
    """``{dotted module name: path}`` of every module of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package_of(name):
    """The package a module lives in (a package's ``__init__`` is its own)."""
    path = MODULES[name]
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(name, node):
    """Absolute name of the module an ``ImportFrom`` node reads from."""
    if node.level == 0:
        return node.module
    base = _package_of(name).split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name):
    """``[(target module, imported name or None, line)]`` of one module."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "skinfluence":
                    out.append((alias.name, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, node)
            if source is None or source.split(".")[0] != "skinfluence":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:  # ``from package import module``
                    out.append((sub, None, node.lineno))
                else:
                    out.append((source, alias.name, node.lineno))
    return out


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles():
    """Every strongly connected component with more than one module, or with
    a module importing itself (Tarjan's algorithm)."""
    edges = {n: sorted({t for t, _, _ in GRAPH[n] if t in MODULES}) for n in MODULES}
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_package():
    # The walk must find the modules and the edges it is meant to judge.
    assert "skinfluence.estimators._scorer" in MODULES
    targets = {t for t, _, _ in GRAPH["skinfluence.estimators._scorer"]}
    assert "skinfluence.methods" in targets
    assert _package_of("skinfluence.methods") == "skinfluence.methods"
    assert _package_of("skinfluence.methods._base") == "skinfluence.methods"


def test_import_graph_is_acyclic():
    cycles = _cycles()
    assert not cycles, f"import cycles: {cycles}"


def test_cycle_finder_finds_a_cycle():
    saved = dict(GRAPH)
    try:
        GRAPH["skinfluence.exceptions"] = [("skinfluence.cli", None, 1)]
        assert any("skinfluence.exceptions" in c for c in _cycles())
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_no_private_names_across_subpackages():
    bad = []
    for name, edges in GRAPH.items():
        for target, imported, line in edges:
            if imported is None or not imported.startswith("_"):
                continue
            if target in MODULES and _package_of(target) != _package_of(name):
                bad.append(f"{MODULES[name].relative_to(ROOT)}:{line} {imported}")
    assert not bad, f"private names imported from another subpackage: {bad}"
