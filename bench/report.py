"""Medians, ratios, the markdown table and the chart of a `make bench` run.

A scenario's runs hold only the contenders that take part in it (the TLS and
compression scenarios leave some out): the others show "-" in its rows and have no bar
in its chart."""

import statistics

# (scenario, key in the run's value, label, unit, True if higher is better)
METRICS = [
    ("echo32", "msgs_per_sec", "echo 32 B, 50 conns x 16 in flight", "msg/s", True),
    ("echo4k", "msgs_per_sec", "echo 4 KiB, 50 conns x 16 in flight", "msg/s", True),
    ("broadcast100", "deliveries_per_sec", "broadcast to 100", "deliveries/s", True),
    ("broadcast1000", "deliveries_per_sec", "broadcast to 1,000", "deliveries/s", True),
    ("pubsub", "deliveries_per_sec", "pub/sub 10 x 100", "deliveries/s", True),
    ("broadcast100", "p99_us", "broadcast to 100, p99 latency", "us", False),
    ("broadcast1000", "p99_us", "broadcast to 1,000, p99 latency", "us", False),
    ("pubsub", "p99_us", "pub/sub 10 x 100, p99 latency", "us", False),
    (
        "connrate",
        "conns_per_sec",
        "connection rate (upgrade, echo, close; 16 at a time)",
        "conn/s",
        True,
    ),
    ("pingpong", "p50_us", "ping-pong latency p50 (1 conn)", "us", False),
    ("pingpong", "p99_us", "ping-pong latency p99 (1 conn)", "us", False),
    ("idle", "kib_per_conn", "memory per idle connection (5,000)", "KiB", False),
    ("echo32-tls", "msgs_per_sec", "echo 32 B over TLS, 50 conns x 16 in flight", "msg/s", True),
    (
        "connrate-tls",
        "conns_per_sec",
        "connection rate over TLS (full handshake, upgrade, echo, close; 16 at a time)",
        "conn/s",
        True,
    ),
    ("idle-tls", "kib_per_conn", "memory per idle TLS connection (5,000)", "KiB", False),
    (
        "echo4k-json-deflate",
        "msgs_per_sec",
        "echo 4 KiB JSON, permessage-deflate, 50 conns x 16 in flight",
        "msg/s",
        True,
    ),
    (
        "idle-deflate",
        "kib_per_conn",
        "memory per idle connection, permessage-deflate (5,000)",
        "KiB",
        False,
    ),
    ("http-hello", "requests_per_sec", "HTTP GET /hello, a handler's 13 B", "req/s", True),
    ("http-static4k", "requests_per_sec", "HTTP GET of a 4 KiB static file", "req/s", True),
    ("http-hello", "p99_us", "HTTP GET /hello, p99 latency", "us", False),
    ("http-static4k", "p99_us", "HTTP GET of a 4 KiB static file, p99 latency", "us", False),
]
ROOSTS = (
    "roost-asyncio",
    "roost-uvloop",
    "roost-trio",
    "roost-asyncio-inline",
    "roost-trio-inline",
)
NOT_PEERS = ("roost-c", "roost-c-inline", "aiohttp-asyncio") + ROOSTS


def medians(records):
    """Median of each figure over the rounds that went well, and how many failed."""
    good = [r for r in records if r.get("ok")]
    keys = {k for r in good for k, v in r.get("value", {}).items() if isinstance(v, (int, float))}
    out = {
        k: statistics.median(
            r["value"][k] for r in good if isinstance(r["value"].get(k), (int, float))
        )
        for k in keys
    }
    shares = [r[k] for r in good for k in ("server_cpu_share",) if r.get(k) is not None]
    lg = [r["loadgen_cpu_share"] for r in good if r.get("loadgen_cpu_share") is not None]
    if shares:
        out["server_cpu_share"] = statistics.median(shares)
    if lg:
        out["loadgen_cpu_share"] = statistics.median(lg)
    out["unsupported"] = sum(1 for r in records if r.get("unsupported"))
    out["failed"] = len(records) - len(good) - out["unsupported"]
    out["rounds"] = len(records)
    return out


def describe(scenario, record):
    """One progress line for one run."""
    if record.get("unsupported"):
        return f"NOT SUPPORTED: {record.get('error', '?')}"
    if not record.get("ok"):
        return f"FAILED: {record.get('error', '?')}"
    v = record.get("value", {})
    text = ", ".join(f"{k} {fmt(x)}" for k, x in v.items() if x is not None)
    lg, srv = record.get("loadgen_cpu_share"), record.get("server_cpu_share")
    if lg is not None and srv is not None:
        text += f" (CPU: loadgen {lg:.0%}, server {srv:.0%})"
    return text


def fmt(x):
    if x is None:
        return "-"
    if abs(x) >= 10_000:
        return f"{x / 1000:,.0f}k"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}"


def value(summary, scenario, key, name):
    m = summary["medians"].get(scenario, {}).get(name)
    if not m or m.get("failed", 0) + m.get("unsupported", 0) == m.get("rounds"):
        return None
    return m.get(key)


def advantage(roost, other, higher_better):
    """How many times better Roost is than `other` (>1: Roost is better)."""
    if not roost or not other:
        return None
    return roost / other if higher_better else other / roost


def best(summary, scenario, key, higher_better, names):
    candidates = [(value(summary, scenario, key, n), n) for n in names]
    candidates = [(v, n) for v, n in candidates if v is not None]
    if not candidates:
        return None, None
    return (max if higher_better else min)(candidates)


def markdown(summary):
    names = summary["contenders"]
    peers = [n for n in names if n not in NOT_PEERS]
    roosts = [n for n in ROOSTS if n in names]
    lines = [
        f"# Roost and its peers, {summary['date']}",
        "",
        f"Machine: {summary['machine']['cpu']}, {summary['machine']['cpus']} CPUs, Linux "
        f"{summary['machine']['kernel']}, Python {summary['machine']['python']}, TCP congestion "
        f"control {summary['machine']['congestion_control']}. Server pinned to CPU 0, load "
        f"generator (bench/loadgen) to CPU 1; a fresh server per run; rounds interleaved; medians of "
        f"{summary['settings']['rounds']} rounds; the run took {summary['minutes']} minutes.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()) + ".",
        "",
        *http_setup(summary),
        "## Medians",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for scenario, key, label, unit, higher in METRICS:
        if scenario not in summary["medians"]:
            continue
        cells = []
        for n in names:
            m = summary["medians"][scenario].get(n, {})
            v = value(summary, scenario, key, n)
            cell = fmt(v)
            if m.get("failed"):
                cell += f" ({m['failed']}/{m['rounds']} failed)"
            if m.get("unsupported"):
                cell += " (not supported)"
            cells.append(cell)
        arrow = "higher is better" if higher else "lower is better"
        lines.append(f"| {label} ({unit}, {arrow}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Roost against the peers",
        "",
        "Each cell is how many times better Roost is: its figure divided by the peer's "
        "where higher is better, the peer's divided by Roost's where lower is better. "
        "Above 1.00 Roost is ahead.",
        "",
    ]
    for roost in roosts:
        lines += [
            f"### {roost}",
            "",
            "| metric | best peer | " + " | ".join(peers) + " |",
            "|---|---|" + "---:|" * len(peers),
        ]
        for scenario, key, label, _unit, higher in METRICS:
            if scenario not in summary["medians"]:
                continue
            mine = value(summary, scenario, key, roost)
            best_value, best_name = best(summary, scenario, key, higher, peers)
            ratio = advantage(mine, best_value, higher)
            cells = [
                fmt_ratio(advantage(mine, value(summary, scenario, key, p), higher)) for p in peers
            ]
            lines.append(
                f"| {label} | {fmt_ratio(ratio)} ({best_name}) | " + " | ".join(cells) + " |"
            )
        lines.append("")
    c = [value(summary, s, "msgs_per_sec", "roost-c") for s in ("echo32", "echo4k")]
    if any(c):
        lines += ["## Python handlers as a share of the C example", ""]
        for roost in roosts:
            parts = []
            for s, cv in zip(("echo32", "echo4k"), c, strict=True):
                pv = value(summary, s, "msgs_per_sec", roost)
                if pv and cv:
                    parts.append(f"{s}: {pv / cv:.0%}")
            lines.append(f"- {roost}: " + ", ".join(parts))
        lines.append("")
    lines += [
        "## Load generator CPU",
        "",
        "Median CPU share of one core over each measured span (loadgen / server). "
        "A loadgen share below the server's means the server, not the load generator, "
        "set the pace.",
        "",
        "| scenario | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for scenario in summary["medians"]:
        cells = []
        for n in names:
            m = summary["medians"][scenario].get(n, {})
            lg, srv = m.get("loadgen_cpu_share"), m.get("server_cpu_share")
            cells.append(f"{lg:.0%} / {srv:.0%}" if lg is not None and srv is not None else "-")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    failures = [
        (s, n, r.get("error"))
        for s, by in summary["runs"].items()
        for n, rs in by.items()
        for r in rs
        if not r.get("ok") and not r.get("unsupported")
    ]
    if failures:
        lines += ["", "## Failed runs", ""] + [f"- {s} {n}: {e}" for s, n, e in failures]
    unsupported = {
        (s, n): r.get("error")
        for s, by in summary["runs"].items()
        for n, rs in by.items()
        for r in rs
        if r.get("unsupported")
    }
    if unsupported:
        lines += ["", "## Not supported", ""] + [
            f"- {s} {n}: {e}" for (s, n), e in unsupported.items()
        ]
    return "\n".join(lines) + "\n"


def http_setup(summary):
    """The paragraph on the HTTP scenarios' setup, when the run had them."""
    if not any(s.startswith("http") for s in summary["medians"]):
        return []
    settings = summary["settings"]
    return [
        f"HTTP scenarios: {settings['http_connections']} keep-alive connections, "
        f"{settings['http_pipeline']} requests pipelined on each; every response checked "
        "(status 200, the body byte for byte). Robyn runs in its fast mode (`--fast`, its "
        "command line's setting for speed: 2 workers) with one process, as Roost has; "
        "its GET handler is a plain route (not `const=True`, which would answer from a "
        "cache without running the handler).",
        "",
    ]


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}"


def chart(summary, path):
    """One bar chart per metric; Roost's bars in a colour of their own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if m[0] in summary["medians"]]
    names = summary["contenders"]
    cols = 2
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(13, 2.6 * rows), squeeze=False)
    for ax, (scenario, key, label, unit, higher) in zip(axes.flat, metrics, strict=False):
        taking_part = [n for n in names if n in summary["medians"][scenario]]
        values = [value(summary, scenario, key, n) or 0 for n in taking_part]
        colours = ["#d9480f" if n.startswith("roost") else "#868e96" for n in taking_part]
        bars = ax.barh(taking_part, values, color=colours)
        ax.invert_yaxis()
        ax.set_title(f"{label} ({unit}, {'higher' if higher else 'lower'} is better)", fontsize=9)
        ax.tick_params(labelsize=8)
        for bar, v, n in zip(bars, values, taking_part, strict=True):
            unsupported = summary["medians"][scenario][n].get("unsupported")
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                " " + fmt(v) if v else " not supported" if unsupported else " failed",
                va="center",
                fontsize=7,
            )
        ax.set_xlim(0, max(values or [1]) * 1.2 or 1)
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(
        f"Roost and its peers ({summary['date']}; server on 1 core, medians of "
        f"{summary['settings']['rounds']} rounds)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
