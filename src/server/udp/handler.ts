/**
 * What a UDP request means (BEP 15): connect, announce and scrape against the swarm, written as
 * reply datagrams into the link's buffer. Announces for torrents another worker owns go to
 * forwarding.ts; scrapes across shards to the scrape router.
 */
import type {UdpConfig} from '../../config/index.js'
import type {TrafficStats} from '../../metrics/index.js'
import {
  ACTION_ANNOUNCE,
  ACTION_CONNECT,
  ACTION_SCRAPE,
  ConnectionIdValidator,
  ERROR_BUSY,
  ERROR_INFO_HASH_NOT_ALLOWED,
  ERROR_TRACKER_FULL,
  ParseStatus,
  ParsedRequest,
  parseRequest,
  writeAnnounceHeader,
  writeConnectResponse,
  writeErrorResponse,
  writeScrapeHeader,
  writeScrapeEntry,
} from '../../protocol/udp/index.js'
import {AnnounceRequest, AnnounceResult, AnnounceStatus, ScrapeCounts, type SwarmBackend} from '../../swarm/index.js'
import type {WorkerContext} from '../runtime/worker-api.js'
import type {ScrapeRouter} from '../scrape-router.js'
import type {SwarmShard} from '../shard.js'
import {isProbe, ProbeSources, writeProbeAnswer} from './steering.js'
import {UdpForwarding} from './forwarding.js'
import type {PeerAddress, UdpLink} from '../../io/udp.js'
import {DROP, REFUSED, REQ, RES} from './stats.js'

export class UdpHandler {
  readonly swarm: SwarmBackend
  /** Announces for other workers' torrents; null with one worker. */
  readonly forwarding: UdpForwarding | null
  /** Parsed requests land here (a forwarded announce too). */
  readonly req = new ParsedRequest()
  private readonly cfg: UdpConfig
  private readonly validator: ConnectionIdValidator
  private readonly announceReq = new AnnounceRequest()
  private readonly announceRes = new AnnounceResult()
  private readonly scrapeCounts = new ScrapeCounts()
  private readonly probeSources: ProbeSources

  constructor(
    private readonly ctx: WorkerContext<UdpConfig>,
    private readonly stats: TrafficStats,
    private readonly shard: SwarmShard,
    private readonly scrapes: ScrapeRouter,
  ) {
    const cfg = (this.cfg = ctx.config)
    this.swarm = shard.swarm
    this.validator = new ConnectionIdValidator(ctx.secret.subarray(0, 16), cfg.cleaning.max_connection_age)
    this.forwarding = ctx.mesh ? new UdpForwarding(ctx.mesh, this, cfg.protocol.max_scrape_torrents) : null
    this.probeSources = new ProbeSources([cfg.network.address_ipv4, cfg.network.address_ipv6])
  }

  private send(link: UdpLink, v: 0 | 1, length: number, peer: PeerAddress): void {
    if (!link.send(length, peer)) {
      this.stats.drops[DROP.send_failed]++
      return
    }
    this.stats.txBytes[v] += length
  }

  onPacket(link: UdpLink, msg: Buffer, peer: PeerAddress): void {
    if (peer.port === 0) {
      this.stats.drops[DROP.source_port_zero]++
      return
    }
    // IPv4-mapped addresses on a dual-stack socket count as IPv4.
    const v: 0 | 1 = peer.port < 0 ? link.socketFamily : peer.family === 4 ? 0 : 1
    this.stats.rxBytes[v] += msg.length
    // A steering probe (udp/steering.ts): too short for an announce, from the tracker's own
    // addresses, with a connection id valid for it (no other host can forge one for them).
    if (isProbe(msg, msg.length) && peer.port > 0 && this.probeSources.allows(peer) && this.validator.validate(msg, 0, peer.bytes, this.shard.now)) {
      this.send(link, v, writeProbeAnswer(link.out, msg, this.ctx.index), peer)
      return
    }
    const req = this.req
    const status = parseRequest(msg, msg.length, this.cfg.protocol.max_scrape_torrents, req)
    if (status === ParseStatus.Drop || peer.port < 0) {
      this.stats.drops[DROP.malformed]++
      return
    }
    const ip = peer.bytes
    if (req.action === ACTION_CONNECT) {
      this.stats.requests[v][REQ.connect]++
      const length = writeConnectResponse(link.out, req.transactionId)
      this.validator.write(link.out, 8, ip, this.shard.now)
      this.send(link, v, length, peer)
      this.stats.responses[v][RES.connect]++
      return
    }
    if (!this.validator.validate(msg, 0, ip, this.shard.now)) {
      this.stats.drops[DROP.bad_connection_id]++
      return
    }
    // BEP 15 numbers its actions as REQUEST_TYPES lists them.
    this.stats.requests[v][req.action]++
    if (status !== ParseStatus.Ok) {
      this.sendError(link, v, req.transactionId, req.errorMessage!, peer)
      return
    }
    if (req.action === ACTION_ANNOUNCE) {
      if (!this.ctx.accessList.allows(msg, req.infoHashOffset)) {
        this.stats.refusals[REFUSED.access_list]++
        this.sendError(link, v, req.transactionId, ERROR_INFO_HASH_NOT_ALLOWED, peer)
        return
      }
      const owner = this.ctx.ownerOf(msg, req.infoHashOffset)
      if (owner !== this.ctx.index) {
        this.stats.forwarded[0]++
        this.forwarding!.forward(owner, link.socketFamily, msg, peer)
        return
      }
      this.announce(link, v, msg, peer)
    } else if (req.action === ACTION_SCRAPE) {
      this.scrape(link, v, msg, peer)
    }
  }

  /** Writes a connection id valid for `ip` now (steering probes: see steering.ts). */
  writeConnectionId(out: Uint8Array, offset: number, ip: Uint8Array): void {
    this.validator.write(out, offset, ip, this.shard.now)
  }

  private sendError(link: UdpLink, v: 0 | 1, tid: number, message: Uint8Array, peer: PeerAddress): void {
    const length = writeErrorResponse(link.out, tid, message)
    this.send(link, v, length, peer)
    this.stats.responses[v][RES.error]++
  }

  /** Runs the announce in `msg` on this worker's shard and answers it; `this.req` holds it parsed. */
  announce(link: UdpLink, v: 0 | 1, msg: Buffer, peer: PeerAddress): void {
    const req = this.req
    const a = this.announceReq
    a.infoHash = msg
    a.infoHashOffset = req.infoHashOffset
    a.peerId = msg
    a.peerIdOffset = req.peerIdOffset
    a.ipFamily = peer.family
    a.ip = peer.bytes
    a.port = req.port
    a.event = req.event
    a.isSeeder = req.leftIsZero
    const max = this.cfg.protocol.max_response_peers
    a.numWant = req.numWant <= 0 ? max : Math.min(req.numWant, max)
    const res = this.announceRes
    res.peerBuf = link.out
    res.peerBufOffset = 20
    const status = this.swarm.announce(a, this.shard.now, res)
    if (status === AnnounceStatus.TorrentLimit) {
      this.sendError(link, v, req.transactionId, ERROR_TRACKER_FULL, peer)
      return
    }
    writeAnnounceHeader(link.out, req.transactionId, this.cfg.protocol.peer_announce_interval, res.leechers, res.seeders)
    this.send(link, v, 20 + res.peerCount * (peer.family === 4 ? 6 : 18), peer)
    this.stats.responses[v][RES.announce]++
  }

  private scrape(link: UdpLink, v: 0 | 1, msg: Buffer, peer: PeerAddress): void {
    const {scrapeOffset, scrapeCount, transactionId} = this.req
    if (this.scrapes.allLocal(msg, scrapeOffset, scrapeCount)) {
      // The common case writes straight into the reply buffer.
      const c = this.scrapeCounts
      writeScrapeHeader(link.out, transactionId)
      for (let i = 0; i < scrapeCount; i++) {
        this.swarm.scrape(msg, scrapeOffset + 20 * i, c)
        writeScrapeEntry(link.out, i, c.seeders, c.completed, c.leechers)
      }
      this.send(link, v, 8 + 12 * scrapeCount, peer)
      this.stats.responses[v][RES.scrape]++
      return
    }
    // The peer object is the link's, reused for the next packet: keep a copy for the answer.
    const to = peer.copy()
    this.scrapes.scrape(msg, scrapeOffset, scrapeCount, counts => {
      // Another worker's part could not be had (the router counts why): never made-up counts.
      if (!counts) return this.sendError(link, v, transactionId, ERROR_BUSY, to)
      writeScrapeHeader(link.out, transactionId)
      for (let i = 0; i < scrapeCount; i++) writeScrapeEntry(link.out, i, counts[3 * i], counts[3 * i + 1], counts[3 * i + 2])
      this.send(link, v, 8 + 12 * scrapeCount, to)
      this.stats.responses[v][RES.scrape]++
    })
  }
}
