/**
 * The HTTP tracker's worker: its shard of the swarm and the parts that serve it, wired together
 * and run. Connections are transport.ts's, what a request means handler.ts's, announces for other
 * workers' torrents forwarding.ts's.
 */
import type {HttpConfig} from '../../config/index.js'
import {registerWorkerMetrics} from '../../metrics/index.js'
import type {SwarmBackend} from '../../swarm/index.js'
import type {ProtocolWorker, WorkerContext} from '../runtime/worker-api.js'
import {listenerAt, type Listener} from '../runtime/listener.js'
import {SwarmShard} from '../shard.js'
import {ScrapeRouter} from '../scrape-router.js'
import {scrapeRequestBytes} from '../frames.js'
import {FullScrape} from '../full-scrape.js'
import type {TlsMaterial} from '../tls.js'
import {BencodeFullScrape} from './full-scrape.js'
import {HttpForwarding} from './forwarding.js'
import {HttpHandler} from './handler.js'
import {httpStats} from './stats.js'
import type {HttpTransport} from './transport.js'

export function createWorker(ctx: WorkerContext<HttpConfig>): ProtocolWorker {
  return new HttpWorker(ctx)
}

export class HttpWorker implements ProtocolWorker {
  readonly stats = httpStats()
  readonly shard: SwarmShard
  readonly swarm: SwarmBackend
  private readonly cfg: HttpConfig
  private readonly handler: HttpHandler
  private readonly transport: HttpTransport
  private readonly forwarding: HttpForwarding | null
  private readonly scrapes: ScrapeRouter
  private readonly fullScrape: FullScrape | null
  private clock?: NodeJS.Timeout

  constructor(private readonly ctx: WorkerContext<HttpConfig>) {
    const cfg = (this.cfg = ctx.config)
    this.shard = new SwarmShard(ctx)
    this.swarm = this.shard.swarm
    this.scrapes = new ScrapeRouter(ctx, this.swarm)
    this.fullScrape = cfg.protocol.enable_full_scrape
      ? new FullScrape(ctx, new BencodeFullScrape(this.swarm, ctx), cfg.protocol.full_scrape_interval * 1000)
      : null
    this.handler = new HttpHandler(ctx, this.stats, this.shard, this.scrapes, this.fullScrape)
    this.transport = this.handler.transport
    this.forwarding = this.handler.forwarding
    registerWorkerMetrics(ctx.registry, ctx.index, this.stats, this.swarm.gauges(), () => this.transport.size)
    ctx.mesh?.route([this.scrapes, this.forwarding, this.fullScrape])
    // The largest frames: an announce or its reply, a scrape part, or (when on) a full-scrape chunk.
    ctx.mesh?.limitFrames(
      Math.max(HttpForwarding.maxFrame(cfg.protocol.max_response_peers), scrapeRequestBytes(cfg.protocol.max_scrape_torrents), this.fullScrape?.maxFrame ?? 0),
    )
  }

  async start(): Promise<Listener[]> {
    const net4 = this.cfg.network
    this.clock = setInterval(() => {
      this.shard.tick()
      this.transport.sweep()
      this.forwarding?.expire()
    }, 1000)
    this.clock.unref()
    this.fullScrape?.start()
    const scheme = this.ctx.tls ? 'https' : 'http'
    const more = {path: '/announce', ...(this.transport.batched ? {io: 'batched I/O'} : {})}
    const listening: Listener[] = []
    if (net4.use_ipv4) {
      const port = await this.transport.listen(net4.address_ipv4, 4, this.ctx.count, this.ctx.ports)
      listening.push(listenerAt(scheme, net4.address_ipv4, port, more))
    }
    if (net4.use_ipv6) {
      const port = await this.transport.listen(net4.address_ipv6, 6, this.ctx.count, this.ctx.ports)
      listening.push(listenerAt(scheme, net4.address_ipv6, port, more))
    }
    return listening
  }

  setTls(material: TlsMaterial): void {
    this.transport.setTls(material)
  }

  clean(): void {
    this.shard.clean()
  }

  async close(): Promise<void> {
    if (this.clock) clearInterval(this.clock)
    this.fullScrape?.close()
    await this.transport.close()
  }
}
