"""The machine a sweep ran on, as a person reads it: env.json's fields in
words (driver 13000 is CUDA 13.0, NCCL 22809 is 2.28.9), terminal colour
codes stripped from nvidia-smi's output, lists and dicts written out, not
printed as Python."""
import re

from markupsafe import Markup, escape

from bench import hostload, invocations, peaks

# Terminal control sequences (ECMA-48): CSI (colours, cursor), OSC (titles),
# character-set selection, and any other two-byte escape.
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()*+][0-9A-Za-z]|[@-Z\\-_])")


def cuda_version(v) -> str:
    """cudaDriverGetVersion's integer, 1000 x major + 10 x minor."""
    return f"{int(v) // 1000}.{int(v) % 1000 // 10}" if isinstance(v, int) and v > 0 else "–"


def nccl_version(v) -> str:
    if not isinstance(v, int) or v <= 0:
        return "–"
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}" if v >= 20900 else f"{v // 1000}.{v // 100 % 10}.{v % 100}"


def flops(v) -> str:
    return "not recorded" if not v else f"{v / 1e12:.3g} TFLOP/s" if v >= 1e12 else f"{v / 1e9:.3g} GFLOP/s"


def _blas(threads) -> str:
    if isinstance(threads, list):
        pools = {}
        for p in threads:
            key = f"{p.get('api')}: {p.get('threads')} threads"
            pools[key] = pools.get(key, 0) + 1
        return ", ".join(k + (f" ({n} pools)" if n > 1 else "") for k, n in pools.items()) or "–"
    return str(threads)


def _gpus(gpu: dict) -> list:
    devices = gpu.get("devices") or []
    if not devices:
        return [("GPUs", "none" + (f" ({gpu['note']})" if gpu.get("note") else ""))]
    names = {}
    for d in devices:
        key = f"{d.get('name')} ({d.get('memory_gib')} GiB, {d.get('multiprocessors')} SMs)"
        names[key] = names.get(key, 0) + 1
    rows = [("GPUs", ", ".join(f"{n} × {k}" for k, n in names.items()))]
    first = devices[0]
    peak = first.get("peak_fp32_flops")
    basis = (f"{first.get('multiprocessors')} SMs at {first.get('clock_mhz'):.0f} MHz" if peak and
             first.get("clock_mhz") else "from the card's name and SM count (not recorded)")
    peak = peak or peaks.gpu_peak_from_name(first.get("name", ""), first.get("multiprocessors"))
    rows.append(("GPU peak, FP32", f"{flops(peak)} per GPU ({basis})"))
    driver = gpu.get("driver")
    rows.append(("CUDA driver / runtime", f"{cuda_version(gpu.get('driver_version'))} / "
                                          f"{cuda_version(gpu.get('runtime_version'))}"
                 + (f" (driver {driver[0]})" if isinstance(driver, list) and driver else "")))
    rows.append(("CuPy / NCCL", f"{gpu.get('cupy', '–')} / {nccl_version(gpu.get('nccl'))}"))
    peer = gpu.get("peer_access") or {}
    if peer:
        rows.append(("peer access", ", ".join(f"{k.replace('->', ' → ')}: {'yes' if v else 'no'}"
                                              for k, v in peer.items())))
    return rows


def rows(env: dict) -> list:
    """(field, value) pairs of one invocation's record; value may be Markup."""
    cpu, v = env.get("cpu") or {}, env.get("versions") or {}
    out = [("recorded", f"{env.get('recorded_at', '?')} on {env.get('host', '?')}"),
           ("command", env.get("command", "unknown")),
           ("CPU", f"{cpu.get('model', '?')}, {cpu.get('logical_cores', '?')} logical cores, "
                   f"{cpu.get('usable_cores', '?')} usable"
                   + (f" on {cpu['physical_cores']} physical" if cpu.get("physical_cores") else "")),
           ("CPU peak, FP32 (estimate)", flops(cpu.get("peak_fp32_flops"))
            + (f" ({cpu['basis']})" if cpu.get("basis") else "")),
           ("BLAS threads", _blas(cpu.get("blas_threads"))),
           ("RAM", f"{env.get('ram_gib', '?')} GiB"), *_gpus(env.get("gpu") or {})]
    topo = ANSI.sub("", (env.get("gpu") or {}).get("topology") or "").split("\n\nLegend")[0].strip()
    if topo:
        out.append(("GPU topology", Markup(f"<pre>{escape(topo.expandtabs(8))}</pre>")))
    out += _how_timed(env)
    out += [("OS", env.get("os", "?")),
            ("software", ", ".join(f"{k} {val}" for k, val in v.items() if val and k != "mpi")),
            ("MPI", v.get("mpi") or "–"), ("commit", env.get("git_commit", "?"))]
    return out


def _how_timed(env: dict) -> list:
    """The control, repeats and host speed known at the start, where the
    record has them (older folders have none of them, or some)."""
    out = []
    control = env.get("control") or {}
    if control:
        threads = control.get("threads", "?")
        gate = control.get("host_gate_tolerance")
        warm = str(control.get("warmup_rounds", "0")).split(":")[0]
        pinned = "pinned" if control.get("pinned") else "not pinned"
        waited = env.get("boot_wait_s")
        out.append(("timing control", f"{pinned}, {threads} BLAS threads; "
                    + (f"host-speed gate at {gate:.0%}" if isinstance(gate, (int, float)) else "no host-speed gate")
                    + (f"; {warm} warm-up round(s)" if warm not in ("", "0") else "")
                    + (f"; waited {waited:.0f} s for the machine to have been {hostload.FRESH_UP} (--settle)"
                       if isinstance(waited, (int, float)) and waited > 0 else "")))
    repeats = env.get("repeats") or {}
    if repeats.get("mode") == "auto":
        span = repeats.get("min_span_s")
        target = 100 * repeats.get("target_ci", 0)
        out.append(("repeats", f"auto: until the median's 95 % interval is within ±{target:g} %"
                    + (f", the counted repeats started at least {span:g} s apart" if span else "")
                    + f"; at most {repeats.get('max_repeats', '?')}"))
    elif repeats.get("mode") == "fixed":
        out.append(("repeats", f"{repeats.get('count', '?')} of each configuration"))
    before = (env.get("uncontrolled") or {}).get("load_before") or {}
    if isinstance(before.get("uptime_s"), (int, float)):
        up = before["uptime_s"]
        out.append(("machine up", (f"{up:.0f} s" if up < 60 else f"{up / 60:.0f} min") + " when the sweep began"
                    + (f" ({hostload.FRESH_SLOWER})" if hostload.fresh(before) is not None else "")))
    known = env.get("host_probes_known_at_start")
    if isinstance(known, dict):
        out.append(("host speed known at the start", "; ".join(
            f"{kind}: {min(values):.3f}–{max(values):.3f} ms" for kind, values in known.items() if values)
            + " (the gate's fastest probes from this machine's sweeps in the hour before)" if known
            else "none: no sweep on this machine in the hour before (the gate learned full speed as it went)"))
    return out


def tables(env: dict, used=()) -> Markup:
    """One two-column table per invocation that measured the runs."""
    recs = invocations.records(env, used)
    if not recs:
        return Markup("<p>No env.json: the machine was not recorded.</p>")
    html = []
    for key, rec in recs.items():
        head = f"<h3>Invocation {escape(key)}</h3>" if len(recs) > 1 else ""
        body = "".join(f'<tr><th class="l">{escape(k)}</th><td class="l">{escape(val)}</td></tr>'
                       for k, val in rows(rec))
        html.append(f'{head}<div class="tablewrap"><table class="machine">{body}</table></div>')
    return Markup("".join(html))


def summary_line(env: dict) -> str:
    """The page's subtitle: CPU and GPUs in a few words."""
    cpu, gpu = env.get("cpu") or {}, env.get("gpu") or {}
    names = {}
    for d in gpu.get("devices") or []:
        names[d.get("name")] = names.get(d.get("name"), 0) + 1
    gpus = ", ".join(f"{n} × {k}" for k, n in names.items()) or "no GPU"
    return f"{cpu.get('model', '?')} ({cpu.get('usable_cores', '?')} cores) · {gpus} · {env.get('recorded_at', '?')}"
