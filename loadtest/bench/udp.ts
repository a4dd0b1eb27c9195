/**
 * `npm run bench udp`: ours, opentracker, the bittorrent-tracker npm server and a bare dgram
 * server, each started fresh and loaded the same way by our generator in this process.
 */
import dgram from 'node:dgram'
import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {defaultsOf, loadtestUdpSchema, type LoadtestUdpConfig} from '../../src/config/index.js'
import * as udp from '../../src/protocol/udp/index.js'
import {loadtestInfoHashList} from '../model.js'
import {runUdpLoadtest} from '../udp.js'
import {distPath, startOurs, startProcess, stopProcess, treeCpuMs, type Started} from './proc.js'

export interface UdpBenchOptions {
  duration: number
  /** Each server runs this many times, interleaved; the table shows the median run. */
  rounds: number
  /** Only these servers (names as in the table); all when empty. */
  only: string[]
}

export interface BenchRow {
  server: string
  responsesPerSecond: number
  serverCpuUsPerResponse: number
  serverCores: number
  generatorCores: number
  generatorBound: boolean
  unanswered: number
  errors: number
}

/** Ready when a connect request gets a reply: works for every server here. */
export async function answersConnect(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4')
  try {
    return await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => resolve(false), 200)
      s.on('message', () => {
        clearTimeout(timer)
        resolve(true)
      })
      s.on('error', () => resolve(false))
      const b = Buffer.alloc(16)
      udp.writeConnectRequest(b, 1)
      s.send(b, port, '127.0.0.1')
    })
  } finally {
    s.close()
  }
}

interface ServerSpec {
  name: string
  start(port: number, dir: string, whitelist: string): Promise<Started>
}

const SERVERS: ServerSpec[] = [
  {
    name: 'tracker (ours)',
    start: (port, dir) => startOurs('udp', dir, port, () => answersConnect(port), {protocol: 'max_response_peers = 50'}),
  },
  {
    // Datagrams steered to the worker of their torrent by the kernel (server/udp/steering.ts).
    name: 'tracker (ours) 2 workers',
    start: (port, dir) => startOurs('udp', dir, port, () => answersConnect(port), {protocol: 'max_response_peers = 50', workers: 2}),
  },
  {
    name: 'opentracker',
    start: (port, dir, whitelist) =>
      // Debian builds opentracker in whitelist mode; it chroots to -d, so -w is relative to it.
      startProcess('opentracker', ['-i', '127.0.0.1', '-P', String(port), '-p', String(port), '-d', dir, '-w', whitelist], () => answersConnect(port)).catch(
        (error: Error) => {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT' || /ENOENT/.test(error.message))
            throw new Error('opentracker is not installed: apt-get install opentracker')
          throw error
        },
      ),
  },
  {
    name: 'bittorrent-tracker',
    start: port => startProcess(process.execPath, [distPath('loadtest/bench/servers/bittorrent-tracker.js'), 'udp', String(port)], () => answersConnect(port)),
  },
  {
    name: 'bare dgram (ceiling)',
    start: port => startProcess(process.execPath, [distPath('loadtest/bench/servers/udp-ceiling.js'), String(port)], () => answersConnect(port)),
  },
]

/** The load of this bench: our generator, 1 thread x 4 sockets x 64 in flight, the default swarm and mix. */
export function udpGenerator(duration: number): LoadtestUdpConfig {
  const generator = defaultsOf(loadtestUdpSchema) as LoadtestUdpConfig
  generator.duration = duration
  generator.warmup = 0 // CPU is measured over the whole run, so every response must count
  generator.workers = 1
  generator.network.sockets_per_worker = 4
  generator.network.requests_in_flight_per_socket = 64
  return generator
}

export async function benchUdp(o: UdpBenchOptions, log: (line: string) => void): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tracker-bench-udp-'))
  chmodSync(dir, 0o755) // opentracker drops to "nobody" and must still read the whitelist
  const generator = udpGenerator(o.duration)
  writeFileSync(join(dir, 'whitelist.txt'), loadtestInfoHashList(generator), {mode: 0o644})
  const runs = new Map<string, BenchRow[]>()
  let port = 17_000 + (process.pid % 1000) * 10
  const servers = SERVERS.filter(spec => o.only.length === 0 || o.only.some(n => spec.name.startsWith(n)))
  for (let round = 0; round < o.rounds; round++)
    for (const spec of servers) {
      port++
      log(`${spec.name}: starting on 127.0.0.1:${port}`)
      const server = await spec.start(port, dir, 'whitelist.txt')
      try {
        const pid = server.child.pid!
        const cpu0 = treeCpuMs(pid)
        const gen0 = process.cpuUsage()
        const t0 = performance.now()
        const report = await runUdpLoadtest({...generator, server_address: `127.0.0.1:${port}`})
        const seconds = (performance.now() - t0) / 1000
        const genCpu = process.cpuUsage(gen0)
        const serverMs = treeCpuMs(pid) - cpu0
        if (server.child.exitCode !== null) throw new Error(`${spec.name} exited during the run:\n${server.output()}`)
        const responses = report.responses.connect + report.responses.announce + report.responses.scrape + report.responses.error
        if (responses === 0) throw new Error(`${spec.name} answered nothing:\n${server.output()}`)
        const generatorCores = (genCpu.user + genCpu.system) / 1e6 / seconds
        const list = runs.get(spec.name) ?? []
        runs.set(spec.name, list)
        list.push({
          server: spec.name,
          responsesPerSecond: report.totalResponsesPerSecond,
          serverCpuUsPerResponse: (serverMs * 1000) / responses,
          serverCores: serverMs / 1000 / seconds,
          generatorCores,
          generatorBound: generatorCores >= 0.9,
          unanswered: report.unanswered,
          errors: report.responses.error,
        })
        log(`${spec.name}: ${Math.round(report.totalResponsesPerSecond).toLocaleString('en-US')} responses/s`)
      } finally {
        await stopProcess(server.child)
      }
    }
  // The machine is shared and noisy: the median run of each server stands for it.
  return servers.map(spec => {
    const list = runs.get(spec.name)!.sort((a, b) => a.responsesPerSecond - b.responsesPerSecond)
    return list[Math.floor((list.length - 1) / 2)]
  })
}

/** A markdown table, columns padded to their widest cell. */
export function markdownTable(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => b[i].length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
  return [line(head), line(widths.map(w => '-'.repeat(w))), ...body.map(line)]
}

export function formatUdpBench(rows: BenchRow[], o: UdpBenchOptions): string {
  const head = ['server', 'responses/s', 'server CPU us/resp', 'server cores', 'generator cores', 'unanswered', 'errors', '']
  const body = rows.map(r => [
    r.server,
    Math.round(r.responsesPerSecond).toLocaleString('en-US'),
    r.serverCpuUsPerResponse.toFixed(1),
    r.serverCores.toFixed(2),
    r.generatorCores.toFixed(2),
    String(r.unanswered),
    String(r.errors),
    r.generatorBound ? 'generator-bound' : '',
  ])
  const out = [
    `# UDP bench: ${o.duration} s per run, median of ${o.rounds} interleaved run(s) per server, 1 generator thread x 4 sockets x 64 in flight, 10k torrents, 100k peers, 90% announce (numwant 30) / 10% scrape`,
    ...markdownTable(head, body),
  ]
  const by = (name: string): BenchRow | undefined => rows.find(r => r.server.startsWith(name))
  const ours = rows.find(r => r.server === 'tracker (ours)')
  const ours2 = rows.find(r => r.server === 'tracker (ours) 2 workers')
  const ceiling = by('bare dgram')
  const bt = by('bittorrent-tracker')
  const ot = by('opentracker')
  if (ours && ceiling)
    out.push(
      `ours / bare dgram: ${(ours.responsesPerSecond / ceiling.responsesPerSecond).toFixed(2)}x responses/s (target >= 0.8x); CPU per response ${(ours.serverCpuUsPerResponse / ceiling.serverCpuUsPerResponse).toFixed(2)}x`,
    )
  if (ours && bt)
    out.push(
      `ours / bittorrent-tracker: ${(ours.responsesPerSecond / bt.responsesPerSecond).toFixed(1)}x responses/s (target >= 10x); CPU per response ${(bt.serverCpuUsPerResponse / ours.serverCpuUsPerResponse).toFixed(1)}x less`,
    )
  if (ours && ot)
    out.push(
      `ours / opentracker: ${(ours.responsesPerSecond / ot.responsesPerSecond).toFixed(2)}x responses/s; CPU per response ${(ours.serverCpuUsPerResponse / ot.serverCpuUsPerResponse).toFixed(2)}x`,
    )
  if (ours && ours2)
    out.push(
      `ours 2 workers / 1 worker: CPU per response ${(ours2.serverCpuUsPerResponse / ours.serverCpuUsPerResponse).toFixed(2)}x (target <= 1.15x, issue 17); responses/s ${(ours2.responsesPerSecond / ours.responsesPerSecond).toFixed(2)}x`,
    )
  return out.join('\n') + '\n'
}
