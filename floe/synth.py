"""Synthesize the stack into ``dist/``: validate the config, build, check every manifest, then swap.

The output is built in a temporary folder beside ``dist/`` and only replaces it once every check
has passed, so an invalid config or a broken manifest never leaves a half-written ``dist/``: the
previous one stays as it was. (``npx cdk8s synth`` deletes the output folder before running the
app — upstream behaviour — so ``make synth``, which runs this directly, is the safe path.)
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from floe import fast_yaml, jsii_kernel
from floe.config import ConfigError, StackConfig, config_path, load_config
from floe.credentials import Credentials, load_or_create
from floe.deploy.manifests import VERIFY_CHART, VERIFY_DIR, VERIFY_FILE
from floe.manifest_checks import check_manifests
from floe.quantities import format_cpu, format_memory
from floe.resources_total import totals

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_CHECKS_FAILED, EXIT_BAD_CONFIG = 0, 1, 2

@dataclass
class SynthResult:
    out_dir: Path
    files: list[Path]
    documents: list[dict]
    seconds: float
    #: each file's objects, by its path relative to out_dir (read once, for the summary too)
    file_documents: dict[str, list[dict]] = field(default_factory=dict)


def load_file(path: Path) -> list[dict]:
    return [d for d in yaml.load_all(path.read_text(), Loader=fast_yaml.LOADER) if d]


def manifest_files(folder: Path) -> list[Path]:
    """The chart files in apply order, then the verification Job's (``verify/``, never applied)."""
    return sorted(folder.glob("*.yaml")) + sorted((folder / VERIFY_DIR).glob("*.yaml"))


def load_documents(folder: Path) -> list[dict]:
    """Every object of the stack, the verification Job's included (it is checked like the rest)."""
    return [d for path in manifest_files(folder) for d in load_file(path)]


def credentials_for(config: StackConfig, root: Path) -> Credentials | None:
    if config.credentials.source == "existing":
        return None
    store = config.credentials.store
    return load_or_create(store if store.is_absolute() else root / store, config.postgres.databases)


#: What the construct modules import that needs no node (the settings contracts of demo/: pydantic-
#: settings alone is a tenth of a second). The construct modules themselves need node (the
#: ``constructs`` package is jsii's), so they wait for it; these are imported before, while node may
#: still be starting (main.py). One missing here only costs time (tests/infra/test_synth_start.py).
NODE_FREE_IMPORTS = (
    "demo.backup",
    "demo.bootstrap.identities",
    "demo.bootstrap.image",
    "demo.bootstrap.settings",
    "demo.lakehouse.extensions",
    "demo.lakehouse.settings",
    "demo.orchestration",
    "demo.orchestration.instance",
    "demo.orchestration.settings",
    "demo.verify.settings",
)


def synth_to(folder: Path, config: StackConfig, credentials: Credentials | None) -> dict[str, list[dict]]:
    """Run the cdk8s app into ``folder`` (imports cdk8s lazily: it starts a node process, in the
    background since main.py began, see floe/jsii_kernel.py). Returns the documents of each file
    written in Python, by its path relative to ``folder`` (none if cdk8s wrote them)."""
    for module in NODE_FREE_IMPORTS:
        importlib.import_module(module)
    jsii_kernel.wait()
    from constructs.charts import build_app
    from constructs.plain import PlainApp

    app = PlainApp(outdir=str(folder))  # one file per chart, written in Python (constructs/plain.py)
    build_app(app, config, credentials)
    app.synth()
    written = dict(app.written)
    moved = _move_verify_chart(folder)
    if moved[0] in written:
        written[moved[1]] = written.pop(moved[0])
    return written


def _move_verify_chart(folder: Path) -> tuple[str, str]:
    """``NNNN-verify.k8s.yaml`` -> ``verify/verify.k8s.yaml``: out of ``kubectl apply -f dist/``'s
    reach (it does not recurse), so a deploy never runs the verification Job before the stack is up.
    Returns both paths, relative to ``folder``."""
    found = sorted(folder.glob(f"*-{VERIFY_CHART}.k8s.yaml"))
    if len(found) != 1:
        raise RuntimeError(f"expected one {VERIFY_CHART} chart file in {folder}, found {[p.name for p in found]}")
    (folder / VERIFY_DIR).mkdir()
    found[0].rename(folder / VERIFY_DIR / VERIFY_FILE)
    return found[0].name, f"{VERIFY_DIR}/{VERIFY_FILE}"


def synthesize(config: StackConfig, out_dir: Path, *, root: Path) -> SynthResult:
    """Build, check and atomically publish the manifests. Raises :class:`ChecksFailed`."""
    started = time.perf_counter()
    credentials = credentials_for(config, root)
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    try:
        written = synth_to(staging, config, credentials)
        # The checks read each file's documents: as written from Python (PyYAML reads back exactly
        # what it wrote: tests/infra/test_plain.py), or read back from what cdk8s wrote.
        file_documents = {
            (relative := path.relative_to(staging).as_posix()): written.get(relative) or load_file(path)
            for path in manifest_files(staging)
        }
        documents = [d for docs in file_documents.values() for d in docs]
        violations = check_manifests(documents, **check_options(config, generated=credentials is not None))
        if violations:
            raise ChecksFailed(violations)
        _swap(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = manifest_files(out_dir)
    return SynthResult(out_dir, files, documents, time.perf_counter() - started, file_documents)


def secret_names(config: StackConfig) -> set[str]:
    from constructs.secrets import StackSecrets

    return StackSecrets(config).names()


def check_options(config: StackConfig, *, generated: bool) -> dict:
    """What the manifest checks must know of the profile: the namespace, the Secrets that exist
    outside dist/ (all of them with ``credentials.source: existing``, else the ones declared for
    external services), the declared external endpoints, and the StatefulSets given persistent
    storage."""
    from constructs.secrets import StackSecrets

    secrets = StackSecrets(config)
    names = config.names
    persistent = {n for n, section in ((names.postgres, config.postgres), (names.minio, config.minio)) if section.persistence}
    return {
        "namespace": config.namespace,
        "external_secrets": secrets.declared_external() if generated else secrets.names(),
        "external_endpoints": {(e.host, e.port) for e in config.endpoints.external},
        "persistent_workloads": persistent,
        "gateway": _declared_gateway(config),
    }


def _declared_gateway(config: StackConfig) -> dict[str, str] | None:
    """ingress.gateway as the parentRef every HTTPRoute of dist/ must carry (the ``gateway`` check)."""
    gateway = config.ingress.gateway
    return gateway.parent_ref() if config.ingress.enabled and gateway is not None else None


def _swap(new: Path, target: Path) -> None:
    """Replace ``target`` with ``new``: two renames, so readers see the old or the new, never a mix."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class ChecksFailed(Exception):
    def __init__(self, violations: list) -> None:
        self.violations = violations
        super().__init__(f"{len(violations)} manifest check(s) failed")


def print_summary(result: SynthResult, config: StackConfig, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"floe: synthesized {len(result.documents)} objects into {result.out_dir}", title_justify="left")
    table.add_column("file")
    table.add_column("objects", justify="right")
    table.add_column("kinds")
    for name, docs in result.file_documents.items():
        kinds: dict[str, int] = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        table.add_row(name, str(len(docs)), ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    console.print(table)
    t = totals(result.documents)
    console.print(
        f"namespace [bold]{config.namespace}[/]; requests {format_cpu(t.cpu_request)} / {format_memory(t.memory_request)}, "
        f"limits {format_cpu(t.cpu_limit)} / {format_memory(t.memory_limit)} across {t.containers} long-running containers; "
        f"all checks passed in {result.seconds:.1f}s"
    )
    if config.credentials.source == "generated":
        console.print(f"credentials: generated once, kept in {config.credentials.store} (git-ignored); Secrets in dist/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python main.py", description="Synthesize the floe stack into dist/.")
    parser.add_argument("--config", type=Path, default=None, help="stack profile (default: $FLOE_CONFIG or config/local.yaml)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("CDK8S_OUTDIR", "dist")), help="output folder")
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    args = parser.parse_args(argv)
    err = _Lazy(lambda: _console(stderr=True))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        err.print(f"[red]floe: {exc}[/]", highlight=False)
        err.print(f"dist/ left untouched. Fix {config_path(args.config)} (or the variable named) and run again.")
        return EXIT_BAD_CONFIG
    try:
        result = synthesize(config, args.out, root=Path.cwd())
    except ChecksFailed as exc:
        err.print(f"[red]floe: {exc}; {args.out} left untouched:[/]")
        for violation in exc.violations:
            err.print(f"  {violation}", highlight=False)
        return EXIT_CHECKS_FAILED
    except ValueError as exc:  # unreadable credentials store
        err.print(f"[red]floe: {exc}[/]", highlight=False)
        return EXIT_BAD_CONFIG
    if not args.quiet:
        print_summary(result, config, _console(stderr=False))
    return EXIT_OK


def _console(*, stderr: bool) -> Console:
    # rich only when something is printed: a passing synth with --quiet never imports it.
    from rich.console import Console

    return Console(stderr=stderr)


class _Lazy:
    """An object made on first use (the error console: most runs print no error)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make, self._made = make, None

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = self._make()
        return getattr(self._made, name)


if __name__ == "__main__":
    sys.exit(main())
