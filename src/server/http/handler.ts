/**
 * What an HTTP request means: routing, announce mapping (query and client address to the swarm),
 * scrapes, full scrapes and failure bodies, written as reply bytes for the transport. Announces
 * for torrents another worker owns go to forwarding.ts.
 */
import type {HttpConfig} from '../../config/index.js'
import type {TrafficStats} from '../../metrics/index.js'
import {parseIpInto} from '../../net/ip.js'
import {MESSAGE} from '../../protocol/messages.js'
import {AnnounceQuery, parseAnnounceQuery, parseScrapeQuery, type RequestHead} from '../../protocol/http/index.js'
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
import {AnnounceRequest, AnnounceResult, AnnounceStatus, type SwarmBackend} from '../../swarm/index.js'
import type {FullScrape} from '../full-scrape.js'
import type {WorkerContext} from '../runtime/worker-api.js'
import type {ScrapeRouter} from '../scrape-router.js'
import type {SwarmShard} from '../shard.js'
import {HttpForwarding} from './forwarding.js'
import {REFUSED, REQ, RES} from './stats.js'
import type {HttpConnection} from './connection.js'
import {HttpTransport, type HttpRequestHandler} from './transport.js'

const ANNOUNCE_PATH = Buffer.from('/announce')
const SCRAPE_PATH = Buffer.from('/scrape')
const GET = Buffer.from('GET')

const FAILURE_NOT_FOUND = failureBody('Not found: this tracker answers /announce and /scrape')
const FAILURE_METHOD = failureBody('Only GET requests are answered')
const FAILURE_TORRENT_LIMIT = failureBody(MESSAGE.torrentLimit)

export class HttpHandler implements HttpRequestHandler {
  readonly swarm: SwarmBackend
  readonly transport: HttpTransport
  /** Announces for other workers' torrents; null with one worker. */
  readonly forwarding: HttpForwarding | null
  private readonly cfg: HttpConfig
  private readonly ipHeader: Uint8Array | null
  private readonly query = new AnnounceQuery()
  private readonly announceReq = new AnnounceRequest()
  private readonly announceRes = new AnnounceResult()
  private readonly peerBuf: Uint8Array
  private readonly peerIdBuf: Uint8Array
  /** Response bodies are built here, then copied out with their head. */
  readonly body: Buffer
  private readonly scrapeHashes: Buffer
  private readonly proxyIp = new Uint8Array(16)

  constructor(
    private readonly ctx: WorkerContext<HttpConfig>,
    private readonly stats: TrafficStats,
    private readonly shard: SwarmShard,
    private readonly scrapes: ScrapeRouter,
    private readonly fullScrape: FullScrape | null,
  ) {
    const cfg = (this.cfg = ctx.config)
    this.swarm = shard.swarm
    this.ipHeader = cfg.network.runs_behind_reverse_proxy ? Buffer.from(cfg.network.reverse_proxy_ip_header_name.toLowerCase(), 'latin1') : null
    this.transport = new HttpTransport(cfg, stats, shard, this, this.ipHeader, ctx.log, ctx.tls, RES.bad_request)
    const maxPeers = cfg.protocol.max_response_peers
    this.peerBuf = new Uint8Array(Math.max(1, maxPeers) * 18)
    this.peerIdBuf = new Uint8Array(Math.max(1, maxPeers) * 20)
    this.body = Buffer.allocUnsafe(Math.max(announceBodyMax(maxPeers), 16 + cfg.protocol.max_scrape_torrents * SCRAPE_ENTRY_MAX))
    this.scrapeHashes = Buffer.allocUnsafe(cfg.protocol.max_scrape_torrents * 20)
    this.forwarding = ctx.mesh ? new HttpForwarding(ctx.mesh, stats, shard, this) : null
  }

  /** One parsed request in `buf`. */
  request(conn: HttpConnection, buf: Buffer, h: RequestHead): void {
    const keepAlive = this.cfg.network.keep_alive && h.keepAlive()
    const http11 = h.http11
    if (h.chunked || h.contentLength > 0) {
      this.stats.requests[conn.v][REQ.other]++
      this.transport.refuse(conn, 400, 'Request bodies are not accepted')
      return
    }
    const isGet = h.methodEnd - h.methodStart === 3 && buf.compare(GET, 0, 3, h.methodStart, h.methodEnd) === 0
    const pathLength = h.pathEnd - h.pathStart
    const isAnnounce = pathLength === 9 && buf.compare(ANNOUNCE_PATH, 0, 9, h.pathStart, h.pathEnd) === 0
    const isScrape = !isAnnounce && pathLength === 7 && buf.compare(SCRAPE_PATH, 0, 7, h.pathStart, h.pathEnd) === 0
    if (!isAnnounce && !isScrape) {
      this.stats.requests[conn.v][REQ.other]++
      this.transport.respond(conn, 404, FAILURE_NOT_FOUND, FAILURE_NOT_FOUND.length, keepAlive, http11, RES.not_found)
      return
    }
    if (!isGet) {
      this.stats.requests[conn.v][REQ.other]++
      this.transport.respond(conn, 405, FAILURE_METHOD, FAILURE_METHOD.length, keepAlive, http11, RES.bad_request)
      return
    }
    const qs = Math.max(h.queryStart, 0)
    const qe = h.queryStart < 0 ? 0 : h.queryEnd
    if (isScrape) {
      this.scrape(conn, buf, qs, qe, keepAlive, http11)
      return
    }
    this.stats.requests[conn.v][REQ.announce]++
    // The peer's address: the TCP peer, or the reverse proxy's header.
    let ip = conn.ip
    let ipFamily = conn.ipFamily
    if (this.ipHeader) {
      ipFamily = h.ipHeaderStart < 0 ? 0 : this.proxyClientIp(buf, h.ipHeaderStart, h.ipHeaderEnd)
      ip = this.proxyIp
      if (ipFamily === 0) {
        this.stats.refusals[REFUSED.reverse_proxy_header]++
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
      this.stats.refusals[REFUSED.invalid_query]++
      this.fail(conn, error, keepAlive, http11)
      return
    }
    if (!this.ctx.accessList.allows(q.infoHash, 0)) {
      this.stats.refusals[REFUSED.access_list]++
      this.fail(conn, MESSAGE.infoHashNotAllowed, keepAlive, http11)
      return
    }
    const owner = this.ctx.ownerOf(q.infoHash, 0)
    if (owner !== this.ctx.index) {
      this.forwarding!.forward(owner, conn, q, ipFamily, ip, keepAlive, http11)
      return
    }
    const length = this.announce(q, ipFamily, ip)
    this.transport.respond(conn, 200, this.body, length, keepAlive, http11, RES.announce)
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

  /** Runs an announce on this worker's shard; the body is written to `this.body`, its length returned. */
  announce(q: AnnounceQuery, ipFamily: 4 | 6, ip: Uint8Array): number {
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
      this.stats.requests[conn.v][REQ.scrape]++
      this.stats.refusals[REFUSED.invalid_query]++
      this.fail(conn, parsed, keepAlive, http11)
      return
    }
    if (parsed === 0) {
      this.stats.requests[conn.v][REQ.full_scrape]++
      if (!this.fullScrape) {
        this.stats.refusals[REFUSED.full_scrape]++
        this.fail(conn, MESSAGE.fullScrape, keepAlive, http11)
        return
      }
      this.transport.respondImmutable(conn, 200, this.fullScrape.reply(), keepAlive, http11, RES.full_scrape)
      return
    }
    this.stats.requests[conn.v][REQ.scrape]++
    // Bencoded dictionaries need sorted, unique keys.
    const hashes = sortUnique(this.scrapeHashes, parsed)
    const count = hashes.length / 20
    let waiting = false
    const answered = this.scrapes.scrape(hashes, 0, count, counts => {
      if (counts) {
        let at = writeScrapeStart(this.body, 0)
        for (let i = 0; i < count; i++) at = writeScrapeEntry(this.body, at, hashes, 20 * i, counts[3 * i], counts[3 * i + 1], counts[3 * i + 2])
        at = writeScrapeEnd(this.body, at)
        this.transport.respond(conn, 200, this.body, at, keepAlive, http11, RES.scrape)
      } else this.fail(conn, MESSAGE.busy, keepAlive, http11)
      if (waiting) this.transport.release(conn)
    })
    // Not answered at once: other workers are counting their part.
    if (!answered) {
      waiting = true
      this.transport.hold(conn)
    }
  }

  fail(conn: HttpConnection, reason: string, keepAlive: boolean, http11: boolean): void {
    const body = failureBody(reason)
    this.transport.respond(conn, 200, body, body.length, keepAlive, http11, RES.failure)
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
