/**
 * One UDP load-generator thread: a few sockets, each a closed loop of `requests_in_flight_per_socket`
 * request slots. A reply frees its slot, which sends the next request at once; a slot whose
 * request goes unanswered for UNANSWERED_AFTER_MS is counted as unanswered and reused.
 */
import dgram from 'node:dgram'
import {parentPort, workerData} from 'node:worker_threads'
import type {LoadtestUdpConfig} from '../src/config/index.js'
import {parseSocketAddress} from '../src/config/address.js'
import * as udp from '../src/protocol/udp/index.js'
import {LatencyHistogram, Rng, SwarmModel} from './model.js'
import {countText, emptyStats, serveThread, type LoadGenerator, type ThreadStats} from './threads.js'

export interface UdpWorkerData {
  index: number
  config: LoadtestUdpConfig
}

const RESPONSE_TYPES = ['connect', 'announce', 'scrape'] as const

const UNANSWERED_AFTER_MS = 1000

/** An error text saying the connection id was refused (e.g. bittorrent-tracker's "received packet with invalid connection id"). */
const REFUSED_ID = /connection[ _-]?id|connection.*(invalid|expired)/i

export const enum Kind {
  Free = 0,
  Connect = 1,
  Announce = 2,
  Scrape = 3,
}

/** A request of each kind, with its article. */
const REQUEST = ['', 'a connect', 'an announce', 'a scrape']
const ACTION_FOR_KIND = [-1, udp.ACTION_CONNECT, udp.ACTION_ANNOUNCE, udp.ACTION_SCRAPE]

/**
 * What is wrong with a reply (not an error reply) to a request of `kind`, or null if it is a
 * well-formed reply; `hashes` is how many info hashes a scrape asked for. Only replies that are
 * wrong allocate (their reason).
 */
export function malformedReply(m: Uint8Array, action: number, kind: Kind, peerSize: 6 | 18, hashes: number): string | null {
  if (action !== ACTION_FOR_KIND[kind]) {
    return action <= udp.ACTION_SCRAPE ? `${REQUEST[action + 1]} reply to ${REQUEST[kind]} request` : `a reply with unknown action ${action}`
  }
  const length = m.length
  if (kind === Kind.Connect) return length < 16 ? `a connect reply of ${length} bytes (16 expected)` : null
  if (kind === Kind.Announce) {
    if (length < 20) return `an announce reply of ${length} bytes (20 at least)`
    return (length - 20) % peerSize === 0 ? null : `an announce reply whose peer list is not a whole number of ${peerSize}-byte peers`
  }
  // Fewer entries than hashes asked is fine: a scrape may name a torrent twice, and bittorrent-tracker answers each once.
  const entries = (length - 8) / 12
  return Number.isInteger(entries) && entries >= 1 && entries <= hashes ? null : 'a scrape reply whose length does not match the info hashes asked'
}

class LoadSocket {
  readonly socket: dgram.Socket
  readonly window: number
  readonly kinds: Uint8Array
  readonly tids: Uint32Array
  readonly sentAt: Float64Array
  readonly buffers: Buffer[]
  readonly lengths: Uint16Array
  connectionId = Buffer.alloc(8)
  connectedAt = -Infinity
  connecting = false
  private counter = 1
  private readonly counterWrap: number

  constructor(
    readonly gen: Generator,
    readonly family: 4 | 6,
  ) {
    const cfg = gen.cfg
    this.window = cfg.network.requests_in_flight_per_socket
    this.kinds = new Uint8Array(this.window)
    this.tids = new Uint32Array(this.window)
    this.sentAt = new Float64Array(this.window)
    this.lengths = new Uint16Array(this.window)
    const size = Math.max(udp.ANNOUNCE_REQUEST_LENGTH, 16 + 20 * cfg.requests.scrape_max_torrents)
    this.buffers = Array.from({length: this.window}, () => Buffer.alloc(size))
    this.counterWrap = Math.floor(0xffffffff / this.window)
    const options: dgram.SocketOptions = {type: family === 4 ? 'udp4' : 'udp6'}
    if (cfg.network.recv_buffer > 0) options.recvBufferSize = cfg.network.recv_buffer
    this.socket = dgram.createSocket(options)
    this.socket.on('message', (m: Buffer) => this.onMessage(m))
    // ICMP port unreachable comes back as ECONNREFUSED on a connected socket; the slot times out and is counted.
    this.socket.on('error', (e: NodeJS.ErrnoException) =>
      countText(gen.stats.networkErrors, e.code === 'ECONNREFUSED' ? 'port unreachable (ICMP)' : (e.code ?? e.message)),
    )
  }

  /** Transaction ids carry the slot, so a reply finds its slot without a map. */
  private nextTid(slot: number): number {
    this.counter = this.counter + 1 >= this.counterWrap ? 1 : this.counter + 1
    return this.counter * this.window + slot
  }

  send(slot: number, now: number): void {
    const g = this.gen
    const buf = this.buffers[slot]
    const tid = this.nextTid(slot)
    let kind: Kind
    let length: number
    const stale = now - this.connectedAt > g.cfg.requests.connection_id_max_age * 1000
    if ((stale || g.wantConnect()) && !this.connecting) {
      kind = Kind.Connect
      length = udp.writeConnectRequest(buf, tid)
      this.connecting = true
    } else if (this.connectedAt === -Infinity) {
      // No usable id yet (a renewal goes on with the old one): idle until the connect reply.
      this.kinds[slot] = Kind.Free
      g.idle.push(this, slot)
      return
    } else if (g.wantAnnounce()) {
      kind = Kind.Announce
      length = g.writeAnnounce(buf, this.connectionId, tid)
    } else {
      kind = Kind.Scrape
      length = g.writeScrape(buf, this.connectionId, tid)
    }
    this.kinds[slot] = kind
    this.tids[slot] = tid
    this.sentAt[slot] = now
    this.lengths[slot] = length
    g.stats.sent++
    this.socket.send(buf, 0, length)
  }

  onMessage(m: Buffer): void {
    const g = this.gen
    if (m.length < 8) {
      countText(g.stats.malformed, 'a datagram shorter than 8 bytes')
      return
    }
    const tid = m.readUInt32BE(4)
    const slot = tid % this.window
    if (this.tids[slot] !== tid || this.kinds[slot] === Kind.Free) {
      g.stats.late++
      return
    }
    const now = performance.now()
    g.latency.record((now - this.sentAt[slot]) * 1000)
    const action = m.readUInt32BE(0)
    const kind = this.kinds[slot]
    this.kinds[slot] = Kind.Free
    if (kind === Kind.Connect) this.connecting = false
    if (action === udp.ACTION_ERROR) {
      const text = m.toString('utf8', 8)
      countText(g.stats.errors, text)
      // A connection id stays valid after an error reply (BEP 15): renew it only when the
      // tracker says it refused the id (good trackers drop such requests silently instead).
      if (kind !== Kind.Connect && REFUSED_ID.test(text)) this.connectedAt = -Infinity
    } else {
      const wrong = malformedReply(m, action, kind, this.family === 4 ? 6 : 18, (this.lengths[slot] - 16) / 20)
      if (wrong !== null) countText(g.stats.malformed, wrong)
      else if (kind === Kind.Connect) {
        m.copy(this.connectionId, 0, 8, 16)
        this.connectedAt = now
        g.stats.responses.connect++
        g.wakeIdle(this, now)
      } else if (kind === Kind.Announce) {
        g.stats.responses.announce++
        g.stats.peers += (m.length - 20) / (this.family === 4 ? 6 : 18)
      } else g.stats.responses.scrape++
    }
    if (g.running) this.send(slot, now)
  }

  /** Slots whose request got no reply in time are counted and reused. */
  sweep(now: number): void {
    for (let slot = 0; slot < this.window; slot++) {
      const kind = this.kinds[slot]
      if (kind === Kind.Free || now - this.sentAt[slot] < UNANSWERED_AFTER_MS) continue
      this.gen.stats.unanswered++
      this.kinds[slot] = Kind.Free
      this.tids[slot] = 0
      if (kind === Kind.Connect) this.connecting = false
      if (this.gen.running) this.send(slot, now)
    }
  }

  inFlight(): number {
    let n = 0
    for (let slot = 0; slot < this.window; slot++) if (this.kinds[slot] !== Kind.Free) n++
    return n
  }
}

/** Slots parked while their socket waits for a connection id. */
class IdleSlots {
  private readonly entries: {socket: LoadSocket; slot: number}[] = []
  push(socket: LoadSocket, slot: number): void {
    this.entries.push({socket, slot})
  }
  takeFor(socket: LoadSocket): number[] {
    const out: number[] = []
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i].socket !== socket) continue
      out.push(this.entries[i].slot)
      this.entries.splice(i, 1)
    }
    return out
  }
}

class Generator implements LoadGenerator {
  readonly model: SwarmModel
  readonly rng: Rng
  readonly host: string
  readonly port: number
  readonly family: 4 | 6
  readonly sockets: LoadSocket[] = []
  readonly idle = new IdleSlots()
  readonly latency = new LatencyHistogram()
  stats: ThreadStats = emptyStats(RESPONSE_TYPES)
  running = true
  private readonly connectShare: number
  private readonly announceShare: number
  private readonly scrapeHashes: Uint8Array[]

  constructor(
    readonly cfg: LoadtestUdpConfig,
    index: number,
  ) {
    const r = cfg.requests
    // Same seed everywhere: every thread simulates the same torrents (and the same whitelist).
    this.model = new SwarmModel({numberOfTorrents: r.number_of_torrents, numberOfPeers: r.number_of_peers, peerSeederProbability: r.peer_seeder_probability})
    this.rng = new Rng(0x9e3779b9 ^ (index + 1))
    const address = parseSocketAddress(cfg.server_address)!
    this.host = address.host
    this.port = address.port
    this.family = address.family
    const total = r.weight_connect + r.weight_announce + r.weight_scrape
    if (total === 0) throw new Error('weight_connect, weight_announce and weight_scrape are all 0: nothing to send')
    this.connectShare = r.weight_connect / total
    this.announceShare = r.weight_announce / (r.weight_announce + r.weight_scrape || 1)
    this.scrapeHashes = Array.from({length: r.scrape_max_torrents}, () => new Uint8Array(20))
  }

  wantConnect(): boolean {
    return this.connectShare > 0 && this.rng.next() < this.connectShare
  }

  wantAnnounce(): boolean {
    return this.rng.next() < this.announceShare
  }

  writeAnnounce(buf: Buffer, connectionId: Uint8Array, tid: number): number {
    const m = this.model
    const peer = this.rng.int(m.options.numberOfPeers)
    const seeder = m.peerSeeder[peer] === 1
    return udp.writeAnnounceRequest(buf, {
      connectionId,
      transactionId: tid,
      infoHash: m.infoHash(m.peerTorrent[peer]),
      peerId: m.peerId(peer),
      downloaded: 0,
      uploaded: 0,
      left: seeder ? 0 : 1_000_000,
      event: udp.EVENT_NONE,
      key: peer,
      numWant: this.cfg.requests.announce_peers_wanted,
      port: m.peerPorts[peer],
    })
  }

  writeScrape(buf: Buffer, connectionId: Uint8Array, tid: number): number {
    const n = 1 + this.rng.int(this.cfg.requests.scrape_max_torrents)
    const hashes = this.scrapeHashes.slice(0, n)
    for (let i = 0; i < n; i++) hashes[i] = this.model.infoHash(this.model.popularity.sample(this.rng))
    return udp.writeScrapeRequest(buf, connectionId, tid, hashes)
  }

  wakeIdle(socket: LoadSocket, now: number): void {
    if (!this.running) return
    for (const slot of this.idle.takeFor(socket)) socket.send(slot, now)
  }

  async start(): Promise<void> {
    const bindHost = this.family === 4 ? '0.0.0.0' : '::'
    for (let i = 0; i < this.cfg.network.sockets_per_worker; i++) {
      const s = new LoadSocket(this, this.family)
      await new Promise<void>(resolve => s.socket.bind({port: 0, address: bindHost}, () => resolve()))
      // A connected socket skips the address lookup and route search on every send.
      await new Promise<void>(resolve => s.socket.connect(this.port, this.host, () => resolve()))
      this.sockets.push(s)
    }
  }

  run(): void {
    const now = performance.now()
    // Slot 0 connects; the others park until the connection id arrives.
    for (const s of this.sockets) for (let slot = 0; slot < s.window; slot++) s.send(slot, now)
  }

  sweep(): void {
    const now = performance.now()
    for (const s of this.sockets) s.sweep(now)
  }

  resetLatency(): void {
    this.latency.reset()
  }

  takeStats(): ThreadStats {
    const out = this.stats
    this.stats = emptyStats(RESPONSE_TYPES)
    return out
  }

  async stop(): Promise<ThreadStats> {
    this.running = false
    // Give replies in flight a moment, then count the rest as unanswered.
    await new Promise(resolve => setTimeout(resolve, 200))
    const stats = this.takeStats()
    stats.unanswered += this.sockets.reduce((n, s) => n + s.inFlight(), 0)
    stats.latency = this.latency.toArray()
    for (const s of this.sockets) s.socket.close()
    return stats
  }
}

// The sweep runs more often than the report: a slot must not stay lost for long.
if (parentPort) {
  const gen = new Generator((workerData as UdpWorkerData).config, (workerData as UdpWorkerData).index)
  setInterval(() => gen.sweep(), 100).unref()
  serveThread(gen)
}
