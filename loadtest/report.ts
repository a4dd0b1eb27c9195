import type {LatencyHistogram} from './model.js'

/** What every load tester reports at the end of a run (printed as a table or as `--json`). */
export interface LoadReport {
  protocol: 'udp' | 'http' | 'ws'
  target: string
  durationSeconds: number
  requestsSent: number
  /** Responses (or messages) received, by type. */
  responses: Record<string, number>
  /** Same, per second over the run. */
  responsesPerSecond: Record<string, number>
  totalResponsesPerSecond: number
  /** Error responses by message text. */
  errors: Record<string, number>
  /** Requests still unanswered when the run ended, or timed out. */
  unanswered: number
  latencyMs: {p50: number; p99: number; max?: number}
  /** Protocol-specific figures, e.g. peers per announce. */
  extra: Record<string, number>
}

export function latencySummary(h: LatencyHistogram): LoadReport['latencyMs'] {
  return {p50: round(h.quantile(0.5) / 1000, 3), p99: round(h.quantile(0.99) / 1000, 3)}
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}

const fmt = (v: number): string => (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', {maximumFractionDigits: 2}))

/** A two-column table in plain text. */
export function table(rows: [string, string | number][]): string {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${typeof v === 'number' ? fmt(v) : v}`).join('\n')
}

export function formatReport(r: LoadReport): string {
  const rows: [string, string | number][] = [
    ['target', r.target],
    ['duration (s)', r.durationSeconds],
    ['requests sent', r.requestsSent],
    ['responses/s (total)', Math.round(r.totalResponsesPerSecond)],
  ]
  for (const [type, v] of Object.entries(r.responsesPerSecond)) rows.push([`  ${type}/s`, Math.round(v)])
  for (const [k, v] of Object.entries(r.extra)) rows.push([k, round(v, 2)])
  rows.push(['errors', Object.values(r.errors).reduce((a, b) => a + b, 0)])
  for (const [msg, n] of Object.entries(r.errors)) rows.push([`  "${msg}"`, n])
  rows.push(['unanswered', r.unanswered])
  rows.push(['latency p50 (ms)', r.latencyMs.p50])
  rows.push(['latency p99 (ms)', r.latencyMs.p99])
  return `# tracker ${r.protocol} load test\n${table(rows)}\n`
}

/** One line per second while a test runs. */
export function progressLine(elapsed: number, perSecond: Record<string, number>, extra = ''): string {
  const parts = Object.entries(perSecond).map(([k, v]) => `${k} ${Math.round(v).toLocaleString('en-US')}/s`)
  return `[${String(elapsed).padStart(4)} s] ${parts.join('  ')}${extra ? '  ' + extra : ''}`
}
