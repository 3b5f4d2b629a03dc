import pathlib
import re
import tomllib

import keras

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _floor(requirements, package):
    for requirement in requirements:
        found = re.fullmatch(rf"{package}>=([0-9.]+)(,<[0-9.]+)?", requirement.replace(" ", ""))
        if found:
            return found.group(1)
    raise AssertionError(f"no floor for {package} in {requirements}")


def test_ci_tests_at_the_keras_floor_which_is_past_every_loading_advisory():
    """The Keras floor is the version CI installs (constraints/cpu.txt), so the
    oldest Keras a user may have is the one tested; 3.15.1 is the first
    release after all published advisories on loading untrusted files."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = _floor(project["dependencies"], "keras")
    pins = dict(line.split("==") for line in (ROOT / "constraints" / "cpu.txt").read_text().split()
                if "==" in line and not line.startswith("#"))
    assert pins["keras"] == floor
    assert tuple(map(int, floor.split("."))) >= (3, 15, 1)
    installed = tuple(int(part) for part in re.findall(r"\d+", keras.__version__)[:3])
    assert installed >= tuple(map(int, floor.split(".")))


def test_every_package_of_glu_zoo_is_installed():
    """setuptools installs only the packages listed in pyproject.toml: a new
    folder of glu_zoo/ left out of the list would be missing from a wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "glu_zoo").rglob("__init__.py")
             if "presets" not in init.parent.relative_to(ROOT / "glu_zoo").parts[1:]}
    assert found - listed == set()
