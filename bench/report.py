"""Turn the scenarios' results into ``latest.json`` keys, a markdown table and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _get(results: Any, *path: Any) -> Any:
    node: Any = results
    for key in path:
        if node is None:
            return None
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _memory_peak(results: dict[str, Any], size: int) -> float | None:
    for row in _get(results, "memory", "rows") or []:
        if row["size"] == size:
            return float(row["peak_rss_mb"])
    return None


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The comparable top-level keys (numbers; ``None`` where a scenario did not run)."""
    seg_rows = _get(results, "segmenter", "throughput") or []
    largest = seg_rows[-1] if seg_rows else None
    return {
        "ttfa_overhead_ms_median": _get(results, "ttfa", "overhead_ms", "median"),
        "ttfa_overhead_ms_p95": _get(results, "ttfa", "overhead_ms", "p95"),
        "first_file_overhead_ms_median": _get(results, "ttfa", "first_file_overhead_ms",
                                              "median"),
        "overlap_efficiency": _get(results, "overlap", "worst_efficiency"),
        "baseline_overlap_efficiency": _get(results, "overlap", "baseline_worst_efficiency"),
        "first_segment_s_speakstream":
            _get(results, "first_segment", "streams", "answer", "speakstream", "first_segment_s"),
        "first_segment_s_stream2sentence": _get(
            results, "first_segment", "streams", "answer", "stream2sentence", "first_segment_s"),
        "segmenter_chars_per_s": _get(largest, "speakstream", "chars_per_s"),
        "segmenter_speedup_vs_stream2sentence": _get(largest, "ratio"),
        "narration_peak_rss_mb_1mb": _memory_peak(results, 1_000_000),
        "narration_peak_rss_mb_10mb": _memory_peak(results, 10_000_000),
        "narration_speedup_2_workers":
            _get(results, "engines", "engines", "espeak", "speedup_2_workers"),
        "daemon_errors": _get(results, "daemon", "errors"),
        "daemon_ttfa_overhead_ms_p50": _get(results, "daemon", "ttfa_overhead_ms", "median"),
        "daemon_ttfa_overhead_ms_p99": _get(results, "daemon", "ttfa_overhead_ms", "p99"),
        "daemon_peak_rss_mb": _get(results, "daemon", "daemon_peak_rss_mb"),
        "local_ttft_s": _get(results, "local", "ttft_s"),
        "local_ttfa_s": _get(results, "local", "ttfa_s"),
        "local_tokens_per_s": _get(results, "local", "tokens_per_s"),
        "first_segment_ratio_vs_wait_next_word":
            _get(results, "first_segment", "ratio_vs_wait_next_word", "answer"),
        **{f"{name}_{tool}": _get(results, "accuracy", "sets", name, tool, "passed")
           for name in ("golden_rules", "stress")
           for tool in ("speakstream", "pysbd", "stream2sentence", "plain_punkt")},
        "speech_ttfb_ratio_piper_mp3":
            _get(results, "speech", "engines", "piper", "mp3", "ratio_vs_first_sentence"),
        "speech_ttfb_ratio_piper_pcm":
            _get(results, "speech", "engines", "piper", "pcm", "ratio_vs_first_sentence"),
        "speech_ttfb_s_piper_mp3": _get(results, "speech", "engines", "piper", "mp3", "ttfb_s"),
        "default_path_warm_ratio": _get(results, "default_path", "warm_ratio"),
        "default_path_cold_vs_warm": _get(results, "default_path", "cold_vs_warm"),
        "default_path_warm_ttfa_s": _get(results, "default_path", "warm_ttfa_s"),
        **{f"peers_{engine}_{key}": _get(results, "peers", engine, key, "ratio")
           for engine in ("pyttsx3", "piper")
           for key in ("first_audio_s", "all_audio_s", "cpu_s")},
        **{f"peers_{engine}_vs_fragment_limit":
           _get(results, "peers", engine, "vs_fragment_limit")
           for engine in ("pyttsx3", "piper")},
    }  # fmt: skip


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def _check(value: Any, test: Any) -> bool | None:
    return None if value is None else bool(test(value))


def markdown(results: dict[str, Any], head: dict[str, Any]) -> str:
    """The summary table plus one detail table per scenario."""
    m = results.get("machine", {})
    lines = [
        f"Measured {results.get('timestamp')} on {m.get('cpu')}, {m.get('cores')} cores, "
        f"{m.get('memory_gb')} GB, Python {m.get('python')} (1-min load {m.get('load_avg_1m')} "
        f"at start; the machine is shared){' — QUICK mode' if results.get('quick') else ''}.",
        "",
        "| # | Metric | Value | Target | |",
        "|---|---|---|---|---|",
    ]
    rows = [
        ("1", "TTFA overhead (first chunk to a sink), median / p95 (ms)",
         f"{_fmt(head['ttfa_overhead_ms_median'])} / {_fmt(head['ttfa_overhead_ms_p95'])}",
         "≤ 5 ms median", _check(head["ttfa_overhead_ms_median"], lambda v: v <= 5)),
        ("1", "First file overhead (written, fsynced, listed), median (ms)",
         _fmt(head["first_file_overhead_ms_median"]), "", None),
        ("2", "Overlap efficiency, worst variant (wall / ideal)",
         _fmt(head["overlap_efficiency"]), "≤ 1.05",
         _check(head["overlap_efficiency"], lambda v: v <= 1.05)),
        ("2", "Baseline (seed strategy) overlap efficiency, worst", _fmt(
            head["baseline_overlap_efficiency"]), "", None),
        ("3", "First segment after first token (s): speakstream / stream2sentence",
         f"{_fmt(head['first_segment_s_speakstream'])} / "
         f"{_fmt(head['first_segment_s_stream2sentence'])}", "", None),
        ("3", "Hard cases: speakstream / stream2sentence / baseline",
         " / ".join(_fmt(_get(results, "first_segment", "accuracy", k, "rate"), ".1%")
                    for k in ("speakstream", "stream2sentence", "baseline")), "", None),
        ("3", "First segment, release at the clause mark / wait for the next word",
         _fmt(head["first_segment_ratio_vs_wait_next_word"]), "< 1",
         _check(head["first_segment_ratio_vs_wait_next_word"], lambda v: v < 1)),
        ("4", "Segmenter chars/s (largest size)", _fmt(head["segmenter_chars_per_s"], ",.0f"),
         "", None),
        ("4", "Segmenter speed vs stream2sentence",
         _fmt(head["segmenter_speedup_vs_stream2sentence"], ".1f") + "×",
         "≥ 5×", _check(head["segmenter_speedup_vs_stream2sentence"], lambda v: v >= 5)),
        ("5", "Narration peak RSS 1 MB / 10 MB text (MB)",
         f"{_fmt(head['narration_peak_rss_mb_1mb'], '.0f')} / "
         f"{_fmt(head['narration_peak_rss_mb_10mb'], '.0f')}", "flat",
         _check(head["narration_peak_rss_mb_10mb"],
                lambda v: v <= 1.2 * (head["narration_peak_rss_mb_1mb"] or v))),
        ("6", "espeak-ng RTF per segment, median",
         _fmt(_get(results, "engines", "engines", "espeak", "rtf_median")), "", None),
        ("6", "pyttsx3 RTF per segment, median",
         _fmt(_get(results, "engines", "engines", "pyttsx3", "rtf_median")), "", None),
        ("6", "Narration speedup, 2 workers vs 1 (espeak-ng)",
         _fmt(head["narration_speedup_2_workers"]) + "×", "", None),
        ("7", f"Daemon, {_get(results, 'daemon', 'clients')} SSE clients: errors",
         _fmt(head["daemon_errors"]), "0", _check(head["daemon_errors"], lambda v: v == 0)),
        ("7", "Daemon TTFA overhead p50 / p99 (ms)",
         f"{_fmt(head['daemon_ttfa_overhead_ms_p50'])} / "
         f"{_fmt(head['daemon_ttfa_overhead_ms_p99'])}", "", None),
        ("7", "Daemon peak RSS (MB)", _fmt(head["daemon_peak_rss_mb"], ".0f"), "", None),
        ("8", "Local model (SmolLM2-135M) + espeak-ng: TTFT / TTFA (s), tokens/s",
         f"{_fmt(head['local_ttft_s'])} / {_fmt(head['local_ttfa_s'])}, "
         f"{_fmt(head['local_tokens_per_s'], '.0f')}", "", None),
        ("9", "Golden Rules (48), streamed: speakstream / pySBD / stream2sentence / Punkt",
         " / ".join(_fmt(head[f"golden_rules_{t}"]) for t in
                    ("speakstream", "pysbd", "stream2sentence", "plain_punkt")),
         "≥ 44", _check(head["golden_rules_speakstream"], lambda v: v >= 44)),
        ("9", "stream2sentence stress paragraph (12): same order",
         " / ".join(_fmt(head[f"stress_{t}"]) for t in
                    ("speakstream", "pysbd", "stream2sentence", "plain_punkt")),
         "12", _check(head["stress_speakstream"], lambda v: v == 12)),
        ("10", "Speech TTFB ÷ engine's first-sentence TTFA, piper, mp3 / pcm",
         f"{_fmt(head['speech_ttfb_ratio_piper_mp3'])} / "
         f"{_fmt(head['speech_ttfb_ratio_piper_pcm'])}", "≤ 1.25",
         _check(head["speech_ttfb_ratio_piper_mp3"], lambda v: v <= 1.25)),
        ("11", "Default path (local + auto→piper): TTFA ÷ physical limit, warm",
         _fmt(head["default_path_warm_ratio"]), "≤ 1.25",
         _check(head["default_path_warm_ratio"], lambda v: v <= 1.25)),
        ("11", "Default path: cold TTFA ÷ warm TTFA",
         _fmt(head["default_path_cold_vs_warm"]), "≤ 1.5",
         _check(head["default_path_cold_vs_warm"], lambda v: v <= 1.5)),
        *[row for engine in ("pyttsx3", "piper") for row in (
            ("12", f"vs RealtimeTTS, {engine}: first audio / all audio / CPU (ratio)",
             " / ".join(_fmt(head[f"peers_{engine}_{k}"])
                        for k in ("first_audio_s", "all_audio_s", "cpu_s")),
             "≤ 0.8 / 1.0 / 0.5",
             _check(head[f"peers_{engine}_first_audio_s"], lambda v, e=engine: v <= 0.8
                    and head[f"peers_{e}_all_audio_s"] <= 1.0 and head[f"peers_{e}_cpu_s"] <= 0.5)),
            ("12", f"{engine}: first audio ÷ fragment limit",
             _fmt(head[f"peers_{engine}_vs_fragment_limit"]), "≤ 1.04",
             _check(head[f"peers_{engine}_vs_fragment_limit"], lambda v: v <= 1.04)),
        )],
    ]  # fmt: skip
    for num, name, value, target, ok in rows:
        lines.append(f"| {num} | {name} | {value} | {target} | {_verdict(ok) if target else ''} |")
    lines += _details(results)
    errors = results.get("errors") or {}
    if errors:
        lines += ["", "Scenarios that failed to run:", ""]
        lines += [f"- {name}: {err}" for name, err in errors.items()]
    return "\n".join(lines) + "\n"


def _details(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    overlap = results.get("overlap")
    if overlap:
        out += ["", f"Overlap (scenario 2; LLM {overlap['tokens_per_s']:.0f} tokens/s, engines "
                    + ", ".join(f"{k}: {v}" for k, v in overlap["engines"].items()) + "):", "",
                "| system | engine | workers | wall s | ideal s | wall/ideal |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        for v in overlap["variants"]:
            out.append(f"| {v['system']} | {v['engine']} | {v['workers']} | {v['wall_s']:.2f} | "
                       f"{v['ideal_s']:.2f} | {v['efficiency']:.3f} |")  # fmt: skip
        out += ["", "Baseline wall / speakstream wall: " + ", ".join(
            f"{k} {v:.2f}×" for k, v in overlap["ratio_vs_baseline"].items())]
    first = results.get("first_segment")
    if first:
        tools = [k for k in next(iter(first["streams"].values())) if k not in ("tokens", "chars")]
        out += ["", "First segment text, seconds after the first token (segments) "
                    f"(scenario 3, virtual clock, {first['tokens_per_s']:.0f} tokens/s):", "",
                "| stream | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
        for name, row in first["streams"].items():
            cells = [f"{_fmt(row[t]['first_segment_s'])} ({row[t]['segments']})" for t in tools]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    seg = results.get("segmenter")
    if seg:
        out += ["", "Segmenter throughput (scenario 4, 4 chars per push):", "",
                "| size | speakstream chars/s | stream2sentence chars/s | ratio "
                "| pySBD chars/s (batch, prefix) |", "|---|---|---|---|---|"]
        for row in seg["throughput"]:
            star = " (extrapolated from a capped prefix)" if row["stream2sentence"][
                "extrapolated"] else ""
            sbd = _get(row, "pysbd", "chars_per_s")
            out.append(f"| {row['size']:,} | {row['speakstream']['chars_per_s']:,.0f} | "
                       f"{row['stream2sentence']['chars_per_s']:,.0f}{star} | "
                       f"{row['ratio']:.1f}× | {_fmt(sbd, ',.0f')} |")  # fmt: skip
    acc = results.get("accuracy")
    if acc:
        names = list(acc["sets"])
        tools = sorted({t for scores in acc["sets"].values() for t in scores})
        out += ["", "Sentence-boundary accuracy (scenario 9; speakstream streamed 1-6 chars "
                    "at a time, peers as documented in bench/accuracy.py):", "",
                "| tool | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for tool in tools:
            cells = [f"{s['passed']}/{s['total']}" if (s := acc["sets"][n].get(tool)) else "-"
                     for n in names]
            out.append(f"| {tool} | " + " | ".join(cells) + " |")
        for tool, why in acc["skipped"].items():
            out.append(f"| {tool} | skipped: {why} |" + " |" * (len(names) - 1))
        eq = acc["streamed_equals_batch"]
        out += ["", f"speakstream streamed == batch on these cases: {eq['equal']}/{eq['total']}"]
    mem = results.get("memory")
    if mem:
        out += ["", "Narration memory (scenario 5):", "",
                "| text | files | seconds | RSS before run MB | peak RSS MB |",
                "|---|---|---|---|---|"]
        for row in mem["rows"]:
            out.append(f"| {row['size']:,} chars | {row['files']} | {row['seconds']:.1f} | "
                       f"{row['rss_before_mb']:.0f} | {row['peak_rss_mb']:.0f} |")  # fmt: skip
    eng = results.get("engines")
    if eng:
        out += ["", f"Real engines (scenario 6, Alice ch. 1, {eng['text_chars']} chars):", "",
                "| engine | segments | RTF median | RTF p95 | audio s / wall s, 1 worker | "
                "2 workers | speedup |", "|---|---|---|---|---|---|---|"]
        for name, r in eng["engines"].items():
            out.append(f"| {name} | {r['segments']} | {r['rtf_median']:.4f} | {r['rtf_p95']:.4f} "
                       f"| {r['audio_s_per_s_1_worker']:.0f} | {r['audio_s_per_s_2_workers']:.0f} "
                       f"| {r['speedup_2_workers']:.2f}× |")  # fmt: skip
        for name, why in eng.get("skipped", {}).items():
            out.append(f"| {name} | skipped: {why} | | | | | |")
    speech = results.get("speech")
    if speech:
        out += ["", f"Speech route (scenario 10, {speech['input_chars']} characters, median of "
                    f"{speech['runs']}; 1-min load {speech['load_avg_1m_start']:.1f} at start):",
                "", "| engine | engine TTFA: first sentence / segment 0 (s) | format | TTFB s | "
                "÷ first sentence | ÷ segment 0 |", "|---|---|---|---|---|---|"]  # fmt: skip
        for name, r in speech["engines"].items():
            if "skipped" in r:
                out.append(f"| {name} | skipped: {r['skipped']} | | | | |")
                continue
            for fmt in speech["formats"]:
                out.append(f"| {name} | {r['engine_ttfa_first_sentence_s']:.3f} / "
                           f"{r['engine_ttfa_segment0_s']:.3f} | {fmt} | {r[fmt]['ttfb_s']:.3f} | "
                           f"{r[fmt]['ratio_vs_first_sentence']:.2f} | "
                           f"{r[fmt]['ratio_vs_segment0']:.2f} |")  # fmt: skip
    return out


def plot(results: dict[str, Any], path: Path) -> Path | None:
    """One PNG with four panels; ``None`` when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=80)
    drawn = False
    ttfa = results.get("ttfa")
    ax = axes[0][0]
    if ttfa:
        ax.hist(ttfa["samples_overhead_ms"], bins=15, color="tab:blue")
        ax.axvline(5, color="tab:red", linestyle="--", label="target 5 ms")
        ax.set(title="1. TTFA overhead per run", xlabel="ms", ylabel="runs")
        ax.legend()
        drawn = True
    ax = axes[0][1]
    overlap = results.get("overlap")
    if overlap:
        labels = [f"{v['system'][:5]}\n{v['engine']} w{v['workers']}" for v in overlap["variants"]]
        colors = ["tab:gray" if v["system"] == "baseline" else "tab:green"
                  for v in overlap["variants"]]  # fmt: skip
        ax.bar(labels, [v["efficiency"] for v in overlap["variants"]], color=colors)
        ax.axhline(1.05, color="tab:red", linestyle="--", label="target 1.05")
        ax.set(title="2. Overlap: wall / ideal (lower is better)", ylim=(0.9, None))
        ax.tick_params(axis="x", labelsize=8)
        ax.legend()
        drawn = True
    ax = axes[1][0]
    seg = results.get("segmenter")
    if seg:
        sizes = [r["size"] for r in seg["throughput"]]
        ax.plot(sizes, [r["speakstream"]["chars_per_s"] for r in seg["throughput"]], "o-",
                label="speakstream")
        ax.plot(sizes, [r["stream2sentence"]["chars_per_s"] for r in seg["throughput"]], "s--",
                label="stream2sentence")
        ax.set(title="4. Segmenter throughput", xscale="log", yscale="log",
               xlabel="text size (chars)", ylabel="chars/s")
        ax.legend()
        drawn = True
    ax = axes[1][1]
    daemon = results.get("daemon")
    mem = results.get("memory")
    if mem:
        ax.bar([f"{r['size'] / 1e6:g} MB" for r in mem["rows"]],
               [r["peak_rss_mb"] for r in mem["rows"]], color="tab:purple")
        ax.set(title="5. Narration peak RSS", ylabel="MB")
        drawn = True
    elif results.get("first_segment"):
        row = results["first_segment"]["streams"]["answer"]
        tools = [k for k in row if k not in ("tokens", "chars")]
        ax.barh(tools, [row[t]["first_segment_s"] or 0 for t in tools], color="tab:orange")
        ax.set(title="3. First segment after first token (answer stream)", xlabel="s")
        drawn = True
    elif daemon:
        ax.set_axis_off()
    fig.tight_layout()
    if not drawn:
        plt.close(fig)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
