/**
 * One WebTorrent load-generator thread: its share of the connections, each a simulated browser
 * with one peer id. A connection announces with offers (SDP of `sdp_size` bytes) to a torrent
 * chosen by popularity, waits for the response, and goes on (or scrapes, by weight), so it joins
 * more and more swarms, as a browser with many torrents open does; every offer it receives is
 * answered at once.
 */
import {randomBytes} from 'node:crypto'
import {workerData} from 'node:worker_threads'
import type {LoadtestWsConfig} from '../src/config/index.js'
import {parseSocketAddress} from '../src/config/address.js'
import {jsonBinary} from '../src/protocol/ws/index.js'
import {LatencyHistogram, Rng, SwarmModel} from './model.js'
import {NativeTcp} from '../src/io/native-tcp.js'
import {LoadSocket} from './ws-socket.js'
import {countText, emptyStats, LoadtestUsageError, serveThread, type LoadGenerator, type ThreadStats} from './threads.js'

const RESPONSE_TYPES = ['announce', 'scrape', 'offer', 'answer'] as const

/** An announce unanswered this long is counted as unanswered and the loop goes on. */
const TIMEOUT_MS = 5000

interface WsWorkerData {
  index: number
  config: LoadtestWsConfig
}

/** Keys as they stand in compact JSON (every tracker tested writes no space after the colon). */
const KEY = {
  failure: Buffer.from('"failure reason":'),
  offer: Buffer.from('"offer":'),
  offerId: Buffer.from('"offer_id":'),
  answer: Buffer.from('"answer":'),
  infoHash: Buffer.from('"info_hash":'),
  peerId: Buffer.from('"peer_id":'),
  scrape: Buffer.from('"action":"scrape"'),
  interval: Buffer.from('"interval":'),
  complete: Buffer.from('"complete":'),
  incomplete: Buffer.from('"incomplete":'),
}

const ANSWER = {
  head: Buffer.from('{"action":"announce","info_hash":'),
  peerId: Buffer.from(',"peer_id":'),
  toPeerId: Buffer.from(',"to_peer_id":'),
  offerId: Buffer.from(',"offer_id":'),
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * The string literal (quotes and escapes kept) of member `key` (`"name":`), or null. A key cannot
 * be matched inside a string value: there every quote is escaped.
 */
export function member(data: Buffer, key: Buffer): Buffer | null {
  const at = data.indexOf(key)
  if (at < 0 || data[at + key.length] !== QUOTE) return null
  const start = at + key.length
  for (let i = start + 1; i < data.length; i++) {
    const c = data[i]
    if (c === BACKSLASH) i++
    else if (c === QUOTE) return data.subarray(start, i + 1)
  }
  return null
}

/** The non-negative integer value of member `key`, or 0. */
export function numberMember(data: Buffer, key: Buffer): number {
  const at = data.indexOf(key)
  if (at < 0) return 0
  let n = 0
  for (let i = at + key.length; i < data.length && data[i] >= 0x30 && data[i] <= 0x39; i++) n = n * 10 + data[i] - 0x30
  return n
}

class Peer {
  ws!: LoadSocket
  sentAt = 0
  waiting = false
  /** The torrent of the announce waiting for its response. */
  pendingInfoHash = ''
  /** The peer id as a JSON string literal, as text and as UTF-8 (messages are built from pre-serialised parts). */
  readonly peerIdJson: string
  readonly peerIdJsonBytes: Buffer

  constructor(
    readonly peerId: string,
    readonly seeder: boolean,
  ) {
    this.peerIdJson = jsonBinary(peerId)
    this.peerIdJsonBytes = Buffer.from(this.peerIdJson)
  }
}

class WsGenerator implements LoadGenerator {
  private readonly model: SwarmModel
  private readonly rng: Rng
  private readonly url: string
  private readonly address: {host: string; port: number}
  /** Batched I/O for plain ws:// connections (as the server does), when the addon is built. */
  private readonly batched: NativeTcp | null
  private readonly peers: Peer[] = []
  private readonly infoHashes: string[]
  /** The same as JSON string literals (made once, not per announce). */
  private readonly infoHashesJson: string[]
  private readonly latency = new LatencyHistogram()
  private readonly scrapeShare: number
  /** The offer and answer SDP objects, serialised once. */
  private readonly offerJson: string
  /** The end of every answer message: the answer SDP object. */
  private readonly answerTail: Buffer
  private readonly offerIdBytes = Buffer.alloc(20)
  private stats: ThreadStats = emptyStats(RESPONSE_TYPES)
  private running = false
  /** Finds announces unanswered for TIMEOUT_MS (one timer for all connections). */
  private sweeper?: NodeJS.Timeout

  constructor(
    private readonly cfg: LoadtestWsConfig,
    index: number,
  ) {
    const r = cfg.requests
    // Every thread builds the same torrents and popularity (the peers are the connections).
    this.model = new SwarmModel({numberOfTorrents: r.number_of_torrents, numberOfPeers: cfg.network.connections, peerSeederProbability: 0})
    this.rng = new Rng(0x165667b1 ^ (index + 1))
    if (r.weight_announce + r.weight_scrape === 0) throw new Error('weight_announce and weight_scrape are both 0: nothing to send')
    this.scrapeShare = r.weight_scrape / (r.weight_announce + r.weight_scrape)
    const address = parseSocketAddress(cfg.server_address)!
    this.address = {host: address.host, port: address.port}
    this.batched = cfg.network.tls ? null : NativeTcp.open()
    const host = address.family === 6 ? `[${address.host}]` : address.host
    this.url = `${cfg.network.tls ? 'wss' : 'ws'}://${host}:${address.port}`
    // SDP-like text of the configured size (lines of printable ASCII, as real SDP is).
    const line = 'a=candidate:1 1 UDP 2122252543 192.0.2.1 54321 typ host\r\n'
    const sdp = ('v=0\r\n' + line.repeat(Math.ceil(r.sdp_size / line.length))).slice(0, r.sdp_size)
    this.offerJson = JSON.stringify({type: 'offer', sdp})
    this.answerTail = Buffer.from(`,"answer":${JSON.stringify({type: 'answer', sdp})}}`)
    const share = Math.floor(cfg.network.connections / cfg.workers) + (index < cfg.network.connections % cfg.workers ? 1 : 0)
    this.infoHashes = Array.from({length: r.number_of_torrents}, (_, i) => Buffer.from(this.model.infoHash(i)).toString('latin1'))
    this.infoHashesJson = this.infoHashes.map(jsonBinary)
    for (let i = 0; i < Math.max(1, share); i++) this.peers.push(new Peer(randomBytes(20).toString('latin1'), this.rng.next() < r.peer_seeder_probability))
  }

  async start(): Promise<void> {
    await Promise.all(
      this.peers.map(async p => {
        try {
          p.ws = await LoadSocket.connect({
            ...this.address,
            tls: this.cfg.network.tls,
            batched: this.batched,
            onMessage: data => this.onMessage(p, data),
            onClose: () => {
              if (this.running) countText(this.stats.networkErrors, 'connection closed by the tracker')
            },
          })
        } catch (error) {
          throw new LoadtestUsageError(`could not connect to ${this.url}: ${(error as Error).message}. Is a WebTorrent tracker listening there?`)
        }
      }),
    )
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
    if (!this.running || !p.ws.open) return
    p.waiting = true
    p.sentAt = performance.now()
    this.stats.sent++
    const torrent = this.model.popularity.sample(this.rng)
    const infoHash = this.infoHashes[torrent]
    p.pendingInfoHash = infoHash
    if (this.rng.next() < this.scrapeShare) {
      p.ws.send(JSON.stringify({action: 'scrape', info_hash: [infoHash]}))
      return
    }
    const offers: string[] = []
    for (let i = 0; i < this.cfg.requests.offers_per_announce; i++) offers.push(`{"offer_id":${this.offerId()},"offer":${this.offerJson}}`)
    p.ws.send(
      `{"action":"announce","info_hash":${this.infoHashesJson[torrent]},"peer_id":${p.peerIdJson},"left":${p.seeder ? 0 : 1_000_000},` +
        `"numwant":${this.cfg.requests.announce_peers_wanted},"uploaded":0,"downloaded":0,"offers":[${offers.join(',')}]}`,
    )
  }

  private done(p: Peer): void {
    if (!p.waiting) return
    p.waiting = false
    this.latency.record((performance.now() - p.sentAt) * 1000)
    this.next(p)
  }

  /**
   * Reads only what the loop needs, found by its key (see `member`): a full JSON.parse of every
   * relayed offer cost the generator more CPU per cycle than the tracker it measured.
   */
  private onMessage(p: Peer, data: Buffer): void {
    // Most common first: offers and answers are four fifths of the messages. A failure message
    // carries neither an offer nor an answer (it may carry an interval).
    if (data.indexOf(KEY.offer) >= 0) {
      this.stats.responses.offer++
      const offerId = member(data, KEY.offerId)
      const infoHash = member(data, KEY.infoHash)
      const from = member(data, KEY.peerId)
      // Answer as a browser would: an announce carrying the answer, its ids copied as they came.
      if (offerId !== null && infoHash !== null && from !== null && this.running && p.ws.open) {
        p.ws.send(Buffer.concat([ANSWER.head, infoHash, ANSWER.peerId, p.peerIdJsonBytes, ANSWER.toPeerId, from, ANSWER.offerId, offerId, this.answerTail]))
      }
    } else if (data.indexOf(KEY.answer) >= 0) {
      this.stats.responses.answer++
    } else if (data.indexOf(KEY.failure) >= 0) {
      this.onFailure(p, data)
    } else if (data.indexOf(KEY.interval) >= 0) {
      // Some trackers answer answer-announces too: only the awaited torrent's response ends a cycle.
      const infoHash = member(data, KEY.infoHash)
      if (!p.waiting || infoHash === null || JSON.parse(infoHash.toString()) !== p.pendingInfoHash) return
      this.stats.responses.announce++
      this.stats.peers += numberMember(data, KEY.complete) + numberMember(data, KEY.incomplete)
      this.done(p)
    } else if (data.indexOf(KEY.scrape) >= 0) {
      this.stats.responses.scrape++
      this.done(p)
    } else this.onUnknown(data)
  }

  /** A message none of the above: counted as malformed, by whether it is JSON at all. */
  private onUnknown(data: Buffer): void {
    let json = true
    try {
      JSON.parse(data.toString())
    } catch {
      json = false
    }
    countText(this.stats.malformed, json ? 'a message that is neither an announce nor a scrape reply, an offer or an answer' : 'a message that is not JSON')
  }

  private onFailure(p: Peer, data: Buffer): void {
    let m: Record<string, unknown>
    try {
      m = JSON.parse(data.toString()) as Record<string, unknown>
    } catch {
      countText(this.stats.malformed, 'a message that is not JSON')
      return
    }
    countText(this.stats.errors, String(m['failure reason']))
    this.done(p)
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
    clearInterval(this.sweeper)
    await new Promise(resolve => setTimeout(resolve, 300))
    const stats = this.takeStats()
    for (const p of this.peers) {
      if (p.waiting) stats.unanswered++
      p.ws?.terminate()
    }
    // Terminated links let go after this tick; then the addon can.
    if (this.batched) process.nextTick(() => this.batched!.close())
    stats.latency = this.latency.toArray()
    return stats
  }
}

const data = workerData as WsWorkerData | undefined
if (data) serveThread(new WsGenerator(data.config, data.index))
