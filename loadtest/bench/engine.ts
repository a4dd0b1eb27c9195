/**
 * `npm run bench engine`: the swarm engine alone (no sockets): announce and scrape operations per
 * second on a populated swarm, and memory per peer. Run with --expose-gc for honest memory figures.
 */
import {Bench} from 'tinybench'
import {AnnounceRequest, AnnounceResult, EVENT_NONE, EVENT_STOPPED, ScrapeCounts, Swarm} from '../../src/swarm/index.js'
import {Rng} from '../model.js'
import {table} from '../report.js'

export interface EngineBenchOptions {
  peers: number
  torrents: number
  timeMs: number
}

const gc = (): void => (globalThis as {gc?: () => void}).gc?.()
const mb = (n: number): string => (n / 1048576).toFixed(1)

export async function benchEngine(o: EngineBenchOptions): Promise<string> {
  const rng = new Rng(7)
  const hashes = new Uint8Array(o.torrents * 20)
  rng.fill(hashes)
  // Peer i lives on torrent i % torrents with a distinct id, IPv4 address and port.
  const peerIds = new Uint8Array(o.peers * 20)
  rng.fill(peerIds)
  const swarm = new Swarm({maxTorrents: o.torrents * 2, maxPeersPerTorrent: 1_000_000, maxPeerAge: 3600})
  const req = new AnnounceRequest()
  const res = new AnnounceResult()
  res.peerBuf = new Uint8Array(50 * 18)
  req.infoHash = hashes
  req.peerId = peerIds
  req.ipFamily = 4
  req.event = EVENT_NONE
  const fill = (i: number, numWant: number): void => {
    req.infoHashOffset = (i % o.torrents) * 20
    req.peerIdOffset = i * 20
    req.ip[0] = 10
    req.ip[1] = (i >>> 16) & 0xff
    req.ip[2] = (i >>> 8) & 0xff
    req.ip[3] = i & 0xff
    req.port = 1024 + (i % 60_000)
    req.isSeeder = i % 4 === 0
    req.numWant = numWant
  }

  gc()
  const before = process.memoryUsage()
  for (let i = 0; i < o.peers; i++) {
    fill(i, 0)
    res.peerBufOffset = 0
    swarm.announce(req, 0, res)
  }
  // As a running tracker would be after its periodic cleaning (which also compacts peer storage).
  swarm.clean(1)
  gc()
  const after = process.memoryUsage()
  const heapAndBuffers = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers)
  const rss = after.rss - before.rss

  const counts = new ScrapeCounts()
  let k = 0
  const strangerId = new Uint8Array(20).fill(0xee)
  const bench = new Bench({time: o.timeMs, warmupTime: 200})
  bench
    .add('announce (existing peer, numwant 50)', () => {
      fill(rng.int(o.peers), 50)
      res.peerBufOffset = 0
      swarm.announce(req, 1, res)
    })
    .add('announce (new peer, then stopped)', () => {
      fill(rng.int(o.peers), 50)
      // An id no stored peer has: it joins, then leaves, so the population stays put.
      strangerId[0] = k++ & 0xff
      req.peerId = strangerId
      req.peerIdOffset = 0
      res.peerBufOffset = 0
      swarm.announce(req, 1, res)
      req.event = EVENT_STOPPED
      swarm.announce(req, 1, res)
      req.event = EVENT_NONE
      req.peerId = peerIds
    })
    .add('scrape (one info hash)', () => {
      swarm.scrape(hashes, rng.int(o.torrents) * 20, counts)
    })
  await bench.run()

  const rows: [string, string | number][] = [
    ['peers / torrents', `${o.peers.toLocaleString('en-US')} / ${o.torrents.toLocaleString('en-US')}`],
    ['heap + array buffers (MB)', mb(heapAndBuffers)],
    ['  bytes per peer', Math.round(heapAndBuffers / o.peers)],
    ['RSS growth (MB)', mb(rss)],
    ['  bytes per peer', Math.round(rss / o.peers)],
  ]
  for (const t of bench.tasks) {
    const r = t.result as {throughput?: {mean: number}; hz?: number} | undefined
    const hz = r?.throughput?.mean ?? r?.hz ?? 0
    rows.push([`${t.name} ops/s`, Math.round(hz)])
  }
  return `# swarm engine${(globalThis as {gc?: unknown}).gc ? '' : ' (run node with --expose-gc for exact memory)'}\n${table(rows)}\n`
}
