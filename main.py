"""cdk8s entry point: synthesize the floe stack into dist/ (see floe/synth.py)."""

import sys

from floe import jsii_kernel

# First of all: node starts (import cdk8s, in a thread) while Python imports the rest and reads the config.
jsii_kernel.start_in_background()

from floe.synth import main  # noqa: E402 - after the start above, on purpose

if __name__ == "__main__":
    sys.exit(main())
