"""`nwlab sim serve STATION`: serve a station's emulated bench over TCP, one port per instrument.

Prints one line per instrument on stdout, `KEY MODEL VISA_ADDRESS` (KEY: the instrument's key
under `instruments:` in the station file), for scripts to read, and the same as a labelled table
with each instrument's role on stderr, for people. `--vxi11` and `--hislip` serve the instruments
over those LAN transports too (device names inst0, inst1, … and hislip0, hislip1, … in station
order; docs/lan-transports.md): one more `KEY MODEL VISA_ADDRESS` line per instrument for each,
after the socket lines. With `--station-out FILE` it first writes a
station file pointing at the served addresses (sim_backend/cli/served_station.py), so
`nwlab campaign --station FILE` runs over TCP. Serves until SIGINT or SIGTERM and exits 0 with
every port released.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sim_backend.cli.served_station import StationOutError, served_station_text, write_served_station
from sim_backend.transport.connection_server import DEFAULT_IDLE_TIMEOUT_S


def register(commands: argparse._SubParsersAction) -> None:
    """Add `nwlab sim serve` to the `sim` subcommands."""
    serve = commands.add_parser(
        "serve",
        help="serve every instrument of a station on its own TCP port (raw SCPI, port 5025 style)",
        description="Serve every instrument of a station on its own TCP port. Prints one line per "
                    "instrument on stdout, KEY MODEL VISA_ADDRESS (KEY: its key under `instruments:`), "
                    "and a table with each instrument's role on stderr.",
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
    serve.add_argument(
        "--vxi11", action="store_true",
        help="serve over VXI-11 too: TCPIP0::HOST::instN::INSTR through the port mapper on port 111 "
             "when it can be had, else TCPIP0::HOST,PORT::instN::INSTR",
    )
    serve.add_argument(
        "--vxi11-port", type=int, default=0,
        help="the VXI-11 core channel's port (default 0: any free port; clients find it through "
             "the port mapper)",
    )
    serve.add_argument(
        "--hislip", action="store_true",
        help="serve over HiSLIP too: TCPIP0::HOST::hislipN,PORT::INSTR",
    )
    serve.add_argument(
        "--hislip-port", type=int, default=0,
        help="the HiSLIP port (default 0: any free port; 4880, the standard one, makes the "
             "addresses TCPIP0::HOST::hislipN::INSTR)",
    )
    serve.add_argument(
        "--station-out", metavar="FILE", type=Path,
        help="write a station file whose instruments are the served ones (their served TCP "
             "addresses, no visalib), for `nwlab campaign --station FILE` while this server runs",
    )
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    # here, not at the top: `nwlab` builds every command's parser each time it starts
    from sim_backend.transport._bench_lookup import open_bench
    from sim_backend.transport.bench_server import BenchServer, is_loopback

    for option in ("base_port", "vxi11_port", "hislip_port"):
        if not 0 <= getattr(args, option) <= 65535:
            print(f"--{option.replace('_', '-')} must be 0..65535, got {getattr(args, option)}",
                  file=sys.stderr)
            return 2
    if not args.idle_timeout_s > 0:
        print(f"--idle-timeout-s must be > 0, got {args.idle_timeout_s}", file=sys.stderr)
        return 2
    if args.station_out is not None and args.station_out.is_dir():
        print(f"--station-out {args.station_out} is a directory; give a file name", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(f"warning: serving on {args.host}, reachable from other machines",
              file=sys.stderr)
    try:
        bench = open_bench(args.station)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"cannot open the bench for {args.station}: {exc}", file=sys.stderr)
        return 1
    if args.station_out is not None and getattr(bench, "station", None) is None:
        print(f"cannot write --station-out: the bench for {args.station} has no station file", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with BenchServer(bench, host=args.host, base_port=args.base_port,
                         vxi11=args.vxi11, vxi11_port=args.vxi11_port,
                         hislip=args.hislip, hislip_port=args.hislip_port,
                         idle_timeout_s=args.idle_timeout_s) as served:
            # The bench's instrument entries are named by their station key.
            addresses = {inst.role: inst.server.visa_address for inst in served.instruments}
            if args.station_out is not None:
                write_served_station(args.station_out, served_station_text(
                    Path(bench.station.path), addresses, f"nwlab sim serve {args.station}"))
            rows = _address_rows(served.instruments)
            for key, model, address in rows:
                print(key, model, address)
            sys.stdout.flush()
            _show(bench, rows, args.station_out)
            if served.vxi11 is not None and served.vxi11.portmapper_error:
                print(f"VXI-11 without a port mapper ({served.vxi11.portmapper_error}): its "
                      "addresses name the core port", file=sys.stderr)
            while not stop.wait(0.5):
                pass
    except StationOutError as exc:
        print(f"cannot write --station-out {args.station_out}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot serve {args.station}: {exc}", file=sys.stderr)  # e.g. port in use
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _address_rows(instruments) -> list[tuple[str, str, str]]:
    """(key, model, address): every instrument's socket address, then its VXI-11 ones, then HiSLIP."""
    rows = [(inst.role, inst.model, inst.server.visa_address) for inst in instruments]
    for transport in ("vxi11_address", "hislip_address"):
        rows += [(inst.role, inst.model, getattr(inst, transport)) for inst in instruments
                 if getattr(inst, transport)]
    return rows


def _show(bench, address_rows, station_out: Path | None) -> None:
    """For people, on stderr: each served address with its instrument's key, role and model; the
    station file."""
    station = getattr(bench, "station", None)

    def role(key: str) -> str:
        try:
            return station.instrument(key).role
        except (AttributeError, KeyError):
            return "-"

    rows = [("KEY", "ROLE", "MODEL", "ADDRESS")]
    rows += [(key, role(key), model, address) for key, model, address in address_rows]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3], file=sys.stderr)
    if station_out is not None:
        print(f"station file for these addresses: {station_out}  (nwlab campaign --station {station_out} ...)",
              file=sys.stderr)
    print("serving until Ctrl-C or SIGTERM", file=sys.stderr)
    sys.stderr.flush()
