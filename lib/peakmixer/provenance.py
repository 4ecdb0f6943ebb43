"""Facts that make a result traceable: git SHA, package versions, code digests."""

from __future__ import annotations

import ast
import functools
import hashlib
import platform
import subprocess
import textwrap
from importlib import metadata

from peakmixer.paths import REPO_ROOT

PACKAGES = ("peakmixer", "torch", "numpy", "pandas", "scikit-learn", "captum", "matplotlib", "papermill")


@functools.cache
def git_sha() -> str:
    """HEAD commit of the repository, ``-dirty`` when tracked files changed; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# AST fields that later Pythons added (3.12: type parameters), left out while empty so that the text is the
# same on every Python.
_NEWER_AST_FIELDS = frozenset({"type_params"})


def stable_ast_dump(node: ast.AST | list | object) -> str:
    """`ast.dump(node)` as Python 3.11 writes it, on any Python 3.10-3.13: the results store's run ids hash
    it (`models.code_fingerprint`), and `ast.dump`'s own text changes between Pythons (3.12 adds empty
    ``type_params``, 3.13 leaves out empty fields), which would make every stored row look stale."""
    if isinstance(node, ast.AST):
        fields = []
        for name in node._fields:
            value = getattr(node, name, None)
            optional = getattr(type(node), name, ...) is None  # an optional field: left out when unset
            if (value is None and optional) or (name in _NEWER_AST_FIELDS and value == []):
                continue
            fields.append(f"{name}={stable_ast_dump(value)}")
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(stable_ast_dump(x) for x in node)}]"
    return repr(node)


def source_digest(source: str) -> str:
    """sha256 of a class's (or function's) source as an AST without docstrings, so that comments,
    docstrings and formatting do not count but code does; the same on every Python (`stable_ast_dump`)."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(stable_ast_dump(tree).encode()).hexdigest()
