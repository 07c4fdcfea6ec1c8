/** The report page's stylesheet (inlined; system fonts only, nothing from the network). */
export const STYLE = `
:root {
  --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --paper: #ffffff; --bg: #f6f7f9;
  --good: #15803d; --bad: #b91c1c; --warn: #b45309; --accent: #2563eb;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0; color: var(--ink); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", "Liberation Sans", sans-serif;
  -webkit-font-smoothing: antialiased;
}
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { font-size: 22px; margin: 0 0 2px; letter-spacing: -0.01em; }
header h1 code { font-size: 21px; }
header .sub { color: var(--muted); font-size: 13.5px; }
code, .mono { font-family: var(--mono); font-size: 0.92em; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin-top: 18px; }
section h2 { font-size: 16px; margin: 0 0 4px; }
section .lead { color: var(--muted); font-size: 13.5px; margin: 0 0 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-top: 18px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
.card .v { font-size: 21px; font-weight: 650; font-variant-numeric: tabular-nums; margin-top: 2px; }
.card .d { color: var(--muted); font-size: 12.5px; }
.card.ok { border-top: 4px solid var(--good); } .card.fail { border-top: 4px solid var(--bad); } .card.warn { border-top: 4px solid var(--warn); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12.5px; font-weight: 600; vertical-align: 2px; }
.badge.ok { background: #dcfce7; color: var(--good); } .badge.fail { background: #fee2e2; color: var(--bad); } .badge.warn { background: #fef3c7; color: var(--warn); }
.hints { display: grid; gap: 10px; }
.hint { border-left: 4px solid #f59e0b; background: #fffbeb; padding: 10px 14px; border-radius: 0 8px 8px 0; }
.hint strong { display: inline-block; margin-bottom: 2px; }
.hint .source { color: #92400e; font-size: 12px; margin-left: 6px; }
.hint p { margin: 0; font-size: 14px; }
.chart-wrap, .flame-wrap { overflow-x: auto; }
svg { max-width: 100%; height: auto; display: block; }
svg text { font-family: inherit; }
.chart .tick { font-size: 12px; fill: var(--muted); font-variant-numeric: tabular-nums; }
.chart .axis-title { font-size: 12.5px; fill: #374151; font-weight: 600; }
.chart .mark-label { font-size: 12px; font-weight: 600; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 13px; color: #374151; margin: 2px 0 8px; }
.legend-item { display: inline-flex; align-items: center; gap: 7px; }
.swatch { width: 22px; height: 0; border-top: 3px solid var(--c); display: inline-block; }
.swatch.dashed { border-top-style: dashed; border-top-width: 2px; }
.swatch.area { height: 10px; border: 2px solid var(--c); background: color-mix(in srgb, var(--c) 20%, transparent); border-radius: 2px; }
#chart-tip { position: fixed; pointer-events: none; background: #111827; color: #fff; font-size: 12.5px; padding: 6px 9px; border-radius: 6px; display: none; font-variant-numeric: tabular-nums; white-space: pre; z-index: 2; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th { text-align: left; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; font-weight: 600; border-bottom: 1px solid var(--line); padding: 6px 8px; }
td { border-bottom: 1px solid #f1f5f9; padding: 7px 8px; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.site { max-width: 38ch; }
td.site code { overflow-wrap: anywhere; }
td.site .via { color: var(--muted); font-size: 12px; margin-top: 2px; }
td.code { min-width: 24ch; }
td.code code { color: #374151; white-space: pre-wrap; overflow-wrap: break-word; }
tr:hover td { background: #f8fafc; }
.share { display: flex; align-items: center; gap: 8px; justify-content: flex-end; }
.bar { width: 90px; height: 8px; background: #f1f5f9; border-radius: 4px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--accent); border-radius: 4px; }
.fn { color: var(--muted); }
.flame .frame { cursor: pointer; }
.flame .frame text { font-size: 12px; fill: #1f2937; pointer-events: none; }
.flame .frame:hover rect { stroke: #111827; stroke-width: 1; }
.flame-bar { display: flex; justify-content: space-between; align-items: center; gap: 12px; font-size: 13px; color: var(--muted); margin-bottom: 8px; }
button { font: inherit; font-size: 13px; padding: 3px 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
.empty { color: var(--muted); font-style: italic; margin: 4px 0; }
.gc-grid { display: grid; grid-template-columns: max-content 1fr; gap: 32px; align-items: start; }
.gc-grid table { width: auto; }
.gc-grid p { margin: 6px 0 10px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; font-size: 14px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-all; }
ul.notes { margin: 6px 0 0; padding-left: 18px; color: var(--muted); font-size: 13.5px; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; margin-top: 26px; }
@media (max-width: 760px) { .gc-grid { grid-template-columns: 1fr; } td.code, th.code { display: none; } }
@media print { html, body { background: #fff; } section, .card { break-inside: avoid; } }
`;
