"""The house rules that ruff and import-linter do not state: module size, one package per layer."""

from pathlib import Path

import peakmixer

PACKAGE = Path(peakmixer.__file__).parent
MAX_LINES = 600  # a module longer than this is split along its sections (CONTRIBUTING.md)


def test_no_module_is_longer_than_the_house_limit():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_each_layer_is_a_package_of_its_own():
    layers = {"data", "train", "attribution", "synth", "studies", "report", "commands"}
    assert layers <= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    loose = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "cli"}
    # beside the packages only the core's and the utilities' own modules
    assert loose == {"architecture", "config", "files", "ip", "metrics", "models", "paths", "provenance"}


def test_no_import_circle_between_modules():
    # import-linter checks the layers; within a layer a circle would still make two modules one
    import grimp

    graph = grimp.build_graph("peakmixer", exclude_type_checking_imports=True, cache_dir=None)
    # packages are left out: their __init__ re-exports its children, which is no circle of code
    modules = sorted(m for m in graph.modules if not graph.find_children(m))
    edges = {m: graph.find_modules_directly_imported_by(m) & set(modules) for m in modules}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(m: str) -> None:  # Tarjan's strongly connected components
        index[m] = low[m] = len(index)
        stack.append(m)
        on.add(m)
        for n in edges[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            part = []
            while True:
                n = stack.pop()
                on.discard(n)
                part.append(n)
                if n == m:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for m in modules:
        if m not in index:
            visit(m)
    assert circles == []
