"""``python -m zoo.bench``: see ``zoo.bench.suite``."""

from zoo.bench.suite import run_suite

if __name__ == "__main__":
    run_suite()
