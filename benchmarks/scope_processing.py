"""The emulated scope's processing of one acquisition against the separate steps it fuses.

One real acquisition on the emulated station (the chip's output node and the monitored input,
30,901 fine samples each, 10,000-point records) is processed as the bench does it — the chip
node's two-pole filter, the monitored input filtered as it is sampled, the ADC in one pass
(`sim_backend.bench.signal_processing`) — and, as the reference in the same run, by the steps
those replace: np.interp of the input and the gain, the two one-pole sections one after the
other, Catmull-Rom resampling, the noise drawn as an array and added, numpy rounding and
clipping. Both give the same codes (checked). Prints the best time of each over the repeats,
their ratio and a JSON line.

    .ci/env python benchmarks/scope_processing.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyvisa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import acquisition_throughput as acquisition  # noqa: E402

from sim_backend import emulator  # noqa: E402
from sim_backend.bench import signal_processing as sp  # noqa: E402
from sim_backend.bench.scope import ADC_BITS  # noqa: E402
from sim_backend.transport._bench_lookup import set_bench_opener  # noqa: E402

BANDWIDTH_HZ = 4e9
NOISE_RMS_V = 0.5e-3
MONITOR_GAIN = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    set_bench_opener(emulator.open_bench)
    library = f"{acquisition.station_file(Path(tempfile.mkdtemp()))}#bench-{uuid.uuid4().hex[:8]}"
    bench = emulator.open_bench(library)
    acquisition.prepare(bench)
    scope = acquisition.open_scope(pyvisa.ResourceManager(f"{library}@nwlab"),
                                   bench.station.instrument("scope").address, nodelay=False)
    acquisition.acquire(scope)
    world = bench.world
    truth, panel = world.last_capture, world.panels["scope"]
    node_v = next(iter(truth.chip.node_voltage_v.values()))       # on the fine grid from the pre-roll
    fine_s = panel.sample_interval_s / 3
    start_s = panel.first_sample_s - 10e-9
    fine_time_s = np.minimum(start_s + fine_s * np.arange(node_v.size), start_s + fine_s * (node_v.size - 1))
    monitor = world.generator_output_v(0, truth.origin_s, start_s, float(fine_time_s[-1]))
    sample_times_s = truth.trigger_rel_s + panel.first_sample_s + panel.sample_interval_s * np.arange(10_000)
    channel = panel.channels[1]
    decay, ratio = sp.section_constants(fine_s, BANDWIDTH_HZ)
    low, high = -(2 ** (ADC_BITS - 1)), 2 ** (ADC_BITS - 1) - 1

    def separate() -> list[np.ndarray]:
        rng = np.random.default_rng(1)
        signals = (node_v, np.interp(fine_time_s, monitor.times_s, monitor.values) * MONITOR_GAIN)
        codes = []
        for signal in signals:
            filtered = sp._one_pole(sp._one_pole(signal, decay, ratio), decay, ratio)
            volts = sp.resample(start_s, fine_s, filtered, sample_times_s)
            volts += NOISE_RMS_V * rng.standard_normal(sample_times_s.size)
            codes.append(np.clip(np.round((volts - channel.offset_v) / channel.lsb_v), low, high).astype(np.int16))
        return codes

    def fused() -> list[np.ndarray]:
        rng = np.random.default_rng(1)
        signals = (sp.low_pass(node_v, fine_s, BANDWIDTH_HZ),
                   sp.low_pass_of_piecewise_linear(monitor.times_s, monitor.values, MONITOR_GAIN, fine_time_s,
                                                   fine_s, BANDWIDTH_HZ))
        return [sp.digitize(start_s, fine_s, signal, sample_times_s, rng, NOISE_RMS_V, channel.offset_v,
                            channel.lsb_v, ADC_BITS) for signal in signals]

    same = all(np.array_equal(a, b) for a, b in zip(separate(), fused()))
    best = {"separate": math.inf, "fused": math.inf}
    for _ in range(args.repeats):
        for name, process in (("separate", separate), ("fused", fused)):
            began = time.perf_counter()
            process()
            best[name] = min(best[name], time.perf_counter() - began)
    print(f"one acquisition's processing, 2 channels x {node_v.size:,} fine samples -> 2 x 10,000 codes, "
          f"best of {args.repeats}:")
    print(f"  separate steps {best['separate'] * 1e6:7.0f} us")
    print(f"  fused          {best['fused'] * 1e6:7.0f} us   ratio {best['separate'] / best['fused']:.2f}; "
          f"same codes: {same}")
    print(json.dumps({"benchmark": "scope_processing", "fine_samples": int(node_v.size),
                      "separate_us": round(best["separate"] * 1e6, 1), "fused_us": round(best["fused"] * 1e6, 1),
                      "ratio": round(best["separate"] / best["fused"], 3), "same_codes": same}))


if __name__ == "__main__":
    main()
