"""The image installs locked dependencies: requirements.lock pins every runtime dependency of
pyproject.toml, with hashes, and the Dockerfile installs exactly those (offline checks; the real
build is tests/k8s/test_image.py, opt-in)."""

from __future__ import annotations

import os
import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;[^\\]*)?\s*\\$")


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, sha256 hashes) of every requirement in the lock."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            match = PIN.match(line)
            assert match, f"not a pinned requirement: {line!r}"
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), [])
            continue
        hashed = re.fullmatch(r"\s+--hash=sha256:([0-9a-f]{64})\s*\\?", line)
        assert hashed and current is not None, f"unexpected line: {line!r}"
        pins[current][1].append(hashed.group(1))
    return pins


def test_every_runtime_dependency_is_pinned_with_hashes_at_an_allowed_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = locked()
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run scripts/lock"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"requirements.lock pins {name}=={version}, pyproject wants {requirement.specifier}"
    assert all(hashes for _, hashes in pins.values()), "every pin needs its sha256 hashes"
    # Nothing for development or the demo: the image's set only
    assert not {"pytest", "moto", "mypy", "ruff"} & set(pins)


def test_the_lock_says_how_it_is_made_and_the_script_exists() -> None:
    assert "#    scripts/lock\n" in LOCK.read_text()
    script = REPO / "scripts" / "lock"
    assert os.access(script, os.X_OK)
    assert "--generate-hashes" in script.read_text()


def test_the_image_build_installs_exactly_the_lock() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    builder = dockerfile[:dockerfile.rindex("\nFROM ")]
    # The lock is in the build context and copied in
    assert "!requirements.lock" in (REPO / ".dockerignore").read_text().splitlines()
    assert re.search(r"^COPY .*\brequirements\.lock\b", builder, re.MULTILINE)
    # Its requirements are installed with their hashes checked, before the package itself,
    # which brings no dependency of its own, and pip check holds the two together
    commands = "\n".join(line for line in builder.splitlines()
                         if not line.lstrip().startswith("#"))
    steps = " ".join(commands.replace("\\\n", " ").split())
    lock_install = steps.index("pip install --prefer-binary --require-hashes --no-deps -r "
                               "requirements.lock")
    package_install = steps.index("pip install --no-deps /dist/bucketbridge-*.whl")
    assert lock_install < package_install < steps.index("pip check")
    assert len(re.findall(r"pip install", steps)) == 2
