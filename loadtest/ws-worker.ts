/**
 * One WebTorrent load-generator thread: its share of the connections, each a simulated browser
 * with one peer id. A connection announces with offers (SDP of `sdp_size` bytes) to a torrent
 * chosen by popularity, waits for the response, and goes on (or scrapes, by weight), so it joins
 * more and more swarms, as a browser with many torrents open does; every offer it receives is
 * answered at once.
 */
import {randomBytes} from 'node:crypto'
import {workerData} from 'node:worker_threads'
import WebSocket from 'ws'
import type {LoadtestWsConfig} from '../src/config/index.js'
import {parseSocketAddress} from '../src/config/address.js'
import {jsonBinary} from '../src/protocol/ws/message.js'
import {LatencyHistogram, Rng, SwarmModel} from './model.js'
import {emptyStats, serveThread, type LoadGenerator, type ThreadStats} from './threads.js'

const RESPONSE_TYPES = ['announce', 'scrape', 'offer', 'answer'] as const

/** An announce unanswered this long is counted as unanswered and the loop goes on. */
const TIMEOUT_MS = 5000

interface WsWorkerData {
  index: number
  config: LoadtestWsConfig
}

class Peer {
  ws!: WebSocket
  sentAt = 0
  waiting = false
  /** The torrent of the announce waiting for its response. */
  pendingInfoHash = ''
  /** The peer id as a JSON string literal (messages are built from pre-serialised parts). */
  readonly peerIdJson: string

  constructor(readonly peerId: string, readonly seeder: boolean) {
    this.peerIdJson = jsonBinary(peerId)
  }
}

class WsGenerator implements LoadGenerator {
  private readonly model: SwarmModel
  private readonly rng: Rng
  private readonly url: string
  private readonly peers: Peer[] = []
  private readonly infoHashes: string[]
  private readonly latency = new LatencyHistogram()
  private readonly scrapeShare: number
  /** The offer and answer SDP objects, serialised once. */
  private readonly offerJson: string
  private readonly answerJson: string
  private readonly offerIdBytes = Buffer.alloc(20)
  private stats: ThreadStats = emptyStats(RESPONSE_TYPES)
  private running = false
  /** Finds announces unanswered for TIMEOUT_MS (one timer for all connections). */
  private sweeper?: NodeJS.Timeout

  constructor(private readonly cfg: LoadtestWsConfig, index: number) {
    const r = cfg.requests
    // Every thread builds the same torrents and popularity (the peers are the connections).
    this.model = new SwarmModel({numberOfTorrents: r.number_of_torrents, numberOfPeers: cfg.network.connections, peerSeederProbability: 0})
    this.rng = new Rng(0x165667b1 ^ (index + 1))
    if (r.weight_announce + r.weight_scrape === 0) throw new Error('weight_announce and weight_scrape are both 0: nothing to send')
    this.scrapeShare = r.weight_scrape / (r.weight_announce + r.weight_scrape)
    const address = parseSocketAddress(cfg.server_address)!
    const host = address.family === 6 ? `[${address.host}]` : address.host
    this.url = `${cfg.network.tls ? 'wss' : 'ws'}://${host}:${address.port}`
    // SDP-like text of the configured size (lines of printable ASCII, as real SDP is).
    const line = 'a=candidate:1 1 UDP 2122252543 192.0.2.1 54321 typ host\r\n'
    const sdp = ('v=0\r\n' + line.repeat(Math.ceil(r.sdp_size / line.length))).slice(0, r.sdp_size)
    this.offerJson = JSON.stringify({type: 'offer', sdp})
    this.answerJson = JSON.stringify({type: 'answer', sdp})
    const share = Math.floor(cfg.network.connections / cfg.workers) + (index < cfg.network.connections % cfg.workers ? 1 : 0)
    this.infoHashes = Array.from({length: r.number_of_torrents}, (_, i) => Buffer.from(this.model.infoHash(i)).toString('latin1'))
    for (let i = 0; i < Math.max(1, share); i++) this.peers.push(new Peer(randomBytes(20).toString('latin1'), this.rng.next() < r.peer_seeder_probability))
  }

  async start(): Promise<void> {
    await Promise.all(this.peers.map(p => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(this.url, {perMessageDeflate: false, rejectUnauthorized: false})
      p.ws = ws
      ws.once('open', () => resolve())
      ws.once('error', error => reject(new Error(`could not connect to ${this.url}: ${error.message}`)))
      ws.on('message', data => this.onMessage(p, data as Buffer))
      ws.on('close', () => {
        if (this.running) this.stats.errors['connection closed by the tracker'] = (this.stats.errors['connection closed by the tracker'] ?? 0) + 1
      })
    })))
  }

  run(): void {
    this.running = true
    this.sweeper = setInterval(() => {
      const before = performance.now() - TIMEOUT_MS
      for (const p of this.peers) {
        if (p.waiting && p.sentAt < before) {
          this.stats.unanswered++
          p.waiting = false
          this.next(p)
        }
      }
    }, 250)
    for (const p of this.peers) this.next(p)
  }

  /** A fresh random offer id (from the thread's generator: cheaper than crypto, as random for this). */
  private offerId(): string {
    this.rng.fill(this.offerIdBytes)
    return jsonBinary(this.offerIdBytes.toString('latin1'))
  }

  private next(p: Peer): void {
    if (!this.running || p.ws.readyState !== WebSocket.OPEN) return
    p.waiting = true
    p.sentAt = performance.now()
    this.stats.sent++
    const infoHash = this.infoHashes[this.model.popularity.sample(this.rng)]
    p.pendingInfoHash = infoHash
    if (this.rng.next() < this.scrapeShare) {
      p.ws.send(JSON.stringify({action: 'scrape', info_hash: [infoHash]}))
      return
    }
    const offers: string[] = []
    for (let i = 0; i < this.cfg.requests.offers_per_announce; i++) offers.push(`{"offer_id":${this.offerId()},"offer":${this.offerJson}}`)
    p.ws.send(`{"action":"announce","info_hash":${jsonBinary(infoHash)},"peer_id":${p.peerIdJson},"left":${p.seeder ? 0 : 1_000_000},` +
      `"numwant":${this.cfg.requests.announce_peers_wanted},"uploaded":0,"downloaded":0,"offers":[${offers.join(',')}]}`)
  }

  private done(p: Peer): void {
    if (!p.waiting) return
    p.waiting = false
    this.latency.record((performance.now() - p.sentAt) * 1000)
    this.next(p)
  }

  private onMessage(p: Peer, data: Buffer): void {
    let m: Record<string, unknown>
    try {
      m = JSON.parse(data.toString()) as Record<string, unknown>
    } catch {
      this.stats.errors['a message that is not JSON'] = (this.stats.errors['a message that is not JSON'] ?? 0) + 1
      return
    }
    const failure = m['failure reason']
    if (typeof failure === 'string') {
      this.stats.errors[failure] = (this.stats.errors[failure] ?? 0) + 1
      this.done(p)
      return
    }
    if (m.action === 'scrape') {
      this.stats.responses.scrape++
      this.done(p)
    } else if (m.offer !== undefined) {
      this.stats.responses.offer++
      // Answer as a browser would: an announce carrying the answer.
      if (this.running && p.ws.readyState === WebSocket.OPEN) {
        p.ws.send(`{"action":"announce","info_hash":${JSON.stringify(m.info_hash)},"peer_id":${p.peerIdJson},` +
          `"to_peer_id":${JSON.stringify(m.peer_id)},"offer_id":${JSON.stringify(m.offer_id)},"answer":${this.answerJson}}`)
      }
    } else if (m.answer !== undefined) {
      this.stats.responses.answer++
    } else if (m.action === 'announce' && 'interval' in m) {
      // Some trackers answer answer-announces too: only the awaited torrent's response ends a cycle.
      if (!p.waiting || m.info_hash !== p.pendingInfoHash) return
      this.stats.responses.announce++
      this.stats.peers += (m.complete as number) + (m.incomplete as number)
      this.done(p)
    }
  }

  takeStats(): ThreadStats {
    const out = this.stats
    this.stats = emptyStats(RESPONSE_TYPES)
    return out
  }

  async stop(): Promise<ThreadStats> {
    this.running = false
    clearInterval(this.sweeper)
    await new Promise(resolve => setTimeout(resolve, 300))
    const stats = this.takeStats()
    for (const p of this.peers) {
      if (p.waiting) stats.unanswered++
      p.ws.terminate()
    }
    stats.latency = this.latency.toArray()
    return stats
  }
}

const data = workerData as WsWorkerData | undefined
if (data) serveThread(new WsGenerator(data.config, data.index))
