"""The import contracts of setup.cfg (checked by scripts/lint) name every
module: a new module has to be given its layer, and falls under the rule
that keeps boto3 and botocore in the storage package."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rindle_tus"


def contract(name: str) -> configparser.SectionProxy:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config[f"importlinter:contract:{name}"]


def modules_of(folder: Path) -> set[str]:
    """The modules and subpackages directly in ``folder``, as import-linter names them."""
    names = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
    names |= {path.name for path in folder.iterdir() if (path / "__init__.py").exists()}
    return names - {"migrations"}


def layered(section: configparser.SectionProxy) -> list[str]:
    return [name for line in section["layers"].splitlines() for name in re.split(r"[|:]", line) if name.strip()]


def test_every_module_of_the_package_has_its_layer() -> None:
    named = [name.strip() for name in layered(contract("layers"))]
    assert len(named) == len(set(named))
    assert set(named) == modules_of(PACKAGE)


def test_every_module_of_storage_has_its_layer() -> None:
    named = {name.strip() for name in layered(contract("storage"))}
    assert named == modules_of(PACKAGE / "storage")


def test_every_module_but_storage_is_kept_from_boto() -> None:
    sources = {line.strip() for line in contract("boto")["source_modules"].splitlines() if line.strip()}
    assert sources == {f"rindle_tus.{name}" for name in modules_of(PACKAGE) - {"storage"}}
