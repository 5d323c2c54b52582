"""``python -m floe.deploy <command>``: the commands behind ``make deploy-local-*``, ``port-forward``, ``status``…

Exit codes (all commands): 0 success, 1 failure, 2 timeout. (Typer/click also exit 2 on a usage
error; that one prints ``Usage:`` first.)
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from floe.deploy import access, dagster, preflight, status
from floe.deploy.diagnosis import CapacityNote, render_report
from floe.deploy.kubectl import CommandError, Docker, Kubectl
from floe.deploy.manifests import ManifestError, Phase, Stack
from floe.deploy.outcome import ExitCode
from floe.deploy.phases import PhaseResult, deploy, progress_line
from floe.deploy.ports import Forward, Supervisor, assign_ports, port_forward_argv
from floe.deploy.readiness import Evaluation, Policy
from floe.deploy.manifests import describe_cpu
from floe.quantities import format_cpu, format_memory

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DIST = typer.Option(Path(os.environ.get("CDK8S_OUTDIR", "dist")), "--dist", help="synthesized manifests")
KUBECTL = typer.Option(os.environ.get("FLOE_KUBECTL", "kubectl"), "--kubectl", help="kubectl binary")
CONTEXT = typer.Option(os.environ.get("FLOE_KUBE_CONTEXT"), "--context", help="kubectl context (default: current)")
PROJECT_IMAGE_ENV = "FLOE_PROJECT_IMAGE"
# Official Docker Hub images the stack pulls by short name: never "local project images".
DOCKER_HUB_LIBRARY_IMAGES = ("postgres", "busybox", "alpine")


def _fail(message: str, code: ExitCode = ExitCode.FAILURE) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(int(code))


def _stack(dist: Path) -> Stack:
    try:
        return Stack.load(dist)
    except ManifestError as exc:
        raise _fail(str(exc)) from None


def _stack_and_phases(dist: Path, phase: list[str] | None) -> tuple[Stack, list[Phase]]:
    """The stack in ``dist`` and the phases named (all when none), or a clear exit."""
    stack = _stack(dist)
    try:
        return stack, stack.select(phase or None)
    except ManifestError as exc:
        raise _fail(str(exc)) from None


def project_images(stack: Stack, phases: list[Phase] | None = None, explicit: str | None = None) -> list[str]:
    """The locally built images the phases use (the ones `make image` builds).

    Explicit (``--image`` / ``FLOE_PROJECT_IMAGE``) first; else the stack config's ``project_image``;
    else images without a registry path and without a '/' that no registry serves for us — the brief's rule,
    which also matches Docker Hub library images (``postgres:18.1``), hence last.
    """
    used = stack.images(phases)
    chosen = explicit or os.environ.get(PROJECT_IMAGE_ENV)
    if chosen:
        return [chosen] if chosen in used or phases is None else []
    try:
        from floe.config import load_config

        ref = load_config().project_image.ref
        return [ref] if ref in used else []
    except Exception:  # noqa: BLE001 — no/invalid config: fall back to the manifests alone
        return sorted(i for i in used if "/" not in i and i.split(":")[0] not in DOCKER_HUB_LIBRARY_IMAGES)


def _print_checks(checks: list[preflight.Check]) -> None:
    table = Table("check", "result", "detail", title="Preflight", title_justify="left")
    colors = {"ok": "green", "warn": "yellow", "FAIL": "red"}
    for c in checks:
        table.add_row(c.name, f"[{colors[c.symbol]}]{c.symbol}[/]", c.message if c.ok else "see below")
    console.print(table)
    for c in checks:
        if not c.ok:  # unwrapped, so the commands in it can be copied
            console.print(f"{c.symbol} {c.name}: {c.message}", markup=False, soft_wrap=True)


def _run_preflight(kubectl: Kubectl, stack: Stack, phases: list[Phase], allow_context: list[str], image: str | None) -> str | None:
    """Print the checks; raise Exit(1) if one blocks; return the context to pin kubectl to."""
    images = project_images(stack, phases, image)
    inputs = preflight.gather(kubectl, Docker(os.environ.get("FLOE_DOCKER", "docker")), images, allow_context)
    checks = preflight.decide(inputs, stack, phases, images, allow_context)
    _print_checks(checks)
    if not preflight.passed(checks):
        raise _fail("preflight failed: fix the checks marked FAIL above")
    return inputs.context


def _capacity(kubectl: Kubectl, stack: Stack) -> CapacityNote:
    cpu, mem = stack.pod_requests(include_jobs=False)
    try:
        alloc = preflight.node_allocatable(kubectl.get_json("nodes"))
        return CapacityNote(cpu, mem, *alloc)
    except (CommandError, ValueError):
        return CapacityNote(cpu, mem)


def _timings(results: tuple[PhaseResult, ...]) -> Table:
    table = Table("phase", "apply", "wait", "total", "result", title="Phase timings", title_justify="left")
    names = {ExitCode.SUCCESS: "[green]ready[/]", ExitCode.FAILURE: "[red]failed[/]", ExitCode.TIMEOUT: "[yellow]timed out[/]"}
    for r in results:
        table.add_row(r.phase, f"{r.apply_seconds:.1f}s", f"{r.wait_seconds:.1f}s", f"{r.seconds:.1f}s", names[r.exit_code])
    table.add_row("all", "", "", f"{sum(r.seconds for r in results):.1f}s", "")
    return table


def _access_table(stack: Stack, phases: list[Phase] | None = None) -> None:
    assignments = assign_ports(stack.port_forwards(phases), is_free=lambda _p: True)
    table = Table("service", "URL (after `make port-forward`)", "what", title="Access", title_justify="left")
    for a in assignments:
        table.add_row(a.spec.service, a.url, a.spec.description)
    console.print(table)
    for line in access.access_lines(stack, assignments):
        console.print(line, markup=False, soft_wrap=True)


@app.command("deploy")
def deploy_command(
    phase: list[str] = typer.Option(None, "--phase", help="phase (chart) to deploy; repeat; default: all, in order"),
    timeout: float = typer.Option(600.0, "--timeout", help="seconds each phase may take to become Ready"),
    poll: float = typer.Option(2.0, "--poll", help="seconds between readiness checks"),
    allow_context: list[str] = typer.Option([], "--allow-context", help="deploy to this non-local context anyway"),
    skip_preflight: bool = typer.Option(False, "--skip-preflight"),
    image: str = typer.Option(None, "--image", help="project image (default: from the stack config)"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Apply the phases in order; wait for each to be Ready; on failure explain why."""
    stack, phases = _stack_and_phases(dist, phase)
    kubectl = Kubectl(kubectl_bin, context)
    if not skip_preflight:
        kubectl.context = _run_preflight(kubectl, stack, phases, allow_context, image) or context
    last_line: dict[str, str] = {}

    def on_progress(name: str, elapsed: float, evaluation: Evaluation) -> None:
        line = progress_line(evaluation)
        if last_line.get(name) != line:  # print changes only: readable in a terminal and in CI logs
            last_line[name] = line
            console.print(f"  [{elapsed:5.0f}s] {line}", markup=False, soft_wrap=True)

    def on_start(p: Phase) -> None:
        console.print(f"[bold]phase {p.name}[/]: applying {', '.join(f.name for f in p.files)}; waiting for {len(p.workloads)} workload(s)")

    def on_done(r: PhaseResult) -> None:
        if r.error:
            err.print(f"[red]phase {r.phase}: apply failed:[/] {r.error}")
        elif r.report:
            err.print(render_report(r.report), markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"[green]phase {r.phase} ready[/] in {r.seconds:.1f}s")

    try:
        result = deploy(
            kubectl, stack, phases, timeout=timeout, poll_interval=poll, policy=Policy(),
            on_progress=on_progress, on_phase_start=on_start, on_phase_done=on_done, capacity=_capacity(kubectl, stack),
        )
    except CommandError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        err.print("interrupted: what was applied stays in the cluster (`make status`; `make undeploy-local` removes it)")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    console.print(_timings(result.phases))
    if result.exit_code == ExitCode.SUCCESS:
        _access_table(stack, phases)
    raise typer.Exit(int(result.exit_code))


@app.command("preflight")
def preflight_command(
    phase: list[str] = typer.Option(None, "--phase"),
    allow_context: list[str] = typer.Option([], "--allow-context"),
    image: str = typer.Option(None, "--image"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Only the checks deploy runs first."""
    stack, phases = _stack_and_phases(dist, phase)
    _run_preflight(Kubectl(kubectl_bin, context), stack, phases, allow_context, image)


def undeploy_argv(kubectl: Kubectl, stack: Stack | None, namespace: str, timeout: float) -> list[list[str]]:
    """Reverse apply order, then the namespace (which takes everything left in it along)."""
    commands = []
    if stack is not None:
        for phase in reversed(stack.phases):
            for path in reversed(phase.files):
                if path.stat().st_size:
                    commands.append(kubectl.argv("delete", "-f", str(path), "--ignore-not-found=true", "--wait=false"))
    commands.append(kubectl.argv("delete", "namespace", namespace, "--ignore-not-found=true", "--wait=true", f"--timeout={int(timeout)}s"))
    return commands


@app.command("undeploy")
def undeploy_command(
    namespace: str = typer.Option(None, "--namespace", help="default: from dist/, else 'floe'"),
    timeout: float = typer.Option(300.0, "--timeout"),
    allow_context: list[str] = typer.Option([], "--allow-context"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Delete everything deploy created, namespace included. Safe to run twice."""
    stack = Stack.load(dist) if dist.is_dir() and any(dist.glob("*.k8s.yaml")) else None
    ns = namespace or (stack.namespace if stack else "floe")
    kubectl = Kubectl(kubectl_bin, context)
    inputs = preflight.gather(kubectl, Docker(), [], allow_context)
    check = preflight.check_context(inputs.context, inputs.server, allow_context)
    if not check.ok:
        raise _fail(check.message)
    kubectl.context = inputs.context
    for argv in undeploy_argv(kubectl, stack, ns, timeout):
        console.print("$ " + " ".join(argv), markup=False)
        result = kubectl.runner(argv, timeout=timeout + 30)
        if result.returncode != 0:
            code = ExitCode.TIMEOUT if "timed out" in result.stderr else ExitCode.FAILURE
            raise _fail(result.stderr.strip() or f"exit {result.returncode}", code)
    console.print(f"[green]namespace {ns} and everything in it removed[/]")


@app.command("port-forward")
def port_forward_command(dist: Path = DIST, kubectl_bin: str = KUBECTL, context: str = CONTEXT) -> None:
    """Forward every annotated Service to localhost; busy ports move to a free one. Ctrl-C stops all."""
    stack = _stack(dist)
    kubectl = Kubectl(kubectl_bin, context)
    assignments = assign_ports(stack.port_forwards())
    if not assignments:
        raise _fail(f"no Service in {dist}/ carries the floe.dev/port-forward annotation")
    table = Table("service", "local URL", "what", "note", title="Port-forwards (Ctrl-C stops them)", title_justify="left")
    for a in assignments:
        table.add_row(a.spec.service, a.url, a.spec.description, a.note)
        if a.moved:
            err.print(f"[yellow]{a.spec.service}: {a.note}[/]")
    supervisor = Supervisor([Forward(a, port_forward_argv(kubectl, stack.namespace, a)) for a in assignments], log=lambda m: err.print(m, markup=False))
    console.print(table)
    try:
        failed = supervisor.start()
        if len(failed) == len(assignments):
            raise _fail("no port-forward came up (is the stack deployed? `make status`)")
        supervisor.run_until_interrupted()
    except KeyboardInterrupt:  # Ctrl-C while starting: same clean stop as later
        err.print("stopping port-forwards")
    finally:
        supervisor.stop()


@app.command("status")
def status_command(dist: Path = DIST, kubectl_bin: str = KUBECTL, context: str = CONTEXT) -> None:
    """Pods, jobs, the last Dagster runs and the raw tables' row counts, on one screen."""
    namespace = Stack.load(dist).namespace if dist.is_dir() and any(dist.glob("*.k8s.yaml")) else "floe"
    kubectl = Kubectl(kubectl_bin, context)

    def runs() -> Table:
        with dagster.forwarded(kubectl, namespace, dagster.WEBSERVER_SERVICE, dagster.WEBSERVER_PORT) as port:
            recent = dagster.recent_runs("127.0.0.1", port)
        table = Table("run", "job", "status", "started (UTC)", "took", title="Last Dagster runs", title_justify="left")
        for r in recent:
            table.add_row(r.run_id[:8], r.job_name, r.status, r.started.strftime("%H:%M:%S") if r.started else "-", f"{r.seconds:.0f}s" if r.seconds else "-")
        return table

    sections = status.gather(kubectl, namespace, runs)
    console.print(status.render(sections))
    if any(s.title == "pods" and s.unavailable for s in sections):
        raise typer.Exit(int(ExitCode.FAILURE))


def _trigger(which: str, wait: bool, timeout: float, dagster_url: str | None, dist: Path, kubectl_bin: str, context: str | None) -> None:
    job = dagster.JOBS[which]

    def go(host: str, port: int) -> None:
        run_id = dagster.launch(host, port, job)
        console.print(f"launched {job}: run {run_id}")
        if wait:
            final = dagster.wait_for_run(host, port, run_id, timeout)
            console.print(f"run {run_id}: {final}")
            if final not in dagster.TERMINAL_STATUSES:
                raise typer.Exit(int(ExitCode.TIMEOUT))
            if final != "SUCCESS":
                raise typer.Exit(int(ExitCode.FAILURE))

    try:
        if dagster_url:
            host, _, port = dagster_url.removeprefix("http://").rstrip("/").partition(":")
            go(host, int(port or 80))
        else:
            namespace = Stack.load(dist).namespace if dist.is_dir() and any(dist.glob("*.k8s.yaml")) else "floe"
            with dagster.forwarded(Kubectl(kubectl_bin, context), namespace, dagster.WEBSERVER_SERVICE, dagster.WEBSERVER_PORT) as port:
                go("127.0.0.1", port)
    except dagster.DagsterError as exc:
        raise _fail(str(exc)) from None


WAIT = typer.Option(True, "--wait/--no-wait", help="wait for the run to finish")
RUN_TIMEOUT = typer.Option(900.0, "--timeout")
DAGSTER_URL = typer.Option(os.environ.get("FLOE_DAGSTER_URL"), "--dagster-url", help="e.g. http://127.0.0.1:3000 (default: a temporary port-forward)")


@app.command("seed")
def seed_command(wait: bool = WAIT, timeout: float = RUN_TIMEOUT, dagster_url: str = DAGSTER_URL, dist: Path = DIST, kubectl_bin: str = KUBECTL, context: str = CONTEXT) -> None:
    """Launch the seed job through Dagster's GraphQL API."""
    _trigger("seed", wait, timeout, dagster_url, dist, kubectl_bin, context)


@app.command("generate")
def generate_command(wait: bool = WAIT, timeout: float = RUN_TIMEOUT, dagster_url: str = DAGSTER_URL, dist: Path = DIST, kubectl_bin: str = KUBECTL, context: str = CONTEXT) -> None:
    """Launch one generation run (new orders, then dbt build) through Dagster's GraphQL API."""
    _trigger("generate", wait, timeout, dagster_url, dist, kubectl_bin, context)


@app.command("image-name")
def image_name_command(dist: Path = DIST, image: str = typer.Option(None, "--image")) -> None:
    """Print the project image name:tag (what `make image` builds)."""
    images = project_images(_stack(dist), None, image)
    if len(images) != 1:
        raise _fail(f"expected one project image in {dist}/, found {images or 'none'}; set {PROJECT_IMAGE_ENV}")
    console.print(images[0])


@app.command("access")
def access_command(dist: Path = DIST) -> None:
    """Print the access table: URLs, where the credentials are, example queries."""
    _access_table(_stack(dist))


@app.command("resources")
def resources_command(dist: Path = DIST) -> None:
    """The stack's total CPU/memory requests and limits (what Docker Desktop must offer)."""
    stack = _stack(dist)
    totals = stack.resource_totals()
    table = Table("workload", "container", "x", "cpu req", "mem req", "cpu lim", "mem lim", title="Resources", title_justify="left")
    for r in totals.rows:
        table.add_row(str(r.workload), r.container, str(r.replicas), format_cpu(r.cpu_request_m), format_memory(r.memory_request),
                      format_cpu(r.cpu_limit_m) if r.cpu_limit_m else "-", format_memory(r.memory_limit) if r.memory_limit else "-")
    console.print(table)
    steady, peak = stack.pod_requests(include_jobs=False), stack.pod_requests(include_jobs=True)
    console.print(f"requests: {describe_cpu(steady[0])} / {format_memory(steady[1])} long-running; "
                  f"{describe_cpu(peak[0])} / {format_memory(peak[1])} with every Job at once")


@app.command("cube-token")
def cube_token_command(
    ttl: int = typer.Option(86400, "--ttl", help="seconds the token stays valid"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Print a Cube API token (HS256 JWT) signed with the cluster's CUBEJS_API_SECRET."""
    stack = _stack(dist)
    ref = access.secret_refs(stack, ["CUBEJS_API_SECRET"]).get("CUBEJS_API_SECRET")
    secret = os.environ.get("CUBEJS_API_SECRET")
    if secret is None:
        if ref is None:
            raise _fail(f"no container in {dist}/ takes CUBEJS_API_SECRET from a Secret; set CUBEJS_API_SECRET")
        try:
            secret = access.secret_value(Kubectl(kubectl_bin, context).get_json("secret", "-n", stack.namespace, ref.secret), ref.key)
        except (CommandError, KeyError) as exc:
            raise _fail(str(exc)) from None
    print(access.cube_token(secret, ttl))
