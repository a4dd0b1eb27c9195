/**
 * The part every load tester shares: worker threads that each run a share of the load, report
 * counters once a second and a latency histogram at the end; the warm-up, whose traffic is sent
 * but left out of the figures; a progress line per second; the summary report.
 */
import {parentPort, Worker} from 'node:worker_threads'
import {LatencyHistogram} from './model.js'
import {buildReport, progressLine, type LoadReport} from './report.js'
import {problemOf, warningsOf} from './verdict.js'

/** Counters since the previous report; a thread zeroes them after each post. */
export interface ThreadStats {
  sent: number
  /** Usable replies by type (e.g. connect, announce, scrape). */
  responses: Record<string, number>
  /** Error replies by their text. */
  errors: Record<string, number>
  /** Replies the generator could not read, by what was wrong with them. */
  malformed: Record<string, number>
  peers: number
  unanswered: number
  /** What came instead of replies (port unreachable, connection refused or closed), by text. */
  networkErrors: Record<string, number>
  /** Replies whose request had already been counted as unanswered. */
  late: number
  /** Only in the final report. */
  latency?: number[]
}

export type ThreadMessage =
  | {type: 'ready'}
  /** The thread could not start its load (e.g. no tracker accepts its connections). */
  | {type: 'failed'; message: string}
  | {type: 'stats'; stats: ThreadStats}
  /** The last counters of the warm-up: what follows is measured. */
  | {type: 'measuring'; stats: ThreadStats}
  | {type: 'final'; stats: ThreadStats}

/** A run that cannot go on for a reason the user can fix (a bad config file, no tracker there): the command prints it and exits 1. */
export class LoadtestUsageError extends Error {}

export function emptyStats(types: readonly string[]): ThreadStats {
  return {sent: 0, responses: Object.fromEntries(types.map(t => [t, 0])), errors: {}, malformed: {}, peers: 0, unanswered: 0, networkErrors: {}, late: 0}
}

/** Distinct texts kept per map: a tracker that puts a hash or a counter in its error text must not grow the report without bound. */
const MAX_TEXTS = 32
export const OTHER_TEXTS = '(other texts)'

/** Adds `n` to `text`'s count in `map` (an error text, a malformed reason), under OTHER_TEXTS once MAX_TEXTS are kept. */
export function countText(map: Record<string, number>, text: string, n = 1): void {
  const key = map[text] !== undefined || Object.keys(map).length < MAX_TEXTS ? text : OTHER_TEXTS
  map[key] = (map[key] ?? 0) + n
}

export const sumOf = (map: Record<string, number>): number => Object.values(map).reduce((a, b) => a + b, 0)

export function addStats(into: ThreadStats, s: ThreadStats): void {
  into.sent += s.sent
  for (const [k, v] of Object.entries(s.responses)) into.responses[k] = (into.responses[k] ?? 0) + v
  into.peers += s.peers
  into.unanswered += s.unanswered
  into.late += s.late
  for (const [k, v] of Object.entries(s.errors)) countText(into.errors, k, v)
  for (const [k, v] of Object.entries(s.malformed)) countText(into.malformed, k, v)
  for (const [k, v] of Object.entries(s.networkErrors)) countText(into.networkErrors, k, v)
}

export interface LoadtestOptions {
  /** Called once a second with the progress line. */
  onProgress?: (line: string) => void
  /** Ends the run early (e.g. Ctrl-C); the summary still comes. */
  signal?: AbortSignal
}

/** The keys every load-test schema has. */
export interface LoadtestCommon {
  workers: number
  warmup: number
  duration: number
  server_address: string
  requests: {weight_announce: number; weight_scrape: number}
}

export interface ThreadsSpec {
  protocol: LoadReport['protocol']
  workerUrl: URL
  config: LoadtestCommon
  /** Response types, in the order the report lists them. */
  types: readonly string[]
}

export async function runLoadThreads(spec: ThreadsSpec, options: LoadtestOptions = {}): Promise<LoadReport> {
  const {config, types} = spec
  const workers = Array.from({length: config.workers}, (_, index) => new Worker(spec.workerUrl, {workerData: {index, config}}))
  const warm = emptyStats(types)
  const measured = emptyStats(types)
  // A thread's counters go to the warm-up until it says it measures; with no warm-up, from the start.
  const measuring = workers.map(() => config.warmup === 0)
  const latency = new LatencyHistogram()
  let window = emptyStats(types)
  let finals = 0
  let reports = 0
  let seconds = 0
  let ready = 0
  let failure: Error | undefined
  let allReady!: () => void
  const readyPromise = new Promise<void>(resolve => (allReady = resolve))

  const done = new Promise<void>(resolve => {
    workers.forEach((w, i) => {
      w.on('message', (m: ThreadMessage) => {
        if (m.type === 'ready') {
          if (++ready === workers.length) allReady()
          return
        }
        if (m.type === 'failed') {
          failure ??= new LoadtestUsageError(m.message)
          allReady()
          return
        }
        addStats(measuring[i] ? measured : warm, m.stats)
        addStats(window, m.stats)
        if (m.type === 'measuring') {
          measuring[i] = true
          return
        }
        // Each thread reports once a second; a line goes out when all of them have.
        if (m.type === 'stats' && ++reports === workers.length) {
          reports = 0
          seconds++
          options.onProgress?.(progressLine(seconds, window, seconds <= config.warmup))
          window = emptyStats(types)
        }
        if (m.type === 'final') {
          latency.merge(LatencyHistogram.fromArray(m.stats.latency!))
          if (++finals === workers.length) resolve()
        }
      })
      w.on('error', err => {
        failure = new Error(`load generator thread failed: ${err.message}`)
        allReady()
        resolve()
      })
    })
  })

  // The clock starts when every thread has its model built and its sockets ready.
  await readyPromise
  if (failure) {
    await Promise.all(workers.map(w => w.terminate()))
    throw failure
  }
  const startedAt = new Date()
  for (const w of workers) w.postMessage({type: 'run'})
  const started = performance.now()
  let measureStart = config.warmup === 0 ? started : undefined
  // process.cpuUsage counts every thread of the process.
  const cpuAtStart = process.cpuUsage()
  let cpuAtMeasure = config.warmup === 0 ? cpuAtStart : undefined

  await new Promise<void>(resolve => {
    let timer: NodeJS.Timeout | undefined
    const measure = (): void => {
      if (measureStart === undefined) {
        measureStart = performance.now()
        cpuAtMeasure = process.cpuUsage()
        for (const w of workers) w.postMessage({type: 'measure'})
      }
      if (config.duration > 0) timer = setTimeout(resolve, config.duration * 1000)
    }
    if (config.warmup > 0) timer = setTimeout(measure, config.warmup * 1000)
    else measure()
    options.signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      {once: true},
    )
    void done.then(() => failure && resolve())
  })
  const stopped = performance.now()
  const cpu = process.cpuUsage(cpuAtMeasure ?? cpuAtStart)
  for (const w of workers) w.postMessage({type: 'stop'})
  await done
  await Promise.all(workers.map(w => w.terminate()))
  if (failure) throw failure

  // Stopped during the warm-up: there is nothing else to report, so the warm-up is the run.
  const endedInWarmup = measureStart === undefined
  if (endedInWarmup) addStats(measured, warm)
  const report = buildReport({
    protocol: spec.protocol,
    config,
    types,
    startedAt,
    stats: measured,
    seconds: (stopped - (measureStart ?? started)) / 1000,
    warmup: endedInWarmup ? undefined : {seconds: (measureStart! - started) / 1000, stats: warm},
    latency,
    cpuMicros: cpu.user + cpu.system,
  })
  report.problem = problemOf(report)
  report.warnings = warningsOf(report)
  return report
}

/** What a generator thread provides to `serveThread`. */
export interface LoadGenerator {
  /** Build the model, open sockets or connections; rejects with a LoadtestUsageError the user can act on. */
  start(): Promise<void>
  run(): void
  /** Counters since the last call. */
  takeStats(): ThreadStats
  /** The warm-up is over: latencies recorded so far are forgotten. */
  resetLatency(): void
  /** Stop sending; the final counters include what is still unanswered and the latency histogram. */
  stop(): Promise<ThreadStats>
}

/** The thread side of `runLoadThreads`: ready, run, a report a second, measure, stop. */
export function serveThread(gen: LoadGenerator, everySecond?: () => void): void {
  const port = parentPort
  if (!port) return
  let reporter: NodeJS.Timeout | undefined
  port.on('message', async (m: {type: 'run' | 'measure' | 'stop'}) => {
    if (m.type === 'run') {
      gen.run()
      reporter = setInterval(() => {
        everySecond?.()
        port.postMessage({type: 'stats', stats: gen.takeStats()} satisfies ThreadMessage)
      }, 1000)
      return
    }
    if (m.type === 'measure') {
      gen.resetLatency()
      port.postMessage({type: 'measuring', stats: gen.takeStats()} satisfies ThreadMessage)
      return
    }
    clearInterval(reporter)
    port.postMessage({type: 'final', stats: await gen.stop()} satisfies ThreadMessage)
    port.close()
  })
  gen.start().then(
    () => port.postMessage({type: 'ready'} satisfies ThreadMessage),
    (error: Error) => {
      // What the user can fix goes back as text; anything else is a bug and fails the thread.
      if (!(error instanceof LoadtestUsageError)) throw error
      port.postMessage({type: 'failed', message: error.message} satisfies ThreadMessage)
    },
  )
}
