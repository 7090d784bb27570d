"""The `Example:` blocks in our docstrings run as written (doctest), so a reader can copy them."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import dqn_lightning

PACKAGE = Path(dqn_lightning.__file__).parent
WITH_EXAMPLES = sorted(
    ".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py") if ">>>" in p.read_text()
)


def test_the_package_has_examples_to_check() -> None:
    # guards the glob: an empty list would make the test below pass without checking anything
    assert {"learner.mlp", "learner.cnn", "learner.module", "acting.env_loop"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"dqn_lightning.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}.py has '>>>' but doctest found no example"
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name}.py fail (doctest output above)"
