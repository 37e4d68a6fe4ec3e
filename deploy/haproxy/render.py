#!/usr/bin/python3
"""Prints an haproxy.cfg for N sockjs-gateway nodes from haproxy.cfg.in (next to this file).

    deploy/haproxy/render.py --nodes 10.0.0.1:8080,10.0.0.2:8080 --bind :80 > haproxy.cfg
    deploy/haproxy/render.py --nodes 127.0.0.1:9001,127.0.0.1:9002 \\
        --sources 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 --lines-per-node 2

Each node gets --lines-per-node server lines; each line connects from the next address of
--sources (cycled), so that HAProxy's connections to the gateways spread over several source
addresses (one source address and one gateway address:port allow at most one connection per
local port: see deploy/README.md for the arithmetic). The gateways' listeners must take the
PROXY protocol (`--listen ADDR:PORT,proxy`). Python 3 standard library only.
"""

import argparse
import os
import re
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# `option httplog`'s format (HAProxy 2.6) with the request line's path instead of its URI: the
# session token rides in `?token=` on polling URLs and must not reach the logs
# (docs/PROXIES.md, "Keeping tokens out of access logs").
HTTP_LOG_FORMAT = ('%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc '
                   '%ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs "%HM %HP %HV"')


def host_port(text, what):
    m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{1,5})", text.strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise argparse.ArgumentTypeError("%s: HOST:PORT expected, got %r" % (what, text))
    return m.group(1), int(m.group(2))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", required=True,
                   help="gateway listeners (their ,proxy ones), comma-separated HOST:PORT")
    p.add_argument("--bind", default=":80", help="HAProxy's listening address (default :80)")
    p.add_argument("--prefix", default="/sockjs", help="the gateways' --prefix (default /sockjs)")
    p.add_argument("--sources", default="",
                   help="source addresses for the connections to the gateways, comma-separated"
                        " (cycled over the server lines; default: the kernel's choice)")
    p.add_argument("--lines-per-node", type=int, default=1,
                   help="server lines per node, each with its own source (default 1)")
    p.add_argument("--maxconn-per-server", type=int, default=25000,
                   help="connections per server line (default 25000)")
    p.add_argument("--check-inter", default="1s", help="health check interval (default 1s)")
    p.add_argument("--timeout-client", default="30s",
                   help="idle limit of streams and polls; above --heartbeat-ms (default 30s)")
    p.add_argument("--timeout-tunnel", default="1h", help="idle limit of websockets (1h)")
    p.add_argument("--stats-socket", default="",
                   help="path of an admin stats socket (show stat, disable server ...)")
    p.add_argument("--log", default="",
                   help="HAProxy's log target, e.g. /dev/log or stderr (default: no log)")
    p.add_argument("--log-asap", action="store_true",
                   help="log each request when its answer starts, not when it ends (websockets"
                        " and streams are then logged when they open)")
    p.add_argument("--template", default=os.path.join(HERE, "haproxy.cfg.in"))
    a = p.parse_args(argv)
    a.node_list = [host_port(n, "--nodes") for n in a.nodes.split(",") if n.strip()]
    if not a.node_list:
        p.error("--nodes: at least one node")
    host_port(a.bind if ":" in a.bind else ":" + a.bind, "--bind")
    a.source_list = [s.strip() for s in a.sources.split(",") if s.strip()]
    if a.lines_per_node < 1 or a.maxconn_per_server < 1:
        p.error("--lines-per-node and --maxconn-per-server: at least 1")
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", a.prefix):
        p.error("--prefix: /path without a trailing slash expected")
    return a


def render(a):
    servers, tracked = [], []
    line = 0
    for i, (host, port) in enumerate(a.node_list, 1):
        for j in range(1, a.lines_per_node + 1):
            name = "g%d" % i if a.lines_per_node == 1 else "g%d_%d" % (i, j)
            src = ""
            if a.source_list:
                src = " source %s" % a.source_list[line % len(a.source_list)]
            servers.append("    server %s %s:%d%s" % (name, host, port, src))
            tracked.append("    server %s %s:%d%s track gateways_session/%s"
                           % (name, host, port, src, name))
            line += 1
    with open(a.template, encoding="utf-8") as f:
        tpl = string.Template(f.read())
    stats = ""
    if a.stats_socket:
        stats = "    stats socket %s mode 600 level admin\n" % a.stats_socket
    log_target = log_options = ""
    if a.log:
        fmt = " format raw" if a.log in ("stderr", "stdout") else ""
        log_target = "    log %s%s local0 info\n" % (a.log, fmt)
        log_options = "    log global\n    log-format \"%s\"\n" % HTTP_LOG_FORMAT.replace('"', '\\"')
        if a.log_asap:
            log_options += "    option logasap\n"
    return tpl.substitute(
        log_target=log_target,
        log_options=log_options,
        global_maxconn=a.maxconn_per_server * line,
        stats_socket=stats,
        timeout_client=a.timeout_client,
        timeout_tunnel=a.timeout_tunnel,
        bind=a.bind,
        prefix_re=re.escape(a.prefix),
        # "/sockjs/S/SESSION/T" split on "/": "", "sockjs", "S", "SESSION", "T".
        session_field=a.prefix.count("/") + 3,
        check_inter=a.check_inter,
        server_maxconn=a.maxconn_per_server,
        servers="\n".join(servers) + "\n",
        tracked_servers="\n".join(tracked) + "\n")


def main(argv=None):
    sys.stdout.write(render(parse_args(argv)))


if __name__ == "__main__":
    main()
