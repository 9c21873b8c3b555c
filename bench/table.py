#!/usr/bin/env python3
"""bench/table.py: the markdown table of bench/run.sh's results, each figure beside its baseline
(the bare PTY, measured in the same run) and its target from DESIGN.md. Usage: table.py DIR."""
import json
import os
import sys


def load(d, name):
    try:
        with open(os.path.join(d, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(j, *path):
    for p in path:
        if not isinstance(j, dict) or p not in j:
            return None
        j = j[p]
    return j


def mb(v):
    return "-" if v is None else "%.1f MB/s" % (v / 1e6)


def us(v):
    return "-" if v is None else "%.0f µs" % v


def num(v, fmt="%d"):
    return "-" if v is None else fmt % v


def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)


def verdict(ok):
    return "-" if ok is None else ("yes" if ok else "**no**")


def main():
    d = sys.argv[1]
    m = load(d, "machine") or {}
    bt, be = load(d, "baseline_throughput"), load(d, "baseline_echo")
    t1, t4, fo = load(d, "throughput_1"), load(d, "throughput_4x2"), load(d, "fanout_4")
    ex = load(d, "exits_200")
    ei, ef, efw = load(d, "echo_idle"), load(d, "echo_flood"), load(d, "echo_flood_window")
    idle, slow, churn = load(d, "idle"), load(d, "slow"), load(d, "churn")
    base_bps = get(bt, "bytes_per_sec")
    rows = []

    def row(fig, val, base, rat, target, ok):
        rows.append("| %s | %s | %s | %s | %s | %s |" % (fig, val, base, rat, target, verdict(ok)))

    v = get(t1, "bytes_per_sec")
    row("throughput, 1 session", mb(v), mb(base_bps), ratio(v, base_bps), "≥ 0.85 of bare PTY",
        None if v is None or not base_bps else v / base_bps >= 0.85)
    v = get(t4, "per_session", "bytes_per_sec", "mean")
    row("throughput, 4 sessions / 2 connections, per session", mb(v), mb(base_bps),
        ratio(v, base_bps), "(shares 2 cores)", None)
    row("throughput, 4 sessions / 2 connections, total", mb(get(t4, "bytes_per_sec")), mb(base_bps),
        ratio(get(t4, "bytes_per_sec"), base_bps), "", None)
    v = get(fo, "per_viewer", "bytes_per_sec", "mean")
    row("fan-out, 4 viewers, per viewer (spread %s)" % num(get(fo, "per_viewer", "bytes_per_sec",
                                                              "spread"), "%.3f"),
        mb(v), mb(base_bps), ratio(v, base_bps), "", None)
    lost = [get(x, "bytes_lost_at_exit") for x in (t1, t4, fo, ex)]
    known = [x for x in lost if x is not None]
    row("bytes lost at exit (4 runs, %s sessions in the last)" % num(get(ex, "sessions")),
        num(sum(known)) if known else "-", num(get(bt, "bytes_lost")), "-", "0",
        None if not known else sum(known) == 0)
    skipped = [get(x, "bytes_skipped") for x in (t1, t4, fo, ex)]
    known = [x for x in skipped if x is not None]
    row("bytes skipped mid-stream (slow reader, same runs)", num(sum(known)) if known else "-", "-",
        "-", "0 here (ring holds all)", None if not known else sum(known) == 0)
    for name, j, key, base, target, lim in (
            ("echo p50, idle", ei, "p50_us", get(be, "p50_us"), "< 40 µs", 40),
            ("echo p99, idle", ei, "p99_us", get(be, "p99_us"), "< 100 µs", 100),
            ("echo p50, beside 1 flooding session", ef, "p50_us", get(be, "p50_us"), "", None),
            ("echo p99, beside 1 flooding session", ef, "p99_us", get(be, "p99_us"), "< 500 µs", 500),
            ("echo p99, beside 1 flood with a 64 KiB window", efw, "p99_us", get(be, "p99_us"),
             "< 500 µs", 500)):
        v = get(j, key)
        row(name, us(v), us(base), ratio(v, base), target,
            None if v is None or lim is None else v < lim)
    v = get(idle, "relay_bytes_per_session")
    row("idle: relay memory per session (%s sessions)" % num(get(idle, "sessions_open")),
        num(v, "%.0f B"), "-", "-", "< 4096 B", None if v is None else v < 4096)
    row("idle: relay fds per session", num(get(idle, "relay_fds_per_session"), "%.1f"), "-", "-", "",
        None)
    row("idle: time to open them all", num(get(idle, "open_seconds"), "%.2f s"), "-", "-", "", None)
    v = get(idle, "echo", "p99_us")
    row("idle: echo p99 while all are open", us(v), us(get(be, "p99_us")),
        ratio(v, get(be, "p99_us")), "< 100 µs", None if v is None else v < 100)
    v = get(slow, "throughput_ratio")
    row("slow: readers' rate beside a stalled client / alone", num(v, "%.3f"), "-", "-", "≥ 0.95",
        None if v is None else v >= 0.95)
    g = get(slow, "rss_growth_during_stall_kb")
    row("slow: relay RSS growth while the client stays stalled", num(g, "%d kB"), "-", "-", "flat",
        None if g is None else g <= 256)
    row("slow: close code the stalled client saw", num(get(slow, "stalled", "close_code")), "-", "-",
        "4408", None if get(slow, "stalled", "close_code") is None
        else get(slow, "stalled", "close_code") == 4408)
    row("churn: cycles ok / started (%s/s)" % num(get(churn, "rate")),
        "%s / %s" % (num(get(churn, "cycles_ok")), num(get(churn, "cycles_started"))), "-", "-",
        "all", None if churn is None else churn["cycles_ok"] == churn["cycles_started"])
    row("churn: relay fds leaked, RSS growth", "%s, %s kB" % (num(get(churn, "fds_leaked")),
                                                              num(get(churn, "rss_growth_kb"))),
        "-", "-", "0, small", None if churn is None else get(churn, "fds_leaked") == 0)

    print("Machine: %s, %s CPUs, %s MB RAM, kernel %s; load average %s at the start, %s at the end; "
          "%s%s\n" % (m.get("cpu", "?"), m.get("cpus", "?"), m.get("mem_kb", 0) // 1024,
                      m.get("kernel", "?"), m.get("loadavg_start", "?"), m.get("loadavg_end", "?"),
                      m.get("date", ""), " (quick run)" if m.get("quick") else ""))
    print("| figure | relay (ptload) | bare PTY baseline | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    cpu = get(t1, "ptload_cpu_s")
    el = get(t1, "seconds")
    rc = get(t1, "relay_cpu_s")
    if cpu is not None and el:
        print("\nthroughput_1: ptload used %.2f s of CPU and the relay %.2f s over %.2f s of transfer."
              % (cpu, rc or 0, el))


if __name__ == "__main__":
    main()
