/**
 * The UDP tracker's worker: its shard of the swarm and its sockets (links, batched or node:dgram),
 * wired together and run. What a datagram means is handler.ts's, announces for other workers'
 * torrents forwarding.ts's.
 */
import {registerWorkerMetrics} from '../../metrics/index.js'
import type {SwarmBackend} from '../../swarm/index.js'
import type {UdpConfig} from '../../config/index.js'
import {parseSocketAddress} from '../../config/address.js'
import type {ProtocolWorker, WorkerContext} from '../runtime/worker-api.js'
import {listenerAt, type Listener} from '../runtime/listener.js'
import {SwarmShard} from '../shard.js'
import {BindError, nodeHasReusePort, portToBind} from '../listen.js'
import {ScrapeRouter} from '../scrape-router.js'
import {scrapeRequestBytes} from '../frames.js'
import {UdpForwarding} from './forwarding.js'
import {steerAndVerify} from './steering.js'
import {UdpHandler} from './handler.js'
import {BatchLink, DgramLink, type UdpLinkOptions as LinkOptions, type UdpLink} from '../../io/udp.js'
import {DROP, udpStats} from './stats.js'

export type UdpWorkerConfig = UdpConfig

export function createWorker(ctx: WorkerContext<UdpWorkerConfig>): ProtocolWorker {
  return new UdpWorker(ctx)
}

export class UdpWorker implements ProtocolWorker {
  readonly stats = udpStats()
  readonly shard: SwarmShard
  readonly swarm: SwarmBackend
  private readonly handler: UdpHandler
  private readonly forwarding: UdpForwarding | null
  private readonly links: UdpLink[] = []
  private link4?: UdpLink
  private link6?: UdpLink
  private clock?: NodeJS.Timeout
  private readonly outSize: number
  private readonly scrapes: ScrapeRouter
  private readonly cfg: UdpWorkerConfig

  constructor(private readonly ctx: WorkerContext<UdpWorkerConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.shard = new SwarmShard(ctx)
    this.swarm = this.shard.swarm
    // Room for the largest reply: an IPv6 announce with every peer, or a full scrape.
    this.outSize = Math.max(20 + 18 * cfg.protocol.max_response_peers, 8 + 12 * cfg.protocol.max_scrape_torrents, 1024)
    this.scrapes = new ScrapeRouter(ctx, this.swarm)
    this.handler = new UdpHandler(ctx, this.stats, this.shard, this.scrapes)
    this.forwarding = this.handler.forwarding
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges())
    // The largest frame a UDP worker sends: a scrape's part (its answer is smaller) or an announce.
    ctx.mesh?.limitFrames(Math.max(UdpForwarding.maxFrame, scrapeRequestBytes(cfg.protocol.max_scrape_torrents)))
    ctx.mesh?.route([this.scrapes, this.forwarding])
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
    // The workers start one after another: the last one's sockets complete each group.
    if (this.ctx.count > 1 && this.ctx.index === this.ctx.count - 1) await this.steer()
    return listening
  }

  /** Steers datagrams to their torrent's worker where it can be verified (steering.ts). */
  private async steer(): Promise<void> {
    const net = this.cfg.network
    for (const [link, address, family] of [
      [this.link4, net.address_ipv4, 4],
      [this.link6, net.address_ipv6, 6],
    ] as const) {
      if (!(link instanceof BatchLink)) continue
      const {host} = parseSocketAddress(address)!
      const why = await steerAndVerify(link, family, host, link.port, this.ctx.count, (out, offset, ip) => this.handler.writeConnectionId(out, offset, ip))
      if (why === null) this.ctx.log.info(`udp ${address}: datagrams steered to the worker of their torrent (SO_ATTACH_REUSEPORT_CBPF)`)
      else
        this.ctx.log.warn(
          `udp ${address}: datagrams could not be steered to the worker of their torrent (${why}); requests for other workers' torrents are forwarded`,
        )
    }
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
      onPacket: (link, msg, peer) => this.handler.onPacket(link, msg, peer),
    })
    let link: UdpLink | null = null
    try {
      if (net.batched_io) link = BatchLink.open(options(this.ctx.count > 1), count => (this.stats.drops[DROP.send_failed] += count))
      link ??= await DgramLink.open(options(this.ctx.count > 1 && nodeHasReusePort()), error => this.ctx.log.warn(`udp socket error: ${error.message}`))
    } catch (error) {
      throw new BindError('bind UDP', address, `[network] address_ipv${ipVersion}`, error)
    }
    this.links.push(link)
    if (this.forwarding) this.forwarding.links[family] = link
    return link
  }

  clean(): void {
    this.shard.clean()
  }

  async close(): Promise<void> {
    if (this.clock) clearInterval(this.clock)
    await Promise.all(this.links.map(link => link.close()))
  }
}
