/**
 * One HTTP load-generator thread: an undici pool of this thread's share of the connections, each
 * a closed loop (one request in flight per connection). With keep_alive = false every request
 * opens a new connection, as most real clients do.
 */
import {workerData} from 'node:worker_threads'
import bencode from 'bencode'
import {Pool} from 'undici'
import type {LoadtestHttpConfig} from '../src/config/index.js'
import {parseSocketAddress} from '../src/config/address.js'
import {percentEncode} from '../src/protocol/http/client.js'
import {LatencyHistogram, Rng, SwarmModel} from './model.js'
import {countText, emptyStats, serveThread, type LoadGenerator, type ThreadStats} from './threads.js'

const RESPONSE_TYPES = ['announce', 'scrape'] as const

/** A request that takes longer than this is counted as unanswered. */
const TIMEOUT_MS = 5000

/** What undici's and the kernel's error codes mean, as the report says it. */
const NETWORK_ERROR: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection closed by the tracker',
  UND_ERR_CLOSED: 'connection closed by the tracker',
  UND_ERR_HEADERS_TIMEOUT: `no reply within ${TIMEOUT_MS / 1000} s`,
  UND_ERR_BODY_TIMEOUT: `no reply within ${TIMEOUT_MS / 1000} s`,
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
}

interface HttpWorkerData {
  index: number
  config: LoadtestHttpConfig
}

class HttpGenerator implements LoadGenerator {
  private readonly model: SwarmModel
  private readonly rng: Rng
  private readonly pool: Pool
  private readonly loops: number
  private readonly encoded: (string | undefined)[]
  private readonly announceShare: number
  private readonly latency = new LatencyHistogram()
  private stats: ThreadStats = emptyStats(RESPONSE_TYPES)
  private running = false
  private inFlight = 0
  private finished: Promise<void>[] = []

  constructor(
    private readonly cfg: LoadtestHttpConfig,
    index: number,
  ) {
    const r = cfg.requests
    // Same seed everywhere: every thread (and `--write-info-hashes`) simulates the same torrents.
    this.model = new SwarmModel({numberOfTorrents: r.number_of_torrents, numberOfPeers: r.number_of_peers, peerSeederProbability: r.peer_seeder_probability})
    this.rng = new Rng(0x85ebca6b ^ (index + 1))
    this.encoded = new Array(r.number_of_torrents)
    if (r.weight_announce + r.weight_scrape === 0) throw new Error('weight_announce and weight_scrape are both 0: nothing to send')
    this.announceShare = r.weight_announce / (r.weight_announce + r.weight_scrape)
    // This thread's share of the connections.
    const share = Math.floor(cfg.network.connections / cfg.workers) + (index < cfg.network.connections % cfg.workers ? 1 : 0)
    this.loops = Math.max(1, share)
    const address = parseSocketAddress(cfg.server_address)!
    const host = address.family === 6 ? `[${address.host}]` : address.host
    const origin = `${cfg.network.tls ? 'https' : 'http'}://${host}:${address.port}`
    this.pool = new Pool(origin, {
      connections: this.loops,
      pipelining: 1,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
      connect: cfg.network.tls ? {rejectUnauthorized: false} : undefined,
    })
  }

  private hashParam(torrent: number): string {
    return (this.encoded[torrent] ??= percentEncode(this.model.infoHash(torrent)))
  }

  private nextPath(): {path: string; announce: boolean} {
    const m = this.model
    const r = this.cfg.requests
    if (this.rng.next() < this.announceShare) {
      const peer = this.rng.int(m.options.numberOfPeers)
      const left = m.peerSeeder[peer] === 1 ? 0 : 1_000_000
      return {
        announce: true,
        path:
          `/announce?info_hash=${this.hashParam(m.peerTorrent[peer])}&peer_id=${percentEncode(m.peerId(peer))}` +
          `&port=${m.peerPorts[peer]}&uploaded=0&downloaded=0&left=${left}&numwant=${r.announce_peers_wanted}&compact=1`,
      }
    }
    const n = 1 + this.rng.int(r.scrape_max_torrents)
    let path = '/scrape?'
    for (let i = 0; i < n; i++) path += `${i ? '&' : ''}info_hash=${this.hashParam(m.popularity.sample(this.rng))}`
    return {announce: false, path}
  }

  async start(): Promise<void> {
    // Connections open with the first requests; nothing to prepare beyond the model.
  }

  run(): void {
    this.running = true
    this.finished = Array.from({length: this.loops}, () => this.loop())
  }

  private async loop(): Promise<void> {
    const reset = !this.cfg.network.keep_alive
    while (this.running) {
      const {path, announce} = this.nextPath()
      const sent = performance.now()
      this.stats.sent++
      this.inFlight++
      try {
        const res = await this.pool.request({path, method: 'GET', reset, headers: {host: 'localhost'}})
        const body = Buffer.from(await res.body.arrayBuffer())
        this.latency.record((performance.now() - sent) * 1000)
        this.count(res.statusCode, body, announce)
      } catch (error) {
        const code = (error as {code?: string}).code
        if (code?.startsWith('HPE_') || (error as Error).name === 'HTTPParserError') {
          // Bytes came back, but not an HTTP response.
          countText(this.stats.malformed, 'a reply that is not HTTP/1.1')
          continue
        }
        // Timeouts and refused or reset connections: the request got no answer.
        this.stats.unanswered++
        countText(this.stats.networkErrors, NETWORK_ERROR[code ?? ''] ?? code ?? (error as Error).message)
        if (code === 'ECONNREFUSED' && this.running) await new Promise(resolve => setTimeout(resolve, 100))
      } finally {
        this.inFlight--
      }
    }
  }

  /**
   * Sorts a reply: a failure reason (any status) or another status than 200 is an error reply;
   * a 200 whose body is not the bencoded dictionary BEP 3 or 48 asks for is malformed.
   */
  private count(status: number, body: Buffer, announce: boolean): void {
    let decoded: unknown
    try {
      decoded = bencode.decode(body)
    } catch {
      decoded = undefined
    }
    const dict =
      typeof decoded === 'object' && decoded !== null && !Array.isArray(decoded) && !ArrayBuffer.isView(decoded) ? (decoded as Record<string, unknown>) : null
    const failure = dict?.['failure reason']
    if (failure !== undefined) {
      countText(this.stats.errors, failure instanceof Uint8Array ? Buffer.from(failure).toString() : String(failure))
      return
    }
    if (status !== 200) {
      countText(this.stats.errors, `HTTP ${status}`)
      return
    }
    if (dict === null) {
      countText(this.stats.malformed, decoded === undefined ? 'a body that is not bencode' : 'a bencoded body that is not a dictionary')
      return
    }
    if (announce) {
      const peers = dict.peers
      const peers6 = dict.peers6
      if (peers === undefined && peers6 === undefined) {
        countText(this.stats.malformed, 'an announce reply without peers')
        return
      }
      this.stats.responses.announce++
      if (peers instanceof Uint8Array) this.stats.peers += Math.floor(peers.length / 6)
      else if (Array.isArray(peers)) this.stats.peers += peers.length
      if (peers6 instanceof Uint8Array) this.stats.peers += Math.floor(peers6.length / 18)
    } else {
      const files = dict.files
      if (typeof files !== 'object' || files === null || ArrayBuffer.isView(files) || Array.isArray(files)) {
        countText(this.stats.malformed, 'a scrape reply without files')
        return
      }
      this.stats.responses.scrape++
    }
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
    // Requests in flight get a moment to finish; the rest count as unanswered.
    await Promise.race([Promise.all(this.finished), new Promise(resolve => setTimeout(resolve, 1000))])
    const stats = this.takeStats()
    stats.unanswered += this.inFlight
    stats.latency = this.latency.toArray()
    await this.pool.destroy().catch(() => undefined)
    return stats
  }
}

const data = workerData as HttpWorkerData | undefined
if (data) serveThread(new HttpGenerator(data.config, data.index))
