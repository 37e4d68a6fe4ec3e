#!/usr/bin/python3
"""Checks the layering of the C sources: every `#include "..."` in gateway/, transports/, sockjs/,
pubsub/ and common/ must name a header of a layer the including file may use
(docs/ARCHITECTURE.md, "Layers"):

    gateway/    -> every layer (it assembles them)
    transports/ -> transports/, sockjs/, common/
    sockjs/     -> sockjs/, pubsub/, common/
    pubsub/     -> pubsub/, common/
    common/     -> common/

that is, each layer includes only its own headers, the layer just below it and common/ (which every
layer needs); a header found in none of the layers is a library's and not checked. The CMake
libraries link the same way, but linking gw_sockjs also puts pubsub/ on a transport's include path,
so only this check stops a transport reaching past sockjs/ into pubsub/.

    tests/layering/check_includes.py [ROOT]     # exit 1 and one line per violation
"""
import os
import re
import sys

ALLOWED = {
    "gateway": {"gateway", "transports", "sockjs", "pubsub", "common"},
    "transports": {"transports", "sockjs", "common"},
    "sockjs": {"sockjs", "pubsub", "common"},
    "pubsub": {"pubsub", "common"},
    "common": {"common"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def headers_by_layer(root):
    owner = {}
    for layer in ALLOWED:
        for name in os.listdir(os.path.join(root, layer)):
            if name.endswith(".h"):
                owner[name] = layer
    return owner


def violations(root):
    owner = headers_by_layer(root)
    found = []
    for layer, allowed in ALLOWED.items():
        folder = os.path.join(root, layer)
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = owner.get(os.path.basename(m.group(1)))
                    if target and target not in allowed:
                        found.append("%s/%s:%d: includes %s/%s; %s/ may include only %s/"
                                     % (layer, name, lineno, target, m.group(1), layer,
                                        "/, ".join(sorted(allowed))))
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    found = violations(os.path.abspath(root))
    for v in found:
        print(v)
    if found:
        print("%d include(s) against the layering (docs/ARCHITECTURE.md, Layers)" % len(found))
        return 1
    print("layering ok: every #include \"...\" stays within its layer's reach")
    return 0


if __name__ == "__main__":
    sys.exit(main())
