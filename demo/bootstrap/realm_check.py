"""Does the Polaris realm need the admin tool's bootstrap? Decided without a JVM and without a lock.

The reconcile CronJob used to start the Polaris admin tool (a JVM: ~1 CPU for seconds, 256Mi
requested) on every run; its ``bootstrap`` re-runs Polaris' whole schema script in one transaction,
and ``CREATE INDEX IF NOT EXISTS`` on an existing index holds a ShareLock on ``entities`` and
``grant_records`` until commit, blocking Polaris' writes each time.

A bootstrapped realm has its root principal with the root credentials (the admin tool creates it
with ``-c <realm>,<id>,<secret>``, the same Secret as here). So one OAuth2 ``client_credentials``
request decides it: HTTP 200 with a token means the realm is intact and the admin tool is not
started; anything else (the realm gone with PostgreSQL: 401; Polaris erroring or unreachable) means
run it, as before. The request is Polaris reading its own tables: no lock that blocks a writer.

The verdict is a file: ``<marker>`` exists when the admin tool must run. The admin tool's container
(constructs/reconcile.py) starts the JVM only if it is there.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from demo.bootstrap.settings import PolarisInitSettings

INTACT, MISSING, UNKNOWN = "intact", "missing", "unknown"


def realm_state(settings: PolarisInitSettings, *, timeout: float = 10.0) -> tuple[str, str]:
    """(INTACT | MISSING | UNKNOWN, why): the root principal's token request, once."""
    try:
        response = httpx.post(
            settings.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": settings.polaris_root_client_id,
                "client_secret": settings.polaris_root_client_secret.get_secret_value(),
                "scope": "PRINCIPAL_ROLE:ALL",
            },
            headers={settings.REALM_HEADER: settings.polaris_realm},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        return UNKNOWN, f"token endpoint unreachable ({type(exc).__name__})"
    if response.status_code == 200 and (response.json() or {}).get("access_token"):
        return INTACT, "the root principal gets a token"
    if response.status_code in (400, 401, 403):
        return MISSING, f"the root principal is refused (HTTP {response.status_code})"
    return UNKNOWN, f"token endpoint answered HTTP {response.status_code}"


def decide(settings: PolarisInitSettings, marker: Path) -> str:
    """Write (or remove) ``marker``: present = run the admin tool. Returns the line to print."""
    state, why = realm_state(settings)
    if state == INTACT:
        marker.unlink(missing_ok=True)
        return f"realm {settings.polaris_realm}: intact ({why}); the admin tool will not start"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{state}: {why}\n")
    return f"realm {settings.polaris_realm}: {state} ({why}); the admin tool will bootstrap it"
