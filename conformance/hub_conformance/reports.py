"""Certification reports: JSON for machines, HTML for people (JUnit XML comes from pytest).

The JSON report is the source; the HTML report and the command's summary are rendered from it.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

REPORT_VERSION = "1"
JSON_NAME, HTML_NAME, JUNIT_NAME = "report.json", "report.html", "junit.xml"

_COLOURS = {"pass": "#1b7f3b", "fail": "#b3261e", "error": "#8a1c7c", "skipped": "#9a6700",
            "not_applicable": "#5f6368", "not_run": "#5f6368"}
_LABELS = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "skipped": "not verified",
           "not_applicable": "not applicable", "not_run": "not run"}


def write_json(report: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / JSON_NAME
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def read_json(directory: Path) -> dict[str, Any]:
    return json.loads((directory / JSON_NAME).read_text(encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_html(r: dict[str, Any]) -> str:
    plugin, summary = r["plugin"], r["summary"]
    verdict = r["verdict"]
    vcolour = {"pass": _COLOURS["pass"], "fail": _COLOURS["fail"]}.get(verdict, _COLOURS["skipped"])
    rows = []
    for q in r["requirements"]:
        colour = _COLOURS.get(q["result"], "#000")
        msgs = "".join(f"<li>{_e(m)}</li>" for m in q.get("messages") or [])
        checks = "".join(
            f"<li><code>{_e(c['name'])}</code> — {_e(_LABELS.get(c['result'], c['result']))}"
            f"{' — ' + _e(c['message']) if c.get('message') else ''}"
            + ("".join(f"<br><small>{_e(n)}</small>" for n in c.get("notes") or []))
            + "</li>" for c in q.get("checks") or [])
        src = q["source"]
        rows.append(
            f"<tr class='r-{_e(q['result'])}'><td><b>{_e(q['id'])}</b></td>"
            f"<td>{_e(q['title_en'])}<br><i lang='vi'>{_e(q['title_vi'])}</i>"
            f"<details><summary>why, and the checks</summary><p>{_e(q['rationale'])}</p>"
            f"<ul>{checks}</ul></details></td>"
            f"<td>{_e(q['tier'])}</td>"
            f"<td><span class='ev ev-{_e(q['evidence'])}'>{_e(q['evidence'])}</span></td>"
            f"<td>{_e(src['title'])}<br><small>{_e(src['section'])}"
            f"{' · research note ' + _e(src['research']) if src.get('research') else ''}</small></td>"
            f"<td>{_e(q['capability'] or '—')}</td>"
            f"<td style='color:{colour};font-weight:bold'>{_e(_LABELS.get(q['result'], q['result']))}</td>"
            f"<td><ul>{msgs}</ul></td></tr>")
    params = "".join(
        f"<tr><td><code>{_e(k)}</code></td><td>{_e(v['value'])} {_e(v['unit'])}</td>"
        f"<td>{_e(v['applied_limit'])} {_e(v['unit'])}</td><td>{_e(v['origin'])}</td>"
        f"<td>{_e(v['description'])}<br><small>{_e(v['basis'])}</small></td></tr>"
        for k, v in r["parameters"].items())
    devices = "".join(f"<tr><td>{_e(d['id'])}</td><td>{_e(d['kind'])}</td><td><code>{_e(d['address'])}</code></td>"
                      f"<td>{_e(', '.join(d['capabilities']))}</td></tr>" for d in r["target"]["devices"])
    tier = r.get("quality") or {}
    tier_rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{'reached' if t['met'] else 'not reached'}</td>"
        f"<td>{_e(t['summary'])}<ul>{''.join(f'<li>{_e(m)}</li>' for m in t['missing'])}</ul></td></tr>"
        for name, t in (tier.get("tiers") or {}).items())
    counts = " · ".join(f"{_e(_LABELS[k])}: {v}" for k, v in summary.items() if v)
    ev = r["catalogue"]["evidence_counts"]
    failing = "".join(f"<li>{_e(x)}</li>" for x in r.get("verdict_reasons") or [])
    warnings = "".join(f"<li>{_e(x)}</li>" for x in r.get("warnings") or [])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Certification of {_e(plugin['name'])} {_e(plugin['version'])} — {_e(verdict)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#202124;max-width:1400px}}
table{{border-collapse:collapse;width:100%;margin:1rem 0}}
td,th{{border:1px solid #dadce0;padding:.4rem .5rem;vertical-align:top;text-align:left}}
th{{background:#f1f3f4}} .verdict{{font-size:1.6rem;font-weight:bold;color:{vcolour}}}
.ev{{padding:0 .4rem;border-radius:.3rem}} .ev-verified{{background:#e6f4ea}} .ev-inferred{{background:#fef7e0}}
tr.r-fail td:first-child,tr.r-error td:first-child{{border-left:6px solid {_COLOURS['fail']}}}
tr.r-pass td:first-child{{border-left:6px solid {_COLOURS['pass']}}}
small{{color:#5f6368}} details summary{{cursor:pointer;color:#1a73e8}}
</style></head><body>
<h1>Certification report: {_e(plugin['title'])}</h1>
<p>Plugin <b>{_e(plugin['name'])}</b> {_e(plugin['version'])} (distribution {_e(plugin['distribution'] or '—')}
{_e(plugin.get('distribution_version') or '')}) · suite {_e(r['suite']['name'])} {_e(r['suite']['version'])} ·
catalogue {_e(r['catalogue']['version'])} · mode <b>{_e(r['mode'])}</b> (timing tolerance ×{_e(r['tolerance'])}) ·
{'simulator' if r['target']['simulator'] else 'real devices'} · {_e(r['started_at'])} ({_e(r['duration_s'])} s)</p>
<p class="verdict">Verdict: {_e(verdict.upper())}</p>
<p>{counts}</p>
{'<p>What decides the verdict:</p><ul>' + failing + '</ul>' if failing else ''}
{'<p>Warnings (recommended requirements in lenient mode):</p><ul>' + warnings + '</ul>' if warnings else ''}
<p>Quality tier reached: <b>{_e(tier.get('reached') or 'none')}</b>
{(' (from ' + _e(tier.get('quality_file')) + ')') if tier.get('quality_file') else ''}</p>
<p><small>Evidence: <span class="ev ev-verified">verified</span> = stated in a Ministry text that was read;
<span class="ev ev-inferred">inferred</span> = from vendor practice, general rules or the hub's design — check it
against the real annexes before rejecting hardware on it alone. The catalogue has {ev.get('verified', 0)} verified and
{ev.get('inferred', 0)} inferred requirements. Every time limit is a parameter chosen by the hub, not a Ministry
figure.</small></p>
<h2>Requirements</h2>
<table><tr><th>ID</th><th>Requirement</th><th>Tier</th><th>Evidence</th><th>Source</th><th>Capability</th>
<th>Result</th><th>Messages</th></tr>{''.join(rows)}</table>
<h2>Parameters used</h2>
<table><tr><th>Name</th><th>Value</th><th>Applied limit</th><th>Set by</th><th>Meaning</th></tr>{params}</table>
<h2>Devices</h2>
<p>Witness: {_e(r['target']['witness'] or 'none (what devices report is taken at their word)')} ·
link control: {_e(r['target']['link_control'] or 'none')} ·
injected faults: {_e(r['target']['faults'] or 'none')}</p>
<table><tr><th>ID</th><th>Kind</th><th>Address</th><th>Capabilities</th></tr>{devices}</table>
<h2>Quality tiers</h2>
<table><tr><th>Tier</th><th>Status</th><th>What it takes / what is missing</th></tr>{tier_rows}</table>
</body></html>
"""


def write_html(report: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / HTML_NAME
    path.write_text(render_html(report), encoding="utf-8")
    return path


def summary_text(r: dict[str, Any], report_dir: Path | None = None) -> str:
    """The few lines `hub certify` prints."""
    s = r["summary"]
    plugin = r["plugin"]
    lines = [f"{plugin['name']} {plugin['version']}: {r['verdict'].upper()} "
             f"({r['mode']}, {'simulator' if r['target']['simulator'] else 'real devices'}, "
             f"catalogue {r['catalogue']['version']}, suite {r['suite']['version']}, {r['duration_s']} s)",
             "  " + ", ".join(f"{v} {_LABELS[k]}" for k, v in s.items() if v)]
    for q in r["requirements"]:
        if q["result"] in ("fail", "error", "skipped"):
            first = (q.get("messages") or [""])[0]
            first = first if len(first) <= 160 else first[:157] + "…"
            lines.append(f"  {_LABELS[q['result']]:<13} {q['id']:<12} [{q['tier']}] {first}")
    if r.get("warnings"):
        lines.append(f"  warnings (recommended, lenient): {', '.join(r['warnings'])}")
    q = r.get("quality") or {}
    lines.append(f"  quality tier: {q.get('reached') or 'none'}"
                 + ("" if q.get("quality_file") else " (no quality_scale.yaml)"))
    if report_dir is not None:
        lines.append(f"  reports: {report_dir / JSON_NAME}, {report_dir / HTML_NAME}, {report_dir / JUNIT_NAME}")
    return "\n".join(lines)
