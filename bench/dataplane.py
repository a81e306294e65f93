"""The agent's data plane against the same proxy standalone, on the lab (issue 5: "If the agent's control-plane work
slows the proxy, run the data plane in its own process; measure before deciding").

bench/proxy.py answered that with a stand-in (a task burning 1 ms in every 10 ms in the proxy's loop). This runs
the real thing: a lab of HOSTS hosts (real agents gossiping over signed UDP, podman, probes), a service of 3 nginx
replicas (one per host, image built from this machine's nginx: bench/dataplanebench/image.py) with an HTTP
readiness probe every second, published on PORT. In h1's network namespace:
  agent   wrk -> h1's published port: the proxy as h1's agent runs it (since the runs of 2026-11-30, which shared
          the agent's event loop with gossip, probes, reconciliation and the API: in the agent's data-plane
          process, node.proxyprocess)
  apart   wrk -> a standalone proxy (bench/proxy.py serve) in the same namespace, forwarding to the same 3 replica
          addresses, with h1's agent still running beside it
  worker  (opt-in: --configs worker worker-api worker-churn ...) wrk -> the agent's data-plane process started alone
          by this bench (`python -m node proxy-worker`) and fed the apart route through its stdin: the worker's
          code without its place under the agent
h1's agent and its data-plane process (all their threads) and the standalone proxy share CPU1; wrk runs on CPU0, and
so does the rest of the lab (the replicas, podman and the other hosts' agents inherit this process's CPU0 affinity,
set before the lab starts), the same for every config. Each config is measured quiet, with a client polling h1's API
(`-api`: GET /v1/services and /v1/services/NAME/replicas, API_RATE a second from the root namespace, as a dashboard
would), and under churn (`-churn`: a second service of 3 nginx replicas scaled to 6 and back every CHURN_EVERY s:
placement, podman creates and removals, probes and observed state on every host).
Tests, interleaved over REPS repetitions (even ones in reverse order), medians:
  c64  keep-alive, -c64: req/s and p99 (throughput at saturation)
  c1   keep-alive, -c1: p99 and max (one request at a time: a stall of the proxy's loop shows whole in the tail)
Also printed: h1's agent's CPU use at rest (the agent and its data-plane process, % of one core).

Run as root:  .venv/bin/python bench/dataplane.py [--reps 5] [--dur 8] [--api-rate 10] [--churn-every 2] [--keep]
Needs: the lab's tools (bash scripts/install.sh), nginx and wrk. Builds its own lab in WORK/lab and refuses to
run while another lab is up (one per machine); every wrk run is bounded by -d and `timeout`; the standalone
proxy is ended by PID, the lab removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataplanebench import image  # noqa: E402
from proxybench.measure import cpu_us, git_commit  # noqa: E402
from proxybench.procs import terminate  # noqa: E402
from proxybench.report import UNIT_MS, median, parse_wrk  # noqa: E402

from node.lab import hostpodman, procs  # noqa: E402
from node.lab.state import LabDir  # noqa: E402
from node.lab.wait import poll_until  # noqa: E402

WORK = Path("/tmp/shoal-dataplanebench")
SHOAL = [sys.executable, "-m", "node"]
REGISTRY = "198.18.0.1:5000"
IMAGE = f"{REGISTRY}/shoal-bench-nginx:1"
SERVICE, PORT, APART_PORT, WORKER_PORT = "benchweb", 18080, 18090, 18091
CHURN = "benchchurn"  # scaled up and down during the -churn configs
H1, H1_NS = "198.18.0.11", "shoal-h1"
CLIENT_CPU, NODE_CPU = 0, 1
DEADLINE_S = 120.0
CONFIGS = ("agent", "apart", "agent-api", "apart-api", "agent-churn", "apart-churn")
WORKER_CONFIGS = ("worker", "worker-api", "worker-churn")  # opt-in: the agent's worker, fed by this bench instead
PORTS = {"agent": PORT, "apart": APART_PORT, "worker": WORKER_PORT}
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def lab_env() -> dict[str, str]:
    env = dict(os.environ, SHOAL_LAB_DIR=str(WORK / "lab"))
    env.pop("CONTAINER_HOST", None)
    return env


def lab(*args: str) -> None:
    subprocess.run([*SHOAL, "lab", *args], check=True, stdout=subprocess.DEVNULL, env=lab_env(), timeout=600)


def get(path: str) -> object:
    with _HTTP.open(f"http://{H1}:7947{path}", timeout=5) as response:
        return json.loads(response.read())


def post(path: str, body: bytes, content_type: str) -> None:
    req = urllib.request.Request(f"http://{H1}:7947{path}", data=body, method="POST",
                                 headers={"Content-Type": content_type})
    with _HTTP.open(req, timeout=10):
        pass


def wait(cond: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    if not poll_until(cond, deadline_s, interval_s=0.5):
        raise SystemExit(f"timed out after {deadline_s:g} s waiting for {what}")


def push_image() -> None:
    """Build the nginx image with the lab's builder podman (never the machine's store) and push it."""
    builder = LabDir(WORK / "lab").builder
    hostpodman.write_config(builder, "vfs")
    env = hostpodman.env(builder)
    try:
        tar = builder.root / "nginx.tar"
        with tar.open("wb") as out:
            image.write_tar(out)
        changes = [arg for change in image.IMPORT_CHANGES for arg in ("--change", change)]
        steps = (["import", "--quiet", *changes, str(tar), IMAGE], ["push", "--quiet", "--tls-verify=false", IMAGE])
        for args in steps:
            subprocess.run(["podman", *args], env=env, check=True, capture_output=True, timeout=300)
    finally:
        hostpodman.unmount_under(builder.root)
        shutil.rmtree(builder.root, ignore_errors=True)


def deploy() -> list[str]:
    """Apply the service through h1; return its replicas' addresses once all 3 are ready."""
    probe = f"    x-shoal:\n      readiness: {{http_get: {{path: /, port: {image.PORT}}}, period: 1s}}\n"
    manifest = (f"services:\n  {SERVICE}:\n    image: {IMAGE}\n    ports: [\"{PORT}:{image.PORT}\"]\n"
                f"    deploy:\n      replicas: 3\n      placement: {{max_replicas_per_node: 1}}\n{probe}"
                f"  {CHURN}:\n    image: {IMAGE}\n    deploy:\n      replicas: 3\n{probe}")
    post("/v1/services", manifest.encode(), "application/yaml")
    rows: list[dict[str, object]] = []

    def ready() -> bool:
        nonlocal rows
        found, churn = get(f"/v1/services/{SERVICE}/replicas"), get(f"/v1/services/{CHURN}/replicas")
        rows = found if isinstance(found, list) else []
        churning = churn if isinstance(churn, list) else []
        return all(len(rs) == 3 and all(r["ready"] for r in rs) for rs in (rows, churning))

    wait(ready, f"3 ready replicas of {SERVICE} and of {CHURN}")
    return [f"{r['address']}:{image.PORT}" for r in rows]


def pin_agent() -> list[int]:
    """Move h1's agent and its data-plane process, every thread of each, onto the node's CPU; return their pids."""
    pid = int((WORK / "lab" / "h1" / "agent.pid").read_text())
    pids = [pid, *(p.pid for p in procs.snapshot() if p.ppid == pid)]
    for each in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(NODE_CPU), str(each)], check=True, capture_output=True)
    return pids


def on_node_cpu(name: str, argv: list[str], ready: bytes, stdin: bytes | None = None) -> subprocess.Popen[bytes]:
    """Start `argv` in h1's namespace on the node's CPU, logging to WORK/NAME.log; `stdin`, if given, is written to
    a pipe kept open for the process's lifetime. Returns once the log shows `ready`."""
    log_path = WORK / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
    cmd = ["ip", "netns", "exec", H1_NS, "taskset", "-c", str(NODE_CPU), *argv]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else None, stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.flush()
    wait(lambda: ready in log_path.read_bytes() or proc.poll() is not None, f"the {name} proxy")
    if proc.poll() is not None:
        raise SystemExit(f"the {name} proxy exited; {log_path}")
    return proc


def start_worker(backends: list[str]) -> subprocess.Popen[bytes]:
    """The agent's data-plane process (`python -m node proxy-worker`) with no agent: this bench feeds it the same
    route as `apart` through its stdin. Beside `agent` and `apart` it tells the worker's code apart from its
    place under the agent. It exits when its stdin closes."""
    from node.proxy import Address, Endpoint, ProxyConfig, Route
    from node.proxypipe import Configure, SetTable, frame
    from node.proxyworker import ARGUMENT

    endpoints = tuple(Endpoint(ip, int(port)) for ip, port in (b.rsplit(":", 1) for b in backends))
    feed = frame(Configure(ProxyConfig(), "info")) + \
        frame(SetTable({Address(H1, WORKER_PORT): Route(SERVICE, endpoints)}))
    return on_node_cpu("worker", [*SHOAL, ARGUMENT], b"proxy table applied", stdin=feed)


def start_apart(backends: list[str]) -> subprocess.Popen[bytes]:
    return on_node_cpu("apart", [sys.executable, str(ROOT / "bench" / "proxy.py"), "serve", "--listen",
                                 f"{H1}:{APART_PORT}", "--backends", ",".join(backends)], b"serving")


class Background:
    """Control-plane load on h1 while a config runs: `tick()` every `every_s` until stopped (bounded by the run)."""

    def __init__(self, tick: Callable[[], None], every_s: float) -> None:
        self.tick, self.every_s, self.done, self.calls, self.errors = tick, every_s, threading.Event(), 0, 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(30)

    def _run(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                self.tick()
                self.calls += 1
            except OSError:
                self.errors += 1


def poll_api() -> None:
    """A dashboard's refresh: the services, then one service's replicas."""
    get("/v1/services")
    get(f"/v1/services/{SERVICE}/replicas")


def churner() -> Callable[[], None]:
    """Scale CHURN between 3 and 6 replicas, one step per call: placement, podman creates and removals, observed
    state gossiped back, on every host."""
    sizes = [6, 3]

    def tick() -> None:
        sizes.reverse()
        post(f"/v1/services/{CHURN}/scale", json.dumps({"replicas": sizes[0]}).encode(), "application/json")

    return tick


def wrk(name: str, port: int, conns: int, dur: int) -> Path:
    out = WORK / "results" / f"{name}.txt"
    cmd = ["timeout", str(dur + 30), "ip", "netns", "exec", H1_NS, "taskset", "-c", str(CLIENT_CPU), "wrk", "-t1",
           f"-c{conns}", f"-d{dur}s", "--latency", "--timeout", "5s", f"http://{H1}:{port}/"]
    done = subprocess.run(cmd, capture_output=True, timeout=dur + 40)
    out.write_bytes(done.stdout + done.stderr)
    return out


def max_ms(path: Path) -> float | None:
    m = re.search(r"Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", path.read_text())
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


def measure(args: argparse.Namespace) -> dict[str, list[dict[str, float | None]]]:
    rows: dict[str, list[dict[str, float | None]]] = {c: [] for c in args.configs}
    for config in args.configs:  # warm-up: connections, caches, the replicas' first requests
        wrk(f"warm_{config}", PORTS[config.split("-")[0]], 64, 2)
    for rep in range(1, args.reps + 1):
        # ABBA: even repetitions run the configs in reverse, so each config of a pair runs first as often as
        # second, and the quiet ones never run straight after churn (podman still stops its containers then).
        for config in args.configs if rep % 2 else reversed(args.configs):
            port = PORTS[config.split("-")[0]]
            load = (Background(poll_api, 1 / args.api_rate) if config.endswith("-api") else
                    Background(churner(), args.churn_every) if config.endswith("-churn") else None)
            with contextlib.ExitStack() as stack:
                if load is not None:
                    stack.enter_context(load)
                c64 = parse_wrk(wrk(f"{rep}_{config}_c64", port, 64, args.dur))
                c1_path = wrk(f"{rep}_{config}_c1", port, 1, args.dur)
            c1 = parse_wrk(c1_path)
            row = {"rps": c64["rps"], "p99": c64["p99"], "c1_p99": c1["p99"], "c1_max": max_ms(c1_path),
                   "c1_rps": c1["rps"], "errors": (c64["errors"] or 0) + (c1["errors"] or 0)}
            rows[config].append(row)
            api = f", background calls {load.calls} ({load.errors} failed)" if load is not None else ""
            print(f"  rep {rep} {config}: c64 {row['rps'] or 0:,.0f}/s p99 {ms(row['p99'])}; "
                  f"c1 {row['c1_rps'] or 0:,.0f}/s p99 {ms(row['c1_p99'])} max {ms(row['c1_max'])}; "
                  f"errors {row['errors']:.0f}{api}", flush=True)
    return rows


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} ms"


def rest_cpu(pids: list[int], seconds: float = 10.0) -> float:
    """h1's agent's CPU use over `seconds` with no traffic (its processes together), as a share of one core."""
    before = sum(sum(cpu_us(pid)) for pid in pids)
    time.sleep(seconds)  # measuring a span of time, not waiting for a condition
    return (sum(sum(cpu_us(pid)) for pid in pids) - before) / (seconds * 1e6)


def report(rows: dict[str, list[dict[str, float | None]]], args: argparse.Namespace, rest: float) -> None:
    print(f"\n{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, commit {git_commit()}, {args.hosts} lab hosts, "
          f"medians of {args.reps} interleaved runs of {args.dur} s; h1's agent at rest: {rest:.1%} of a core\n")
    print("| config | c64 req/s | c64 p99 | c1 req/s | c1 p99 | c1 max | errors |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    med: dict[str, dict[str, float | None]] = {}
    for config in args.configs:
        runs = rows[config]
        med[config] = {k: median([r[k] for r in runs]) for k in ("rps", "p99", "c1_rps", "c1_p99", "c1_max")}
        m = med[config]
        print(f"| {config} | {m['rps'] or 0:,.0f} | {ms(m['p99'])} | {m['c1_rps'] or 0:,.0f} | {ms(m['c1_p99'])} | "
              f"{ms(m['c1_max'])} | {sum(r['errors'] or 0 for r in runs):.0f} |")
    print("\nagent (and worker) / apart within each repetition (median; 1.00 = the standalone proxy's figure):")
    loads = ("", "-api", "-churn")
    for quiet, other in [(f"{which}{load}", f"apart{load}") for which in ("agent", "worker") for load in loads]:
        if quiet not in rows or other not in rows:
            continue
        cells = []
        for key in ("rps", "p99", "c1_p99", "c1_max"):
            pairs = [(a[key], b[key]) for a, b in zip(rows[quiet], rows[other], strict=True)]
            ratios = [x / y for x, y in pairs if x is not None and y]
            cells.append(f"{key} {statistics.median(ratios):.2f}" if ratios else f"{key} -")
        print(f"  {quiet} / {other}: " + ", ".join(cells))
    (WORK / "results" / "results.json").write_text(json.dumps({"runs": rows, "medians": med, "rest_cpu": rest}))


def lab_traces() -> list[str]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in netns.splitlines() if re.match(r"shoal-h\d+\b", line)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--dur", type=int, default=8, help="each wrk run, s")
    parser.add_argument("--api-rate", type=float, default=10.0, help="-api configs: polls of h1's API a second")
    parser.add_argument("--churn-every", type=float, default=2.0,
                        help="-churn configs: scale the second service 3 <-> 6 this often, s")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS + WORKER_CONFIGS)
    parser.add_argument("--keep", action="store_true", help="leave the lab up")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the lab)")
    missing = [tool for tool in ("nginx", "wrk", "taskset", "ldd") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"missing {missing}: apt-get install nginx-light wrk util-linux")
    if lab_traces():
        raise SystemExit(f"a lab is up on this machine ({lab_traces()}); `shoal lab down` it first (one per machine)")
    os.sched_setaffinity(0, {CLIENT_CPU})  # this process (the API poller) is a client too
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "results").mkdir(parents=True)
    apart = worker = None
    try:
        print(f"lab up {args.hosts} ...", flush=True)
        lab("up", str(args.hosts))
        push_image()
        backends = deploy()
        print(f"{SERVICE} ready on {', '.join(backends)}", flush=True)
        pids = pin_agent()
        apart = start_apart(backends)
        if any(c.startswith("worker") for c in args.configs):
            worker = start_worker(backends)
        rest = rest_cpu(pids)
        report(measure(args), args, rest)
    finally:
        if apart is not None:
            terminate(apart, 10)
        if worker is not None:
            assert worker.stdin is not None
            worker.stdin.close()  # the worker's own way out; terminate() if it does not take it
            terminate(worker, 10)
        if not args.keep:
            lab("down")


if __name__ == "__main__":
    main()
