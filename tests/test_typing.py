"""The public API is annotated (for a PEP 561 ``py.typed``), and mypy checks the annotations."""

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The layers whose public API is annotated.
LAYERS = ("supernode.rtl", "supernode.fabric", "supernode.sim")


def _modules(package: str) -> list:
    pkg = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
    return [importlib.import_module(name) for name in names]


def public_functions() -> list:
    """``(qualified name, function)`` of every function, and every public method (with
    ``__init__``) of every class, named in the ``__all__`` of a module of :data:`LAYERS`;
    each once, under the module that defines it."""
    seen, out = set(), []
    for package in LAYERS:
        for module in _modules(package):
            for name in getattr(module, "__all__", ()):
                obj = getattr(module, name)
                if inspect.isclass(obj):
                    members = [(f"{obj.__module__}.{obj.__qualname__}.{attr}", value)
                               for attr, value in vars(obj).items()
                               if not attr.startswith("_") or attr == "__init__"]
                else:
                    members = [(f"{getattr(obj, '__module__', '')}.{name}", obj)]
                for qualname, value in members:
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    # Functions of the project only: not a Protocol's or a library's __init__.
                    if not inspect.isfunction(value) \
                            or not value.__module__.startswith("supernode."):
                        continue
                    if id(value) not in seen:
                        seen.add(id(value))
                        out.append((qualname, value))
    return out


def missing_annotations(function) -> list:
    """The parameters of ``function`` without an annotation (``self``/``cls`` aside), and
    ``"return"`` when its return is not annotated."""
    annotations = function.__annotations__
    params = list(inspect.signature(function).parameters)
    if params and params[0] in ("self", "cls"):
        params = params[1:]
    missing = [p for p in params if p not in annotations]
    return missing + ([] if "return" in annotations else ["return"])


def test_the_check_names_every_unannotated_parameter_and_return():
    def half(a: int, b, *args, c=1, **kwargs) -> None:
        pass

    def whole(x: int, *, y: "str | None" = None) -> int:
        return x

    assert missing_annotations(half) == ["b", "args", "c", "kwargs"]
    assert missing_annotations(lambda self, v: v) == ["v", "return"]
    assert missing_annotations(whole) == []


def test_every_public_function_is_annotated():
    functions = public_functions()
    assert len(functions) > 300, "the walk found too few functions: is a layer missing?"
    gaps = [f"{name}: {', '.join(missing)}" for name, function in functions
            if (missing := missing_annotations(function))]
    assert not gaps, "public functions without annotations:\n" + "\n".join(gaps)


def test_mypy_checks_the_annotated_modules():
    """mypy, as ``[tool.mypy]`` in pyproject.toml configures it, finds no error."""
    pytest.importorskip("mypy.api", reason="mypy comes with the dev extra")
    cache = Path(os.environ.get("SUPERNODE_BUILD", ROOT / "build")) / "mypy_cache"
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout
