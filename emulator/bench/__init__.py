"""The benchmark (`python -m emulator.bench`): the emulator against a bare-Flask floor and its
peers, driven by wrk, every speed figure reported as a ratio to the floor of the same run."""
