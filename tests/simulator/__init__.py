"""Tests of the simulators and the real-data replay (package `tests.simulator`; the code under test is `simulator`)."""
