"""`nwlab sim serve STATION`: serve a station's emulated bench over TCP, one port per instrument.

Prints one line per instrument, `ROLE MODEL VISA_ADDRESS`, then serves until SIGINT or SIGTERM
and exits 0 with every port released. Scripts read the lines to learn the addresses.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sim_backend.transport._bench_lookup import open_bench
from sim_backend.transport.bench_server import BenchServer, is_loopback
from sim_backend.transport.tcp_server import DEFAULT_IDLE_TIMEOUT_S


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nwlab sim` to the parser."""
    sim = subparsers.add_parser("sim", help="run the emulated bench")
    commands = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve every instrument of a station on its own TCP port (raw SCPI, port 5025 style)",
    )
    serve.add_argument("station", help="station file, optionally '#<bench-id>'")
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else exposes the emulator)",
    )
    serve.add_argument(
        "--base-port", type=int, default=0,
        help="first port; instruments get consecutive ports (default 0: any free port each)",
    )
    serve.add_argument(
        "--idle-timeout-s", type=float, default=DEFAULT_IDLE_TIMEOUT_S,
        help="close a connection that leaves a message unfinished this long; a full port gives "
             f"the slot of a connection idle this long to a newcomer (default {DEFAULT_IDLE_TIMEOUT_S:g})",
    )
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    if not 0 <= args.base_port <= 65535:
        print(f"--base-port must be 0..65535, got {args.base_port}", file=sys.stderr)
        return 2
    if not args.idle_timeout_s > 0:
        print(f"--idle-timeout-s must be > 0, got {args.idle_timeout_s}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(f"warning: serving on {args.host}, reachable from other machines",
              file=sys.stderr)
    try:
        bench = open_bench(args.station)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"cannot open the bench for {args.station}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with BenchServer(bench, host=args.host, base_port=args.base_port,
                         idle_timeout_s=args.idle_timeout_s) as served:
            for inst in served.instruments:
                print(inst.role, inst.model, inst.server.visa_address)
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
    except OSError as exc:
        print(f"cannot serve {args.station}: {exc}", file=sys.stderr)  # e.g. port in use
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
