import type {HttpConfig} from '../../config/index.js'
import {TrafficStats, registerWorkerMetrics} from '../../metrics/index.js'
import {parseIpInto} from '../../net/ip.js'
import {MESSAGE} from '../../protocol/messages.js'
import {AnnounceQuery, parseAnnounceQuery, parseScrapeQuery, type RequestHead} from '../../protocol/http/request.js'
import {
  announceBodyMax,
  failureBody,
  SCRAPE_ENTRY_MAX,
  writeCompactAnnounce,
  writeDictAnnounce,
  writeScrapeEnd,
  writeScrapeEntry,
  writeScrapeStart,
} from '../../protocol/http/response.js'
import {AnnounceRequest, AnnounceResult, AnnounceStatus, type Swarm} from '../../swarm/index.js'
import type {ProtocolWorker, WorkerContext} from '../runtime/worker-api.js'
import {listenerAt, type Listener} from '../runtime/listener.js'
import {SwarmShard} from '../shard.js'
import {ScrapeRouter} from '../scrape-router.js'
import {
  FRAME,
  HTTP_ANNOUNCE_BYTES,
  HTTP_ANNOUNCE_REPLY_HEAD,
  HttpAnnounceFrame,
  HttpAnnounceReplyFrame,
  scrapeRequestBytes,
  writeHttpAnnounce,
  writeHttpAnnounceReply,
} from '../frames.js'
import {FullScrape} from '../full-scrape.js'
import {BencodeFullScrape} from './full-scrape.js'
import type {TlsMaterial} from '../tls.js'
import {CONNECTION_DROP_REASONS, HttpTransport, type HttpConnection, type HttpHandler} from './transport.js'

const REQUEST_TYPES = ['announce', 'scrape', 'full_scrape', 'other'] as const
const RESPONSE_TYPES = ['announce', 'scrape', 'full_scrape', 'failure', 'not_found', 'bad_request'] as const
const REQ_ANNOUNCE = 0
const REQ_SCRAPE = 1
const REQ_FULL_SCRAPE = 2
const REQ_OTHER = 3
const RES_ANNOUNCE = 0
const RES_SCRAPE = 1
const RES_FULL_SCRAPE = 2
const RES_FAILURE = 3
const RES_NOT_FOUND = 4
const RES_BAD_REQUEST = 5
/** Connections the transport closed, then requests given up here. */
const DROP_REASONS = [...CONNECTION_DROP_REASONS, 'forward_timeout'] as const
const DROP_FORWARD_TIMEOUT = CONNECTION_DROP_REASONS.length
const REFUSAL_REASONS = ['access_list', 'invalid_query', 'full_scrape', 'reverse_proxy_header'] as const
const REFUSED_ACCESS = 0
const REFUSED_QUERY = 1
const REFUSED_FULL_SCRAPE = 2
const REFUSED_PROXY_HEADER = 3

/** An announce handed to another worker is answered with a failure reason if its reply takes longer. */
const FORWARD_TIMEOUT_MS = 5000

const ANNOUNCE_PATH = Buffer.from('/announce')
const SCRAPE_PATH = Buffer.from('/scrape')
const GET = Buffer.from('GET')

const FAILURE_NOT_FOUND = failureBody('Not found: this tracker answers /announce and /scrape')
const FAILURE_METHOD = failureBody('Only GET requests are answered')
const FAILURE_TORRENT_LIMIT = failureBody(MESSAGE.torrentLimit)

interface Forwarded {
  conn: HttpConnection
  keepAlive: boolean
  http11: boolean
  /** When it was sent (ms): a reply that has not come by FORWARD_TIMEOUT_MS is given up. */
  sentAt: number
}

export function createWorker(ctx: WorkerContext<HttpConfig>): ProtocolWorker {
  return new HttpWorker(ctx)
}

export class HttpWorker implements ProtocolWorker, HttpHandler {
  readonly stats = new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
  readonly shard: SwarmShard
  readonly swarm: Swarm
  private readonly cfg: HttpConfig
  private readonly transport: HttpTransport
  private readonly ipHeader: Uint8Array | null
  private readonly query = new AnnounceQuery()
  private readonly announceReq = new AnnounceRequest()
  private readonly announceRes = new AnnounceResult()
  private readonly peerBuf: Uint8Array
  private readonly peerIdBuf: Uint8Array
  /** Response bodies are built here, then copied out with their head. */
  private body: Buffer
  private readonly scrapeHashes: Buffer
  private readonly proxyIp = new Uint8Array(16)
  private readonly scrapes: ScrapeRouter
  /** Announces waiting for another worker's reply, oldest first. */
  private readonly forwarded = new Map<number, Forwarded>()
  private nextForward = 1
  private clock?: NodeJS.Timeout
  private readonly fullScrape: FullScrape | null
  /** Forwarded announces are written here, their replies in `replyFrame`; the mesh copies them. */
  private readonly forwardFrame = Buffer.allocUnsafe(HTTP_ANNOUNCE_BYTES)
  private readonly replyFrame: Buffer
  private readonly announceFrame = new HttpAnnounceFrame()
  private readonly replyIn = new HttpAnnounceReplyFrame()

  constructor(private readonly ctx: WorkerContext<HttpConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.shard = new SwarmShard(ctx)
    this.swarm = this.shard.swarm
    this.ipHeader = cfg.network.runs_behind_reverse_proxy ? Buffer.from(cfg.network.reverse_proxy_ip_header_name.toLowerCase(), 'latin1') : null
    this.transport = new HttpTransport(cfg, this.stats, this.shard, this, this.ipHeader, ctx.log, ctx.tls, RES_BAD_REQUEST)
    const maxPeers = cfg.protocol.max_response_peers
    this.peerBuf = new Uint8Array(Math.max(1, maxPeers) * 18)
    this.peerIdBuf = new Uint8Array(Math.max(1, maxPeers) * 20)
    this.body = Buffer.allocUnsafe(Math.max(announceBodyMax(maxPeers), 16 + cfg.protocol.max_scrape_torrents * SCRAPE_ENTRY_MAX))
    this.scrapeHashes = Buffer.allocUnsafe(cfg.protocol.max_scrape_torrents * 20)
    this.replyFrame = Buffer.allocUnsafe(HTTP_ANNOUNCE_REPLY_HEAD + this.body.length)
    this.scrapes = new ScrapeRouter(ctx, this.swarm)
    this.fullScrape = cfg.protocol.enable_full_scrape
      ? new FullScrape(ctx, new BencodeFullScrape(this.swarm, ctx), cfg.protocol.full_scrape_interval * 1000)
      : null
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges(), () => this.transport.size)
    ctx.mesh?.onMessage((from, type, buf, offset, length) => this.onFrame(from, type, buf, offset, length))
    // The largest frames: an announce reply, a scrape part, or (when on) a full-scrape chunk.
    ctx.mesh?.limitFrames(
      Math.max(
        HTTP_ANNOUNCE_BYTES,
        HTTP_ANNOUNCE_REPLY_HEAD + announceBodyMax(maxPeers),
        scrapeRequestBytes(cfg.protocol.max_scrape_torrents),
        this.fullScrape?.maxFrame ?? 0,
      ),
    )
  }

  // -------------------------------------------------------------------------------------------
  // Sockets

  async start(): Promise<Listener[]> {
    const net4 = this.cfg.network
    this.clock = setInterval(() => {
      this.shard.tick()
      this.transport.sweep()
      this.expireForwards()
    }, 1000)
    this.clock.unref()
    this.fullScrape?.start()
    const scheme = this.ctx.tls ? 'https' : 'http'
    const listening: Listener[] = []
    if (net4.use_ipv4) {
      const port = await this.transport.listen(net4.address_ipv4, 4, this.ctx.count, this.ctx.ports)
      listening.push(listenerAt(scheme, net4.address_ipv4, port, {path: '/announce'}))
    }
    if (net4.use_ipv6) {
      const port = await this.transport.listen(net4.address_ipv6, 6, this.ctx.count, this.ctx.ports)
      listening.push(listenerAt(scheme, net4.address_ipv6, port, {path: '/announce'}))
    }
    return listening
  }

  setTls(material: TlsMaterial): void {
    this.transport.setTls(material)
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /** One parsed request in `buf`. */
  request(conn: HttpConnection, buf: Buffer, h: RequestHead): void {
    const keepAlive = this.cfg.network.keep_alive && h.keepAlive()
    const http11 = h.http11
    if (h.chunked || h.contentLength > 0) {
      this.stats.requests[conn.v][REQ_OTHER]++
      this.transport.refuse(conn, 400, 'Request bodies are not accepted')
      return
    }
    const isGet = h.methodEnd - h.methodStart === 3 && buf.compare(GET, 0, 3, h.methodStart, h.methodEnd) === 0
    const pathLength = h.pathEnd - h.pathStart
    const isAnnounce = pathLength === 9 && buf.compare(ANNOUNCE_PATH, 0, 9, h.pathStart, h.pathEnd) === 0
    const isScrape = !isAnnounce && pathLength === 7 && buf.compare(SCRAPE_PATH, 0, 7, h.pathStart, h.pathEnd) === 0
    if (!isAnnounce && !isScrape) {
      this.stats.requests[conn.v][REQ_OTHER]++
      this.transport.respond(conn, 404, FAILURE_NOT_FOUND, FAILURE_NOT_FOUND.length, keepAlive, http11, RES_NOT_FOUND)
      return
    }
    if (!isGet) {
      this.stats.requests[conn.v][REQ_OTHER]++
      this.transport.respond(conn, 405, FAILURE_METHOD, FAILURE_METHOD.length, keepAlive, http11, RES_BAD_REQUEST)
      return
    }
    const qs = Math.max(h.queryStart, 0)
    const qe = h.queryStart < 0 ? 0 : h.queryEnd
    if (isScrape) {
      this.scrape(conn, buf, qs, qe, keepAlive, http11)
      return
    }
    this.stats.requests[conn.v][REQ_ANNOUNCE]++
    // The peer's address: the TCP peer, or the reverse proxy's header.
    let ip = conn.ip
    let ipFamily = conn.ipFamily
    if (this.ipHeader) {
      ipFamily = h.ipHeaderStart < 0 ? 0 : this.proxyClientIp(buf, h.ipHeaderStart, h.ipHeaderEnd)
      ip = this.proxyIp
      if (ipFamily === 0) {
        this.stats.refusals[REFUSED_PROXY_HEADER]++
        this.fail(
          conn,
          `Missing or invalid ${this.cfg.network.reverse_proxy_ip_header_name} header: the reverse proxy must set it to the client's IP`,
          keepAlive,
          http11,
        )
        return
      }
    }
    if (ipFamily === 0) {
      this.fail(conn, 'Unknown client address', keepAlive, http11)
      return
    }
    const q = this.query
    const error = parseAnnounceQuery(buf, qs, qe, q)
    if (error !== null) {
      this.stats.refusals[REFUSED_QUERY]++
      this.fail(conn, error, keepAlive, http11)
      return
    }
    if (!this.ctx.accessList.allows(q.infoHash, 0)) {
      this.stats.refusals[REFUSED_ACCESS]++
      this.fail(conn, MESSAGE.infoHashNotAllowed, keepAlive, http11)
      return
    }
    const owner = this.ctx.ownerOf(q.infoHash, 0)
    if (owner !== this.ctx.index) {
      this.forwardAnnounce(owner, conn, q, ipFamily, ip, keepAlive, http11)
      return
    }
    const length = this.announce(q, ipFamily, ip)
    this.transport.respond(conn, 200, this.body, length, keepAlive, http11, RES_ANNOUNCE)
  }

  /** The last address in the proxy header, into `proxyIp`; 0 if it is not an address. */
  private proxyClientIp(buf: Buffer, start: number, end: number): 0 | 4 | 6 {
    let s = start
    for (let i = end - 1; i >= start; i--) {
      if (buf[i] === 44) {
        s = i + 1
        break
      }
    }
    let text = buf.toString('latin1', s, end).trim()
    // "[::1]" and "1.2.3.4:5678" forms appear in some proxies' headers.
    const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(text)
    if (bracket) text = bracket[1]
    else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'))
    return parseIpInto(text, this.proxyIp)
  }

  /** Runs an announce on this worker's shard; the body is written to `this.body`. */
  private announce(q: AnnounceQuery, ipFamily: 4 | 6, ip: Uint8Array): number {
    const a = this.announceReq
    a.infoHash = q.infoHash
    a.infoHashOffset = 0
    a.peerId = q.peerId
    a.peerIdOffset = 0
    a.ipFamily = ipFamily
    a.ip = ipFamily === 4 ? ip.subarray(0, 4) : ip
    a.port = q.port
    a.event = q.event
    a.isSeeder = q.leftIsZero
    const max = this.cfg.protocol.max_response_peers
    a.numWant = q.numWant < 0 ? max : Math.min(q.numWant, max)
    const res = this.announceRes
    res.peerBuf = this.peerBuf
    res.peerBufOffset = 0
    const withIds = !q.compact && !q.noPeerId
    res.peerIdBuf = withIds ? this.peerIdBuf : null
    res.peerIdBufOffset = 0
    if (this.swarm.announce(a, this.shard.now, res) === AnnounceStatus.TorrentLimit) {
      FAILURE_TORRENT_LIMIT.copy(this.body)
      return FAILURE_TORRENT_LIMIT.length
    }
    const {peer_announce_interval: interval, peer_announce_min_interval: minInterval} = this.cfg.protocol
    return q.compact
      ? writeCompactAnnounce(this.body, 0, res, interval, minInterval, ipFamily, this.peerBuf, res.peerCount)
      : writeDictAnnounce(this.body, 0, res, interval, minInterval, ipFamily, this.peerBuf, res.peerCount, withIds ? this.peerIdBuf : null)
  }

  private scrape(conn: HttpConnection, buf: Buffer, qs: number, qe: number, keepAlive: boolean, http11: boolean): void {
    const parsed = parseScrapeQuery(buf, qs, qe, this.cfg.protocol.max_scrape_torrents, this.scrapeHashes)
    if (typeof parsed === 'string') {
      this.stats.requests[conn.v][REQ_SCRAPE]++
      this.stats.refusals[REFUSED_QUERY]++
      this.fail(conn, parsed, keepAlive, http11)
      return
    }
    if (parsed === 0) {
      this.stats.requests[conn.v][REQ_FULL_SCRAPE]++
      if (!this.fullScrape) {
        this.stats.refusals[REFUSED_FULL_SCRAPE]++
        this.fail(conn, MESSAGE.fullScrape, keepAlive, http11)
        return
      }
      this.transport.respondImmutable(conn, 200, this.fullScrape.reply(), keepAlive, http11, RES_FULL_SCRAPE)
      return
    }
    this.stats.requests[conn.v][REQ_SCRAPE]++
    // Bencoded dictionaries need sorted, unique keys.
    const hashes = sortUnique(this.scrapeHashes, parsed)
    const count = hashes.length / 20
    let waiting = false
    const answered = this.scrapes.scrape(hashes, 0, count, counts => {
      if (counts) {
        let at = writeScrapeStart(this.body, 0)
        for (let i = 0; i < count; i++) at = writeScrapeEntry(this.body, at, hashes, 20 * i, counts[3 * i], counts[3 * i + 1], counts[3 * i + 2])
        at = writeScrapeEnd(this.body, at)
        this.transport.respond(conn, 200, this.body, at, keepAlive, http11, RES_SCRAPE)
      } else this.fail(conn, MESSAGE.busy, keepAlive, http11)
      if (waiting) this.transport.release(conn)
    })
    // Not answered at once: other workers are counting their part.
    if (!answered) {
      waiting = true
      this.transport.hold(conn)
    }
  }

  private fail(conn: HttpConnection, reason: string, keepAlive: boolean, http11: boolean): void {
    const body = failureBody(reason)
    this.transport.respond(conn, 200, body, body.length, keepAlive, http11, RES_FAILURE)
  }

  // -------------------------------------------------------------------------------------------
  // Other shards

  private forwardAnnounce(owner: number, conn: HttpConnection, q: AnnounceQuery, ipFamily: 4 | 6, ip: Uint8Array, keepAlive: boolean, http11: boolean): void {
    const id = this.nextForward
    this.nextForward = (id + 1) >>> 0
    const length = writeHttpAnnounce(this.forwardFrame, 0, id, q, ipFamily, ip)
    // A link too full to take it: the client hears so at once (the mesh counts the drop).
    if (!this.ctx.mesh!.send(owner, FRAME.httpAnnounce, this.forwardFrame, 0, length)) {
      this.fail(conn, MESSAGE.busy, keepAlive, http11)
      return
    }
    this.forwarded.set(id, {conn, keepAlive, http11, sentAt: this.shard.nowMs})
    this.transport.hold(conn)
  }

  /** Forwarded announces whose reply has not come in time get a failure reason, and their connection goes on. */
  private expireForwards(): void {
    const before = this.shard.nowMs - FORWARD_TIMEOUT_MS
    for (const [id, f] of this.forwarded) {
      if (f.sentAt > before) break
      this.forwarded.delete(id)
      this.stats.drops[DROP_FORWARD_TIMEOUT]++
      this.fail(f.conn, MESSAGE.busy, f.keepAlive, f.http11)
      this.transport.release(f.conn)
    }
  }

  private onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): void {
    if (this.scrapes.onFrame(from, type, buf, offset, length)) return
    if (type === FRAME.httpAnnounce) {
      const q = this.query
      const f = this.announceFrame
      if (!f.decode(buf, offset, length, q)) return
      const bodyLength = this.announce(q, f.ipFamily, f.ip)
      const replyLength = writeHttpAnnounceReply(this.replyFrame, 0, f.id, this.body, bodyLength)
      this.ctx.mesh!.answer(from, FRAME.httpAnnounceReply, this.replyFrame, 0, replyLength)
    } else if (type === FRAME.httpAnnounceReply) {
      const r = this.replyIn
      if (!r.decode(buf, offset, length)) return
      const f = this.forwarded.get(r.id)
      if (!f) return
      this.forwarded.delete(r.id)
      // Copied out of the mesh's buffer by respond.
      this.transport.respond(f.conn, 200, buf.subarray(r.bodyStart), r.bodyLength, f.keepAlive, f.http11, RES_ANNOUNCE)
      this.transport.release(f.conn)
    } else this.fullScrape?.onFrame(from, type, buf, offset, length)
  }

  // -------------------------------------------------------------------------------------------

  clean(): void {
    this.shard.clean()
  }

  async close(): Promise<void> {
    if (this.clock) clearInterval(this.clock)
    this.fullScrape?.close()
    await this.transport.close()
  }
}

/** The distinct 20-byte hashes of `buf[0..20*count)`, sorted, as a new buffer. */
function sortUnique(buf: Buffer, count: number): Buffer {
  if (count === 1) return Buffer.from(buf.subarray(0, 20))
  const list: Buffer[] = []
  for (let i = 0; i < count; i++) list.push(buf.subarray(20 * i, 20 * i + 20))
  list.sort(Buffer.compare)
  const out: Buffer[] = [list[0]]
  for (let i = 1; i < list.length; i++) if (!list[i].equals(list[i - 1])) out.push(list[i])
  return Buffer.concat(out)
}
