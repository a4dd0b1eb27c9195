/**
 * The part every load tester shares: worker threads that each run a share of the load, report
 * counters once a second and a latency histogram at the end; a progress line per second; the
 * summary report.
 */
import {parentPort, Worker} from 'node:worker_threads'
import {LatencyHistogram} from './model.js'
import {latencySummary, progressLine, round, type LoadReport} from './report.js'

/** Counters since the previous report; a thread zeroes them after each post. */
export interface ThreadStats {
  sent: number
  /** Successful responses by type (e.g. connect, announce, scrape). */
  responses: Record<string, number>
  /** Error responses by message text. */
  errors: Record<string, number>
  peers: number
  unanswered: number
  late: number
  /** Only in the final report. */
  latency?: number[]
}

export type ThreadMessage = {type: 'ready'} | {type: 'stats'; stats: ThreadStats} | {type: 'final'; stats: ThreadStats}

export function emptyStats(types: readonly string[]): ThreadStats {
  return {sent: 0, responses: Object.fromEntries(types.map(t => [t, 0])), errors: {}, peers: 0, unanswered: 0, late: 0}
}

function addStats(into: ThreadStats, s: ThreadStats): void {
  into.sent += s.sent
  for (const [k, v] of Object.entries(s.responses)) into.responses[k] = (into.responses[k] ?? 0) + v
  into.peers += s.peers
  into.unanswered += s.unanswered
  into.late += s.late
  for (const [k, v] of Object.entries(s.errors)) into.errors[k] = (into.errors[k] ?? 0) + v
}

const errorCount = (s: ThreadStats): number => Object.values(s.errors).reduce((a, b) => a + b, 0)

export interface LoadtestOptions {
  /** Called once a second with the progress line. */
  onProgress?: (line: string) => void
  /** Ends the run early (e.g. Ctrl-C); the summary still comes. */
  signal?: AbortSignal
}

export interface ThreadsSpec {
  protocol: LoadReport['protocol']
  workerUrl: URL
  config: {workers: number; duration: number; server_address: string}
  /** Response types, in the order the report lists them. */
  types: readonly string[]
}

export async function runLoadThreads(spec: ThreadsSpec, options: LoadtestOptions = {}): Promise<LoadReport> {
  const {config, types} = spec
  const workers = Array.from({length: config.workers}, (_, index) => new Worker(spec.workerUrl, {workerData: {index, config}}))
  const total = emptyStats(types)
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
    for (const w of workers) {
      w.on('message', (m: ThreadMessage) => {
        if (m.type === 'ready') {
          if (++ready === workers.length) allReady()
          return
        }
        addStats(total, m.stats)
        addStats(window, m.stats)
        // Each thread reports once a second; a line goes out when all of them have.
        if (m.type === 'stats' && ++reports === workers.length) {
          reports = 0
          seconds++
          const announces = window.responses.announce ?? 0
          options.onProgress?.(
            progressLine(
              seconds,
              window.responses,
              `errors ${errorCount(window)}  unanswered ${window.unanswered}  peers/announce ${announces ? round(window.peers / announces) : 0}`,
            ),
          )
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
    }
  })

  // The clock starts when every thread has its model built and its sockets ready.
  await readyPromise
  if (failure) {
    await Promise.all(workers.map(w => w.terminate()))
    throw failure
  }
  for (const w of workers) w.postMessage({type: 'run'})
  const started = performance.now()

  await new Promise<void>(resolve => {
    const timer = config.duration > 0 ? setTimeout(resolve, config.duration * 1000) : undefined
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
  const elapsed = (performance.now() - started) / 1000
  for (const w of workers) w.postMessage({type: 'stop'})
  await done
  await Promise.all(workers.map(w => w.terminate()))
  if (failure) throw failure

  const perSecond = (n: number): number => n / elapsed
  const responses = {...total.responses, error: errorCount(total)}
  const answered = Object.values(responses).reduce((a, b) => a + b, 0)
  const announces = total.responses.announce ?? 0
  return {
    protocol: spec.protocol,
    target: config.server_address,
    durationSeconds: round(elapsed, 1),
    requestsSent: total.sent,
    responses,
    responsesPerSecond: Object.fromEntries(Object.entries(responses).map(([k, v]) => [k, perSecond(v)])),
    totalResponsesPerSecond: perSecond(answered),
    errors: total.errors,
    unanswered: total.unanswered,
    latencyMs: latencySummary(latency),
    extra: {'peers per announce': announces ? total.peers / announces : 0, 'late replies': total.late},
  }
}

/** What a generator thread provides to `serveThread`. */
export interface LoadGenerator {
  /** Build the model, open sockets or connections. */
  start(): Promise<void>
  run(): void
  /** Counters since the last call. */
  takeStats(): ThreadStats
  /** Stop sending; the final counters include what is still unanswered and the latency histogram. */
  stop(): Promise<ThreadStats>
}

/** The thread side of `runLoadThreads`: ready, run, a report a second, stop. */
export function serveThread(gen: LoadGenerator, everySecond?: () => void): void {
  const port = parentPort
  if (!port) return
  let reporter: NodeJS.Timeout | undefined
  port.on('message', async (m: {type: 'run' | 'stop'}) => {
    if (m.type === 'run') {
      gen.run()
      reporter = setInterval(() => {
        everySecond?.()
        port.postMessage({type: 'stats', stats: gen.takeStats()} satisfies ThreadMessage)
      }, 1000)
      return
    }
    clearInterval(reporter)
    port.postMessage({type: 'final', stats: await gen.stop()} satisfies ThreadMessage)
    port.close()
  })
  void gen.start().then(() => port.postMessage({type: 'ready'} satisfies ThreadMessage))
}
