import {availableParallelism} from 'node:os'
import {readCommit, version} from '../src/version.js'
import type {LatencyHistogram} from './model.js'
import type {LoadtestCommon, ThreadStats} from './threads.js'

/** What every load tester reports at the end of a run (printed as a table or as `--json`). */
export interface LoadReport {
  protocol: 'udp' | 'http' | 'ws'
  target: string
  /** The load generator: this package's version, and its commit when it runs from a checkout. */
  generator: {version: string; commit?: string}
  /** When the load began (the warm-up included), ISO 8601. */
  startedAt: string
  /** Every setting of the run as loaded: defaults, the config file and the flags. */
  settings: LoadtestCommon & Record<string, unknown>
  /** The warm-up's traffic was sent but is in none of the figures below; 0 s when the run ended inside it. */
  warmup: {seconds: number; requestsSent: number; replies: number}
  /** The measured time, after the warm-up. */
  durationSeconds: number
  requestsSent: number
  /** Replies by type: the usable ones, then `error` and `malformed`. */
  responses: Record<string, number>
  /** Same, per second over the run. */
  responsesPerSecond: Record<string, number>
  totalResponsesPerSecond: number
  /** Error replies by their text. */
  errors: Record<string, number>
  /** Replies the generator could not read, by what was wrong with them. */
  malformed: Record<string, number>
  /** Requests that timed out, or were still waiting when the run ended (those sent in the warm-up too). */
  unanswered: number
  /** What came instead of replies: port unreachable, connection refused or closed. */
  networkErrors: Record<string, number>
  latencyMs: {p50: number; p99: number; max?: number}
  /**
   * The generator's own CPU over the measured time (all its threads): `cores` near `threads`
   * means the generator, not the tracker, set the pace.
   */
  generatorCpu: {threads: number; cores: number; usPerResponse: number}
  /** Protocol-specific figures, e.g. peers per announce. */
  extra: Record<string, number>
  /** Set when nothing usable came back: what was seen, and a hint. The command prints it and exits 1. */
  problem?: string
  /** Worth a look, though the run measured something (e.g. no announce answered while scrapes were). */
  warnings: string[]
}

export function latencySummary(h: LatencyHistogram): LoadReport['latencyMs'] {
  return {p50: round(h.quantile(0.5) / 1000, 3), p99: round(h.quantile(0.99) / 1000, 3)}
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}

const sum = (map: Record<string, number>): number => Object.values(map).reduce((a, b) => a + b, 0)

export interface RunResult {
  protocol: LoadReport['protocol']
  config: LoadtestCommon
  types: readonly string[]
  startedAt: Date
  /** What the measured time saw. */
  stats: ThreadStats
  seconds: number
  /** Undefined when the run ended inside the warm-up (its traffic is then the run). */
  warmup?: {seconds: number; stats: ThreadStats}
  latency: LatencyHistogram
  /** CPU time (user + system, µs) the generator process spent over the measured time. */
  cpuMicros: number
}

export function buildReport(run: RunResult): LoadReport {
  const {stats, seconds} = run
  const perSecond = (n: number): number => (seconds > 0 ? round(n / seconds, 1) : 0)
  const responses: Record<string, number> = {}
  for (const type of run.types) responses[type] = stats.responses[type] ?? 0
  responses.error = sum(stats.errors)
  responses.malformed = sum(stats.malformed)
  const announces = stats.responses.announce ?? 0
  const commit = readCommit()
  const warm = run.warmup?.stats
  return {
    protocol: run.protocol,
    target: run.config.server_address,
    generator: commit ? {version, commit} : {version},
    startedAt: run.startedAt.toISOString(),
    settings: run.config as LoadReport['settings'],
    warmup: {
      seconds: round(run.warmup?.seconds ?? 0, 1),
      requestsSent: warm?.sent ?? 0,
      replies: warm ? sum(warm.responses) + sum(warm.errors) + sum(warm.malformed) : 0,
    },
    durationSeconds: round(seconds, 1),
    requestsSent: stats.sent,
    responses,
    responsesPerSecond: Object.fromEntries(Object.entries(responses).map(([k, v]) => [k, perSecond(v)])),
    totalResponsesPerSecond: perSecond(sum(responses)),
    errors: stats.errors,
    malformed: stats.malformed,
    unanswered: stats.unanswered,
    networkErrors: stats.networkErrors,
    latencyMs: latencySummary(run.latency),
    generatorCpu: {
      threads: run.config.workers,
      cores: seconds > 0 ? round(run.cpuMicros / 1e6 / seconds, 2) : 0,
      usPerResponse: sum(responses) > 0 ? round(run.cpuMicros / sum(responses), 2) : 0,
    },
    extra: {'peers per announce': announces ? round(stats.peers / announces, 2) : 0, 'late replies': stats.late},
    warnings: [],
  }
}

/**
 * The one number format of every report and progress line: whole numbers (and anything of 100
 * or more, rounded) with thousands separators; smaller fractions to 3 significant digits.
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  if (Number.isInteger(v) || Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US')
  return Number(v.toPrecision(3)).toLocaleString('en-US', {maximumFractionDigits: 6})
}

/** A two-column table in plain text. */
export function table(rows: [string, string | number][]): string {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${typeof v === 'number' ? formatNumber(v) : v}`).join('\n')
}

/** Rows under a heading row: one per text, most frequent first. */
function byText(rows: [string, string | number][], map: Record<string, number>, quote: boolean): void {
  for (const [text, n] of Object.entries(map).sort((a, b) => b[1] - a[1])) rows.push([`  ${quote ? JSON.stringify(text) : text}`, n])
}

export function formatReport(r: LoadReport): string {
  const rows: [string, string | number][] = [
    ['target', r.target],
    ['started', `${r.startedAt} by tracker ${r.generator.version}${r.generator.commit ? ` (commit ${r.generator.commit})` : ''}`],
    [
      'warm-up (s)',
      r.warmup.seconds > 0
        ? `${formatNumber(r.warmup.seconds)}: ${formatNumber(r.warmup.requestsSent)} requests sent, not counted below`
        : r.settings.warmup > 0
          ? 'none: the run ended inside it, so its traffic is counted'
          : 0,
    ],
    ['duration (s)', r.durationSeconds],
    ['requests sent', r.requestsSent],
    ['responses/s (total)', r.totalResponsesPerSecond],
  ]
  for (const [type, v] of Object.entries(r.responsesPerSecond)) rows.push([`  ${type}/s`, v])
  for (const [k, v] of Object.entries(r.extra)) rows.push([k, v])
  rows.push(['errors', r.responses.error])
  byText(rows, r.errors, true)
  rows.push(['malformed', r.responses.malformed])
  byText(rows, r.malformed, false)
  rows.push(['unanswered', r.unanswered])
  byText(rows, r.networkErrors, false)
  rows.push(['latency p50 (ms)', r.latencyMs.p50])
  rows.push(['latency p99 (ms)', r.latencyMs.p99])
  const cpu = r.generatorCpu
  // Threads near a core each: the generator may have set the pace, not the tracker.
  const busy = cpu.cores >= 0.9 * Math.min(cpu.threads, availableParallelism())
  rows.push([
    'generator CPU (cores)',
    `${formatNumber(cpu.cores)} for ${cpu.threads} thread(s)${cpu.usPerResponse > 0 ? `, ${formatNumber(cpu.usPerResponse)} us per response` : ''}` +
      (busy ? ' (busy: the generator may be the limit; more workers help where cores are free)' : ''),
  ])
  const notes = r.warnings.map(w => `warning: ${w}\n`).join('')
  return `# tracker ${r.protocol} load test\n${table(rows)}\n${notes}`
}

/** One line per second while a test runs; the warm-up's lines say so. */
export function progressLine(second: number, s: ThreadStats, warmup: boolean): string {
  const parts = Object.entries(s.responses).map(([k, v]) => `${k} ${formatNumber(v)}/s`)
  const announces = s.responses.announce ?? 0
  parts.push(
    `errors ${formatNumber(sum(s.errors))}/s`,
    `malformed ${formatNumber(sum(s.malformed))}/s`,
    `unanswered ${formatNumber(s.unanswered)}/s`,
    `peers/announce ${formatNumber(announces ? s.peers / announces : 0)}`,
  )
  return `[${String(second).padStart(4)} s]${warmup ? ' warm-up' : ''} ${parts.join('  ')}`
}
