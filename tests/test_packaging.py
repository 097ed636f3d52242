"""The package as it would be published: the sdist and wheel build, their
long description renders on PyPI (``twine check``), the wheel holds every
module of the app and nothing else, and what it installs imports and
migrates on its own."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import rindle_tus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    yield out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_the_long_description_renders(dist: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_holds_every_module_and_only_the_app(dist: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(dist)).namelist())
    package = ROOT / "rindle_tus"
    sources = {str(p.relative_to(ROOT)) for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert sources - names == set()
    assert "rindle_tus/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert [n for n in names if n.split("/")[0] in ("tests", "example_project", "benchmarks")] == []


def test_the_metadata_carries_the_one_version_and_the_requirements(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as wheel:
        (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(wheel.read(meta))
    assert message["Name"] == "rindle-tus"
    assert message["Version"] == rindle_tus.__version__
    assert message["License-Expression"] == "BSD-3-Clause" or message["License"] == "BSD-3-Clause"
    requires = message.get_all("Requires-Dist") or []
    assert any(r.startswith("Django") for r in requires)
    assert any(r.startswith("django-storages") for r in requires)
    assert message["Requires-Python"]
    assert message.get_content_type() == "text/markdown" or message["Description-Content-Type"] == "text/markdown"


def test_the_installed_wheel_imports_and_has_its_migrations(dist: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(_wheel(dist))], check=True, timeout=300)
    script = (
        "import django, rindle_tus, os;"
        "from django.conf import settings;"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes','django.contrib.auth','rindle_tus'],"
        "DATABASES={'default':{'ENGINE':'django.db.backends.sqlite3','NAME':':memory:'}});"
        "django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', 'rindle_tus', verbosity=0);"
        "print(os.path.dirname(rindle_tus.__file__))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target / "rindle_tus")
