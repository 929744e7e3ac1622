"""The pins: requirements.txt is exact, environment.yml agrees with it, and it resolves for
every supported Python."""
import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from lrgrade.notebooks import cache_dir

ROOT = Path(__file__).resolve().parents[1]


def _supported_pythons() -> list[str]:
    """The supported Pythons, oldest first, from pyproject.toml's requires-python: the one list
    (bin/setup reads the same line, in the same form ">=3.A[.P],<3.B"). ">=3.11,<3.14" gives
    ["3.11", "3.12", "3.13"]; a floor with a patch level (">=3.11.5,<3.14") keeps it ("3.11.5")."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=3\.(\d+)(\.\d+)?,<3\.(\d+)", spec.replace(" ", ""))
    if not match:
        raise ValueError(f"pyproject.toml: requires-python {spec!r} is not of the form '>=3.A[.P],<3.B' "
                         "(the form bin/setup reads)")
    oldest, patch, below = int(match[1]), match[2] or "", int(match[3])
    return [f"3.{oldest}{patch}"] + [f"3.{minor}" for minor in range(oldest + 1, below)]


SUPPORTED_PYTHONS = _supported_pythons()


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
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and re.fullmatch(r"python\b.*", d)]
    minors = [".".join(v.split(".")[:2]) for v in SUPPORTED_PYTHONS]
    assert len(pythons) == 1 and pythons[0].removeprefix("python=") in minors, (
        f"environment.yml asks for {pythons}; it should pin one supported minor version, python=X.Y with X.Y "
        f"in {minors} (pyproject.toml's requires-python)")
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


def _pip(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_installed_pins_satisfy_each_others_requirements():
    """For the running Python, the installed packages are a resolution of requirements.txt:
    each is the pinned version (test_what_is_installed_is_what_is_pinned), and pip finds every
    requirement of every installed package met."""
    proc = _pip("check")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"pip check: {stdout}{stderr}"


@pytest.mark.slow
def test_requirements_resolve_for_each_other_supported_python(tmp_path):
    """Every pin has a wheel for each other supported Python on this platform, and the pins
    agree with each other's requirements there: pip's resolver, told the Python version,
    installs nothing (--dry-run; pip wants --target with --python-version, nothing is
    written there). "3.12" is checked as 3.12.0, the strictest patch level.

    torch is left out of the resolve, and pip's index must list its pinned version among
    those with a wheel for that Python: PyPI's torch needs NVIDIA's CUDA wheels, and the
    index here serves no metadata files, so resolving it downloaded about 1.3 GB a Python for
    dependencies that are the same on every Python (the running one checks them).

    A resolve is about a minute of pip's CPU a Python. A pass is kept in lrgrade's cache
    (``lrgrade.notebooks.cache_dir("pins")``) under the digest of requirements.txt, the
    Python versions and pip's version, and a run with the same ones passes at once."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    others = [v for v in SUPPORTED_PYTHONS if not v.startswith(running + ".") and v != running]
    if not others:
        pytest.skip("no supported Python other than the running one")
    pins = _requirements()
    from importlib.metadata import version
    key = hashlib.sha256("\n".join([(ROOT / "requirements.txt").read_text(), *others, version("pip")]).encode())
    folder = cache_dir("pins")
    stamp = folder / f"{key.hexdigest()}.ok" if folder else None
    if stamp is not None and stamp.is_file():
        return
    without_torch = tmp_path / "requirements-without-torch.txt"
    without_torch.write_text("".join(f"{name}=={v}\n" for name, v in pins.items() if name != "torch"))
    jobs = {}
    for v in others:  # all at once: each spends part of its time waiting on the index
        jobs[f"Python {v}"] = _pip("install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
                                   "--python-version", v, "--target", str(tmp_path / v), "-q",
                                   "-r", str(without_torch))
        jobs[f"torch for Python {v}"] = _pip("index", "versions", "torch", "--only-binary=:all:",
                                             "--python-version", v)
    failed = []
    for what, proc in jobs.items():
        stdout, stderr = proc.communicate(timeout=600)
        # This machine's pip configuration names index folders that do not all exist; pip says so.
        lines = [ln for ln in stderr.splitlines() if not re.match(r"WARNING: (Location .* is ignored|pip index)", ln)]
        if proc.returncode != 0:
            failed.append(f"{what} (pip exit {proc.returncode}):\n" + "\n".join(lines[-15:]))
        elif what.startswith("torch"):
            listed = re.search(r"Available versions: (.*)", stdout)
            if not listed or pins["torch"] not in listed[1].split(", "):
                failed.append(f"{what}: the index has no wheel of torch=={pins['torch']} ({stdout.strip()[:300]})")
    assert not failed, "requirements.txt does not resolve:\n" + "\n\n".join(failed)
    if stamp is not None:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text("\n".join(others) + "\n")


def test_setup_refuses_an_unknown_torch_choice(tmp_path):
    """LRCOURSE_TORCH other than default/cpu: bin/setup names the accepted values and stops before
    it creates anything (run on a copy, so a regression cannot touch the real .venv)."""
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / "bin" / "setup", tmp_path / "bin" / "setup")
    for name in ("requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run(["bash", str(tmp_path / "bin" / "setup")], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "LRCOURSE_TORCH": "gpu"}, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "LRCOURSE_TORCH='gpu'" in result.stderr and "default" in result.stderr and "cpu" in result.stderr
    assert not (tmp_path / ".venv").exists()
