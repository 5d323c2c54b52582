"""Start jsii's node process while Python imports and reads the config: the synth's wall time.

Importing cdk8s starts node and loads the constructs and cdk8s assemblies into it: about half a
second, mostly spent waiting on node. ``python main.py`` also spends about a third of a second
importing its own modules (pydantic's config models above all) and reading the config, none of which
needs node. :func:`start_in_background` (main.py calls it first) runs ``import cdk8s`` in a thread,
so the two overlap; :func:`wait` (floe/synth.py, before it builds the app) joins that thread. The
thread only imports: a failure there (no node, a broken install) is left to the import in the main
thread, which raises it where it always did.

This module imports nothing heavy itself: it runs before everything else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import MutableMapping

# jsii's node runtime prints an 11-line end-of-life banner for an unsupported Node (Debian ships 20),
# which jsii's Python side relays as byte strings. The runtime skips it when this variable lists the
# running major version (jsii's checkNode). Set before the first cdk8s import starts node.
JSII_EOL_SILENCE_ENV = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
JSII_EOL_SILENCED_VERSIONS = ("18", "20")

_started: list[threading.Thread] = []


def silence_jsii_eol_banner(environ: MutableMapping[str, str] = os.environ) -> None:
    """Add the end-of-life Node majors to the variable, keeping whatever the user listed."""
    listed = [v.strip() for v in environ.get(JSII_EOL_SILENCE_ENV, "").split(",") if v.strip()]
    environ[JSII_EOL_SILENCE_ENV] = ",".join(dict.fromkeys([*listed, *JSII_EOL_SILENCED_VERSIONS]))


def _import_cdk8s() -> None:
    try:
        import cdk8s  # noqa: F401 - starts node, loads the assemblies
    except BaseException:  # noqa: BLE001 - the main thread's own import raises it (see wait)
        pass


def start_in_background() -> None:
    """``import cdk8s`` in a thread (once). Not a daemon thread: a run that ends early (a bad
    config) waits for it at exit rather than tearing down an import half done."""
    if _started:
        return
    silence_jsii_eol_banner()
    thread = threading.Thread(target=_import_cdk8s, name="jsii-start")
    _started.append(thread)
    thread.start()


def wait() -> None:
    """Return once the background import (if started) is done; the caller then imports cdk8s
    (at once if it succeeded, else again, raising its error)."""
    silence_jsii_eol_banner()
    for thread in _started:
        thread.join()
