/**
 * `tracker loadtest udp`: drives any BEP 15 tracker with the simulated swarm of model.ts from
 * `workers` threads, prints a progress line each second and a summary at the end.
 */
import {Worker} from 'node:worker_threads'
import type {LoadtestUdpConfig} from '../src/config/index.js'
import {LatencyHistogram, SwarmModel} from './model.js'
import {latencySummary, progressLine, round, type LoadReport} from './report.js'
import {emptyStats, type UdpWorkerMessage, type UdpWorkerStats} from './udp-worker.js'

export interface LoadtestOptions {
  /** Called once a second with the progress line. */
  onProgress?: (line: string) => void
  /** Ends the run early (e.g. Ctrl-C); the summary still comes. */
  signal?: AbortSignal
}

function addStats(into: UdpWorkerStats, s: UdpWorkerStats): void {
  into.sent += s.sent
  into.connect += s.connect
  into.announce += s.announce
  into.scrape += s.scrape
  into.peers += s.peers
  into.unanswered += s.unanswered
  into.late += s.late
  for (const [k, v] of Object.entries(s.errors)) into.errors[k] = (into.errors[k] ?? 0) + v
}

const errorCount = (s: UdpWorkerStats): number => Object.values(s.errors).reduce((a, b) => a + b, 0)

/** The info hashes the run announces, for a whitelist (opentracker -w) or our access list. */
export function udpInfoHashList(config: LoadtestUdpConfig): string {
  const r = config.requests
  return new SwarmModel({numberOfTorrents: r.number_of_torrents, numberOfPeers: 1, peerSeederProbability: 0}).infoHashList()
}

export async function runUdpLoadtest(config: LoadtestUdpConfig, options: LoadtestOptions = {}): Promise<LoadReport> {
  const workerUrl = new URL('./udp-worker.js', import.meta.url)
  const workers = Array.from({length: config.workers}, (_, index) => new Worker(workerUrl, {workerData: {index, config}}))
  const total = emptyStats()
  const latency = new LatencyHistogram()
  let window = emptyStats()
  let finals = 0
  let reports = 0
  let seconds = 0
  let ready = 0
  let failure: Error | undefined
  let allReady!: () => void
  const readyPromise = new Promise<void>(resolve => (allReady = resolve))

  const done = new Promise<void>(resolve => {
    for (const w of workers) {
      w.on('message', (m: UdpWorkerMessage) => {
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
          options.onProgress?.(progressLine(seconds, {connect: window.connect, announce: window.announce, scrape: window.scrape},
            `errors ${errorCount(window)}  unanswered ${window.unanswered}  peers/announce ${window.announce ? round(window.peers / window.announce) : 0}`))
          window = emptyStats()
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

  // The clock starts when every thread has its model built and sockets bound.
  await readyPromise
  if (failure) {
    await Promise.all(workers.map(w => w.terminate()))
    throw failure
  }
  for (const w of workers) w.postMessage({type: 'run'})
  const started = performance.now()

  await new Promise<void>(resolve => {
    const timer = config.duration > 0 ? setTimeout(resolve, config.duration * 1000) : undefined
    options.signal?.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    }, {once: true})
    void done.then(() => failure && resolve())
  })
  const elapsed = (performance.now() - started) / 1000
  for (const w of workers) w.postMessage({type: 'stop'})
  await done
  await Promise.all(workers.map(w => w.terminate()))
  if (failure) throw failure

  const perSecond = (n: number): number => n / elapsed
  return {
    protocol: 'udp',
    target: config.server_address,
    durationSeconds: round(elapsed, 1),
    requestsSent: total.sent,
    responses: {connect: total.connect, announce: total.announce, scrape: total.scrape, error: errorCount(total)},
    responsesPerSecond: {connect: perSecond(total.connect), announce: perSecond(total.announce), scrape: perSecond(total.scrape), error: perSecond(errorCount(total))},
    totalResponsesPerSecond: perSecond(total.connect + total.announce + total.scrape + errorCount(total)),
    errors: total.errors,
    unanswered: total.unanswered,
    latencyMs: latencySummary(latency),
    extra: {'peers per announce': total.announce ? total.peers / total.announce : 0, 'late replies': total.late},
  }
}
