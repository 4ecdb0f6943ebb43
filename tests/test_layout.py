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
