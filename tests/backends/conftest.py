"""The backend tests switch the simulated device on (when CuPy is the stream simulator) and check that
no test left an unordered device access behind."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def simulated_device():
    try:
        import cupy
    except ImportError:
        yield None
        return
    simulator = getattr(cupy, "SIMULATOR", None)
    if simulator is None:
        yield None
        return
    cupy.cuda.runtime.enabled = True
    yield simulator
    cupy.cuda.runtime.enabled = False


@pytest.fixture(autouse=True)
def no_race(simulated_device):
    yield
    if simulated_device is not None:
        import gc

        gc.collect()
        simulated_device.check()
