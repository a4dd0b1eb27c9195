/**
 * Issue 13, item 6: a flood of 70-hash UDP scrapes (or announces: `--announces`) from one
 * client with a valid connection id against `tracker serve udp` with 2 workers, on loopback, for
 * a bounded time. Prints each worker's RSS and the latency of a legitimate announce (another
 * address, one every 100 ms) before, during and after the flood, and the tracker's drop and
 * refusal counters. The announce flood cycles 64 torrents and peers, so that what grows is what
 * sits between the workers, not the swarm.
 *
 *   npx tsc -p . && node dist/loadtest/bench/mesh-flood.js [--seconds 15] [--after 10] [--sockets 8] [--announces]
 */
import dgram from 'node:dgram'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {setTimeout as sleep} from 'node:timers/promises'
import {Worker, isMainThread, parentPort, workerData} from 'node:worker_threads'
import * as udp from '../../src/protocol/udp/index.js'
import {descendants, freePort, rssBytes, startProcess, stopProcess} from './proc.js'

interface FloodOptions {
  port: number
  seconds: number
  sockets: number
  hashes: number
  announces: boolean
}

/** Ask for a connection id from `address`; the tracker's ids are per client IP. */
async function connectionId(socket: dgram.Socket, port: number): Promise<Uint8Array> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const reply = new Promise<Buffer | undefined>(resolve => {
      const timer = setTimeout(() => resolve(undefined), 200)
      socket.once('message', m => {
        clearTimeout(timer)
        resolve(m)
      })
    })
    const b = Buffer.alloc(16)
    udp.writeConnectRequest(b, 7)
    socket.send(b, port, '127.0.0.1')
    const m = await reply
    if (m && m.length >= 16 && m.readUInt32BE(0) === udp.ACTION_CONNECT) return Uint8Array.from(m.subarray(8, 16))
  }
  throw new Error(`no connect reply from 127.0.0.1:${port}`)
}

/** The flood, in a thread of its own so that the probe's clock is not the flood's event loop. */
async function flood({port, seconds, sockets, hashes, announces}: FloodOptions): Promise<void> {
  const socks = await Promise.all(
    Array.from(
      {length: sockets},
      () =>
        new Promise<dgram.Socket>(resolve => {
          const s = dgram.createSocket('udp4')
          s.bind(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const cid = await connectionId(socks[0], port)
  // Replies are read and thrown away, as an attacker would.
  for (const s of socks) s.on('message', () => {})
  const packets = Array.from({length: 64}, (_, i) => {
    if (announces) {
      const b = Buffer.alloc(udp.ANNOUNCE_REQUEST_LENGTH)
      udp.writeAnnounceRequest(b, {
        connectionId: cid,
        transactionId: i,
        infoHash: randomBytes(20),
        peerId: randomBytes(20),
        downloaded: 0,
        left: 1,
        uploaded: 0,
        event: 0,
        numWant: 30,
        port: 6881,
      })
      return b
    }
    const b = Buffer.alloc(16 + 20 * hashes)
    udp.writeScrapeRequest(
      b,
      cid,
      i,
      Array.from({length: hashes}, () => randomBytes(20)),
    )
    return b
  })
  parentPort!.postMessage({type: 'started'})
  const end = Date.now() + seconds * 1000
  const WINDOW = 256
  let sent = 0
  let next = 0
  await Promise.all(
    socks.map(
      s =>
        new Promise<void>(resolve => {
          let inFlight = 0
          const pump = (): void => {
            if (Date.now() >= end) {
              if (inFlight === 0) resolve()
              return
            }
            while (inFlight < WINDOW) {
              inFlight++
              sent++
              s.send(packets[next++ & 63], port, '127.0.0.1', () => {
                if (--inFlight === 0) setImmediate(pump)
              })
            }
          }
          pump()
        }),
    ),
  )
  for (const s of socks) s.close()
  parentPort!.postMessage({type: 'done', sent})
}

interface Probe {
  sentAt: number
  latency?: number
}

async function main(): Promise<void> {
  const arg = (name: string, d: number): number => {
    const i = process.argv.indexOf(`--${name}`)
    return i >= 0 ? Number(process.argv[i + 1]) : d
  }
  const seconds = arg('seconds', 15)
  const after = arg('after', 10)
  const sockets = arg('sockets', 8)
  const announces = process.argv.includes('--announces')
  const dir = mkdtempSync(join(tmpdir(), 'mesh-flood-'))
  const port = await freePort('udp')
  const metricsPort = await freePort('tcp')
  const cfg = join(dir, 'udp.toml')
  writeFileSync(
    cfg,
    `socket_workers = 2
log_level = "info"
pid_file = "${join(dir, 'udp.pid')}"
[network]
address_ipv4 = "127.0.0.1:${port}"
use_ipv6 = false
[metrics]
prometheus_endpoint_address = "127.0.0.1:${metricsPort}"
`,
  )
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
  const server = await startProcess(process.execPath, [bin, 'serve', 'udp', '-c', cfg], out => out.includes('2 workers'))
  await sleep(500)
  const workers = descendants(server.child.pid!)
  const probe = dgram.createSocket('udp4')
  await new Promise<void>(resolve => probe.bind(0, '127.0.0.2', () => resolve()))
  const cid = await connectionId(probe, port)
  const probes = new Map<number, Probe>()
  probe.on('message', m => {
    const p = m.length >= 8 ? probes.get(m.readUInt32BE(4)) : undefined
    if (p && p.latency === undefined) p.latency = performance.now() - p.sentAt
  })
  const infoHash = randomBytes(20)
  const peerId = randomBytes(20)
  let tid = 1000
  const probeTimer = setInterval(() => {
    const b = Buffer.alloc(98)
    udp.writeAnnounceRequest(b, {
      connectionId: cid,
      transactionId: ++tid,
      infoHash,
      peerId,
      downloaded: 0,
      left: 1,
      uploaded: 0,
      event: 0,
      numWant: 10,
      port: 6881,
    })
    probes.set(tid, {sentAt: performance.now()})
    probe.send(b, port, '127.0.0.1')
  }, 100)
  const rss = new Map<number, number[]>(workers.map(w => [w, []]))
  const phaseOf: {at: number; phase: string}[] = []
  const rssTimer = setInterval(() => {
    for (const w of workers) rss.get(w)!.push(rssBytes(w))
  }, 200)
  const mark = (phase: string): void => {
    phaseOf.push({at: performance.now(), phase})
  }
  mark('before')
  const rssBefore = workers.map(w => rssBytes(w))
  await sleep(2000)
  const thread = new Worker(fileURLToPath(import.meta.url), {workerData: {port, seconds, sockets, hashes: 70, announces} satisfies FloodOptions})
  const sent = await new Promise<number>((resolve, reject) => {
    thread.on('message', (m: {type: string; sent?: number}) => {
      if (m.type === 'started') mark('flood')
      if (m.type === 'done') resolve(m.sent!)
    })
    thread.on('error', reject)
  })
  const floodEnd = performance.now()
  mark('after')
  const rssFloodMax = workers.map(w => Math.max(...rss.get(w)!))
  await sleep(after * 1000)
  clearInterval(probeTimer)
  await sleep(1000)
  clearInterval(rssTimer)
  const rssEnd = workers.map(w => rssBytes(w))
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  probe.close()
  if (process.env.MESH_FLOOD_SERVER_OUTPUT) console.log(server.output())
  await stopProcess(server.child)
  rmSync(dir, {recursive: true, force: true})

  const inPhase = (phase: string): Probe[] => {
    const i = phaseOf.findIndex(p => p.phase === phase)
    const from = phaseOf[i].at
    const to = phaseOf[i + 1]?.at ?? Infinity
    return [...probes.values()].filter(p => p.sentAt >= from && p.sentAt < to && p.sentAt < floodEnd + after * 1000)
  }
  const MiB = (b: number): string => (b / 1048576).toFixed(0)
  const ms = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(1))
  const pct = (list: number[], q: number): number | undefined => (list.length ? list[Math.min(list.length - 1, Math.floor(q * list.length))] : undefined)
  console.log(`flood: ${sent} ${announces ? 'announces' : 'scrapes of 70 hashes'} in ${seconds} s (${Math.round(sent / seconds)}/s) from ${sockets} sockets`)
  console.log('\nworker | RSS before MiB | RSS max during flood MiB | RSS end MiB')
  workers.forEach((w, i) => console.log(`${i} (pid ${w}) | ${MiB(rssBefore[i])} | ${MiB(rssFloodMax[i])} | ${MiB(rssEnd[i])}`))
  console.log('\nphase | announces sent | answered | p50 ms | p99 ms | max ms')
  for (const phase of ['before', 'flood', 'after']) {
    const list = inPhase(phase)
    const lat = list
      .filter(p => p.latency !== undefined)
      .map(p => p.latency!)
      .sort((a, b) => a - b)
    console.log(`${phase} | ${list.length} | ${lat.length} | ${ms(pct(lat, 0.5))} | ${ms(pct(lat, 0.99))} | ${ms(lat.at(-1))}`)
  }
  // Recovery: from the flood's end to the first probe after which every probe is answered within 100 ms.
  const afterList = inPhase('after')
  let recovered: number | undefined
  for (let i = afterList.length - 1; i >= 0; i--) {
    const p = afterList[i]
    if (p.latency === undefined || p.latency > 100) break
    recovered = p.sentAt - floodEnd
  }
  console.log(
    `\nafter the flood: every announce answered within 100 ms from ${recovered === undefined ? 'never' : `${recovered.toFixed(0)} ms`} after it stopped`,
  )
  console.log('\ncounters:')
  for (const line of metrics.split('\n')) {
    if (
      /^tracker_(dropped|refusals)_total\{/.test(line) ||
      /^tracker_responses_total\{type="(scrape|error|announce)"/.test(line) ||
      /^nodejs_(heap_size_used|external_memory)_bytes /.test(line)
    )
      console.log(`  ${line}`)
  }
}

if (isMainThread) {
  main().catch(error => {
    console.error(error)
    process.exit(1)
  })
} else {
  void flood(workerData as FloodOptions)
}
