"""Fixtures for the experiment tests: the shared data folder and a running fake Hub."""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

if str(HERE) not in sys.path:  # so tests can `from fake_hub import FakeHub` whatever pytest's import mode
    sys.path.insert(0, str(HERE))


@pytest.fixture
def shared_data() -> Path:
    """``<repo>/../shared/data``. CI lays it beside the clone, so there a missing folder is a failure; a developer's
    checkout elsewhere skips the tests that read it."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data folder {SHARED_DATA} not found, and CI always has it beside the clone")
        pytest.skip(f"shared data folder {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture
def fake_hub(monkeypatch):
    """A running :class:`fake_hub.FakeHub`; its ``url`` is the endpoint to use.

    Pass ``endpoint=fake_hub.url`` explicitly in-process (or set ``HF_ENDPOINT`` for a subprocess). As a guard, the
    in-process default endpoint is pointed at the fake hub too, so a forgotten ``endpoint=`` never reaches the
    real Hub.
    """
    import huggingface_hub.constants as constants
    from fake_hub import FakeHub

    with FakeHub() as hub:
        template = constants.HUGGINGFACE_CO_URL_TEMPLATE.replace(constants.ENDPOINT, hub.url, 1)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        yield hub
