/**
 * The WebTorrent tracker's worker: its shard of the swarm and the parts that serve it, wired
 * together and run. Connections are transport.ts's, what a message means handler.ts's, work for
 * other workers' torrents and connections forwarding.ts's.
 */
import type {WsConfig} from '../../config/index.js'
import {registerWorkerMetrics} from '../../metrics/index.js'
import {WebTorrentSwarm, type WebTorrentBackend} from '../../swarm/index.js'
import type {ProtocolWorker, WorkerContext} from '../runtime/worker-api.js'
import {listenerAt, type Listener} from '../runtime/listener.js'
import {ScrapeRouter} from '../scrape-router.js'
import {scrapeRequestBytes} from '../frames.js'
import {FullScrape} from '../full-scrape.js'
import {WorkerClock} from '../shard.js'
import type {TlsMaterial} from '../tls.js'
import {WsForwarding} from './forwarding.js'
import {JsonFullScrape} from './full-scrape.js'
import {WsHandler} from './handler.js'
import {wsStats} from './stats.js'
import type {WsTransport} from './transport.js'

export function createWorker(ctx: WorkerContext<WsConfig>): ProtocolWorker {
  return new WsWorker(ctx)
}

export class WsWorker implements ProtocolWorker {
  readonly stats = wsStats()
  readonly swarm: WebTorrentBackend
  private readonly cfg: WsConfig
  private readonly handler: WsHandler
  private readonly transport: WsTransport
  private readonly forwarding: WsForwarding | null
  private readonly scrapes: ScrapeRouter
  private readonly fullScrape: FullScrape | null
  private readonly clock: WorkerClock
  private timers: NodeJS.Timeout[] = []

  constructor(private readonly ctx: WorkerContext<WsConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.swarm = new WebTorrentSwarm({
      maxTorrents: cfg.limits.max_torrents,
      maxPeersPerTorrent: cfg.limits.max_peers_per_torrent,
      maxPeerAge: cfg.cleaning.max_peer_age,
      maxOfferAge: cfg.cleaning.max_offer_age,
      maxPendingOffersPerConnection: cfg.limits.max_pending_offers_per_connection,
      maxPendingOffersPerTorrent: cfg.limits.max_pending_offers_per_torrent,
    })
    this.scrapes = new ScrapeRouter(ctx, {scrape: (b, o, out) => this.swarm.scrapeBytes(b, o, out)})
    this.fullScrape = cfg.protocol.enable_full_scrape ? new FullScrape(ctx, new JsonFullScrape(this.swarm), cfg.protocol.full_scrape_interval * 1000) : null
    this.clock = new WorkerClock(ctx.epochMs)
    this.handler = new WsHandler(ctx, this.stats, this.clock, this.swarm, this.scrapes, this.fullScrape)
    this.transport = this.handler.transport
    this.forwarding = this.handler.forwarding
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges(), () => this.transport.connections.size)
    ctx.mesh?.route([this.scrapes, this.forwarding, this.fullScrape])
    // The largest frames: a message as it came (an announce, or one relayed with its ids), a
    // scrape part, or (when on) a full-scrape chunk.
    ctx.mesh?.limitFrames(
      Math.max(WsForwarding.maxFrame(cfg.network.max_message_size), scrapeRequestBytes(cfg.protocol.max_scrape_torrents), this.fullScrape?.maxFrame ?? 0),
    )
  }

  async start(): Promise<Listener[]> {
    const c = this.cfg.connections
    this.timers.push(
      setInterval(() => {
        this.clock.tick()
        this.transport.sweep()
      }, 1000),
    )
    this.timers.push(setInterval(() => this.transport.ping(), c.ping_interval * 1000))
    this.fullScrape?.start()
    for (const t of this.timers) t.unref()
    const net = this.cfg.network
    const scheme = this.ctx.tls ? 'wss' : 'ws'
    const io = this.transport.batched ? {io: 'batched I/O'} : {}
    const listening: Listener[] = []
    if (net.use_ipv4) listening.push(listenerAt(scheme, net.address_ipv4, await this.transport.listen(net.address_ipv4, 4), io))
    if (net.use_ipv6) listening.push(listenerAt(scheme, net.address_ipv6, await this.transport.listen(net.address_ipv6, 6), io))
    return listening
  }

  setTls(material: TlsMaterial): void {
    this.transport.setTls(material)
  }

  clean(): void {
    this.clock.tick()
    this.handler.clean()
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    this.fullScrape?.close()
    await this.transport.close()
  }
}
