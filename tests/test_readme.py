"""The README's command examples: every one parses, the quick ones run, and its docs links exist."""

import os
import re
import shlex
from pathlib import Path

import pytest

from supernode.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def readme_examples(path=README) -> list:
    """The argument vectors of every ``supernode ...`` line in the ``sh`` blocks of ``path``.

    Continuation lines (a trailing backslash) are joined and ``# ...`` comments dropped, as
    a shell would.
    """
    examples = []
    for block in re.findall(r"^```sh\n(.*?)^```", path.read_text(), re.S | re.M):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["supernode"]:
                examples.append(words[1:])
    return examples


def command_of(argv) -> tuple:
    """The sub-command words of an example (``("router", "sweep")``), options left out."""
    words = []
    for word in argv:
        if word.startswith("-") or len(words) == 2:
            break
        words.append(word)
    if words and words[0] not in GROUPS:
        words = words[:1]
    return tuple(words)


def leaf_commands(parser) -> set:
    """Every runnable sub-command of ``parser``, as tuples of words."""
    import argparse

    out = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = leaf_commands(sub)
                out |= {(name, *rest) for rest in inner} if inner else {(name,)}
    return out


#: Command groups whose second word is a sub-command.
GROUPS = ("tile", "router", "fabric", "area", "implement", "formal")

#: Examples quick enough for the default suite (a few seconds each; the first estimate of
#: a fresh clone also measures the network figures and compiles the engine, about 15 s).
QUICK = {("estimate",), ("compare",), ("tile", "export"), ("router", "export")}

#: Examples that are quick only when they skip the RTL.
QUICK_WITH_MODEL_ONLY = {("router", "sweep"), ("fabric", "sweep")}

#: Examples that simulate or synthesise for tens of seconds to minutes: run in the slow set.
SLOW = {("tile", "sim"), ("router", "sim"), ("fabric", "sim"), ("area", "tile"),
        ("area", "router"), ("area", "component"), ("implement", "tile"),
        ("implement", "router"), ("formal", "skid")}

# The rest (demo, sweep, waves on a run directory of your own, the tile, router and routing
# proofs) run for minutes or need a file from an earlier run: they are parsed only.


def is_quick(argv) -> bool:
    command = command_of(argv)
    return command in QUICK or (command in QUICK_WITH_MODEL_ONLY and "--model-only" in argv)


EXAMPLES = readme_examples()


def _id(argv) -> str:
    return " ".join(argv)[:60]


def test_the_readme_has_an_example_of_every_command():
    missing = leaf_commands(build_parser()) - {command_of(argv) for argv in EXAMPLES}
    assert not missing, f"no README example of: {sorted(' '.join(c) for c in missing)}"


@pytest.mark.parametrize("argv", EXAMPLES, ids=[_id(a) for a in EXAMPLES])
def test_every_example_parses(argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:                # argparse reports a bad example by exiting
        pytest.fail(f"`supernode {' '.join(argv)}` does not parse (exit status {exc.code})")
    assert callable(args.func)


def _run(argv, tmp_path, monkeypatch):
    # Outputs named in the example (tile.v, sweep.png, ...) land in a scratch directory;
    # the build directory (simulator builds, network figures) stays the project's own.
    build = Path(os.environ.get("SUPERNODE_BUILD", REPO / "build")).resolve()
    monkeypatch.setenv("SUPERNODE_BUILD", str(build))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0, f"`supernode {' '.join(argv)}` failed"


QUICK_EXAMPLES = [a for a in EXAMPLES if is_quick(a)]
SLOW_EXAMPLES = [a for a in EXAMPLES if not is_quick(a) and command_of(a) in SLOW]


@pytest.mark.parametrize("argv", QUICK_EXAMPLES, ids=[_id(a) for a in QUICK_EXAMPLES])
def test_quick_example_runs(argv, tmp_path, monkeypatch):
    _run(argv, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("argv", SLOW_EXAMPLES, ids=[_id(a) for a in SLOW_EXAMPLES])
def test_simulation_example_runs(argv, tmp_path, monkeypatch):
    _run(argv, tmp_path, monkeypatch)


def test_the_quick_examples_cover_the_model_commands():
    # The commands a user tries first must really run in the default suite, not only parse.
    ran = {command_of(a) for a in QUICK_EXAMPLES}
    assert QUICK | QUICK_WITH_MODEL_ONLY <= ran, sorted(QUICK | QUICK_WITH_MODEL_ONLY - ran)


def _links(path) -> list:
    """Relative link targets of a Markdown file (no URLs, no anchors)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text())
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and t.split("#")[0]]


def test_every_docs_page_the_readme_links_exists():
    linked = [t for t in _links(README) if t.startswith("docs/")]
    assert linked, "the README links no page in docs/"
    missing = [t for t in linked if not (REPO / t).is_file()]
    assert not missing, f"README links missing files: {missing}"


def test_every_docs_page_is_linked_from_the_readme_and_its_links_exist():
    pages = sorted((REPO / "docs").glob("*.md"))
    linked = {t for t in _links(README)}
    unlinked = [p.name for p in pages if f"docs/{p.name}" not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"
    for page in pages:
        missing = [t for t in _links(page) if not (page.parent / t).exists()]
        assert not missing, f"{page.name} links missing files: {missing}"
