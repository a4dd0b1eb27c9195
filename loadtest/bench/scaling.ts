/**
 * `npm run bench scaling`: what more workers cost. Ours (`tracker serve udp|http|ws`) with
 * socket_workers = 1, 2 and, on machines with more than 2 cores, one per core, each started fresh
 * and loaded the same way (the loads of `bench udp`, `bench http` keep-alive and `bench ws`).
 * Every torrent has one owning worker, so a request that lands on another worker crosses the mesh;
 * that must cost little CPU per response (issue 17: at 2 workers <= 1.15x for UDP, <= 1.3x for
 * HTTP keep-alive and WebSocket). The tracker's own counters say how much was forwarded and how
 * many mesh bytes a request cost.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {parsePrometheus, sum} from '../../src/top/prometheus.js'
import type {LoadReport} from '../report.js'
import {runUdpLoadtest} from '../udp.js'
import {runWsLoadtest} from '../ws.js'
import {answersAnnounce, CONNECTIONS, requestPaths, runWrk, wrkScript} from './http.js'
import {freePort, startOurs, stopProcess, treeCpuMs} from './proc.js'
import {answersConnect, markdownTable, udpGenerator} from './udp.js'
import {accepts, wsGenerator} from './ws.js'

const PROTOCOLS = ['udp', 'http', 'ws'] as const
type Protocol = (typeof PROTOCOLS)[number]

/** CPU per response at 2 workers over 1 worker, at most (issue 17). */
const TARGETS: Record<Protocol, number> = {udp: 1.15, http: 1.3, ws: 1.3}

/** The load of each protocol, as in its own bench. */
const LOADS: Record<Protocol, string> = {
  udp: '1 generator thread x 4 sockets x 64 in flight, 10k torrents, 100k peers, 90% announce / 10% scrape',
  http: `wrk 1 thread x ${CONNECTIONS} keep-alive connections, 10k torrents, 100k peers, 90% announce / 10% scrape`,
  ws: '1 generator thread x 64 connections on 1000 torrents, 2 offers of 400 B per announce, all answered, 10% scrape',
}

export interface ScalingBenchOptions {
  duration: number
  /** Each configuration runs this many times, interleaved; the table shows the median run. */
  rounds: number
  /** Only these protocols (udp, http, ws); all when empty. */
  only: string[]
}

export interface ScalingRow {
  protocol: Protocol
  workers: number
  responsesPerSecond: number
  serverCpuUsPerResponse: number
  serverCores: number
  generatorCores: number
  /** Forwarded over the mesh / requests, from the tracker's metrics; undefined when it has no such metric. */
  forwardedShare?: number
  /** Mesh bytes sent (all workers) / requests. */
  meshBytesPerRequest?: number
}

interface Load {
  /** Replies the generator got: for WebSocket every message, offers and answers relayed included. */
  responses: number
  generatorMs: number
}

interface Driver {
  protocol: Protocol
  /** TOML lines for [protocol]. */
  settings?: string
  ready(port: number): Promise<boolean>
  run(port: number, seconds: number): Promise<Load>
}

/** A run of our generator in this process, and the CPU this process (all its threads) spent meanwhile. */
async function inProcess(run: () => Promise<LoadReport>): Promise<Load> {
  const cpu0 = process.cpuUsage()
  const report = await run()
  const cpu = process.cpuUsage(cpu0)
  const responses = Object.entries(report.responses).reduce((total, [type, n]) => (type === 'malformed' ? total : total + n), 0)
  return {responses, generatorMs: (cpu.user + cpu.system) / 1000}
}

function drivers(dir: string): Driver[] {
  const paths = requestPaths()
  const script = join(dir, 'keep-alive.lua')
  writeFileSync(script, wrkScript(paths, false))
  return [
    {
      protocol: 'udp',
      settings: 'max_response_peers = 50',
      ready: answersConnect,
      run: (port, seconds) => inProcess(() => runUdpLoadtest({...udpGenerator(seconds), server_address: `127.0.0.1:${port}`})),
    },
    {
      protocol: 'http',
      settings: 'max_response_peers = 50',
      ready: port => answersAnnounce(port, false, paths[0]),
      run: async (port, seconds) => {
        const r = await runWrk(`http://127.0.0.1:${port}`, script, seconds)
        return {responses: r.requestsPerSecond * seconds, generatorMs: r.cpuMs}
      },
    },
    {
      protocol: 'ws',
      ready: accepts,
      run: (port, seconds) => inProcess(() => runWsLoadtest({...wsGenerator(seconds), server_address: `127.0.0.1:${port}`})),
    },
  ]
}

/** The metrics text; the endpoint may come up a moment after the tracker answers. */
async function scrape(port: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`)
      if (res.ok) return await res.text()
      if (attempt >= 50) throw new Error(`metrics answered ${res.status}`)
    } catch (error) {
      if (attempt >= 50) throw error
    }
    await sleep(100)
  }
}

/** How much a counter grew between two scrapes, summed over its series; undefined when the tracker has no such metric. */
function growth(before: string, after: string, name: string, where: Record<string, string> = {}): number | undefined {
  if (!after.includes(`# TYPE ${name} `)) return undefined
  return sum(parsePrometheus(after), name, where) - sum(parsePrometheus(before), name, where)
}

async function runOnce(d: Driver, workers: number, duration: number, dir: string, log: (line: string) => void): Promise<ScalingRow> {
  const port = await freePort(d.protocol === 'udp' ? 'udp' : 'tcp')
  const metricsPort = await freePort('tcp')
  const name = `${d.protocol} with ${workers} worker(s)`
  log(`${name}: starting on 127.0.0.1:${port}`)
  const server = await startOurs(d.protocol, dir, port, () => d.ready(port), {protocol: d.settings, workers, metrics: `127.0.0.1:${metricsPort}`})
  try {
    const pid = server.child.pid!
    // Readiness checks sent a few requests: the counters' growth over the run is what counts.
    const before = await scrape(metricsPort)
    const cpu0 = treeCpuMs(pid)
    const t0 = performance.now()
    const load = await d.run(port, duration)
    const seconds = (performance.now() - t0) / 1000
    const serverMs = treeCpuMs(pid) - cpu0
    if (server.child.exitCode !== null) throw new Error(`${name}: the tracker exited during the run:\n${server.output()}`)
    if (load.responses === 0) throw new Error(`${name}: the tracker answered nothing:\n${server.output()}`)
    const after = await scrape(metricsPort)
    const requests = growth(before, after, 'tracker_requests_total') ?? 0
    const per = (n: number | undefined): number | undefined => (n === undefined || requests === 0 ? undefined : n / requests)
    const row: ScalingRow = {
      protocol: d.protocol,
      workers,
      responsesPerSecond: load.responses / seconds,
      serverCpuUsPerResponse: (serverMs * 1000) / load.responses,
      serverCores: serverMs / 1000 / seconds,
      generatorCores: load.generatorMs / 1000 / seconds,
      forwardedShare: per(growth(before, after, 'tracker_forwarded_total')),
      meshBytesPerRequest: per(growth(before, after, 'tracker_mesh_bytes_total', {direction: 'sent'})),
    }
    log(`${name}: ${Math.round(row.responsesPerSecond).toLocaleString('en-US')} responses/s, ${row.serverCpuUsPerResponse.toFixed(1)} us/response`)
    return row
  } finally {
    await stopProcess(server.child)
  }
}

/** 1 and 2 workers, and one per core when there are more. */
export function workerCounts(): number[] {
  const cores = availableParallelism()
  return cores > 2 ? [1, 2, cores] : [1, 2]
}

export async function benchScaling(o: ScalingBenchOptions, log: (line: string) => void): Promise<ScalingRow[]> {
  const unknown = o.only.filter(n => !(PROTOCOLS as readonly string[]).includes(n))
  if (unknown.length > 0) throw new Error(`--only ${unknown.join(', ')}: expected one of ${PROTOCOLS.join(', ')}`)
  const dir = mkdtempSync(join(tmpdir(), 'tracker-bench-scaling-'))
  try {
    const selected = drivers(dir).filter(d => o.only.length === 0 || o.only.includes(d.protocol))
    const runs = new Map<string, ScalingRow[]>()
    for (let round = 0; round < o.rounds; round++)
      for (const d of selected)
        for (const workers of workerCounts()) {
          const key = `${d.protocol}|${workers}`
          runs.set(key, [...(runs.get(key) ?? []), await runOnce(d, workers, o.duration, dir, log)])
        }
    // The machine is shared and noisy: the run of median CPU per response stands for its configuration.
    return [...runs.values()].map(list => {
      list.sort((a, b) => a.serverCpuUsPerResponse - b.serverCpuUsPerResponse)
      return list[Math.floor((list.length - 1) / 2)]
    })
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

export function formatScalingBench(rows: ScalingRow[], o: ScalingBenchOptions): string {
  const head = ['protocol', 'workers', 'responses/s', 'server CPU us/resp', 'server cores', 'generator cores', 'forwarded %', 'mesh bytes/req', '']
  const body = rows.map(r => [
    r.protocol,
    String(r.workers),
    Math.round(r.responsesPerSecond).toLocaleString('en-US'),
    r.serverCpuUsPerResponse.toFixed(1),
    r.serverCores.toFixed(2),
    r.generatorCores.toFixed(2),
    r.forwardedShare === undefined ? 'n/a' : (r.forwardedShare * 100).toFixed(1),
    r.meshBytesPerRequest === undefined ? 'n/a' : r.meshBytesPerRequest.toFixed(1),
    r.generatorCores >= 0.9 ? 'generator-bound' : '',
  ])
  const out = [
    `# Scaling bench: ours with 1, 2${workerCounts().length > 2 ? ` and ${workerCounts()[2]}` : ''} workers on ${availableParallelism()} cores, ${o.duration} s per run, ` +
      `median (by CPU per response) of ${o.rounds} interleaved run(s) per configuration; forwarded % and mesh bytes/req are the tracker's counters over the run, per request it counted`,
    ...PROTOCOLS.filter(p => rows.some(r => r.protocol === p)).map(p => `#   ${p}: ${LOADS[p]}`),
    ...markdownTable(head, body),
  ]
  for (const protocol of PROTOCOLS) {
    const one = rows.find(r => r.protocol === protocol && r.workers === 1)
    if (!one) continue
    for (const r of rows.filter(r => r.protocol === protocol && r.workers > 1)) {
      const target = r.workers === 2 ? ` (target <= ${TARGETS[protocol]}x, issue 17)` : ''
      out.push(
        `${protocol}: ${r.workers} workers / 1 worker: CPU per response ${(r.serverCpuUsPerResponse / one.serverCpuUsPerResponse).toFixed(2)}x${target}; ` +
          `responses/s ${(r.responsesPerSecond / one.responsesPerSecond).toFixed(2)}x`,
      )
    }
  }
  return out.join('\n') + '\n'
}
