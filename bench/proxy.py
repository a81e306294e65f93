"""Shoal's embedded proxy against HAProxy in TCP mode on the same 3 backends, in the same run (issue 5).

Method of ../shared/research/proxy.md: a private network namespace (created and deleted here), 3 nginx-light
backends (1 worker each; `/` a 100-byte body, `/1m` a 1 MiB file), wrk 4.1 with -t1 on CPU0, backends and the
proxy under test on CPU1 ("the node"), interleaved repetitions (even ones in reverse order), medians. Tests per
config and repetition:
  rps   keep-alive, -c64, DUR s on `/`          -> req/s, p50, p99
  conn  `Connection: close`, -c64, DUR2 s on `/` -> new connections/s
  big   keep-alive, -c16, DUR2 s on `/1m`       -> MiB/s
Configs:
  haproxy-tcp         Debian HAProxy, nbthread 1, mode tcp, balance roundrobin
  shoal               node.proxy.Proxy in its own process on uvloop (how the agent would run a separate data plane)
  shoal-busy-inloop   the same, plus a task in the proxy's own loop that burns BUSY_MS of CPU every BUSY_EVERY_MS
                      (control-plane work sharing the loop: it blocks the loop while it runs)
  shoal-busy-apart    the plain shoal process, while a separate process on the same CPU burns the same CPU
                      (the same work in the agent's own process: the kernel preempts it)
  shoal-asyncio       as shoal, on the stdlib loop (optional; not in the default set)
  floor               the least a Protocol proxy on uvloop does (bench/proxybench/floor.py; optional): shoal /
                      floor is what the proxy's features cost, floor / haproxy-tcp what the design can reach

Run as root:  .venv/bin/python bench/proxy.py run [--reps 3] [--dur 10] [--dur2 5] [--configs ...]
Needs: apt-get install haproxy nginx-light wrk (iproute2, util-linux taskset, curl). Every wrk run is bounded by
-d and `timeout`; every process started here is ended by PID and the namespace is deleted on exit.
Also: `bench/proxy.py serve ...` is the proxy process itself (started by `run` inside the namespace).
CPU cost:     .venv/bin/python bench/proxy.py cpu [--reps 3] [--dur 5] [--profile] [--base TREE --configs ...]
  the same backends and proxies, keep-alive and `Connection: close` runs (-c64), each proxy process's utime+stime
  (/proc/PID/stat) over a run divided by wrk's request count: CPU us per request and per new connection, and the
  same for the backends. Proxy / backends is the steadiest figure on a shared machine. --base TREE runs a second
  Shoal proxy from another tree (shoal-base) interleaved with this one; --profile runs shoal under cProfile and
  leaves WORK/shoal.prof.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's node.proxy, not an installed copy

from proxybench import floor  # noqa: E402
from proxybench.measure import cpu_idle_s, cpu_us, first_line, git_commit, interpreter, tree_cpu_us  # noqa: E402
from proxybench.procs import terminate  # noqa: E402
from proxybench.report import median, parse_wrk, report, wrk_requests  # noqa: E402

NS = "shoalpxbench"
WORK = Path("/tmp/shoal-proxybench")
CLIENT_CPU, NODE_CPU = 0, 1
BACKENDS = [("127.0.0.1", 18081), ("127.0.0.1", 18082), ("127.0.0.1", 18083)]
BACKEND_LIST = ",".join(f"{ip}:{port}" for ip, port in BACKENDS)  # a proxy process's --backends
URLS = {"haproxy-tcp": "http://127.0.0.1:18100", "shoal": "http://127.0.0.2:18110",
        "shoal-busy-inloop": "http://127.0.0.2:18111", "shoal-busy-apart": "http://127.0.0.2:18110",
        "shoal-asyncio": "http://127.0.0.2:18112", "shoal-base": "http://127.0.0.2:18113",
        "floor": "http://127.0.0.2:18114",
        "direct": "http://127.0.0.1:18081"}
DEFAULT_CONFIGS = ["haproxy-tcp", "shoal", "shoal-busy-inloop", "shoal-busy-apart"]


# ------------------------------------------------------------------------------------------------ the proxy ---

def serve(args: argparse.Namespace) -> None:
    """Run one Shoal proxy until SIGTERM: listen on args.listen, round robin over args.backends."""
    from gossip.clock import LoopClock
    from node.proxy import Address, Endpoint, Proxy, Route

    ip, port = args.listen.rsplit(":", 1)
    endpoints = tuple(Endpoint(h, int(p)) for h, p in (b.rsplit(":", 1) for b in args.backends.split(",")))
    pauses = GcPauses()
    gc.callbacks.append(pauses.callback)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        async with Proxy(clock=LoopClock(loop)) as proxy:
            failed = await proxy.update({Address(ip, int(port)): Route("bench", endpoints)})
            if failed:
                raise SystemExit(f"cannot listen on {args.listen}")
            # Count the collections while serving only: start-up's (imports) are not in the data path. No
            # gc.freeze() here: with no cycles left, one gen0 collection came in a whole `cpu` run with it or
            # without it (0.08 against 0.18 ms).
            pauses.reset()
            busy = asyncio.create_task(burn(args.busy_ms, args.busy_every_ms, stop)) if args.busy_ms else None
            print(f"serving {args.listen} on {type(loop).__module__}", flush=True)
            await stop.wait()
            if busy is not None:
                await busy
            print(proxy.snapshot()[0], flush=True)  # counters, for the log
            print(f"gc pauses per generation: {pauses.summary()}", flush=True)

    if args.profile:  # cProfile of the whole process until SIGTERM (`cpu --profile`: where the time goes)
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    if args.loop == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
    if args.profile:
        profiler.disable()
        profiler.dump_stats(args.profile)


class GcPauses:
    """Count and length of the cyclic GC's collections, per generation: each one stalls the proxy's loop, so
    they show in the latency tail (printed to the proxy's log at exit)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.reset()

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.total_s = [0.0, 0.0, 0.0]
        self.max_s = [0.0, 0.0, 0.0]

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        took, generation = time.perf_counter() - self.started, info["generation"]
        self.count[generation] += 1
        self.total_s[generation] += took
        self.max_s[generation] = max(self.max_s[generation], took)

    def summary(self) -> str:
        return ", ".join(f"gen{g}: {self.count[g]} x, {self.total_s[g] * 1000:.1f} ms in all, "
                         f"longest {self.max_s[g] * 1000:.2f} ms" for g in range(3))


async def burn(busy_ms: float, every_ms: float, stop: asyncio.Event) -> None:
    """Stand-in for control-plane work in the same loop: hold the CPU (and the loop) busy_ms every every_ms."""
    while not stop.is_set():
        end = time.perf_counter() + busy_ms / 1000
        while time.perf_counter() < end:
            pass
        try:
            await asyncio.wait_for(stop.wait(), (every_ms - busy_ms) / 1000)
        except TimeoutError:
            continue


def burn_apart(args: argparse.Namespace) -> None:
    """The same work as `burn`, in a process of its own (until SIGTERM)."""
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await burn(args.busy_ms, args.busy_every_ms, stop)
    asyncio.run(main())


# ------------------------------------------------------------------------------------------------- the run ---

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started: dict[str, subprocess.Popen[bytes]] = {}  # by name (`ip netns exec` and taskset exec, so
        # each Popen's pid is the process itself: what `cpu` reads /proc/PID/stat of)
        self.results = WORK / "results"

    def ns(self, *cmd: str, cpu: int | None = None) -> list[str]:
        pinned = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return ["ip", "netns", "exec", NS, *pinned, *cmd]

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = open(WORK / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(self.ns(*cmd, cpu=NODE_CPU), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.started[name] = proc
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        terminate(proc, 5)
        if proc in self.procs:
            self.procs.remove(proc)

    def cleanup(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL, check=False)

    def setup(self) -> None:
        shutil.rmtree(WORK, ignore_errors=True)
        (WORK / "www").mkdir(parents=True)
        self.results.mkdir()
        for path in (WORK, WORK / "www"):
            path.chmod(0o755)
        (WORK / "www" / "1m.bin").write_bytes(os.urandom(1 << 20))
        (WORK / "www" / "1m.bin").chmod(0o644)
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL, check=False)
        subprocess.run(["ip", "netns", "add", NS], check=True)
        subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
        body = "a" * 100
        for i, (ip, port) in enumerate(BACKENDS, 1):
            conf = WORK / f"backend{i}.conf"
            conf.write_text(f"""user www-data;
worker_processes 1;
daemon off;
pid {WORK}/backend{i}.pid;
error_log {WORK}/backend{i}.err warn;
events {{ worker_connections 8000; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 60s;
  default_type text/plain;
  server {{
    listen {ip}:{port} backlog=4096;
    location = / {{ return 200 "{body}"; }}
    location = /1m {{ default_type application/octet-stream; alias {WORK}/www/1m.bin; }}
  }}
}}
""")
            self.start(f"backend{i}", ["nginx", "-e", f"{WORK}/backend{i}.err", "-p", str(WORK), "-c", str(conf)])
        servers = "\n".join(f"  server s{i} {ip}:{port}" for i, (ip, port) in enumerate(BACKENDS, 1))
        (WORK / "haproxy.cfg").write_text(f"""global
  nbthread 1
  maxconn 8000
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  maxconn 8000
frontend ft_tcp
  mode tcp
  bind 127.0.0.1:18100
  default_backend bk_tcp
backend bk_tcp
  mode tcp
  balance roundrobin
{servers}
""")
        self.start("haproxy", ["haproxy", "-db", "-f", str(WORK / "haproxy.cfg")])
        self.shoal = self.start_shoal("shoal", "127.0.0.2:18110", "uvloop")
        if "shoal-asyncio" in self.args.configs:
            self.start_shoal("shoal-asyncio", "127.0.0.2:18112", "asyncio")
        if "floor" in self.args.configs:
            self.start("floor", [self.args.python, str(Path(__file__).resolve()), "floor", "--listen",
                                 "127.0.0.2:18114", "--backends", BACKEND_LIST])
        if getattr(self.args, "base", None):  # `cpu --base TREE`: that tree's proxy, to compare a change against
            python = self.args.base_python or self.args.python
            self.start("shoal-base", [python, str(Path(self.args.base) / "bench" / "proxy.py"), "serve",
                                      "--listen", "127.0.0.2:18113", "--backends", BACKEND_LIST])

    def start_shoal(self, name: str, listen: str, loop: str, busy: bool = False) -> subprocess.Popen[bytes]:
        cmd = [self.args.python, str(Path(__file__).resolve()), "serve", "--listen", listen, "--backends", BACKEND_LIST,
               "--loop", loop]
        if getattr(self.args, "profile", None):
            cmd += ["--profile", str(WORK / f"{name}.prof")]
        if busy:
            cmd += ["--busy-ms", str(self.args.busy_ms), "--busy-every-ms", str(self.args.busy_every_ms)]
        return self.start(name, cmd)

    def curl_size(self, url: str) -> int:
        out = subprocess.run(self.ns("curl", "-fsS", "-m", "5", url), capture_output=True, timeout=10)
        return len(out.stdout) if out.returncode == 0 else -1

    def ready(self, config: str) -> None:
        url = URLS[config]
        deadline = time.monotonic() + 15
        while self.curl_size(url + "/") != 100:
            if time.monotonic() > deadline:
                raise SystemExit(f"{config} not answering at {url}; logs in {WORK}")
            time.sleep(0.2)
        size = self.curl_size(url + "/1m")
        if size != 1 << 20:
            raise SystemExit(f"{config}: /1m gave {size} bytes")

    def wrk(self, name: str, url: str, conns: int, dur: int, *extra: str) -> None:
        cmd = ["timeout", str(dur + 30), *self.ns("wrk", "-t1", f"-c{conns}", f"-d{dur}s", "--latency",
                                                 "--timeout", "5s", *extra, url, cpu=CLIENT_CPU)]
        out = subprocess.run(cmd, capture_output=True, timeout=dur + 40)
        (self.results / f"{name}.txt").write_bytes(out.stdout + out.stderr)

    def cpu(self) -> None:
        """CPU cost per request (keep-alive) and per new connection (Connection: close) of each proxy process:
        its utime+stime over one wrk run divided by the requests wrk completed, and the same for the 3 backends
        together. Throughput on the shared CPU1 swings with whatever else runs there; CPU time per request hardly
        does, and at saturation proxy + backends per request is what decides how many requests get through."""
        a = self.args
        pids = {"haproxy-tcp": self.started["haproxy"].pid, **{name: proc.pid for name, proc in self.started.items()
                                                                if name.startswith("shoal") or name == "floor"}}
        backends = [self.started[f"backend{i}"].pid for i in range(1, len(BACKENDS) + 1)]
        for config in a.configs:
            self.ready(config)
            self.wrk(f"warm_{config}", URLS[config] + "/", 64, 2)
        rows: dict[str, dict[str, list[tuple[float, float, float]]]] = {c: {"rps": [], "conn": []} for c in a.configs}
        loads: list[str] = []
        for rep in range(1, a.reps + 1):
            loads.append(" ".join(Path("/proc/loadavg").read_text().split()[:3]))
            for config in in_order(a.configs, rep):
                for test, extra in (("rps", ()), ("conn", ("-H", "Connection: close"))):
                    (user0, sys0), other0 = cpu_us(pids[config]), sum(sum(tree_cpu_us(pid)) for pid in backends)
                    idle0 = cpu_idle_s(NODE_CPU)
                    self.wrk(f"{rep}_{config}_{test}", URLS[config] + "/", a.conns, a.dur, *extra)
                    (user1, sys1), other1 = cpu_us(pids[config]), sum(sum(tree_cpu_us(pid)) for pid in backends)
                    idle = (cpu_idle_s(NODE_CPU) - idle0) / a.dur
                    path = self.results / f"{rep}_{config}_{test}.txt"
                    done = wrk_requests(path) or math.nan
                    each = ((user1 - user0) / done, (sys1 - sys0) / done, (other1 - other0) / done)
                    rows[config][test].append(each)
                    r = parse_wrk(path)
                    print(f"  rep {rep} {config} {test}: {each[0]:.2f} + {each[1]:.2f} us CPU (user + sys) each, "
                          f"backends {each[2]:.2f}; {r['rps'] or 0:,.0f}/s, p99 {r['p99']} ms, "
                          f"errors {r['errors']:.0f}, CPU{NODE_CPU} {idle:.0%} idle", file=sys.stderr)
        pythons = f"shoal on {interpreter(a.python)}" + (
            f", shoal-base on {interpreter(a.base_python)}" if a.base_python else "")
        print(f"\n{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, commit {git_commit()}, {pythons}; "
              f"medians of {a.reps} runs of {a.dur} s; load average at each rep: {', '.join(loads)}\n")
        # The backends' CPU per request is the same work whichever proxy is in front, so proxy / backends cancels
        # out what slows the whole machine down at times (other work on the CPU, its caches, its clock).
        print("| config | keep-alive c64: proxy CPU us per request = user + sys | per run | backends "
              "| proxy / backends | Connection: close c64: proxy CPU us per connection = user + sys | per run "
              "| backends | proxy / backends |")
        print("|---|---:|---|---:|---:|---:|---|---:|---:|")

        def cells(runs: list[tuple[float, float, float]]) -> str:
            user, system, other = (median([r[i] for r in runs]) or math.nan for i in range(3))
            relative = median([(u + s) / b for u, s, b in runs if b]) or math.nan
            return (f"{median([u + s for u, s, _ in runs]) or math.nan:.1f} = {user:.1f} + {system:.1f} | "
                    + " / ".join(f"{u + s:.1f}" for u, s, _ in runs) + f" | {other:.1f} | {relative:.2f}")

        for config in a.configs:
            print(f"| {config} | {cells(rows[config]['rps'])} | {cells(rows[config]['conn'])} |")

    def around(self, config: str) -> list[subprocess.Popen[bytes]]:
        """Start what a config needs only while it is measured (busy work would tax the others' runs)."""
        if config == "shoal-busy-inloop":
            return [self.start_shoal(config, "127.0.0.2:18111", "uvloop", busy=True)]
        if config == "shoal-busy-apart":
            return [self.start(config, [self.args.python, str(Path(__file__).resolve()), "burn",
                                        "--busy-ms", str(self.args.busy_ms),
                                        "--busy-every-ms", str(self.args.busy_every_ms)])]
        return []

    def run(self) -> None:
        a = self.args
        for config in a.configs:
            extra = self.around(config)
            self.ready(config)
            self.wrk(f"warm_{config}", URLS[config] + "/", 64, 2)
            for proc in extra:
                self.stop(proc)
        loads: list[str] = []
        meta: dict[str, object] = {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "kernel": os.uname().release, "cpus": os.cpu_count(),
                "commit": git_commit(), "haproxy": first_line(["haproxy", "-v"]),
                "nginx": first_line(["nginx", "-v"]), "wrk": first_line(["wrk", "-v"]),
                "python": interpreter(a.python),
                "base_python": interpreter(a.base_python) if a.base_python else None, "params": vars(a),
                "loadavg": loads}
        print(f"measuring {a.configs}, {a.reps} reps", file=sys.stderr)
        for rep in range(1, a.reps + 1):
            loads.append(" ".join(Path("/proc/loadavg").read_text().split()[:3]))
            print(f"rep {rep}/{a.reps} loadavg {loads[-1]}", file=sys.stderr)
            for config in in_order(a.configs, rep):
                extra = self.around(config)
                if extra:
                    self.ready(config)
                url = URLS[config]
                self.wrk(f"{rep}_{config}_rps", url + "/", a.conns, a.dur)
                self.wrk(f"{rep}_{config}_conn", url + "/", a.conns, a.dur2, "-H", "Connection: close")
                self.wrk(f"{rep}_{config}_big", url + "/1m", a.conns_big, a.dur2)
                for proc in extra:
                    self.stop(proc)
                r = {t: parse_wrk(self.results / f"{rep}_{config}_{t}.txt") for t in ("rps", "conn", "big")}
                print(f"  {config}: {r['rps']['rps']} req/s  {r['conn']['rps']} conn/s  "
                      f"{r['big']['mibps']} MiB/s", file=sys.stderr)
        (self.results / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        report(self.results, a.configs, a.reps, meta)


def in_order(configs: list[str], rep: int) -> list[str]:
    """ABBA: even repetitions run the configs in reverse. A run leaves the machine in a state the next one starts
    in (TIME_WAIT sockets by the ten thousand after a Connection: close test, warm or cold caches), so a fixed
    order favours or taxes whichever config always follows another (bench/dataplane.py's fixed order had
    inflated a ratio from 1.33 to 2.05), and interleaving alone does not undo that."""
    return list(configs) if rep % 2 else list(reversed(configs))


# ------------------------------------------------------------------------------------------------------ CLI ---

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the benchmark (root)")
    run.add_argument("--reps", type=int, default=3)
    run.add_argument("--dur", type=int, default=10, help="keep-alive test, s")
    run.add_argument("--dur2", type=int, default=5, help="Connection: close and 1 MiB tests, s")
    run.add_argument("--conns", type=int, default=64)
    run.add_argument("--conns-big", type=int, default=16)
    run.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=sorted(URLS))
    run.add_argument("--busy-ms", type=float, default=1.0, help="busy configs: CPU held per slice, ms")
    run.add_argument("--busy-every-ms", type=float, default=10.0, help="busy configs: one slice per this, ms")
    cpu = sub.add_parser("cpu", help="CPU microseconds per request and per connection of each proxy (root)")
    cpu.add_argument("--reps", type=int, default=3)
    cpu.add_argument("--dur", type=int, default=5, help="each test, s")
    cpu.add_argument("--conns", type=int, default=64)
    cpu.add_argument("--configs", nargs="+", default=["haproxy-tcp", "shoal"],
                     choices=["haproxy-tcp", "shoal", "shoal-base", "floor"])
    cpu.add_argument("--profile", action="store_true", help="run shoal under cProfile (WORK/shoal.prof)")
    for mode in (run, cpu):
        mode.add_argument("--base", help="a tree (`git archive HEAD bench gossip node | tar -x -C TREE`) whose "
                                         "proxy runs as shoal-base, interleaved with this one's: A/B on the same noise")
        mode.add_argument("--base-python", help="the interpreter of shoal-base (default: --python); with --base "
                                                "THIS tree, an A/B of two interpreters on the same proxy")
        mode.add_argument("--python", default=sys.executable,
                          help="the interpreter that runs the Shoal proxy (default: this one). It needs uvloop; "
                               "the host install's venv (/opt/shoal/bin/python, on Debian's python3) is what an "
                               "installed agent runs")
    serve_p = sub.add_parser("serve", help="one proxy process (started by run)")
    serve_p.add_argument("--listen", required=True)
    serve_p.add_argument("--backends", required=True)
    serve_p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    serve_p.add_argument("--busy-ms", type=float, default=0.0)
    serve_p.add_argument("--busy-every-ms", type=float, default=10.0)
    serve_p.add_argument("--profile", help="write a cProfile of the process here on exit")
    floor_p = sub.add_parser("floor", help="the floor reference proxy (started by run and cpu)")
    floor_p.add_argument("--listen", required=True)
    floor_p.add_argument("--backends", required=True)
    burn_p = sub.add_parser("burn", help="busy work in a process of its own (started by run)")
    burn_p.add_argument("--busy-ms", type=float, default=1.0)
    burn_p.add_argument("--busy-every-ms", type=float, default=10.0)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
    elif args.command == "floor":
        floor.serve(args.listen, args.backends)
    elif args.command == "burn":
        burn_apart(args)
    else:
        if os.geteuid() != 0:
            raise SystemExit("run as root (ip netns)")
        missing = [tool for tool in ("haproxy", "nginx", "wrk", "curl", "taskset") if not shutil.which(tool)]
        if missing:
            raise SystemExit(f"missing {missing}: apt-get install haproxy nginx-light wrk curl util-linux")
        bench = Bench(args)
        try:
            bench.setup()
            if args.command == "cpu":
                bench.cpu()
            else:
                bench.run()
        finally:
            bench.cleanup()


if __name__ == "__main__":
    main()
