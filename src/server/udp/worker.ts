import dgram, {type RemoteInfo, type Socket} from 'node:dgram'
import {TrafficStats, registerWorkerMetrics} from '../../metrics/index.js'
import {parseIpInto} from '../../net/ip.js'
import {
  ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_SCRAPE, ConnectionIdValidator, ERROR_INFO_HASH_NOT_ALLOWED,
  ERROR_TRACKER_FULL, ParseStatus, ParsedRequest, parseRequest, writeAnnounceHeader, writeConnectResponse,
  writeErrorResponse, writeScrapeHeader, writeScrapeEntry,
} from '../../protocol/udp/index.js'
import {AnnounceRequest, AnnounceResult, AnnounceStatus, ScrapeCounts, Swarm} from '../../swarm/index.js'
import type {UdpConfig} from '../../config/index.js'
import type {ProtocolWorker, WorkerContext} from '../runtime.js'
import {splitHostPort} from '../runtime.js'
import {SwarmShard} from '../shard.js'
import {nodeHasReusePort} from '../listen.js'
import {ScrapeRouter} from '../scrape-router.js'

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

// Mesh frame type of an announce forwarded to its shard's owner (see scrape-router for scrapes).
const FRAME_ANNOUNCE = 16

export function createWorker(ctx: WorkerContext<UdpWorkerConfig>): ProtocolWorker {
  return new UdpWorker(ctx)
}

export class UdpWorker implements ProtocolWorker {
  readonly stats = new TrafficStats(REQUEST_TYPES, RESPONSE_TYPES, DROP_REASONS, REFUSAL_REASONS)
  readonly shard: SwarmShard
  readonly swarm: Swarm
  private readonly validator: ConnectionIdValidator
  private readonly sockets: Socket[] = []
  private socket4?: Socket
  private socket6?: Socket
  private clock?: NodeJS.Timeout
  private out: Buffer
  private readonly outSize: number
  private readonly req = new ParsedRequest()
  private readonly announceReq = new AnnounceRequest()
  private readonly announceRes = new AnnounceResult()
  private readonly scrapeCounts = new ScrapeCounts()
  private readonly ip = new Uint8Array(16)
  /** The first 4 bytes of `ip`: one view made once, not one per packet. */
  private readonly ip4 = this.ip.subarray(0, 4)
  private readonly scrapes: ScrapeRouter
  private readonly cfg: UdpWorkerConfig

  constructor(private readonly ctx: WorkerContext<UdpWorkerConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.shard = new SwarmShard(ctx)
    this.swarm = this.shard.swarm
    this.validator = new ConnectionIdValidator(ctx.secret.subarray(0, 16), cfg.cleaning.max_connection_age)
    // Room for the largest reply: an IPv6 announce with every peer, or a full scrape.
    this.outSize = Math.max(20 + 18 * cfg.protocol.max_response_peers, 8 + 12 * cfg.protocol.max_scrape_torrents, 1024)
    this.out = Buffer.allocUnsafe(this.outSize)
    this.scrapes = new ScrapeRouter(ctx, this.swarm)
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges())
    ctx.mesh?.onMessage((from, type, buf, offset, length) => this.onFrame(from, type, buf, offset, length))
  }

  async start(): Promise<string[]> {
    const net = this.cfg.network
    this.clock = setInterval(() => this.shard.tick(), 1000)
    this.clock.unref()
    const listening: string[] = []
    if (net.use_ipv4) {
      this.socket4 = await this.bind('udp4', net.address_ipv4, 0)
      listening.push(`udp ${net.address_ipv4.replace(/:\d+$/, ':' + this.socket4.address().port)}`)
    }
    if (net.use_ipv6) {
      this.socket6 = await this.bind('udp6', net.address_ipv6, 1)
      listening.push(`udp ${net.address_ipv6.replace(/:\d+$/, ':' + this.socket6.address().port)}`)
    }
    return listening
  }

  private bind(type: 'udp4' | 'udp6', address: string, family: 0 | 1): Promise<Socket> {
    const [host, port] = splitHostPort(address)
    const reusePort = this.ctx.count > 1 && nodeHasReusePort()
    // A synchronous lookup makes `send` hand the buffer to the kernel before it returns
    // (the default lookup defers the send to the next tick, after our buffer is reused).
    const lookup = (addr: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void) =>
      cb(null, addr, type === 'udp4' ? 4 : 6)
    const options: dgram.SocketOptions & {reusePort?: boolean} = {
      type, lookup: lookup as dgram.SocketOptions['lookup'], ipv6Only: type === 'udp6' && this.cfg.network.set_only_ipv6,
      ...(reusePort ? {reusePort: true} : {}),
    }
    if (this.cfg.network.socket_recv_buffer_size > 0) options.recvBufferSize = this.cfg.network.socket_recv_buffer_size
    const socket = dgram.createSocket(options)
    this.sockets.push(socket)
    socket.on('message', (msg, rinfo) => this.onPacket(socket, family, msg, rinfo))
    return new Promise((resolve, reject) => {
      socket.once('error', error => reject(new Error(`could not bind UDP ${address} ([network] address_ipv${family === 0 ? 4 : 6}): ${error.message}`)))
      socket.bind({port, address: host, exclusive: reusePort}, () => {
        socket.removeAllListeners('error')
        socket.on('error', error => this.ctx.log.warn(`udp socket error: ${error.message}`))
        resolve(socket)
      })
    })
  }

  private send(socket: Socket, family: 0 | 1, length: number, port: number, address: string): void {
    try {
      socket.send(this.out, 0, length, port, address)
    } catch {
      this.stats.drops[DROP_SEND_FAILED]++
      return
    }
    // A send the kernel could not take at once is queued with a reference to our buffer.
    if (socket.getSendQueueCount() > 0) this.out = Buffer.allocUnsafe(this.outSize)
    this.stats.txBytes[family] += length
  }

  private onPacket(socket: Socket, socketFamily: 0 | 1, msg: Buffer, rinfo: RemoteInfo): void {
    if (rinfo.port === 0) {
      this.stats.drops[DROP_PORT_ZERO]++
      return
    }
    const ipFamily = parseIpInto(rinfo.address, this.ip)
    // IPv4-mapped addresses on a dual-stack socket count as IPv4.
    const v: 0 | 1 = ipFamily === 4 ? 0 : ipFamily === 6 ? 1 : socketFamily
    this.stats.rxBytes[v] += msg.length
    const req = this.req
    const status = parseRequest(msg, msg.length, this.cfg.protocol.max_scrape_torrents, req)
    if (status === ParseStatus.Drop || ipFamily === 0) {
      this.stats.drops[DROP_MALFORMED]++
      return
    }
    const ip = ipFamily === 4 ? this.ip4 : this.ip
    if (req.action === ACTION_CONNECT) {
      this.stats.requests[v][0]++
      const length = writeConnectResponse(this.out, req.transactionId)
      this.validator.write(this.out, 8, ip, this.shard.now)
      this.send(socket, v, length, rinfo.port, rinfo.address)
      this.stats.responses[v][0]++
      return
    }
    if (!this.validator.validate(msg, 0, ip, this.shard.now)) {
      this.stats.drops[DROP_BAD_CID]++
      return
    }
    this.stats.requests[v][req.action]++
    if (status !== ParseStatus.Ok) {
      this.sendError(socket, v, req.transactionId, req.errorMessage!, rinfo)
      return
    }
    if (req.action === ACTION_ANNOUNCE) {
      if (!this.ctx.accessList.allows(msg, req.infoHashOffset)) {
        this.stats.refusals[REFUSED_ACCESS]++
        this.sendError(socket, v, req.transactionId, ERROR_INFO_HASH_NOT_ALLOWED, rinfo)
        return
      }
      const owner = this.ctx.ownerOf(msg, req.infoHashOffset)
      if (owner !== this.ctx.index) {
        this.forwardAnnounce(owner, socketFamily, msg, rinfo)
        return
      }
      this.announce(socket, v, ipFamily, ip, msg, rinfo.port, rinfo.address)
    } else if (req.action === ACTION_SCRAPE) {
      this.scrape(socket, v, msg, rinfo.port, rinfo.address)
    }
  }

  private sendError(socket: Socket, v: 0 | 1, tid: number, message: Uint8Array, rinfo: {port: number; address: string}): void {
    const length = writeErrorResponse(this.out, tid, message)
    this.send(socket, v, length, rinfo.port, rinfo.address)
    this.stats.responses[v][3]++
  }

  /** `this.req` holds the parsed announce in `msg`. */
  private announce(socket: Socket, v: 0 | 1, ipFamily: 4 | 6, ip: Uint8Array, msg: Buffer, port: number, address: string): void {
    const req = this.req
    const a = this.announceReq
    a.infoHash = msg
    a.infoHashOffset = req.infoHashOffset
    a.peerId = msg
    a.peerIdOffset = req.peerIdOffset
    a.ipFamily = ipFamily
    a.ip = ip
    a.port = req.port
    a.event = req.event
    a.isSeeder = req.leftIsZero
    const max = this.cfg.protocol.max_response_peers
    a.numWant = req.numWant <= 0 ? max : Math.min(req.numWant, max)
    const res = this.announceRes
    res.peerBuf = this.out
    res.peerBufOffset = 20
    const status = this.swarm.announce(a, this.shard.now, res)
    if (status === AnnounceStatus.TorrentLimit) {
      this.sendError(socket, v, req.transactionId, ERROR_TRACKER_FULL, {port, address})
      return
    }
    writeAnnounceHeader(this.out, req.transactionId, this.cfg.protocol.peer_announce_interval, res.leechers, res.seeders)
    this.send(socket, v, 20 + res.peerCount * (ipFamily === 4 ? 6 : 18), port, address)
    this.stats.responses[v][1]++
  }

  private forwardAnnounce(owner: number, socketFamily: 0 | 1, msg: Buffer, rinfo: RemoteInfo): void {
    const addr = Buffer.from(rinfo.address, 'latin1')
    const frame = Buffer.allocUnsafe(4 + addr.length + msg.length)
    frame[0] = socketFamily
    frame.writeUInt16BE(rinfo.port, 1)
    frame[3] = addr.length
    addr.copy(frame, 4)
    msg.copy(frame, 4 + addr.length)
    this.ctx.mesh!.send(owner, FRAME_ANNOUNCE, frame)
  }

  private scrape(socket: Socket, v: 0 | 1, msg: Buffer, port: number, address: string): void {
    const {scrapeOffset, scrapeCount, transactionId} = this.req
    if (this.scrapes.allLocal(msg, scrapeOffset, scrapeCount)) {
      // The common case writes straight into the reply buffer.
      const c = this.scrapeCounts
      writeScrapeHeader(this.out, transactionId)
      for (let i = 0; i < scrapeCount; i++) {
        this.swarm.scrape(msg, scrapeOffset + 20 * i, c)
        writeScrapeEntry(this.out, i, c.seeders, c.completed, c.leechers)
      }
      this.send(socket, v, 8 + 12 * scrapeCount, port, address)
      this.stats.responses[v][2]++
      return
    }
    this.scrapes.scrape(msg, scrapeOffset, scrapeCount, counts => {
      writeScrapeHeader(this.out, transactionId)
      for (let i = 0; i < scrapeCount; i++) writeScrapeEntry(this.out, i, counts[3 * i], counts[3 * i + 1], counts[3 * i + 2])
      this.send(socket, v, 8 + 12 * scrapeCount, port, address)
      this.stats.responses[v][2]++
    })
  }

  private onFrame(from: number, type: number, buf: Buffer, offset: number, length: number): void {
    if (this.scrapes.onFrame(from, type, buf, offset)) return
    if (type === FRAME_ANNOUNCE) {
      const socketFamily = buf[offset] as 0 | 1
      const port = buf.readUInt16BE(offset + 1)
      const addrLength = buf[offset + 3]
      const address = buf.toString('latin1', offset + 4, offset + 4 + addrLength)
      const start = offset + 4 + addrLength
      // Copy: the engine keeps no reference, but the reply is built while `buf` may be reused.
      const msg = buf.subarray(start, offset + length)
      const socket = socketFamily === 0 ? this.socket4 : this.socket6
      const ipFamily = parseIpInto(address, this.ip)
      if (!socket || ipFamily === 0) return
      if (parseRequest(msg, msg.length, this.cfg.protocol.max_scrape_torrents, this.req) !== ParseStatus.Ok) return
      const v: 0 | 1 = ipFamily === 4 ? 0 : 1
      this.announce(socket, v, ipFamily, ipFamily === 4 ? this.ip4 : this.ip, msg, port, address)
    }
  }

  clean(): void {
    this.shard.clean()
  }

  async close(): Promise<void> {
    if (this.clock) clearInterval(this.clock)
    await Promise.all(this.sockets.map(s => new Promise<void>(resolve => s.close(() => resolve()))))
  }
}
