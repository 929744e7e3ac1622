"""The pins: requirements.txt is exact, and environment.yml agrees with it."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^=\s]+)", line)
        assert match, f"requirements.txt: {line!r} is not pinned with =="
        pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_what_is_installed_is_what_is_pinned():
    """Every pin (exact, checked by _requirements) is the installed version: a grade is
    reproducible only on the pinned stack. torch may carry a build tag (2.13.0+cpu)."""
    from importlib.metadata import PackageNotFoundError, version

    wrong = {}
    for name, pinned in _requirements().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed is None or installed.split("+")[0] != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"installed versions differ from requirements.txt (pinned, installed): {wrong}; run bin/setup"


def test_environment_yml_matches_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = _requirements()
    seen = 0
    for entry in pip_section:
        if entry.startswith("-e"):
            continue
        name, version = entry.split("==")
        name = name.lower().replace("_", "-")
        assert name in pins, f"environment.yml pins {name}, requirements.txt does not"
        assert pins[name] == version, f"{name}: environment.yml says {version}, requirements.txt {pins[name]}"
        seen += 1
    assert seen >= 10
