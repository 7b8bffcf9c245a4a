"""The project's source files a cached result depends on, found by following imports."""

import ast
import hashlib
import inspect
import os
import sys
from pathlib import Path

from supernode.rtl.errors import UserError

__all__ = ["PACKAGES", "definition_digest", "file_digest", "imported_modules",
           "source_digest"]

#: Root packages of the project. Imports of anything else (numpy, Amaranth) are not
#: followed: their versions are not part of a source digest.
PACKAGES = ("supernode",)

#: The folder of the ``supernode`` package: in a checkout it holds the layers as links to the
#: top-level ``rtl/``, ``sim/`` and ``fabric/``; in an installed wheel, the layers themselves.
_PACKAGE = Path(sys.modules["supernode"].__file__).parent


def _module_file(name: str) -> "Path | None":
    base = _PACKAGE.joinpath(*name.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_names(name: str, path: Path):
    """Every name module ``name`` (source at ``path``) imports, in any function too.

    ``from package import item`` yields ``package`` and ``package.item``: the item may be a
    submodule. Names that are not modules are dropped by the caller.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def imported_modules(*names: str) -> tuple:
    """``names`` and every project module they import, directly or not, sorted.

    Imports made inside functions count: a deferred import is still a dependency. A
    package's ``__init__`` counts only where the package itself is imported, not for
    each of its submodules.
    """
    for name in names:
        if name.split(".")[0] not in PACKAGES or _module_file(name) is None:
            raise ValueError(f"{name!r} is not a module of the packages "
                             f"{', '.join(PACKAGES)}")
    found, todo = {}, list(names)
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] not in PACKAGES:
            continue
        path = _module_file(name)
        if path is not None:
            found[name] = path
            todo.extend(_imported_names(name, path))
    return tuple(sorted(found))


#: Modules that read data files shipped beside the code: a result that imports one depends
#: on every file under its folder too (the hardware, workload, mapping and validation TOML
#: files the estimator reads).
DATA = {"supernode.fabric.system.config": "fabric/configs"}  # under the package folder


def source_digest(*names: str) -> str:
    """Hash of the source of modules ``names``, of every project module they import and of
    the data files those modules read (:data:`DATA`)."""
    digest = hashlib.sha256()
    modules = imported_modules(*names)
    for name in modules:
        digest.update(name.encode() + b"\0" + _module_file(name).read_bytes() + b"\0")
    for name in modules:
        if name in DATA:
            for path in sorted((_PACKAGE / DATA[name]).rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0"
                                  + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def file_digest(path: "str | os.PathLike[str]") -> str:
    """Hash of a Python file outside the packages (a user's harness or bench) and of every
    project module it imports, directly or not."""
    path = Path(path)
    names = sorted({name for name in _imported_names("__main__", path)
                    if name.split(".")[0] in PACKAGES and _module_file(name) is not None})
    digest = hashlib.sha256(path.read_bytes())
    if names:
        digest.update(source_digest(*names).encode())
    return digest.hexdigest()[:16]


def definition_digest(obj: object) -> str:
    """Hash of the source ``obj`` (a class or function) is defined in: its module and the
    project modules it imports (:func:`source_digest`) or, for an object defined outside
    the project (a user's harness, a test's), its file and the project modules that file
    imports (:func:`file_digest`)."""
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] in PACKAGES and _module_file(module) is not None:
        return source_digest(module)
    source = inspect.getsourcefile(obj)
    if source is None:
        raise UserError(f"the source of {obj!r} cannot be found; give a class or function "
                        "defined in a Python file")
    return file_digest(source)
