#!/usr/bin/env python3
"""The gateway against the wire (issue 25): polyrelay-gateway, a byte-passthrough floor and
LiteLLM's proxy, each in front of an upstream that answers at once, driven by wrk.

    python3 bench/gateway/run.py            # full: RUNS=3 runs, 10 s a cell
    QUICK=1 python3 bench/gateway/run.py    # 1 run, 2 s a cell, 200 held streams
    python3 bench/gateway/run.py --table target/gateway-bench/results-STAMP.jsonl
                                            # the tables again from raw results

Everything listens on 127.0.0.1; every server this script starts is stopped on exit (by
its process group, which the script created). Raw results go to target/gateway-bench/.
See bench/gateway/README.md for what each figure means. Python 3 standard library only.

Environment (all optional):
  QUICK=1            short cells (DURATION=2, RUNS=1, RSS_STREAMS=200, QUIET_WAIT=3)
  RUNS=3             runs; systems alternate within each run, the table shows the median
  DURATION=10        seconds a cell
  SYSTEMS=direct,gateway,floor,litellm
  SKIP_LITELLM=1     do not install or run LiteLLM
  LITELLM_VERSION=1.106.2   pinned; if pip cannot install it, the newest is tried
  RSS_STREAMS=2000,8000     held streams for the memory test ("" to skip)
  QUIET_IDLE=0.8     a cell starts once the CPUs were this idle over 1 s ...
  QUIET_WAIT=30      ... or after this many seconds of waiting, whichever comes first
  LITELLM_FAILOVER_MIN=12  seconds at least for LiteLLM's failover cells (~5 s a request)
  SERVER_WORKERS=N   tokio worker threads of the gateway and the floor (default: one a core)
  NO_BUILD=1         use target/release/{polyrelay-gateway,examples/passthrough} as built
"""

import asyncio
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "target", "gateway-bench")
QUICK = os.environ.get("QUICK") == "1"


def env_int(name, default):
    return int(os.environ.get(name, default))


RUNS = env_int("RUNS", 1 if QUICK else 3)
DURATION = env_int("DURATION", 2 if QUICK else 10)
QUIET_IDLE = float(os.environ.get("QUIET_IDLE", "0.8"))
QUIET_WAIT = env_int("QUIET_WAIT", 3 if QUICK else 30)
SYSTEMS = os.environ.get("SYSTEMS", "direct,gateway,floor,litellm").split(",")
if os.environ.get("SKIP_LITELLM") == "1" and "litellm" in SYSTEMS:
    SYSTEMS.remove("litellm")
LITELLM_VERSION = os.environ.get("LITELLM_VERSION", "1.106.2")
RSS_STREAMS = [
    int(n) for n in os.environ.get("RSS_STREAMS", "200" if QUICK else "2000,8000").split(",") if n
]
LITELLM_FAILOVER_MIN = env_int("LITELLM_FAILOVER_MIN", 12)
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Tokio reads TOKIO_WORKER_THREADS when the code does not set a worker count: the gateway's
# and the floor's runtime shape, without a rebuild.
WORKERS = (
    {"TOKIO_WORKER_THREADS": os.environ["SERVER_WORKERS"]} if os.environ.get("SERVER_WORKERS") else {}
)

# (scenario, concurrency, streamed, failover)
CELLS = [
    ("plain", 1, False, False),
    ("plain", 64, False, False),
    ("streamed", 1, True, False),
    ("streamed", 64, True, False),
    ("failover", 1, False, True),
    ("failover", 64, False, True),
]

# The model each system is asked for: (normal, failover, held stream). None: not served.
MODELS = {
    "direct": ("bench-model", None, None),
    "gateway": ("bench", "failover", "hold"),
    "floor": ("bench-model", None, "hold-open"),
    "litellm": ("bench", "primary", None),
}

SERVERS = []  # Popen objects, stopped on exit


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- processes ----


def start(name, argv, env=None, ready=None, timeout=120):
    """Starts argv in its own process group, its output in target/gateway-bench/NAME.log
    (a file, not a pipe: a server that logs a line per request must not wait on us);
    waits for `listening on http://ADDR` in that log (our binaries) or for `ready()`."""
    path = os.path.join(OUT, f"{name}.log")
    logf = open(path, "wb")
    p = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        cwd=OUT,
    )
    SERVERS.append(p)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.returncode}; see {path}")
        if ready is None:
            with open(path, errors="replace") as f:
                m = re.search(r"listening on http://(\S+)", f.read())
            if m:
                return p, m.group(1)
        elif ready():
            return p, None
        time.sleep(0.1 if ready is None else 0.5)
    raise RuntimeError(f"{name} not ready after {timeout} s; see {path}")


def stop_all():
    for p in SERVERS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in SERVERS:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)
    SERVERS.clear()


def on_signal(signum, frame):
    stop_all()
    sys.exit(128 + signum)


def tree(root):
    """The pid and every descendant (LiteLLM's workers and helpers)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def sum_over_tree(root, read_one):
    """read_one(pid) summed over the process tree under root (processes gone: skipped)."""
    total = 0
    for pid in tree(root):
        try:
            total += read_one(pid)
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_ticks(root):
    """utime + stime of the process tree under root, in clock ticks."""

    def one(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    return sum_over_tree(root, one)


def rss_kib(root):
    """VmRSS of the process tree under root, in KiB."""

    def one(pid):
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    return sum_over_tree(root, one)


def cpu_idle_over(seconds=1.0):
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)

    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def wait_quiet():
    """Waits (bounded) until the CPUs were QUIET_IDLE idle over a second."""
    start_t = time.monotonic()
    idle = cpu_idle_over()
    while idle < QUIET_IDLE and time.monotonic() - start_t < QUIET_WAIT:
        idle = cpu_idle_over()
    return idle, time.monotonic() - start_t


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


# ---- setup ----


def build():
    cmd = [
        "cargo", "build", "--release", "--features", "gateway",
        "--bin", "polyrelay-gateway", "--example", "passthrough",
    ]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    bins = (
        os.path.join(target, "release", "polyrelay-gateway"),
        os.path.join(target, "release", "examples", "passthrough"),
    )
    if os.environ.get("NO_BUILD") == "1" and all(os.path.exists(b) for b in bins):
        log("NO_BUILD=1: using the binaries already built")
        return bins
    log("building:", " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)
    return bins


def source_state(binary):
    """Which source the gateway binary was built from, as far as git can tell."""
    git = lambda *a: subprocess.run(  # noqa: E731
        ["git", *a], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(binary)))
    dirty = git("status", "--porcelain", "--", "src", "Cargo.toml")
    return f"gateway built {stamp}, HEAD now {git('rev-parse', '--short', 'HEAD')}" + (
        " (src/ has uncommitted changes)" if dirty else ""
    )


def ensure_wrk():
    if shutil.which("wrk"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk from Debian's packages")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env)
    return shutil.which("wrk") is not None


def ensure_litellm():
    """LiteLLM's proxy in its own virtualenv under target/; None if it cannot be had."""
    venv = os.path.join(OUT, "litellm-venv")
    bin_ = os.path.join(venv, "bin")
    pip = [os.path.join(bin_, "python"), "-m", "pip"]

    def installed():
        r = subprocess.run(pip + ["show", "litellm"], capture_output=True, text=True)
        m = re.search(r"^Version: (\S+)", r.stdout, re.M)
        return m.group(1) if m else None

    try:
        if not os.path.exists(os.path.join(bin_, "python")):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        version = installed()
        if version != LITELLM_VERSION:
            for spec in (f"litellm[proxy]=={LITELLM_VERSION}", "litellm[proxy]"):
                log(f"installing {spec} into {venv}")
                r = subprocess.run(pip + ["install", "-q", spec])
                if r.returncode == 0:
                    break
            version = installed()
        if version and os.path.exists(os.path.join(bin_, "litellm")):
            return os.path.join(bin_, "litellm"), version
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"LiteLLM: {e}")
    log("LiteLLM could not be installed: skipping it")
    return None


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(gateway_bin, passthrough_bin, litellm):
    servers = {}
    up, up_addr = start("upstream", [passthrough_bin, "--upstream-mode"])
    servers["direct"] = (up, up_addr)
    base = f"http://{up_addr}"
    conf = os.path.join(OUT, "gateway.toml")
    with open(conf, "w") as f:
        f.write(
            f"""# polyrelay-gateway in front of the bench upstream; defaults otherwise.
[providers.up]
kind = "openai_compatible"
base_url = "{base}/v1"
auth = "none"

[routes.bench]
targets = ["up/bench-model"]

[routes.failover]
targets = ["up/always-503", "up/bench-model"]

[routes.hold]
targets = ["up/hold-open"]
"""
        )
    if "gateway" in SYSTEMS or RSS_STREAMS:
        servers["gateway"] = start(
            "gateway", [gateway_bin, "--config", conf, "--listen", "127.0.0.1:0"], env=WORKERS
        )
    if "floor" in SYSTEMS or RSS_STREAMS:
        servers["floor"] = start("floor", [passthrough_bin, "--upstream", base], env=WORKERS)
    if litellm:
        port = free_port()
        conf = os.path.join(OUT, "litellm.yaml")
        with open(conf, "w") as f:
            f.write(
                f"""# LiteLLM's proxy in front of the bench upstream, with a fallback; defaults otherwise.
model_list:
  - model_name: bench
    litellm_params: {{model: openai/bench-model, api_base: "{base}/v1", api_key: "none"}}
  - model_name: primary
    litellm_params: {{model: openai/always-503, api_base: "{base}/v1", api_key: "none"}}
router_settings:
  fallbacks: [{{"primary": ["bench"]}}]
"""
            )
        addr = f"127.0.0.1:{port}"

        def ready():
            try:
                return http_get(f"http://{addr}/health/liveliness")[0] == 200
            except OSError:
                return False

        env = {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "NO_DOCS": "True",
            # No client keys, as for the gateway and the floor (loopback only).
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        }
        p, _ = start(
            "litellm",
            [litellm[0], "--config", conf, "--host", "127.0.0.1", "--port", str(port),
             "--num_workers", "1", "--telemetry", "False"],
            env=env,
            ready=ready,
            timeout=180,
        )
        servers["litellm"] = (p, addr)
    return servers


# ---- one cell ----


def upstream_count(up_addr):
    return int(http_get(f"http://{up_addr}/count")[1])


def run_cell(system, servers, c, streamed, model, duration):
    proc, addr = servers[system]
    up_addr = servers["direct"][1]
    idle, waited = wait_quiet()
    env = {**os.environ, "BENCH_MODEL": model, "BENCH_STREAM": "1" if streamed else "0"}
    calls0, cpu0 = upstream_count(up_addr), cpu_ticks(proc.pid)
    r = subprocess.run(
        ["wrk", "-t1", f"-c{c}", f"-d{duration}s", "--timeout", "10s",
         "-s", os.path.join(HERE, "chat.lua"), f"http://{addr}/v1/chat/completions"],
        env=env, capture_output=True, text=True, timeout=duration + 60,
    )
    cpu1, calls1 = cpu_ticks(proc.pid), upstream_count(up_addr)
    m = re.search(r"WRKJSON (\{.*\})", r.stdout)
    if not m:
        raise RuntimeError(f"wrk gave no result for {system}: {r.stdout}\n{r.stderr}")
    w = json.loads(m.group(1))
    complete = w["requests"] - w["bad_status"] - w["incomplete"]
    errors = w["bad_status"] + w["incomplete"] + w["connect"] + w["read"] + w["write"] + w["timeout"]
    secs = w["duration_us"] / 1e6
    return {
        **w,
        "complete": complete,
        "errors": errors,
        "rps": complete / secs,
        "cpu_us_per_req": (cpu1 - cpu0) / CLK_TCK * 1e6 / max(1, complete),
        "calls_per_req": (calls1 - calls0) / max(1, w["requests"]),
        "idle_before": idle,
        "waited_s": waited,
        "loadavg": open("/proc/loadavg").read().split()[0],
    }


# ---- held streams (memory) ----


async def hold_streams(addr, model, n, timeout=120):
    host, port = addr.rsplit(":", 1)
    body = json.dumps({"model": model, "stream": True,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    gate = asyncio.Semaphore(200)  # connects in flight, to stay under the accept backlog
    held, refused = [], []

    async def one():
        async with gate:
            try:
                r, w = await asyncio.open_connection(host, int(port))
                w.write(head + body)
                await w.drain()
                buf = b""
                while b"Hello" not in buf:
                    chunk = await r.read(4096)
                    if not chunk:
                        break
                    buf += chunk
                if buf.startswith(b"HTTP/1.1 200") and b"Hello" in buf:
                    held.append(w)
                else:
                    refused.append(buf[:40])
                    w.close()
            except OSError as e:
                refused.append(str(e))

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), timeout)
    return held, refused


def memory(servers):
    rows = []
    for n in RSS_STREAMS:
        for system in ("gateway", "floor"):
            proc, addr = servers[system]
            model = MODELS[system][2]
            warm, _ = asyncio.run(_hold_and_release(addr, model, 10, None))
            base = rss_kib(proc.pid)
            held_rss, got = asyncio.run(_hold_and_release(addr, model, n, proc.pid))
            after = rss_kib(proc.pid)
            row = {
                "system": system, "streams": n, "held": got["held"],
                "refused": got["refused"], "sample_refusal": got["sample"],
                "rss_idle_kib": base, "rss_held_kib": held_rss, "rss_after_kib": after,
                "kib_per_stream": (held_rss - base) / max(1, got["held"]),
                "whole_kib_per_stream": held_rss / max(1, got["held"]),
            }
            log(f"memory {system} {n}: {row}")
            rows.append(row)
    return rows


async def _hold_and_release(addr, model, n, pid):
    held, refused = await hold_streams(addr, model, n)
    await asyncio.sleep(1.0)
    rss = rss_kib(pid) if pid else 0
    for w in held:
        w.close()
    await asyncio.sleep(1.0)
    return rss, {"held": len(held), "refused": len(refused),
                 "sample": repr(refused[0]) if refused else None}


# ---- the table ----


def rate(rps):
    return f"{rps:,.0f}" if rps >= 10 else f"{rps:.1f}"


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def table(results):
    lines = [
        "| cell | c | system | req/s | p50 ms | p99 ms | CPU µs/req | upstream calls/req | errors (of answers) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, c, streamed, failover in CELLS:
        for system in SYSTEMS:
            runs = [r for r in results if (r["scenario"], r["c"], r["system"]) == (scenario, c, system)]
            if not runs:
                continue
            med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
            errors = sum(r["errors"] for r in runs)
            if med("complete") == 0:
                lines.append(f"| {scenario} | {c} | {system} | 0 | – | – | – | – | {errors} |")
                continue
            answers = sum(r["requests"] for r in runs)
            lines.append(
                f"| {scenario} | {c} | {system} | {rate(med('rps'))} | {fmt_ms(med('p50_us'))} | "
                f"{fmt_ms(med('p99_us'))} | {med('cpu_us_per_req'):,.0f} | "
                f"{med('calls_per_req'):.2f} | {errors} ({answers:,}) |"
            )
    ratio = []
    for scenario, c, _, failover in CELLS:
        if failover:
            continue
        cpu = {}
        for system in ("gateway", "floor"):
            runs = [r["cpu_us_per_req"] for r in results
                    if (r["scenario"], r["c"], r["system"]) == (scenario, c, system)]
            if runs:
                cpu[system] = statistics.median(runs)
        if len(cpu) == 2 and cpu["floor"] > 0:
            ratio.append(f"{scenario} c={c}: {cpu['gateway'] / cpu['floor']:.2f}×")
    if ratio:
        lines.append("")
        lines.append("Gateway CPU per request over the floor's: " + ", ".join(ratio))
    return "\n".join(lines)


def summary(results):
    """The issue's shape: one row per question, one column per system."""

    def med(scenario, c, system, key):
        runs = [r for r in results if (r["scenario"], r["c"], r["system"]) == (scenario, c, system)
                and r["complete"] > 0]
        return statistics.median(r[key] for r in runs) if runs else None

    systems = [s for s in SYSTEMS if any(r["system"] == s for r in results)]
    lines = ["| | c | " + " | ".join(systems) + " |", "|---|---:|" + "---|" * len(systems)]

    def row(label, c, cell):
        lines.append(f"| {label} | {c} | " + " | ".join(cell(s) or "–" for s in systems) + " |")

    def p50_plus(scenario):
        def cell(s):
            p50, base = med(scenario, 1, s, "p50_us"), med(scenario, 1, "direct", "p50_us")
            if p50 is None:
                return None
            extra = f" (+{(p50 - base) / 1000:.2f})" if base is not None and s != "direct" else ""
            return f"{fmt_ms(p50)} ms{extra}"
        return cell

    def rps_cpu(scenario):
        def cell(s):
            rps = med(scenario, 64, s, "rps")
            if rps is None:
                return None
            return f"{rate(rps)} ({med(scenario, 64, s, 'cpu_us_per_req'):,.0f} µs CPU a request)"
        return cell

    def p50_p99(s):
        p50, p99 = med("streamed", 1, s, "p50_us"), med("streamed", 1, s, "p99_us")
        base = med("streamed", 1, "direct", "p50_us")
        extra = f" (+{(p50 - base) / 1000:.2f})" if p50 and base and s != "direct" else ""
        return p50 and f"{fmt_ms(p50)} / {fmt_ms(p99)} ms{extra}"

    def failover(s):
        rps = med("failover", 64, s, "rps")
        return rps and f"{rate(rps)}, {med('failover', 64, s, 'calls_per_req'):.2f} upstream calls each"

    row("plain, p50", 1, p50_plus("plain"))
    row("plain, req/s", 64, rps_cpu("plain"))
    row("streamed, p50 / p99", 1, p50_p99)
    row("streamed, req/s", 64, rps_cpu("streamed"))
    row("failover (primary always 503), req/s", 64, failover)
    return "\n".join(lines)


def memory_table(rows):
    lines = [
        "| system | streams asked | held | refused | RSS idle | RSS held | KiB per stream (added) | KiB per stream (whole process) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['streams']:,} | {r['held']:,} | {r['refused']:,} | "
            f"{r['rss_idle_kib'] / 1024:.1f} MiB | {r['rss_held_kib'] / 1024:.1f} MiB | "
            f"{r['kib_per_stream']:.1f} | {r['whole_kib_per_stream']:.1f} |"
        )
    return "\n".join(lines)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        # The tables again from a raw results file: --table target/gateway-bench/results-*.jsonl
        with open(sys.argv[2]) as f:
            results = [json.loads(line) for line in f if line.strip()]
        print(summary(results) + "\n\n" + table(results))
        return
    os.makedirs(OUT, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not ensure_wrk():
        sys.exit("wrk is needed (apt-get install wrk)")
    gateway_bin, passthrough_bin = build()
    built = source_state(gateway_bin)
    litellm = ensure_litellm() if "litellm" in SYSTEMS else None
    if not litellm and "litellm" in SYSTEMS:
        SYSTEMS.remove("litellm")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = os.path.join(OUT, f"results-{stamp}.jsonl")
    results = []
    try:
        servers = start_servers(gateway_bin, passthrough_bin, litellm)
        log("servers:", {k: v[1] for k, v in servers.items()})
        # Warm-up: a short burst through each system and route (pools, breakers, LiteLLM).
        for system in SYSTEMS:
            for scenario, c, streamed, failover in CELLS[:1] + CELLS[2:3] + CELLS[4:5]:
                model = MODELS[system][1 if failover else 0]
                if model:
                    run_cell(system, servers, 4, streamed, model, 1)
        with open(raw, "w") as out:
            for run in range(RUNS):
                for scenario, c, streamed, failover in CELLS:
                    order = SYSTEMS[run % len(SYSTEMS):] + SYSTEMS[: run % len(SYSTEMS)]
                    for system in order:
                        model = MODELS[system][1 if failover else 0]
                        if model is None:
                            continue
                        # LiteLLM's failover takes ~5 s a request (retries with backoff
                        # on the primary first): a cell long enough to see some answers.
                        slow = system == "litellm" and failover
                        duration = max(DURATION, LITELLM_FAILOVER_MIN) if slow else DURATION
                        r = run_cell(system, servers, c, streamed, model, duration)
                        r.update(run=run, scenario=scenario, c=c, system=system,
                                 streamed=streamed, failover=failover)
                        results.append(r)
                        out.write(json.dumps(r) + "\n")
                        out.flush()
                        log(f"run {run + 1}/{RUNS} {scenario:8} c={c:<3} {system:8} "
                            f"{r['rps']:9,.0f} req/s p50 {fmt_ms(r['p50_us'])} ms "
                            f"p99 {fmt_ms(r['p99_us'])} ms cpu {r['cpu_us_per_req']:,.0f} µs "
                            f"calls {r['calls_per_req']:.2f} err {r['errors']} "
                            f"(idle {r['idle_before']:.0%})")
        mem = memory(servers) if RSS_STREAMS else []
    finally:
        stop_all()
    report = [
        f"{RUNS} run(s), {DURATION} s a cell, median; wrk -t1; {os.cpu_count()} CPUs; "
        f"LiteLLM {litellm[1] if litellm else 'skipped'}; {built}",
        "",
        summary(results),
        "",
        table(results),
    ]
    if mem:
        report += ["", memory_table(mem)]
        with open(os.path.join(OUT, f"memory-{stamp}.json"), "w") as f:
            json.dump(mem, f, indent=1)
    text = "\n".join(report)
    with open(os.path.join(OUT, f"table-{stamp}.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    log(f"raw results: {raw}")


if __name__ == "__main__":
    main()
