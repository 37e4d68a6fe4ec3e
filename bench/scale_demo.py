#!/usr/bin/python3
"""Scale demonstration: N concurrent SockJS websocket sessions over several gateway nodes and one
Redis, one global broadcast reaching all of them; memory per session and time to reach all.

One process can hold only ~19,900 fds here (the cap cannot be raised), so the script starts
ceil(N / --per-node) gateway nodes on one private redis-server:

  nice -n -10 redis-server --port P --bind 127.0.0.1 --save "" --appendonly no  (--redis-nice)
  sockjs-gateway --listen 127.0.0.1:0 --api-listen 127.0.0.1:0 --api-key K --jwt-secret S
                 --engine redis://127.0.0.1:P --log-level info --backlog B  (x nodes)

(`--log-level info`, not warn: the "listening on" line the script waits for is an info line;
on the normal path the gateway logs nothing per session, so the logs stay small.) Once every
node is subscribed (PUBSUB NUMSUB) and node 1's API accepts a probe publish, one `loadgen`
opens the N sessions: one --target per node (session i -> node i % nodes, so each holds
<= --per-node), ceil(N / --per-worker) worker processes, enough source addresses
127.0.0.2.. (one per --per-source sessions; each gives ~64,000 source ports), tokens minted
with the gateways' secret (site "bench", N users, 1000 companies), paced at --connect-rate
sessions/s overall. After `ready` and once the gateways' RSS is stable it records:

  user space: VmRSS / RssAnon of every gateway node (sum, minus the same sum before loadgen
              started, per session), of loadgen (parent + workers, found as its children;
              total per session: loadgen has no "before"), of redis-server;
  kernel:     /proc/meminfo (Slab, SUnreclaim, MemFree, MemAvailable, ...), /proc/net/sockstat
              (TCP inuse/orphan/tw/mem pages) and /proc/slabinfo (caches that grew), before
              loadgen and after `ready`. Both ends of every loopback connection are on this
              box, so kernel bytes per session are for a connection PAIR (two sockets, two
              files, two epoll items). System-wide figures also see whatever other processes
              did meanwhile.

Then, once Redis runs fewer than --redis-quiet commands/s (the opening's syncs and presence
changes done), the CPU of the gateways, loadgen and Redis over --idle-cpu-seconds, with what
Redis ran and the nodes' presence and engine counters meanwhile (and over the opening); the
gateways' CPU per heartbeat (one per session per --heartbeat-ms), and next to it what a plain
3-byte write costs among the same sockets (`loopback_floor --conns --floor-conns --bytes 3`,
run right after the window: on loopback the sender pays for the receiver's lookup and wake-up,
which grow with the sockets the kernel holds).

Network namespace (--netns, default auto): every TCP packet is matched to its socket in the
kernel's established table, sized at boot from the RAM (262,144 buckets on this 24 GB box) and
shared by every namespace made without its own. 2,000,000 sockets make its chains ~8 long, and
each walk is cold. When the run has more sockets than that table has buckets, the script reruns
itself under `ip netns exec` in a namespace of its own whose table has a bucket per socket
(net.ipv4.tcp_child_ehash_entries, Linux >= 6.1, root), as a host meant for a million
connections is given at boot (deploy/README.md); the namespace is deleted at the end.

Then --broadcasts times: `publisher --scope global --site bench --count 1` on node 1's API
(each event carries its publish time; loadgen times each delivery), waiting until loadgen's
message count reaches k x sessions before the next (--broadcast-gap s apart, so broadcasts do
not queue behind each other). Per broadcast: the time until 50 %, 99 % and 100 % of the
sessions had it, from loadgen's once-a-second progress lines (1 s resolution, an upper
bound); over all broadcasts: loadgen's latency histogram (p50/p99/max, <= 1 % error).
Messages must equal sessions x broadcasts. Then everything is stopped (loadgen first, then the
nodes, then Redis) and the JSON written to --out.

System-wide sysctls that bound this run (fs.file-max, net.ipv4.tcp_mem, ...) are raised only
if needed or asked for (--sysctl NAME=VALUE), printed, and restored at the end. Everything is
bounded by --timeout and stopped in `finally`; a watchdog stops the run if MemAvailable drops
below --min-available-gib. Before starting, the memory the run will need is projected
(from --project-from, a previous result, or defaults) and the run refused above --max-gib.

    bench/scale_demo.py --sessions 50000 --out bench/results/scale-50k.json
    bench/scale_demo.py --sessions 1000000 --connect-rate 4000 \\
        --project-from bench/results/scale-250k.json --out bench/results/scale.json
"""

import argparse
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idle_memory  # noqa: E402  (status_kib)
import latency  # noqa: E402  (Proc, start_redis, start_gateway, redis_numsub, wait_api_ready, ...)

PROGRESS_RE = re.compile(r"^loadgen:\s+([0-9.]+) s\s+open (\d+) .*failed (\d+)\s+lost (\d+)\s+"
                         r"messages (\d+)")
MEMINFO_KEYS = ("MemTotal", "MemFree", "MemAvailable", "Slab", "SReclaimable", "SUnreclaim",
                "KernelStack", "PageTables", "Percpu", "AnonPages", "Shmem", "Cached")
KIB = 1024


class Abort(Exception):
    pass


class TimedProc(latency.Proc):
    """latency.Proc that also keeps (arrival time, messages) of loadgen's progress lines."""

    def __init__(self, cmd, name, stdin=subprocess.DEVNULL):
        self.progress = []  # (monotonic, open, failed, lost, messages)
        super().__init__(cmd, name, stdin=stdin)

    def _drain(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            m = PROGRESS_RE.search(line)
            with self.cond:
                if m:
                    self.progress.append((time.monotonic(), int(m.group(2)), int(m.group(3)),
                                          int(m.group(4)), int(m.group(5))))
                    if len(self.lines) > 5000:  # progress lines: keep the list bounded
                        del self.lines[:2500]
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()


# ---------------------------------------------------------------- measurements

def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in MEMINFO_KEYS:
                out[k] = int(v.split()[0]) * KIB
    return out


def sockstat():
    out = {}
    with open("/proc/net/sockstat") as f:
        for line in f:
            proto, rest = line.split(":", 1)
            if proto in ("sockets", "TCP"):
                vals = rest.split()
                for k, v in zip(vals[0::2], vals[1::2]):
                    out["%s_%s" % (proto.lower(), k)] = int(v)
    out["tcp_mem_bytes"] = out.get("tcp_mem", 0) * os.sysconf("SC_PAGE_SIZE")
    return out


def slabinfo():
    """name -> bytes held by the cache (num_objs x objsize); {} if unreadable."""
    out = {}
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith(("slabinfo", "#")):
                    continue
                p = line.split()
                out[p[0]] = int(p[2]) * int(p[3])
    except OSError:
        pass
    return out


def proc_mem(pid):
    """{"rss": VmRSS bytes, "anon": RssAnon bytes} of a live process, or None."""
    try:
        return {"rss": idle_memory.status_kib(pid, "VmRSS") * KIB,
                "anon": idle_memory.status_kib(pid, "RssAnon") * KIB}
    except (OSError, RuntimeError):
        return None


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def mem_sum(pids):
    tot = {"rss": 0, "anon": 0, "procs": 0}
    for pid in pids:
        m = proc_mem(pid)
        if m:
            tot["rss"] += m["rss"]
            tot["anon"] += m["anon"]
            tot["procs"] += 1
    return tot


def snapshot(nodes, loadgen=None, redis=None):
    s = {"t": time.time(), "meminfo": meminfo(), "sockstat": sockstat(), "slab": slabinfo(),
         "gateways": mem_sum([n.p.pid for n in nodes])}
    if loadgen is not None:
        workers = children(loadgen.p.pid)
        s["loadgen"] = mem_sum([loadgen.p.pid] + workers)
        s["loadgen"]["workers"] = len(workers)
    if redis is not None:
        s["redis"] = mem_sum([redis.p.pid])
    return s


def cpu_of(pids):
    tot = 0.0
    for pid in pids:
        try:
            tot += latency.cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            pass
    return tot


def cpu_snapshot(nodes, loadgen, redis):
    """CPU seconds (user + system) so far: gateways, loadgen (parent + workers), redis."""
    out = {"t": time.monotonic(), "gateways": cpu_of([n.p.pid for n in nodes])}
    if loadgen is not None:
        out["loadgen"] = cpu_of([loadgen.p.pid] + children(loadgen.p.pid))
    if redis is not None:
        out["redis"] = cpu_of([redis.p.pid])
    return out


def cpu_delta(a, b):
    return {k: round(b[k] - a[k], 3) for k in b if k in a}


def redis_counters(port):
    """Redis's commands so far: total, and calls and microseconds per command (INFO)."""
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "all"], stdout=subprocess.PIPE,
                         text=True, timeout=30).stdout
    c = {}
    for line in out.splitlines():
        if line.startswith("total_commands_processed:"):
            c["commands"] = int(line.split(":")[1])
        m = re.match(r"cmdstat_(\S+):calls=(\d+),usec=(\d+)", line)
        if m:
            c[m.group(1) + ".calls"] = int(m.group(2))
            c[m.group(1) + ".usec"] = int(m.group(3))
        m = re.match(r"(errorstat_\S+):count=(\d+)", line)
        if m:
            c[m.group(1)] = int(m.group(2))
    return c


def wait_redis_quiet(port, per_s, max_s):
    """Until Redis runs fewer than per_s commands per second (over 2 s), at most max_s
    seconds; whether it did."""
    deadline = time.monotonic() + max_s
    last = redis_counters(port).get("commands", 0)
    while time.monotonic() < deadline:
        time.sleep(2.0)
        now = redis_counters(port).get("commands", 0)
        if (now - last) / 2.0 < per_s:
            return True
        last = now
    return False


NODE_COUNTERS = re.compile(r"^sockjs_gateway_(presence_\w+|engine_\w+|sessions_open\w*) (\d+)$",
                           re.M)


def node_counters(nodes):
    """The presence and engine counters of /metrics, summed over the nodes."""
    tot = {}
    for node in nodes:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % node.api_port,
                                        timeout=30) as r:
                text = r.read().decode()
        except OSError:
            continue
        for name, value in NODE_COUNTERS.findall(text):
            tot[name] = tot.get(name, 0) + int(value)
    return tot


def log_kinds(nodes, top=25):
    """The gateways' log lines by kind (numbers as N, the time cut off), most frequent first,
    with the times of the first and last of each and up to 5 whole lines: what the nodes said
    during the run."""
    kinds = {}
    for node in nodes:
        with node.cond:
            lines = list(node.lines)
        for line in lines:
            at, _, text = line.partition(" ")
            kind = re.sub(r"\d+", "N", text)
            k = kinds.setdefault(kind, {"kind": kind, "count": 0, "first": at, "last": at,
                                        "examples": []})
            k["count"] += 1
            k["first"], k["last"] = min(k["first"], at), max(k["last"], at)
            if len(k["examples"]) < 5:
                k["examples"].append(line)
    return sorted(kinds.values(), key=lambda k: -k["count"])[:top]


def counters(nodes, rport):
    return {"redis": redis_counters(rport), "nodes": node_counters(nodes)}


def counters_delta(a, b):
    """What moved between two counters() readings."""
    return {side: {k: v - a[side].get(k, 0) for k, v in sorted(b[side].items())
                   if v != a[side].get(k, 0)} for side in b}


def settle_gateways(nodes, interval, tol_bytes, max_s):
    """Sum of the nodes' VmRSS once two reads `interval` apart agree within tol_bytes."""
    deadline = time.monotonic() + max_s
    prev = mem_sum([n.p.pid for n in nodes])["rss"]
    while True:
        time.sleep(interval)
        cur = mem_sum([n.p.pid for n in nodes])["rss"]
        if abs(cur - prev) <= tol_bytes:
            return True
        if time.monotonic() > deadline:
            return False
        prev = cur


def kernel_figures(before, after, sessions, user_delta):
    mb, ma = before["meminfo"], after["meminfo"]
    d = {k: ma[k] - mb[k] for k in ma if k in mb}
    sb, sa = before["sockstat"], after["sockstat"]
    slab_growth = {k: after["slab"][k] - before["slab"].get(k, 0) for k in after["slab"]}
    top = sorted(((v, k) for k, v in slab_growth.items() if v > 0), reverse=True)[:12]
    used = -d["MemFree"]
    kern_est = used - user_delta
    n = max(sessions, 1)
    # Other processes on a shared box open sockets too: count connection pairs from TCP inuse.
    tcp_delta = sa.get("tcp_inuse", 0) - sb.get("tcp_inuse", 0)
    pairs = max(tcp_delta / 2, 1)
    return {
        "note": "system-wide deltas between 'before loadgen' and 'all sessions open'; both ends "
                "of every loopback connection are on this box: per session = per connection "
                "pair (2 sockets)",
        "meminfo_delta": d,
        "slab_per_session": d["Slab"] / n,
        "sunreclaim_per_session": d["SUnreclaim"] / n,
        "memfree_drop": used,
        "memavailable_drop": -d["MemAvailable"],
        "user_space_delta": user_delta,
        "kernel_estimate": kern_est,
        "kernel_estimate_per_session": kern_est / n,
        "kernel_estimate_excl_all_anon_and_cache": used - d.get("AnonPages", 0)
        - d.get("Cached", 0),
        "tcp_pairs_from_inuse": pairs,
        "slab_per_pair_from_inuse": d["Slab"] / pairs,
        "sunreclaim_per_pair_from_inuse": d["SUnreclaim"] / pairs,
        "tcp_inuse_delta": sa.get("tcp_inuse", 0) - sb.get("tcp_inuse", 0),
        "tcp_mem_pages": sa.get("tcp_mem", 0),
        "tcp_mem_pages_delta": sa.get("tcp_mem", 0) - sb.get("tcp_mem", 0),
        "tcp_orphan": sa.get("tcp_orphan", 0),
        "tcp_tw": sa.get("tcp_tw", 0),
        "slab_growth_top": [{"cache": k, "bytes": v, "per_session": v / n} for v, k in top],
    }


# ---------------------------------------------------------------- sysctls

class Sysctls:
    """Raises system-wide sysctls, remembers the old values, restores them."""

    def __init__(self, dry):
        self.dry = dry
        self.changed = []  # (name, old, new)
        self.refused = []

    @staticmethod
    def path(name):
        return "/proc/sys/" + name.replace(".", "/")

    @staticmethod
    def get(name):
        try:
            with open(Sysctls.path(name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def set(self, name, value, why):
        old = self.get(name)
        if old is None or old.split() == str(value).split():
            return
        if self.dry:
            print("# sysctl (not applied, --no-sysctl): %s = %s -> %s (%s)"
                  % (name, old, value, why), flush=True)
            self.refused.append({"name": name, "old": old, "wanted": str(value),
                                 "error": "--no-sysctl"})
            return
        try:
            with open(self.path(name), "w") as f:
                f.write(str(value))
        except OSError as e:
            print("# sysctl %s = %s refused: %s (%s); working within %s"
                  % (name, value, e, why, old), flush=True)
            self.refused.append({"name": name, "old": old, "wanted": str(value),
                                 "error": str(e)})
            return
        self.changed.append((name, old, self.get(name)))
        print("# sysctl %s: %s -> %s (%s)" % (name, old, self.get(name), why), flush=True)

    def raise_int(self, name, minimum, why):
        old = self.get(name)
        if old is not None and int(old) < minimum:
            self.set(name, minimum, why)

    def restore(self):
        for name, old, _ in reversed(self.changed):
            try:
                with open(self.path(name), "w") as f:
                    f.write(old)
                print("# sysctl %s restored to %s" % (name, old), flush=True)
            except OSError as e:
                print("# sysctl %s: could not restore %s: %s" % (name, old, e), flush=True)


# ---------------------------------------------------------------- projection

DEFAULT_PER_SESSION = {"kernel": 8192, "gateway": 1024, "loadgen": 512}


def projection(args):
    per = dict(DEFAULT_PER_SESSION)
    src = "defaults"
    if args.project_from:
        with open(args.project_from) as f:
            prev = json.load(f)
        m = prev["memory"]
        per = {"kernel": max(m["kernel"]["kernel_estimate_per_session"],
                             m["kernel"]["slab_per_session"]),
               "gateway": m["gateways"]["rss_per_session"],
               "loadgen": m["loadgen"]["rss_per_session"]}
        src = args.project_from
    total = sum(per.values()) * args.sessions
    # The broadcast adds socket buffers for a moment: assume one 2 KiB skb per session.
    total += 2048 * args.sessions
    return {"source": src, "per_session": per, "bytes": total}


# ---------------------------------------------------------------- the run

def kill_tree(proc):
    """SIGKILLs a started process and its direct children (loadgen's workers)."""
    if proc is None or proc.p.poll() is not None:
        return
    for c in children(proc.p.pid):
        try:
            os.kill(c, signal.SIGKILL)
        except OSError:
            pass
    proc.p.kill()
    proc.p.wait()


def watchdog(state, min_avail, stop_ev):
    while not stop_ev.wait(1.0):
        avail = meminfo()["MemAvailable"]
        state["min_available"] = min(state.get("min_available", avail), avail)
        if avail < min_avail and not state.get("tripped"):
            state["tripped"] = "MemAvailable %.2f GiB below --min-available-gib" % (avail / 2**30)
            print("# WATCHDOG: %s: stopping loadgen" % state["tripped"], flush=True)
            lg = state.get("loadgen")
            if lg is not None and lg.p.poll() is None:
                lg.p.send_signal(signal.SIGTERM)


def remaining(deadline, what):
    left = deadline - time.monotonic()
    if left <= 0:
        raise Abort("--timeout reached (%s)" % what)
    return left


def wait_messages(lg, target, deadline, wd):
    """Until loadgen's progress shows >= target messages; returns the progress list index."""
    with lg.cond:
        while True:
            if lg.progress and lg.progress[-1][4] >= target:
                return
            if lg.eof or wd.get("tripped"):
                raise Abort("loadgen ended / watchdog while waiting for messages")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Abort("broadcast not delivered to all in time (%d of %d)"
                            % (lg.progress[-1][4] if lg.progress else 0, target))
            lg.cond.wait(min(left, 1.0))


def crossing(progress, t0, base, n, frac):
    """Seconds from t0 to the first progress line with messages >= base + frac * n."""
    need = base + math.ceil(frac * n)
    for t, _o, _f, _l, msgs in progress:
        if t >= t0 and msgs >= need:
            return round(t - t0, 3)
    return None


def run(args, result):
    sysctls = Sysctls(args.no_sysctl)
    wd_state, wd_stop = {}, threading.Event()
    redis = lg = None
    nodes = []
    deadline = time.monotonic() + args.timeout
    n = args.sessions
    n_nodes = math.ceil(n / args.per_node)
    procs = math.ceil(n / args.per_worker)
    sources = args.sources or max(2, math.ceil(n / args.per_source))
    result["config"].update({"nodes": n_nodes, "loadgen_procs": procs, "sources": sources})
    wd = threading.Thread(target=watchdog,
                          args=(wd_state, args.min_available_gib * 2**30, wd_stop), daemon=True)
    try:
        # System-wide limits. Root may exceed fs.file-max, other users may not: keep room.
        sysctls.raise_int("fs.file-max", 2 * n + 1000000,
                          "2 fds per loopback session pair plus room for the rest of the box")
        for spec in args.sysctl:
            name, value = spec.split("=", 1)
            sysctls.set(name.strip(), value.strip(), "--sysctl")
        wd.start()

        result["snapshots"]["start"] = snapshot([])
        # One Redis serves every node: at the default fair share among ~105 busy processes it
        # would get ~1 % of this box, which no real deployment gives it (it has its own core).
        prefix = ["nice", "-n", str(args.redis_nice)] if args.redis_nice else []
        redis, rport = latency.start_redis(args.redis_server, prefix)
        result["commands"]["redis"] = shlex.join(redis.cmd)
        extra = ["--engine", "redis://127.0.0.1:%d" % rport, "--log-level", args.log_level,
                 "--backlog", str(args.backlog)] + args.gateway_arg
        t0 = time.monotonic()
        for i in range(n_nodes):
            remaining(deadline, "starting nodes")
            nodes.append(latency.start_gateway(args.gateway, extra))
        result["commands"]["gateway"] = shlex.join(nodes[0].cmd) + "   # x %d" % n_nodes
        while latency.redis_numsub(rport) < n_nodes:
            remaining(deadline, "nodes subscribing")
            time.sleep(0.05)
        latency.wait_api_ready(args, nodes[0])
        result["timings"]["nodes_start_s"] = round(time.monotonic() - t0, 3)
        print("# %d gateway node(s) up on redis :%d in %.1f s"
              % (n_nodes, rport, result["timings"]["nodes_start_s"]), flush=True)
        settle_gateways(nodes, 1.0, 64 * KIB * n_nodes, 10)
        before = snapshot(nodes, redis=redis)
        result["snapshots"]["before"] = before
        cpu0 = cpu_snapshot(nodes, None, redis)
        cpu0["loadgen"] = 0.0
        k0 = counters(nodes, rport)

        cmd = [args.loadgen]
        for node in nodes:
            cmd += ["--target", "127.0.0.1:%d" % node.port]
        cmd += ["--sessions", str(n), "--procs", str(procs), "--sources", str(sources),
                "--rate", str(args.connect_rate), "--max-inflight", str(args.max_inflight),
                "--connect-timeout", str(args.connect_timeout),
                "--jwt-secret", latency.SECRET, "--site", latency.SITE, "--users", str(n),
                "--companies", "1000", "--max-failed", str(args.max_failed),
                "--timeout", str(int(remaining(deadline, "loadgen")))]
        result["commands"]["loadgen"] = shlex.join(cmd)
        print("# loadgen: %d sessions, %d workers, %d sources, %d targets, %s/s"
              % (n, procs, sources, n_nodes, args.connect_rate), flush=True)
        t_lg = time.monotonic()
        lg = TimedProc(cmd, "loadgen", stdin=subprocess.PIPE)
        wd_state["loadgen"] = lg
        m = lg.wait_line(r"^ready (\d+)", remaining(deadline, "waiting for ready"))
        ready_n = int(m.group(1))
        connect_s = time.monotonic() - t_lg
        result["timings"]["connect_s"] = round(connect_s, 3)
        result["sessions_ready"] = ready_n
        print("# ready %d after %.1f s (%.0f sessions/s)" % (ready_n, connect_s,
                                                              ready_n / connect_s), flush=True)
        # Workers that exited are no longer counted: all are alive here.
        result["cpu_connect_s"] = cpu_delta(cpu0, cpu_snapshot(nodes, lg, redis))
        k_ready = counters(nodes, rport)
        result["counters_connect"] = counters_delta(k0, k_ready)
        print("# connect: counters that moved: %s" % json.dumps(result["counters_connect"]),
              flush=True)
        if wd_state.get("tripped"):
            raise Abort(wd_state["tripped"])
        settled = settle_gateways(nodes, 2.0, 64 * KIB * n_nodes, args.settle_max)
        idle = snapshot(nodes, lg, redis)
        idle["gateways_settled"] = settled
        result["snapshots"]["idle"] = idle
        result["memory"] = memory_figures(before, idle, ready_n, n_nodes)
        print_memory(result["memory"])
        # The opening's aftermath (syncs and presence changes still queued for Redis) is not
        # idle: the window starts once Redis runs fewer than --redis-quiet commands/s.
        t_q = time.monotonic()
        result["redis_quiet"] = wait_redis_quiet(rport, args.redis_quiet, args.settle_max)
        result["timings"]["redis_quiet_s"] = round(time.monotonic() - t_q, 3)
        print("# Redis quiet (< %d commands/s): %s after %.1f s"
              % (args.redis_quiet, result["redis_quiet"], result["timings"]["redis_quiet_s"]),
              flush=True)
        # CPU the held sessions cost while idle (heartbeats every 25 s by default).
        # What Redis and the nodes' presence did meanwhile says whether the window was idle.
        k_i = counters(nodes, rport)
        c_i = cpu_snapshot(nodes, lg, redis)
        time.sleep(args.idle_cpu_seconds)
        result["idle_cpu_s"] = cpu_delta(c_i, cpu_snapshot(nodes, lg, redis))
        result["counters_idle"] = counters_delta(k_i, counters(nodes, rport))
        print("# idle: CPU s over %.0f s: %s" % (args.idle_cpu_seconds, result["idle_cpu_s"]),
              flush=True)
        print("# idle: counters that moved: %s" % json.dumps(result["counters_idle"]), flush=True)
        hb_ms = heartbeat_ms(args.gateway_arg)
        heartbeats = ready_n * result["idle_cpu_s"]["t"] / (hb_ms / 1000.0)
        per_hb = result["idle_cpu_s"]["gateways"] / heartbeats * 1e6 if heartbeats else None
        result["idle_per_heartbeat_us"] = per_hb
        # A plain write among the same sockets: on loopback the sender pays for the receiver's
        # lookup and wake-up too, and those grow with the sockets the kernel holds, so the
        # floor a heartbeat is compared with is measured here, not on an empty box.
        result["floor_at_scale"] = loopback_floor(args, remaining(deadline, "loopback floor"))
        fl = result["floor_at_scale"].get("sender_cpu_us_per_write")
        print("# idle: %.2f us of gateway CPU per heartbeat (%d sessions, one per %d ms); a "
              "plain 3-byte write among the same sockets (loopback_floor): %s us%s"
              % (per_hb or 0, ready_n, hb_ms, fl,
                 " -> %.2fx" % (per_hb / fl) if per_hb and fl else ""), flush=True)
        # Before the teardown's line per session close pushes them out of the kept lines.
        result["gateway_log_kinds"] = log_kinds(nodes)
        for k in result["gateway_log_kinds"]:
            print("#   log x%d (%s .. %s): %s" % (k["count"], k["first"], k["last"], k["kind"]),
                  flush=True)

        # Broadcasts, one at a time.
        pub_base = [args.publisher, "--api", "127.0.0.1:%d" % nodes[0].api_port,
                    "--api-key", latency.API_KEY, "--scope", "global", "--site", latency.SITE,
                    "--event", "bench", "--rate", "1", "--count", "1", "--timeout", "30"]
        result["commands"]["publisher"] = shlex.join(pub_base)
        peak_tcp = 0
        for b in range(1, args.broadcasts + 1):
            with lg.cond:
                base = lg.progress[-1][4] if lg.progress else 0
                n_prog = len(lg.progress)
            c_b = cpu_snapshot(nodes, lg, redis)
            t_pub = time.monotonic()
            r = subprocess.run(pub_base, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=remaining(deadline, "publisher"))
            ps = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            if r.returncode != 0 or ps.get("accepted") != 1:
                raise Abort("publisher failed: %s %s" % (r.stdout.strip(), r.stderr[-500:]))
            # Sample the kernel's TCP buffer memory while the broadcast is in flight.
            done = threading.Event()

            def sample():
                nonlocal peak_tcp
                while not done.wait(0.2):
                    peak_tcp = max(peak_tcp, sockstat().get("tcp_mem", 0))
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            try:
                wait_messages(lg, base + ready_n,
                              min(deadline, time.monotonic() + args.broadcast_timeout), wd_state)
            finally:
                done.set()
                th.join()
            with lg.cond:
                prog = list(lg.progress[n_prog:])
            row = {"broadcast": b, "publisher": ps,
                   "reach_s_upper_bound": {
                       "p50": crossing(prog, t_pub, base, ready_n, 0.5),
                       "p99": crossing(prog, t_pub, base, ready_n, 0.99),
                       "all": crossing(prog, t_pub, base, ready_n, 1.0)},
                   "messages_after": prog[-1][4] if prog else None,
                   "cpu_s": cpu_delta(c_b, cpu_snapshot(nodes, lg, redis))}
            result["broadcasts"].append(row)
            print("# broadcast %d: all %d sessions had it within %s s (progress lines; 50 %% "
                  "within %s s, 99 %% within %s s)"
                  % (b, ready_n, row["reach_s_upper_bound"]["all"],
                     row["reach_s_upper_bound"]["p50"], row["reach_s_upper_bound"]["p99"]),
                  flush=True)
            print("#   CPU s until all had it: %s" % row["cpu_s"], flush=True)
            if b < args.broadcasts:
                time.sleep(args.broadcast_gap)
        result["tcp_mem_peak_pages"] = peak_tcp
        result["snapshots"]["after_broadcasts"] = snapshot(nodes, lg, redis)

        # Stop loadgen: its summary has the histogram over all broadcasts.
        lg.p.stdin.close()
        summ = latency.summary_line(lg, min(remaining(deadline, "loadgen summary"), 120))
        result["loadgen_summary"] = summ
        expect = ready_n * args.broadcasts
        lat = summ.get("lat_us", {})
        result["delivery"] = {
            "expected": expect, "messages": summ.get("messages"),
            "complete": summ.get("messages") == expect,
            "lost_sessions": summ.get("lost"), "failed_sessions": summ.get("failed"),
            "lat_ms": {k: (v / 1000.0 if k != "n" else v) for k, v in lat.items()},
        }
        print("# loadgen: %s messages of %d expected, lost %s; latency over all broadcasts: "
              "p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (summ.get("messages"), expect, summ.get("lost"), lat.get("p50", 0) / 1000,
                 lat.get("p99", 0) / 1000, lat.get("max", 0) / 1000), flush=True)
        lg.p.wait(timeout=60)
    finally:
        wd_stop.set()
        t_stop = time.monotonic()
        if lg is not None and lg.p.poll() is None:
            try:
                lg.p.stdin.close()
            except OSError:
                pass
            try:
                lg.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                kill_tree(lg)
        if lg is not None:
            result["loadgen_tail"] = lg.lines[-15:]
        for node in nodes:
            if node.p.poll() is None:
                node.p.send_signal(signal.SIGTERM)
        statuses = []
        for node in nodes:
            try:
                statuses.append(node.p.wait(timeout=30))
            except subprocess.TimeoutExpired:
                node.p.kill()
                statuses.append(node.p.wait())
        result["gateway_exit"] = statuses
        result["gateway_log_tail"] = {str(i): node.lines[-5:] for i, node in enumerate(nodes)
                                      if len(node.lines) > 3}
        if redis is not None:
            redis.stop()
        result["timings"]["teardown_s"] = round(time.monotonic() - t_stop, 3)
        sysctls.restore()
        result["sysctl"] = {"changed": [{"name": a, "old": b, "new": c}
                                        for a, b, c in sysctls.changed],
                            "refused": sysctls.refused}
        result["watchdog"] = {k: v for k, v in wd_state.items() if k != "loadgen"}
        time.sleep(2)
        result["snapshots"]["end"] = snapshot([])


def heartbeat_ms(gateway_args):
    """The nodes' --heartbeat-ms (the gateway's default unless --gateway-arg sets it)."""
    ms = 25000
    for i, a in enumerate(gateway_args):
        if a.startswith("--heartbeat-ms="):
            ms = int(a.split("=", 1)[1])
        elif a == "--heartbeat-ms" and i + 1 < len(gateway_args):
            ms = int(gateway_args[i + 1])
    return ms


def loopback_floor(args, timeout):
    """bench/loopback_floor's JSON line, or {"error": ...}: 3-byte writes (an `h` websocket
    frame) to --floor-conns loopback sockets read by one process."""
    if args.floor_conns <= 0:
        return {"error": "--floor-conns 0"}
    cmd = [args.loopback_floor, "--conns", str(args.floor_conns), "--bytes", "3",
           "--sweeps", str(args.floor_sweeps)]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=min(timeout, 300))
    except subprocess.TimeoutExpired:
        return {"error": "timed out", "command": shlex.join(cmd)}
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        return {"error": "exit %d: %s" % (r.returncode, r.stderr[-300:]),
                "command": shlex.join(cmd)}
    out = json.loads(lines[-1])
    out["command"] = shlex.join(cmd)
    return out


# ---------------------------------------------------------------- network namespace

NETNS_EHASH_MAX = 1 << 24  # the kernel's bound on net.ipv4.tcp_child_ehash_entries


def ehash_wanted(sessions):
    """Buckets for the TCP established table: both ends of every session are on this box."""
    want = 1 << max(2 * sessions + 1000, 1).bit_length()
    return min(want, NETNS_EHASH_MAX)


def run_in_netns(args):
    """Reruns this script in a network namespace of its own whose TCP established hash table has
    a bucket per socket. The table every namespace shares is sized at boot from the memory
    (262,144 buckets here): with 2,000,000 sockets its chains are ~8 long, and every packet's
    lookup walks one, cold. A host meant for a million connections sizes it (thash_entries=,
    deploy/README.md); this is the same for the demo. Returns the child's exit status, or None
    when no namespace can be made (then the caller runs here)."""
    child = Sysctls.get("net.ipv4.tcp_child_ehash_entries")
    if os.geteuid() != 0 or child is None or not shutil.which("ip"):
        print("# netns: not available (needs root, iproute2, Linux >= 6.1); running in this one",
              flush=True)
        return None
    name = "sgw-scale-%d" % os.getpid()
    want = ehash_wanted(args.sessions)
    try:
        with open(Sysctls.path("net.ipv4.tcp_child_ehash_entries"), "w") as f:
            f.write(str(want))
        subprocess.run(["ip", "netns", "add", name], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("# netns: cannot make one (%s); running in this one" % e, flush=True)
        return None
    finally:
        with open(Sysctls.path("net.ipv4.tcp_child_ehash_entries"), "w") as f:
            f.write(child)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        print("# netns %s: TCP established table of %d buckets (this namespace's: %s)"
              % (name, want, Sysctls.get("net.ipv4.tcp_ehash_entries")), flush=True)
        cmd = ["ip", "netns", "exec", name, sys.executable, os.path.abspath(__file__)] + \
            sys.argv[1:] + ["--netns", "inside"]
        p = subprocess.Popen(cmd)
        try:
            return p.wait()
        except BaseException:
            p.send_signal(signal.SIGTERM)
            p.wait()
            raise
    finally:
        subprocess.run(["ip", "netns", "del", name])


def memory_figures(before, idle, sessions, n_nodes):
    n = max(sessions, 1)
    g0, g1 = before["gateways"], idle["gateways"]
    lgm = idle["loadgen"]
    gw = {"nodes": n_nodes, "rss_before": g0["rss"], "rss": g1["rss"],
          "anon_before": g0["anon"], "anon": g1["anon"],
          "rss_per_session": (g1["rss"] - g0["rss"]) / n,
          "anon_per_session": (g1["anon"] - g0["anon"]) / n,
          "rss_total_per_session": g1["rss"] / n}
    lgf = {"procs": lgm["procs"], "workers": lgm["workers"], "rss": lgm["rss"],
           "anon": lgm["anon"], "rss_per_session": lgm["rss"] / n,
           "anon_per_session": lgm["anon"] / n}
    red = {"rss_before": before["redis"]["rss"], "rss": idle["redis"]["rss"]}
    user_delta = (g1["anon"] - g0["anon"]) + lgm["anon"] + (idle["redis"]["anon"]
                                                            - before["redis"]["anon"])
    return {"sessions": sessions, "gateways": gw, "loadgen": lgf, "redis": red,
            "kernel": kernel_figures(before, idle, sessions, user_delta)}


def print_memory(m):
    g, lgm, k = m["gateways"], m["loadgen"], m["kernel"]
    print("# memory: gateways %.0f B/session VmRSS (%.0f B RssAnon), total %.1f MiB over %d "
          "nodes; loadgen %.0f B/session VmRSS (%.0f B anon, %d procs)"
          % (g["rss_per_session"], g["anon_per_session"], g["rss"] / 2**20, g["nodes"],
             lgm["rss_per_session"], lgm["anon_per_session"], lgm["procs"]), flush=True)
    print("# kernel (per connection pair): Slab %+.0f B, SUnreclaim %+.0f B, MemFree drop "
          "minus user space %.0f B; TCP inuse %+d, TCP mem %d pages"
          % (k["slab_per_session"], k["sunreclaim_per_session"],
             k["kernel_estimate_per_session"], k["tcp_inuse_delta"], k["tcp_mem_pages"]),
          flush=True)
    print("# kernel per pair counted from TCP inuse (%.0f pairs): Slab %.0f B, SUnreclaim "
          "%.0f B" % (k["tcp_pairs_from_inuse"], k["slab_per_pair_from_inuse"],
                      k["sunreclaim_per_pair_from_inuse"]), flush=True)
    print("# slab growth: " + ", ".join("%s %.0f" % (e["cache"], e["per_session"])
                                        for e in k["slab_growth_top"][:8]) + " B/session",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1000000)
    ap.add_argument("--per-node", type=int, default=19500, help="sessions per gateway node")
    ap.add_argument("--per-worker", type=int, default=19500,
                    help="sessions per loadgen worker process (<= 19,900: the fd cap)")
    ap.add_argument("--per-source", type=int, default=32000,
                    help="sessions per source address (each gives ~64,000 ports)")
    ap.add_argument("--sources", type=int, default=0, help="source addresses (0: auto)")
    ap.add_argument("--gateway", default="build/sockjs-gateway")
    ap.add_argument("--loadgen", help="default: bench/loadgen next to the gateway")
    ap.add_argument("--publisher", help="default: bench/publisher next to the gateway")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--redis-nice", type=int, default=-10,
                    help="niceness of redis-server (0: as the others; see run())")
    ap.add_argument("--gateway-arg", action="append", default=[])
    ap.add_argument("--log-level", default="info",
                    help="gateway log level (info: the 'listening on' line is an info line)")
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--broadcasts", type=int, default=3)
    ap.add_argument("--broadcast-gap", type=float, default=5.0,
                    help="seconds between one broadcast reaching all and the next")
    ap.add_argument("--broadcast-timeout", type=float, default=300.0)
    ap.add_argument("--connect-rate", type=float, default=4000.0,
                    help="sessions/s overall (loadgen --rate)")
    ap.add_argument("--max-inflight", type=int, default=512)
    ap.add_argument("--connect-timeout", type=float, default=0.0,
                    help="loadgen --connect-timeout: bounds each worker's whole connecting "
                    "phase, not one session (0: 2 x sessions / rate + 120 s)")
    ap.add_argument("--max-failed", type=int, default=0)
    ap.add_argument("--idle-cpu-seconds", type=float, default=10.0,
                    help="window in which the idle sessions' CPU cost is measured")
    ap.add_argument("--settle-max", type=float, default=60.0)
    ap.add_argument("--redis-quiet", type=int, default=5000,
                    help="the idle window waits for Redis to run fewer commands/s than this "
                         "(at most --settle-max s)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="bound on the whole run (s)")
    ap.add_argument("--max-gib", type=float, default=18.0,
                    help="refuse to start if the projected memory exceeds this")
    ap.add_argument("--project-from", help="a previous result JSON to project memory from")
    ap.add_argument("--min-available-gib", type=float, default=2.5,
                    help="watchdog: stop loadgen if MemAvailable drops below this")
    ap.add_argument("--sysctl", action="append", default=[],
                    help="NAME=VALUE to set for the run (restored at the end; repeatable)")
    ap.add_argument("--no-sysctl", action="store_true", help="change no sysctl")
    ap.add_argument("--netns", choices=("auto", "on", "off", "inside"),
                    default="auto",
                    help="on: run in a network namespace of its own whose TCP established "
                    "table has a bucket per socket (see run_in_netns); auto: on when the "
                    "shared table has fewer buckets than the run's sockets; off: run here")
    ap.add_argument("--floor-conns", type=int, default=10000,
                    help="loopback_floor's connections after the idle window (0: none)")
    ap.add_argument("--floor-sweeps", type=int, default=30)
    ap.add_argument("--out", default="bench/results/scale.json")
    args = ap.parse_args()
    if args.netns in ("auto", "on"):
        shared = Sysctls.get("net.ipv4.tcp_ehash_entries")
        if args.netns == "on" or (shared is not None and int(shared) < 2 * args.sessions):
            status = run_in_netns(args)
            if status is not None:
                return status

    bindir = os.path.join(os.path.dirname(os.path.abspath(args.gateway)), "bench")
    args.loadgen = args.loadgen or os.path.join(bindir, "loadgen")
    args.publisher = args.publisher or os.path.join(bindir, "publisher")
    args.loopback_floor = os.path.join(bindir, "loopback_floor")
    for path in (args.gateway, args.loadgen, args.publisher, args.loopback_floor):
        if not os.access(path, os.X_OK):
            ap.error("%s is not executable" % path)
    if args.connect_timeout <= 0:
        args.connect_timeout = round(2 * args.sessions / args.connect_rate + 120) \
            if args.connect_rate > 0 else 600
    if not 0 < args.per_worker <= 19900 or not 0 < args.per_node <= 19900:
        ap.error("--per-node and --per-worker must be in 1..19900 (fd cap)")

    mi = meminfo()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    proj = projection(args)
    machine = {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
               "mem_total": mi["MemTotal"], "mem_available_at_start": mi["MemAvailable"],
               "nofile": [soft, hard], "cpu_model": cpu_model()}
    for name in ("fs.file-max", "fs.nr_open", "net.core.somaxconn", "net.ipv4.tcp_mem",
                 "net.ipv4.tcp_max_orphans", "net.ipv4.tcp_max_tw_buckets",
                 "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_count",
                 "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"):
        machine[name] = Sysctls.get(name)
    result = {"tool": "scale_demo", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "argv": shlex.join([sys.argv[0]] + sys.argv[1:]), "machine": machine,
              "config": {"sessions": args.sessions, "per_node": args.per_node,
                         "per_worker": args.per_worker, "connect_rate": args.connect_rate,
                         "broadcasts": args.broadcasts, "broadcast_gap": args.broadcast_gap,
                         "netns": args.netns == "inside",
                         "tcp_ehash_entries": Sysctls.get("net.ipv4.tcp_ehash_entries")},
              "projection": proj, "commands": {}, "timings": {}, "snapshots": {},
              "broadcasts": [], "error": None}
    print("# machine: %d cpus, %.1f GiB total, %.1f GiB available, nofile %d, file-max %s, "
          "tcp_mem %s" % (machine["cpus"], mi["MemTotal"] / 2**30, mi["MemAvailable"] / 2**30,
                          soft, machine["fs.file-max"], machine["net.ipv4.tcp_mem"]),
          flush=True)
    print("# projection (%s): %.0f B/session kernel + %.0f gateway + %.0f loadgen (+2 KiB "
          "broadcast buffers) -> %.2f GiB for %d sessions"
          % (proj["source"], proj["per_session"]["kernel"], proj["per_session"]["gateway"],
             proj["per_session"]["loadgen"], proj["bytes"] / 2**30, args.sessions), flush=True)
    if proj["bytes"] > args.max_gib * 2**30 or \
            proj["bytes"] > mi["MemAvailable"] - args.min_available_gib * 2**30:
        print("# refused: projection above --max-gib %.1f or what is available" % args.max_gib)
        return 2

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)
    status = 0
    try:
        run(args, result)
    except (Abort, RuntimeError, KeyboardInterrupt, subprocess.SubprocessError) as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
        print("# ERROR: %s" % result["error"], flush=True)
        status = 1
    finally:
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            # The full slabinfo of each snapshot is bulky: keep only caches that moved.
            snaps = result["snapshots"]
            if "start" in snaps:
                base = snaps["start"]["slab"]
                for s in snaps.values():
                    s["slab"] = {k: v for k, v in s["slab"].items()
                                 if abs(v - base.get(k, 0)) >= 1 << 20}
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1, sort_keys=False)
                f.write("\n")
            print("# wrote %s" % args.out, flush=True)
    return status


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
