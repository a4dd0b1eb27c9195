import {TrafficStats, registerWorkerMetrics} from '../../metrics/index.js'
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
import {AnnounceRequest, AnnounceResult, AnnounceStatus, ScrapeCounts, type Swarm} from '../../swarm/index.js'
import type {UdpConfig} from '../../config/index.js'
import {parseSocketAddress} from '../../config/address.js'
import type {ProtocolWorker, WorkerContext} from '../runtime/worker-api.js'
import {listenerAt, type Listener} from '../runtime/listener.js'
import {SwarmShard} from '../shard.js'
import {BindError, nodeHasReusePort, portToBind} from '../listen.js'
import {ScrapeRouter} from '../scrape-router.js'
import {FRAME, scrapeRequestBytes, UDP_ANNOUNCE_BYTES, UdpAnnounceFrame, writeUdpAnnounce} from '../frames.js'
import {BatchLink, DgramLink, PeerAddress, type UdpLinkOptions as LinkOptions, type UdpLink} from '../../io/udp.js'

export type UdpWorkerConfig = UdpConfig

const REQUEST_TYPES = ['connect', 'announce', 'scrape'] as const
const RESPONSE_TYPES = ['connect', 'announce', 'scrape', 'error'] as const
const DROP_REASONS = ['malformed', 'bad_connection_id', 'source_port_zero', 'send_failed'] as const
const REFUSAL_REASONS = ['access_list'] as const
const DROP_MALFORMED = 0
const DROP_BAD_CID = 1
const DROP_PORT_ZERO = 2
const DROP_SEND_FAILED = 3
const REFUSED_ACCESS = 0

export function createWorker(ctx: WorkerContext<UdpWorkerConfig>): ProtocolWorker {
  return new UdpWorker(ctx)
}

export class UdpWorker implements ProtocolWorker {
  readonly stats = new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
  readonly shard: SwarmShard
  readonly swarm: Swarm
  private readonly validator: ConnectionIdValidator
  private readonly links: UdpLink[] = []
  private link4?: UdpLink
  private link6?: UdpLink
  private clock?: NodeJS.Timeout
  private readonly outSize: number
  /** The peer of a request forwarded by another worker. */
  private readonly forwardedPeer = new PeerAddress()
  /** A forwarded announce is written here; the mesh copies it. */
  private readonly forwardFrame = Buffer.alloc(UDP_ANNOUNCE_BYTES)
  private readonly announceFrame = new UdpAnnounceFrame()
  private readonly req = new ParsedRequest()
  private readonly announceReq = new AnnounceRequest()
  private readonly announceRes = new AnnounceResult()
  private readonly scrapeCounts = new ScrapeCounts()
  private readonly scrapes: ScrapeRouter
  private readonly cfg: UdpWorkerConfig

  constructor(private readonly ctx: WorkerContext<UdpWorkerConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.shard = new SwarmShard(ctx)
    this.swarm = this.shard.swarm
    this.validator = new ConnectionIdValidator(ctx.secret.subarray(0, 16), cfg.cleaning.max_connection_age)
    // Room for the largest reply: an IPv6 announce with every peer, or a full scrape.
    this.outSize = Math.max(20 + 18 * cfg.protocol.max_response_peers, 8 + 12 * cfg.protocol.max_scrape_torrents, 1024)
    this.scrapes = new ScrapeRouter(ctx, this.swarm)
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges())
    // The largest frame a UDP worker sends: a scrape's part (its answer is smaller) or an announce.
    ctx.mesh?.limitFrames(Math.max(UDP_ANNOUNCE_BYTES, scrapeRequestBytes(cfg.protocol.max_scrape_torrents)))
    ctx.mesh?.onMessage((from, type, buf, offset, length) => this.onFrame(from, type, buf, offset, length))
  }

  async start(): Promise<Listener[]> {
    const net = this.cfg.network
    this.clock = setInterval(() => this.shard.tick(), 1000)
    this.clock.unref()
    const listening: Listener[] = []
    if (net.use_ipv4) {
      this.link4 = await this.bind(net.address_ipv4, 0)
      listening.push(listenerAt('udp', net.address_ipv4, this.link4.port, {io: this.link4.kind}))
    }
    if (net.use_ipv6) {
      this.link6 = await this.bind(net.address_ipv6, 1)
      listening.push(listenerAt('udp', net.address_ipv6, this.link6.port, {io: this.link6.kind}))
    }
    return listening
  }

  private async bind(address: string, family: 0 | 1): Promise<UdpLink> {
    const {host, port} = parseSocketAddress(address)!
    const net = this.cfg.network
    const ipVersion = family === 0 ? 4 : 6
    // With several workers each binds a socket of its own (SO_REUSEPORT): always with batched
    // I/O, with node:dgram only where Node has reusePort (else cluster shares one socket).
    const options = (reusePort: boolean): LinkOptions => ({
      family,
      host,
      ipv6Only: family === 1 && net.set_only_ipv6,
      recvBufferSize: net.socket_recv_buffer_size,
      outSize: this.outSize,
      reusePort,
      port: portToBind(port, ipVersion, reusePort, this.ctx.ports),
      onPacket: (link, msg, peer) => this.onPacket(link, msg, peer),
    })
    let link: UdpLink | null = null
    try {
      if (net.batched_io) link = BatchLink.open(options(this.ctx.count > 1), count => (this.stats.drops[DROP_SEND_FAILED] += count))
      link ??= await DgramLink.open(options(this.ctx.count > 1 && nodeHasReusePort()), error => this.ctx.log.warn(`udp socket error: ${error.message}`))
    } catch (error) {
      throw new BindError('bind UDP', address, `[network] address_ipv${ipVersion}`, error)
    }
    this.links.push(link)
    return link
  }

  private send(link: UdpLink, v: 0 | 1, length: number, peer: PeerAddress): void {
    if (!link.send(length, peer)) {
      this.stats.drops[DROP_SEND_FAILED]++
      return
    }
    this.stats.txBytes[v] += length
  }

  private onPacket(link: UdpLink, msg: Buffer, peer: PeerAddress): void {
    if (peer.port === 0) {
      this.stats.drops[DROP_PORT_ZERO]++
      return
    }
    // IPv4-mapped addresses on a dual-stack socket count as IPv4.
    const v: 0 | 1 = peer.port < 0 ? link.socketFamily : peer.family === 4 ? 0 : 1
    this.stats.rxBytes[v] += msg.length
    const req = this.req
    const status = parseRequest(msg, msg.length, this.cfg.protocol.max_scrape_torrents, req)
    if (status === ParseStatus.Drop || peer.port < 0) {
      this.stats.drops[DROP_MALFORMED]++
      return
    }
    const ip = peer.bytes
    if (req.action === ACTION_CONNECT) {
      this.stats.requests[v][0]++
      const length = writeConnectResponse(link.out, req.transactionId)
      this.validator.write(link.out, 8, ip, this.shard.now)
      this.send(link, v, length, peer)
      this.stats.responses[v][0]++
      return
    }
    if (!this.validator.validate(msg, 0, ip, this.shard.now)) {
      this.stats.drops[DROP_BAD_CID]++
      return
    }
    this.stats.requests[v][req.action]++
    if (status !== ParseStatus.Ok) {
      this.sendError(link, v, req.transactionId, req.errorMessage!, peer)
      return
    }
    if (req.action === ACTION_ANNOUNCE) {
      if (!this.ctx.accessList.allows(msg, req.infoHashOffset)) {
        this.stats.refusals[REFUSED_ACCESS]++
        this.sendError(link, v, req.transactionId, ERROR_INFO_HASH_NOT_ALLOWED, peer)
        return
      }
      const owner = this.ctx.ownerOf(msg, req.infoHashOffset)
      if (owner !== this.ctx.index) {
        this.forwardAnnounce(owner, link.socketFamily, msg, peer)
        return
      }
      this.announce(link, v, msg, peer)
    } else if (req.action === ACTION_SCRAPE) {
      this.scrape(link, v, msg, peer)
    }
  }

  private sendError(link: UdpLink, v: 0 | 1, tid: number, message: Uint8Array, peer: PeerAddress): void {
    const length = writeErrorResponse(link.out, tid, message)
    this.send(link, v, length, peer)
    this.stats.responses[v][3]++
  }

  /** `this.req` holds the parsed announce in `msg`. */
  private announce(link: UdpLink, v: 0 | 1, msg: Buffer, peer: PeerAddress): void {
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
    this.stats.responses[v][1]++
  }

  /** At a full link the announce is dropped, like a lost datagram (the mesh counts it). */
  private forwardAnnounce(owner: number, socketFamily: 0 | 1, msg: Buffer, peer: PeerAddress): void {
    const length = writeUdpAnnounce(this.forwardFrame, 0, socketFamily, peer.port, peer.family, peer.ip, msg, 0)
    this.ctx.mesh!.send(owner, FRAME.udpAnnounce, this.forwardFrame, 0, length)
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
      this.stats.responses[v][2]++
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
      this.stats.responses[v][2]++
    })
  }

  private onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): void {
    if (this.scrapes.onFrame(from, type, buf, offset, length)) return
    const f = this.announceFrame
    if (type === FRAME.udpAnnounce && f.decode(buf, offset, length)) {
      const link = f.socketFamily === 0 ? this.link4 : this.link6
      if (!link) return
      const peer = this.forwardedPeer
      peer.setBytes(buf, f.ipOffset, f.ipFamily, f.port)
      const msg = buf.subarray(f.requestStart, f.requestEnd)
      if (parseRequest(msg, msg.length, this.cfg.protocol.max_scrape_torrents, this.req) !== ParseStatus.Ok) return
      this.announce(link, peer.family === 4 ? 0 : 1, msg, peer)
    }
  }

  clean(): void {
    this.shard.clean()
  }

  async close(): Promise<void> {
    if (this.clock) clearInterval(this.clock)
    await Promise.all(this.links.map(link => link.close()))
  }
}
