"""The container image, built for real by scripts/build-image (opt-in: slow, needs root).

Run with ``BUCKETBRIDGE_IMAGE_TEST=1``.  The script debootstraps a Debian base the first time
(about a minute), builds the Dockerfile with buildah and runs ``bucketbridge --help`` in the
image.  Set ``REBUILD_BASE=1`` as well to redo the base.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.conftest import REPO

IMAGE_TEST = os.environ.get("BUCKETBRIDGE_IMAGE_TEST") == "1"
BUILD_TIMEOUT_S = 1500

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not IMAGE_TEST, reason="builds a container image for minutes: set "
                                              "BUCKETBRIDGE_IMAGE_TEST=1 to run it"),
]


@pytest.mark.timeout(BUILD_TIMEOUT_S + 60)
def test_the_image_builds_and_runs_the_cli_as_a_non_root_user() -> None:
    # Given a root shell (debootstrap and buildah's chroot isolation need it)
    assert os.geteuid() == 0, "BUCKETBRIDGE_IMAGE_TEST=1 needs root"
    uid = re.search(r"^ARG APP_UID=(\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert uid
    # When scripts/build-image builds the image and runs `bucketbridge --help` in it
    proc = subprocess.run(["bash", str(REPO / "scripts" / "build-image")], cwd=REPO,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    # Then the build succeeds
    assert proc.returncode == 0, proc.stderr[-4000:]
    # And the CLI in the image lists every role the fleet runs
    help_text = proc.stdout.split("----- bucketbridge --help -----", 1)[1]
    assert "Usage: bucketbridge" in help_text
    for command in ("worker", "scheduler", "listen", "enqueue", "sites", "status",
                    "drain"):
        assert re.search(rf"^\s+{command}\s", help_text, re.MULTILINE), command
    # And it runs as the Dockerfile's fixed non-root UID, with no compiler in the image
    assert f"runs as uid: {uid.group(1)}" in proc.stdout
    assert "compilers in the final image: none" in proc.stdout
