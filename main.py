"""cdk8s entry point: synthesize the floe stack into dist/ (see floe/synth.py)."""

import sys

from floe.synth import main

if __name__ == "__main__":
    sys.exit(main())
