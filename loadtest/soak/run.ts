/**
 * `npm run soak [-- --minutes 10]`: mixed load on all three servers at once from our load testers,
 * with a fixed simulated peer population; each server's RSS and event-loop lag every minute.
 * Passes when each server's RSS over minutes 6-10 (the second half) stays within +-5% of its mean.
 */
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {
  defaultsOf,
  loadtestHttpSchema,
  loadtestUdpSchema,
  loadtestWsSchema,
  type LoadtestHttpConfig,
  type LoadtestUdpConfig,
  type LoadtestWsConfig,
} from '../../src/config/index.js'
import {parsePrometheus, sum} from '../../src/top/prometheus.js'
import {runHttpLoadtest} from '../http.js'
import {runUdpLoadtest} from '../udp.js'
import {runWsLoadtest} from '../ws.js'
import {startOurs, stopProcess, type Started} from '../bench/proc.js'

// --node-options: NODE_OPTIONS for the three servers, e.g. "--max-semi-space-size=2" to keep V8's
// young generation from resizing (its resizing moves RSS by 10 MiB and more).
const {values} = parseArgs({options: {minutes: {type: 'string', default: '10'}, 'node-options': {type: 'string', default: ''}}})
const minutes = Number(values.minutes)
const dir = mkdtempSync(join(tmpdir(), 'tracker-soak-'))
// Below the ephemeral range (32768-60999), which outgoing connections draw from.
const base = 25_000 + (process.pid % 700) * 10
const servers: {name: 'udp' | 'http' | 'ws'; port: number; metrics: number; proc?: Started}[] = [
  {name: 'udp', port: base, metrics: base + 1},
  {name: 'http', port: base + 2, metrics: base + 3},
  {name: 'ws', port: base + 4, metrics: base + 5},
]

async function read(metricsPort: number): Promise<{rss: number; lag: number; peers: number; torrents: number} | undefined> {
  try {
    const s = parsePrometheus(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {signal: AbortSignal.timeout(3000)})).text())
    return {
      rss: sum(s, 'process_resident_memory_bytes'),
      lag: sum(s, 'nodejs_eventloop_lag_seconds'),
      peers: sum(s, 'tracker_peers'),
      torrents: sum(s, 'tracker_torrents'),
    }
  } catch {
    return undefined
  }
}

const ready = (port: number) => async () => (await read(port)) !== undefined
for (const s of servers) {
  s.proc = await startOurs(s.name, dir, s.port, ready(s.metrics), {
    metrics: `127.0.0.1:${s.metrics}`,
    env: values['node-options'] ? {NODE_OPTIONS: values['node-options']} : {},
  })
}

const seconds = minutes * 60
const udp = defaultsOf(loadtestUdpSchema) as LoadtestUdpConfig
Object.assign(udp, {server_address: `127.0.0.1:${servers[0].port}`, duration: seconds, log_level: 'error'})
Object.assign(udp.requests, {number_of_torrents: 10_000, number_of_peers: 50_000})
udp.network.requests_in_flight_per_socket = 16
const http = defaultsOf(loadtestHttpSchema) as LoadtestHttpConfig
Object.assign(http, {server_address: `127.0.0.1:${servers[1].port}`, duration: seconds, log_level: 'error'})
Object.assign(http.requests, {number_of_torrents: 10_000, number_of_peers: 50_000})
http.network.connections = 16
const ws = defaultsOf(loadtestWsSchema) as LoadtestWsConfig
Object.assign(ws, {server_address: `127.0.0.1:${servers[2].port}`, duration: seconds, log_level: 'error'})
ws.network.connections = 32
ws.requests.number_of_torrents = 1000

process.stderr.write(
  `soak: ${minutes} min${values['node-options'] ? ` (servers with NODE_OPTIONS=${values['node-options']})` : ''} of mixed load on udp :${servers[0].port}, http :${servers[1].port}, ws :${servers[2].port}\n`,
)
const rows: string[] = []
const rss: Record<string, number[]> = {udp: [], http: [], ws: []}
const sampler = setInterval(async () => {
  const minute = rows.length + 1
  const cells: string[] = [String(minute)]
  for (const s of servers) {
    const m = await read(s.metrics)
    if (!m) {
      cells.push('unreachable', '-', '-')
      continue
    }
    rss[s.name].push(m.rss)
    cells.push(`${(m.rss / 2 ** 20).toFixed(1)}`, `${(m.lag * 1000).toFixed(1)}`, `${m.peers}`)
  }
  rows.push(`| ${cells.join(' | ')} |`)
  process.stderr.write(rows[rows.length - 1] + '\n')
}, 60_000)

const reports = await Promise.all([runUdpLoadtest(udp), runHttpLoadtest(http), runWsLoadtest(ws)])
clearInterval(sampler)
for (const s of servers) await stopProcess(s.proc!.child)

const out: string[] = [
  '| minute | udp RSS MiB | udp lag ms | udp peers | http RSS MiB | http lag ms | http peers | ws RSS MiB | ws lag ms | ws peers |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows,
]
let pass = true
for (const s of servers) {
  const tail = rss[s.name].slice(Math.floor(rss[s.name].length / 2))
  const mean = tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length)
  const worst = Math.max(...tail.map(v => Math.abs(v - mean) / mean))
  const ok = tail.length > 0 && worst <= 0.05
  pass &&= ok
  out.push(
    `${s.name}: RSS over the second half within ${(worst * 100).toFixed(1)}% of its mean (${(mean / 2 ** 20).toFixed(1)} MiB): ${ok ? 'pass' : 'FAIL'} (bound 5%)`,
  )
}
reports.forEach(r =>
  out.push(
    `${r.protocol} load: ${Math.round(r.totalResponsesPerSecond).toLocaleString('en-US')} responses/s, ${r.unanswered} unanswered, ${Object.values(r.errors).reduce((a, b) => a + b, 0)} errors`,
  ),
)
process.stdout.write(out.join('\n') + '\n')
process.exit(pass ? 0 : 1)
