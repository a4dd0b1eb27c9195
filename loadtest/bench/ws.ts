/**
 * `npm run bench ws`: ours (batched I/O, and on Node's sockets), the bittorrent-tracker npm server
 * and a bare ws + JSON server, each started fresh and loaded the same way by our WebTorrent load
 * generator in this process; then the rate and server CPU of bare handshakes (connect, upgrade,
 * close: browsers reconnect often) from a separate process; then the memory each holds per idle
 * connection (10k connections from a separate process).
 */
import {spawn} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import WebSocket from 'ws'
import {defaultsOf, loadtestWsSchema, type LoadtestWsConfig} from '../../src/config/index.js'
import {runWsLoadtest} from '../ws.js'
import {descendants, distPath, rssBytes, startOurs, startProcess, stopProcess, treeCpuMs, type Started} from './proc.js'

export interface WsBenchOptions {
  duration: number
  rounds: number
  only: string[]
  /** Idle connections for the memory figure (0 skips it). */
  idle: number
}

export interface WsBenchRow {
  server: string
  announcesPerSecond: number
  relayedPerSecond: number
  serverCpuUsPerCycle: number
  serverCores: number
  generatorCores: number
  generatorBound: boolean
  errors: number
  unanswered: number
  /** Resident bytes per idle connection, when measured. */
  bytesPerIdleConnection?: number
  handshakesPerSecond: number
  serverCpuUsPerHandshake: number
  handshakeGeneratorCores: number
}

/** Handshakes 64 at a time for `seconds` from another process; the server's CPU meanwhile. */
async function handshakeRate(pid: number, port: number, seconds: number): Promise<{perSecond: number; cpuUs: number; generatorCores: number}> {
  const cpu0 = treeCpuMs(pid)
  const child = spawn(process.execPath, [distPath('loadtest/bench/servers/ws-handshakes.js'), String(port), '64', String(seconds)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', d => (out += d))
  child.stderr.on('data', d => (out += d))
  await new Promise(resolve => child.once('exit', resolve))
  const serverMs = treeCpuMs(pid) - cpu0
  const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as {handshakes: number; refused: number; cpuMs: number}
  if (!r.handshakes) throw new Error(`no handshake answered:\n${out}`)
  return {perSecond: r.handshakes / seconds, cpuUs: (serverMs * 1000) / r.handshakes, generatorCores: r.cpuMs / 1000 / seconds}
}

/** Ready when a WebSocket connects. */
export function accepts(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    ws.once('open', () => {
      ws.terminate()
      resolve(true)
    })
    ws.once('error', () => resolve(false))
  })
}

interface ServerSpec {
  name: string
  start(port: number, dir: string): Promise<Started>
}

const SERVERS: ServerSpec[] = [
  {name: 'tracker (ours)', start: (port, dir) => startOurs('ws', dir, port, () => accepts(port))},
  {name: 'tracker (ours) Node sockets', start: (port, dir) => startOurs('ws', dir, port, () => accepts(port), {network: 'batched_io = false'})},
  {
    name: 'bittorrent-tracker',
    start: port => startProcess(process.execPath, [distPath('loadtest/bench/servers/bittorrent-tracker.js'), 'ws', String(port)], () => accepts(port)),
  },
  {
    name: 'bare ws + JSON (ceiling)',
    start: port => startProcess(process.execPath, [distPath('loadtest/bench/servers/ws-ceiling.js'), String(port)], () => accepts(port)),
  },
]

/** Resident memory the server holds for `count` idle connections (clients in another process). */
async function idleBytesPerConnection(pid: number, port: number, count: number): Promise<number> {
  const rss = () => [pid, ...descendants(pid)].reduce((sum, p) => sum + rssBytes(p), 0)
  const before = rss()
  const clients = spawn(process.execPath, [distPath('loadtest/bench/servers/ws-idle-clients.js'), `ws://127.0.0.1:${port}`, String(count)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  clients.stdout.on('data', d => (out += d))
  clients.stderr.on('data', d => (out += d))
  try {
    const deadline = Date.now() + 120_000
    while (!out.includes('ready')) {
      if (clients.exitCode !== null) throw new Error(`idle clients failed:\n${out}`)
      if (Date.now() > deadline) throw new Error(`idle clients not ready within 120 s:\n${out}`)
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    // Let the server settle (GC) before reading its memory.
    await new Promise(resolve => setTimeout(resolve, 3000))
    return (rss() - before) / count
  } finally {
    clients.kill('SIGTERM')
  }
}

/** The load of this bench: 64 connections on 1000 torrents, 2 offers of 400 B per announce, from 1 thread. */
export function wsGenerator(duration: number): LoadtestWsConfig {
  const generator = defaultsOf(loadtestWsSchema) as LoadtestWsConfig
  generator.duration = duration
  generator.warmup = 0 // CPU is measured over the whole run, so every response must count
  generator.workers = 1
  generator.network.connections = 64
  generator.requests.number_of_torrents = 1000
  generator.requests.offers_per_announce = 2
  generator.requests.sdp_size = 400
  return generator
}

export async function benchWs(o: WsBenchOptions, log: (line: string) => void): Promise<WsBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tracker-bench-ws-'))
  const generator = wsGenerator(o.duration)
  const specs = SERVERS.filter(s => o.only.length === 0 || o.only.some(n => s.name.startsWith(n)))
  const runs = new Map<string, WsBenchRow[]>()
  let port = 19_000 + (process.pid % 1000) * 10
  for (let round = 0; round < o.rounds; round++)
    for (const spec of specs) {
      port++
      log(`${spec.name}: starting on 127.0.0.1:${port}`)
      const server = await spec.start(port, dir)
      try {
        const pid = server.child.pid!
        const cpu0 = treeCpuMs(pid)
        const gen0 = process.cpuUsage()
        const t0 = performance.now()
        const r = await runWsLoadtest({...generator, server_address: `127.0.0.1:${port}`})
        const seconds = (performance.now() - t0) / 1000
        const genCpu = process.cpuUsage(gen0)
        const serverMs = treeCpuMs(pid) - cpu0
        if (server.child.exitCode !== null) throw new Error(`${spec.name} exited during the run:\n${server.output()}`)
        if (r.responses.announce === 0) throw new Error(`${spec.name} answered no announce:\n${server.output()}\n${JSON.stringify(r.errors)}`)
        const generatorCores = (genCpu.user + genCpu.system) / 1e6 / seconds
        const row: WsBenchRow = {
          server: spec.name,
          announcesPerSecond: r.responsesPerSecond.announce,
          relayedPerSecond: r.responsesPerSecond.offer + r.responsesPerSecond.answer,
          serverCpuUsPerCycle: (serverMs * 1000) / r.responses.announce,
          serverCores: serverMs / 1000 / seconds,
          generatorCores,
          generatorBound: generatorCores >= 0.9,
          errors: r.responses.error,
          unanswered: r.unanswered,
          handshakesPerSecond: 0,
          serverCpuUsPerHandshake: 0,
          handshakeGeneratorCores: 0,
        }
        const h = await handshakeRate(pid, port, Math.min(5, o.duration))
        row.handshakesPerSecond = h.perSecond
        row.serverCpuUsPerHandshake = h.cpuUs
        row.handshakeGeneratorCores = h.generatorCores
        if (round === 0 && o.idle > 0) {
          // A fresh server for the memory figure: the load run's swarm would be counted.
          await stopProcess(server.child)
          port++
          const fresh = await spec.start(port, dir)
          try {
            row.bytesPerIdleConnection = await idleBytesPerConnection(fresh.child.pid!, port, o.idle)
          } finally {
            await stopProcess(fresh.child)
          }
        }
        const list = runs.get(spec.name) ?? []
        runs.set(spec.name, list)
        list.push(row)
        log(`${spec.name}: ${Math.round(row.announcesPerSecond).toLocaleString('en-US')} announces/s, ${row.serverCpuUsPerCycle.toFixed(0)} us/cycle`)
      } finally {
        await stopProcess(server.child)
      }
    }
  return specs.map(spec => {
    const list = runs.get(spec.name)!
    const memory = list.find(r => r.bytesPerIdleConnection !== undefined)?.bytesPerIdleConnection
    list.sort((a, b) => a.serverCpuUsPerCycle - b.serverCpuUsPerCycle)
    return {...list[Math.floor((list.length - 1) / 2)], bytesPerIdleConnection: memory}
  })
}

export function formatWsBench(rows: WsBenchRow[], o: WsBenchOptions): string {
  const head = [
    'server',
    'announces/s',
    'offers+answers relayed/s',
    'server CPU us/cycle',
    'server cores',
    'generator cores',
    'errors',
    'unanswered',
    'handshakes/s',
    'server CPU us/handshake',
    'idle conn. KiB',
    'conns per GB',
    '',
  ]
  const body = rows.map(r => [
    r.server,
    Math.round(r.announcesPerSecond).toLocaleString('en-US'),
    Math.round(r.relayedPerSecond).toLocaleString('en-US'),
    r.serverCpuUsPerCycle.toFixed(0),
    r.serverCores.toFixed(2),
    r.generatorCores.toFixed(2),
    String(r.errors),
    String(r.unanswered),
    `${Math.round(r.handshakesPerSecond).toLocaleString('en-US')}${r.handshakeGeneratorCores >= 0.9 ? ' (generator-bound)' : ''}`,
    r.serverCpuUsPerHandshake.toFixed(1),
    r.bytesPerIdleConnection === undefined ? '-' : (r.bytesPerIdleConnection / 1024).toFixed(1),
    r.bytesPerIdleConnection === undefined ? '-' : Math.round(2 ** 30 / r.bytesPerIdleConnection).toLocaleString('en-US'),
    r.generatorBound ? 'generator-bound' : '',
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => b[i].length)))
  const line = (cells: string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
  const out = [
    `# WebTorrent bench: ${o.duration} s per run, median of ${o.rounds} interleaved run(s); 64 connections on 1000 torrents, 2 offers of 400 B per announce, every offer answered, 10% scrapes; ` +
      `a cycle = an announce, its response, its offers and their answers relayed; memory with ${o.idle.toLocaleString('en-US')} idle connections from another process`,
    line(head),
    line(widths.map(w => '-'.repeat(w))),
    ...body.map(line),
  ]
  const by = (name: string) => rows.find(r => r.server.startsWith(name))
  const ours = rows.find(r => r.server === 'tracker (ours)')
  const oursNode = by('tracker (ours) Node sockets')
  if (ours && oursNode)
    out.push(
      `ours / ours on Node sockets: CPU per cycle ${(ours.serverCpuUsPerCycle / oursNode.serverCpuUsPerCycle).toFixed(2)}x; CPU per handshake ${(ours.serverCpuUsPerHandshake / oursNode.serverCpuUsPerHandshake).toFixed(2)}x`,
    )
  const bt = by('bittorrent-tracker')
  const bare = by('bare')
  if (ours && bt)
    out.push(
      `ours / bittorrent-tracker: CPU per cycle ${(ours.serverCpuUsPerCycle / bt.serverCpuUsPerCycle).toFixed(2)}x (target <= 0.33x, goal 0.2x); announces/s ${(ours.announcesPerSecond / bt.announcesPerSecond).toFixed(2)}x`,
    )
  if (ours && bare) out.push(`ours / bare ws + JSON: CPU per cycle ${(ours.serverCpuUsPerCycle / bare.serverCpuUsPerCycle).toFixed(2)}x`)
  if (bare && bt) out.push(`bare ws + JSON / bittorrent-tracker: CPU per cycle ${(bare.serverCpuUsPerCycle / bt.serverCpuUsPerCycle).toFixed(2)}x`)
  return out.join('\n') + '\n'
}
