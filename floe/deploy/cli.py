"""``python -m floe.deploy <command>``: the commands behind ``make deploy-local-*``, ``port-forward``, ``status``…

Exit codes (all commands): 0 success, 1 failure, 2 timeout, 130 interrupted. (Typer/click also exit 2 on a usage
error; that one prints ``Usage:`` first.) Through make, every failure exits 2; make's last line names ours (``Error 1``).

Every command that talks to a cluster first checks kubectl, the context and its API server (and docker for the image).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, UTC
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from demo.progress import elapsed
from floe.deploy import access, dagster, data as data_phase, preflight, status, verify
from floe.deploy.distribution import KubeContext, detect, load_plan
from floe.deploy.diagnosis import CapacityNote, render_report
from floe.deploy.kubectl import CommandError, Docker, Kubectl, subprocess_runner
from floe.deploy.manifests import ManifestError, Phase, Stack
from floe.deploy.outcome import ExitCode
from floe.deploy.phases import PhaseResult, deploy, progress_line
from floe.deploy.ports import Forward, Supervisor, assign_ports, port_forward_argv
from floe.deploy.readiness import Evaluation, Policy
from floe.deploy.manifests import describe_cpu
from floe.quantities import format_cpu, format_memory

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
# Not a terminal (a CI log, `| tee`): 160 columns rather than rich's 80 (or a COLUMNS some parent set),
# so a log keeps each line and each table cell whole, the same wherever it runs; a terminal keeps its width.
_LOG_WIDTH = None if sys.stdout.isatty() else 160
console = Console(highlight=False, width=_LOG_WIDTH)
err = Console(stderr=True, highlight=False, width=_LOG_WIDTH)

DIST = typer.Option(Path(os.environ.get("CDK8S_OUTDIR", "dist")), "--dist", help="synthesized manifests")
KUBECTL = typer.Option(os.environ.get("FLOE_KUBECTL", "kubectl"), "--kubectl", help="kubectl binary")
CONTEXT = typer.Option(os.environ.get("FLOE_KUBE_CONTEXT"), "--context", help="kubectl context (default: current)")
PROJECT_IMAGE_ENV = "FLOE_PROJECT_IMAGE"
# A waiting line that has not changed is printed again after this many seconds (with the elapsed time).
PROGRESS_REPEAT_SECONDS = 15.0
# Official Docker Hub images the stack pulls by short name: never "local project images".
DOCKER_HUB_LIBRARY_IMAGES = ("postgres", "busybox", "alpine")


def _fail(message: str, code: ExitCode = ExitCode.FAILURE) -> typer.Exit:
    # soft_wrap: the message keeps its own lines (commands in it stay copyable), whatever the width.
    err.print(f"[red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(int(code))


def _ground(kubectl: Kubectl, *, docker: bool = False, allow_context: list[str] | None = None, reach: bool = True,
            nothing_done: str = "") -> preflight.ContextView:
    """The preflight every cluster command runs first, before any work (floe.deploy.preflight.ground):
    kubectl (and docker) on PATH, a current context (a local one when ``allow_context`` is given), its
    API server answering. Exit 1 with a one- or two-line message otherwise; pins ``kubectl`` to the context."""
    try:
        found = preflight.ground(kubectl, docker=Docker(os.environ.get("FLOE_DOCKER", "docker")) if docker else None,
                                 allowed=allow_context, reach=reach)
    except preflight.GroundError as exc:
        raise _fail(f"{exc}{' ' + nothing_done if nothing_done else ''}") from None
    kubectl.context = found.context
    return found


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

    Explicit (``--image`` / ``FLOE_PROJECT_IMAGE``) first; else the images of the stack config's
    ``project_image`` repository that dist/ names;
    else images without a registry path and without a '/' that no registry serves for us — the brief's rule,
    which also matches Docker Hub library images (``postgres:18.1``), hence last.
    """
    used = stack.images(phases)
    chosen = explicit or os.environ.get(PROJECT_IMAGE_ENV)
    if chosen:
        return [chosen] if chosen in used or phases is None else []
    try:
        from floe.config import load_config

        # By repository: dist/ names the tag (a digest of the build context, floe/image_tag.py) that
        # `make image` builds; the config's own tag is computed from this checkout, dist/ may be older.
        repository = load_config().project_image.repository
        return sorted(i for i in used if i.rpartition(":")[0] == repository)
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


def _run_preflight(kubectl: Kubectl, stack: Stack, phases: list[Phase], allow_context: list[str], image: str | None,
                   build_first: bool = False) -> str | None:
    """Print the checks; raise Exit(1) if one blocks; return the context to pin kubectl to.
    ``build_first``: the project image is built next (`make deploy-local-full`), so it is not looked for."""
    images = [] if build_first else project_images(stack, phases, image)
    inputs = preflight.gather(kubectl, Docker(os.environ.get("FLOE_DOCKER", "docker")), images, allow_context, phases)
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


def _timings(results: tuple[PhaseResult, ...], data_result: data_phase.DataResult | None = None) -> Table:
    table = Table("phase", "apply", "wait", "total", "result", title="Phase timings", title_justify="left")
    names = {ExitCode.SUCCESS: "[green]ready[/]", ExitCode.FAILURE: "[red]failed[/]", ExitCode.TIMEOUT: "[yellow]timed out[/]"}
    for r in results:
        table.add_row(r.phase, f"{r.apply_seconds:.1f}s", f"{r.wait_seconds:.1f}s", f"{r.seconds:.1f}s", names[r.exit_code])
    if data_result is not None:
        table.add_row("data", "", f"{data_result.seconds:.1f}s", f"{data_result.seconds:.1f}s", names[data_result.exit_code])
    table.add_row("all", "", "", f"{sum(r.seconds for r in results) + (data_result.seconds if data_result else 0):.1f}s", "")
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
    data: bool = typer.Option(True, "--data/--no-data", help="after a deploy of every phase, wait for the data: seed run, a first "
                              "generate_and_build run (launched here), Cube serving the marts (never with --phase)"),
    data_timeout: float = typer.Option(float(data_phase.DEFAULT_TIMEOUT_SECONDS), "--data-timeout", help="seconds the data phase may take"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Apply the phases in order; wait for each to be Ready; on failure explain why. A deploy of every
    phase ends with the data phase, so `make verify` right after it passes."""
    stack, phases = _stack_and_phases(dist, phase)
    kubectl = Kubectl(kubectl_bin, context)
    _ground(kubectl, allow_context=None if skip_preflight else allow_context)
    if not skip_preflight:
        kubectl.context = _run_preflight(kubectl, stack, phases, allow_context, image) or kubectl.context
    last_line: dict[str, tuple[str, float]] = {}

    def on_progress(name: str, elapsed: float, evaluation: Evaluation) -> None:
        line = progress_line(evaluation)
        previous, printed_at = last_line.get(name, ("", -PROGRESS_REPEAT_SECONDS))
        # A change at once, else the same line again every PROGRESS_REPEAT_SECONDS with its elapsed time:
        # readable in a terminal and in CI logs, and a long wait never looks hung.
        if previous != line or elapsed - printed_at >= PROGRESS_REPEAT_SECONDS:
            last_line[name] = (line, elapsed)
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
    code = result.exit_code
    data_result = None
    if code == ExitCode.SUCCESS and data and not phase:
        data_result = _data_phase(kubectl, stack, timeout=data_timeout, poll=max(poll, 5.0))
        code = data_result.exit_code
    console.print(_timings(result.phases, data_result))
    if result.exit_code == ExitCode.SUCCESS:
        _access_table(stack, phases)
    raise typer.Exit(int(code))


def _data_phase(kubectl: Kubectl, stack: Stack, *, timeout: float, poll: float) -> data_phase.DataResult:
    """Port-forward Dagster and Cube, then :func:`floe.deploy.data.wait_for_data` with progress lines."""
    import httpx

    from floe.deploy.phases import SystemClock

    console.print("[bold]phase data[/]: waiting for the seed run, a first generate_and_build run (launched now) and Cube serving the marts")
    namespace = stack.namespace
    try:
        cube_service, cube_port = data_phase.cube_api_service(stack)
        ref = access.secret_refs(stack, ["CUBEJS_API_SECRET"])["CUBEJS_API_SECRET"]
        secret = access.secret_value(kubectl.get_json("secret", "-n", namespace, ref.secret), ref.key)
    except (LookupError, CommandError, ValueError) as exc:
        return data_phase.DataResult(ExitCode.FAILURE, 0.0, "", f"cannot reach Cube's API from dist/ and the cluster: {exc}")
    last = {"line": ""}

    def on_progress(elapsed: float, line: str) -> None:
        if line != last["line"]:
            last["line"] = line
            console.print(f"  [{elapsed:5.0f}s] {line}", markup=False, soft_wrap=True)

    try:
        with dagster.forwarded(kubectl, namespace, dagster.WEBSERVER_SERVICE, dagster.WEBSERVER_PORT) as dagster_port, \
                dagster.forwarded(kubectl, namespace, cube_service, cube_port) as cube_local, httpx.Client(timeout=60) as http:
            source = data_phase.HttpSource(
                http, f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{cube_local}", access.cube_token(secret, int(timeout) + 3600),
                launcher=lambda job: dagster.launch("127.0.0.1", dagster_port, job))
            result = data_phase.wait_for_data(source, timeout=timeout, poll=poll, clock=SystemClock(), on_progress=on_progress)
    except (dagster.DagsterError, RuntimeError) as exc:
        result = data_phase.DataResult(ExitCode.FAILURE, 0.0, last["line"], str(exc))
    if result.exit_code == ExitCode.SUCCESS:
        console.print(f"[green]phase data ready[/] in {result.seconds:.1f}s: {result.line}", soft_wrap=True)
    else:
        word = "timed out" if result.exit_code == ExitCode.TIMEOUT else "failed"
        err.print(f"[red]phase data {word}[/] after {result.seconds:.0f}s: {result.problem}", soft_wrap=True)
        if result.log_tail:
            err.print("last log lines of the run:", markup=False)
            err.print("\n".join(f"  {line}" for line in result.log_tail), markup=False, highlight=False, soft_wrap=True)
    return result


@app.command("preflight")
def preflight_command(
    phase: list[str] = typer.Option(None, "--phase"),
    allow_context: list[str] = typer.Option([], "--allow-context"),
    image: str = typer.Option(None, "--image"),
    before_build: bool = typer.Option(False, "--before-build", help="the image is about to be built: check docker instead of the image"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Only the checks deploy runs first."""
    stack, phases = _stack_and_phases(dist, phase)
    kubectl = Kubectl(kubectl_bin, context)
    _ground(kubectl, docker=before_build, allow_context=allow_context, nothing_done="Nothing was built or applied." if before_build else "")
    _run_preflight(kubectl, stack, phases, allow_context, image, build_first=before_build)


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
    _ground(kubectl, allow_context=allow_context, nothing_done="Nothing was deleted.")
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
    _ground(kubectl)
    for a in assignments:
        if a.moved:
            err.print(f"[yellow]{a.spec.service}: {a.note}[/]")
    supervisor = Supervisor([Forward(a, port_forward_argv(kubectl, stack.namespace, a)) for a in assignments], log=lambda m: err.print(m, markup=False))
    try:
        failed = supervisor.start()
        if len(failed) == len(assignments):
            raise _fail(f"no port-forward came up on context {kubectl.context} (is the stack deployed? `make status`)")
        # The table only once the forwards listen: a URL printed before would look like success.
        down = {id(f.assignment) for f in failed}
        table = Table("service", "local URL", "what", "note", title="Port-forwards (Ctrl-C stops them)", title_justify="left")
        for a in assignments:
            table.add_row(a.spec.service, "-" if id(a) in down else a.url, a.spec.description, "not forwarded (see above)" if id(a) in down else a.note)
        console.print(table)
        if not supervisor.run_until_interrupted():
            raise _fail("every port-forward has stopped and was given up (see above); `make status` shows why")
    except KeyboardInterrupt:  # Ctrl-C while starting: same clean stop as later
        err.print("stopping port-forwards")
    finally:
        supervisor.stop()


@app.command("status")
def status_command(dist: Path = DIST, kubectl_bin: str = KUBECTL, context: str = CONTEXT) -> None:
    """Pods, jobs, the last Dagster runs and the raw tables' row counts, on one screen."""
    namespace = Stack.load(dist).namespace if dist.is_dir() and any(dist.glob("*.k8s.yaml")) else "floe"
    kubectl = Kubectl(kubectl_bin, context)
    _ground(kubectl)

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
            with elapsed(f"run {run_id}: waiting for it to finish", sys.stdout):
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
            kubectl = Kubectl(kubectl_bin, context)
            _ground(kubectl, nothing_done="No run was launched.")
            with dagster.forwarded(kubectl, namespace, dagster.WEBSERVER_SERVICE, dagster.WEBSERVER_PORT) as port:
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


def _verify_ground(kubectl: Kubectl, allow_context: list[str]) -> None:
    """The context (the one given, else the current one) is a local cluster or allowed, and it answers;
    pins ``kubectl`` to it. Nothing is created before this passes."""
    _ground(kubectl, allow_context=allow_context, nothing_done="Nothing was verified.")


def _timings_table(timings: verify.DeployTimings) -> Table:
    table = Table("phase", "applied (UTC)", "all Ready (UTC)", "took", "not counted", title="Last deploy (from the cluster's timestamps)", title_justify="left")
    for p in timings.phases:
        table.add_row(p.phase, p.applied.strftime("%H:%M:%S") if p.applied else "-", p.ready.strftime("%H:%M:%S") if p.ready else "-",
                      verify.format_seconds(p.seconds), "; ".join(p.unknown))
    table.add_row("all", timings.applied.strftime("%H:%M:%S") if timings.applied else "-",
                  timings.ready.strftime("%H:%M:%S") if timings.ready else "-", verify.format_seconds(timings.seconds), "")
    return table


def _timings_check(timings: verify.DeployTimings) -> tuple[str, str, str, str]:
    plan = verify.format_seconds(verify.PLAN_DEPLOY_SECONDS)
    if timings.seconds is None:
        return ("deploy time", "fail", f"unknown (plan: {plan})", "a phase has no Ready time: see the table above (`make status`)")
    figure = f"{verify.format_seconds(timings.seconds)} from the first apply to all Ready (plan: {plan})"
    if timings.seconds <= verify.PLAN_DEPLOY_SECONDS:
        return ("deploy time", "pass", figure, "")
    slowest = max((p for p in timings.phases if p.seconds is not None), key=lambda p: p.seconds or 0, default=None)
    hint = (f"slowest phase: {slowest.phase} ({verify.format_seconds(slowest.seconds)}). First deploys pull images for minutes; "
            "re-deploy with the images present, or give Docker Desktop more CPU/memory") if slowest else ""
    return ("deploy time", "fail", figure, hint)


def _verify_table(rows: list[tuple[str, str, str, str]]) -> Table:
    table = Table("check", "result", "figure", "what to do", title="Verify", title_justify="left")
    styles = {"pass": "green", "fail": "red", "skip": "yellow"}
    words = {"pass": "pass", "fail": "FAIL", "skip": "skipped"}
    for name, status_, figure, hint in rows:
        table.add_row(name, f"[{styles[status_]}]{words[status_]}[/]", figure, hint if status_ != "pass" else "")
    return table


@app.command("verify")
def verify_command(
    trigger: bool = typer.Option(False, "--trigger", help="also launch one generation run (new orders + dbt build) and check it; without it nothing is changed"),
    timings: bool = typer.Option(False, "--timings", help="also report how long the last deploy took, per phase, against the plan's 5 minutes"),
    timeout: float = typer.Option(float(verify.DEFAULT_TIMEOUT_SECONDS), "--timeout", help="seconds the verifier may take (its pod gets 180 s more to start)"),
    poll: float = typer.Option(2.0, "--poll", help="seconds between status checks"),
    latency_budget_ms: float = typer.Option(None, "--latency-budget-ms", min=1, help="p95 gate of cube.latency (default: the plan's 100 ms; "
                                            "CI sets a budget for a shared runner)"),
    allow_context: list[str] = typer.Option([], "--allow-context", help="verify on this non-local context anyway"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Run the verification Job in the namespace; print one report table; keep it for `make status`."""
    stack = _stack(dist)
    try:
        template = verify.load_template(dist)
    except ManifestError as exc:
        raise _fail(str(exc)) from None
    namespace = stack.namespace
    kubectl = Kubectl(kubectl_bin, context)
    _verify_ground(kubectl, allow_context)
    try:
        verify.check_namespace(kubectl, namespace)
        cluster = kubectl.workloads_and_pods(namespace)
        verify.check_stack_up(stack, cluster, datetime.now(UTC))
    except verify.NotReady as exc:
        raise _fail(f"verify: {exc}") from None
    except CommandError as exc:
        raise _fail(f"verify: {exc}") from None
    extra: list[tuple[str, str, str, str]] = []
    if timings:
        deploy_times = verify.deploy_timings(stack, cluster)
        console.print(_timings_table(deploy_times))
        extra.append(_timings_check(deploy_times))
    what = "--trigger: one generation run is launched and checked" if trigger else "read-only: no pipeline run is launched"
    console.print(f"[bold]verify[/]: namespace {namespace} on context {kubectl.context}; {what}")
    try:
        # Lines, not a spinner: the verifier's own progress lines are printed in between.
        with elapsed("verify: running the verification Job", sys.stdout, tty=False):
            outcome = verify.run(
                kubectl, namespace, template, timeout=timeout, trigger=trigger, poll=poll,
                latency_budget_ms=latency_budget_ms,
                on_line=lambda line: console.print(f"  {line}", markup=False, soft_wrap=True),
            )
    except CommandError as exc:
        raise _fail(f"verify: {exc}") from None
    except KeyboardInterrupt:
        err.print("interrupted: the verification Job was deleted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    try:
        verify.save(kubectl, namespace, template, outcome)
    except CommandError as exc:
        err.print(f"[yellow]warning: the result could not be kept for `make status`: {exc}[/]")
    code = outcome.exit_code
    if outcome.report is not None:
        rows = [(c.name, c.status, c.figure, c.hint) for c in outcome.report.checks] + extra
        console.print(_verify_table(rows))
        if code == ExitCode.SUCCESS and any(r[1] == "fail" for r in extra):
            code = ExitCode.FAILURE
        passed, enabled, skipped, failed = verify.counts({"checks": [{"status": r[1], "name": r[0]} for r in rows]})
        verdict = {ExitCode.SUCCESS: "[green]ok[/]", ExitCode.FAILURE: "[red]FAILED[/]", ExitCode.TIMEOUT: "[yellow]TIMED OUT[/]"}[code]
        console.print(f"verify {verdict}: {passed}/{enabled} checks passed" + (f", {skipped} skipped (service switched off)" if skipped else "")
                      + (f"; failed: {', '.join(failed)}" if failed else "") + f" (job/{outcome.job})")
    else:
        if extra:
            console.print(_verify_table(extra))
        if outcome.diagnosis:
            err.print(outcome.diagnosis, markup=False, highlight=False, soft_wrap=True)
        if outcome.log_tail:
            err.print("last log lines of the verifier:", markup=False)
            err.print("\n".join(f"  {line}" for line in outcome.log_tail), markup=False, highlight=False, soft_wrap=True)
        err.print(f"[red]verify failed:[/] {outcome.problem}" if code == ExitCode.FAILURE else f"[yellow]verify timed out:[/] {outcome.problem}")
    raise typer.Exit(int(code))


@app.command("image-name")
def image_name_command(dist: Path = DIST, image: str = typer.Option(None, "--image")) -> None:
    """Print the project image name:tag (what `make image` builds)."""
    images = project_images(_stack(dist), None, image)
    if len(images) != 1:
        raise _fail(f"expected one project image in {dist}/, found {images or 'none'}; set {PROJECT_IMAGE_ENV}")
    console.print(images[0])


# The loaders' binaries (tests point these at stand-ins that record their arguments).
LOADER_ENV = {"kind": "FLOE_KIND", "k3d": "FLOE_K3D", "minikube": "FLOE_MINIKUBE"}


@app.command("load-image")
def load_image_command(
    image: str = typer.Option(None, "--image", help="default: the project image in dist/"),
    allow_context: list[str] = typer.Option([], "--allow-context"),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what would run, run nothing"),
    timeout: float = typer.Option(900.0, "--timeout", help="seconds the load command may take"),
    dist: Path = DIST,
    kubectl_bin: str = KUBECTL,
    context: str = CONTEXT,
) -> None:
    """Make the built project image available to the current cluster (`make image` runs it after `docker build`).

    kind: `kind load docker-image`; k3d: `k3d image import`; minikube: `minikube image load`; Docker
    Desktop, OrbStack and Rancher Desktop with dockerd share docker's image store (nothing to do).
    Rancher Desktop with containerd is refused with the command that works there.
    """
    images = project_images(_stack(dist), None, image)
    if len(images) != 1:
        raise _fail(f"expected one project image in {dist}/, found {images or 'none'}; set {PROJECT_IMAGE_ENV}")
    kubectl = Kubectl(kubectl_bin, context)
    _ground(kubectl, docker=True, allow_context=allow_context, nothing_done="Nothing was built or loaded." if dry_run else "Nothing was loaded.")
    inputs = preflight.gather(kubectl, Docker(os.environ.get("FLOE_DOCKER", "docker")), [], allow_context)
    check = preflight.context_check(inputs, allow_context)
    if not check.ok:
        raise _fail(f"not loading {images[0]}: {check.message}")
    detected = detect(KubeContext.from_config_view(inputs.config_view, inputs.context), inputs.nodes)
    reached = inputs.reachable[0] == 0
    console.print(f"context {inputs.context}: {detected.describe()} [{detected.evidence}]"
                  + ("" if reached else " (cluster not reachable: decided from the context alone)"), markup=False)
    plan = load_plan(detected, images[0], {tool: os.environ[env] for tool, env in LOADER_ENV.items() if os.environ.get(env)})
    if plan.refused:
        raise _fail(plan.reason)
    if plan.argv is None:
        console.print(plan.reason, markup=False)
        return
    console.print(f"{plan.reason}\n$ {' '.join(plan.argv)}", markup=False, soft_wrap=True)
    if dry_run:
        return
    if not reached:
        raise _fail(f"the cluster does not answer ({inputs.reachable[1].strip() or 'no answer'}): start it, then run `make image` again")
    result = subprocess_runner(plan.argv, timeout=timeout)
    if result.returncode == 127:
        raise _fail(f"`{plan.argv[0]}` not found: {plan.tool} is needed to load the image into this cluster. "
                    f"Install it ({plan.install}) or put it on PATH ({LOADER_ENV[plan.tool or '']} names another binary), then run `make image` again.")
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise _fail(f"`{' '.join(plan.argv)}` failed (exit {result.returncode}): {lines[-1] if lines else 'no output'}")
    console.print(f"[green]{images[0]} is available in the cluster[/]")


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
        kubectl = Kubectl(kubectl_bin, context)
        _ground(kubectl)
        try:
            secret = access.secret_value(kubectl.get_json("secret", "-n", stack.namespace, ref.secret), ref.key)
        except (CommandError, KeyError) as exc:
            raise _fail(str(exc)) from None
    print(access.cube_token(secret, ttl))
