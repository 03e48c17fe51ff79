"""The keras import of the service."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.service.conftest import REPO_ROOT


@pytest.mark.slow
def test_keras_import_skips_optional_packages() -> None:
    script = (
        "import sys\n"
        "import flow\n"
        "from service._app import import_keras_without_optional_packages\n"
        "import_keras_without_optional_packages()\n"
        "assert 'keras' in sys.modules\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
        "import sklearn.datasets\n"
        "import matplotlib\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
