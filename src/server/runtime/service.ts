import {randomBytes} from 'node:crypto'
import {type MetricsJson, Registry, registerTrackerMetrics} from '../../metrics/index.js'
import type {Logger} from '../../util/log.js'
import {version} from '../../version.js'
import {BindError} from '../listen.js'
import {loadTlsMaterial, tlsConfigOf, TlsError, type TlsConfig, type TlsMaterial} from '../tls.js'
import type {PrimaryAccessList} from './access-list.js'
import {ClusterWorkers} from './cluster.js'
import {InProcessWorker} from './in-process.js'
import type {Listener} from './listener.js'
import {resolveWorkerCount, type RuntimeConfig, type TrackerSpec, type WorkerContext} from './worker-api.js'
import type {Workers} from './workers.js'

/** What a protocol needs from the tracker it runs in. */
export interface ServiceHost {
  log: Logger
  accessList: PrimaryAccessList
  startedAt: number
  /** The registry of the tracker's own metrics when this is its only protocol; else the service has one of its own. */
  registry?: Registry
  /** Who logs, for worker processes (the primary's `log` already says it): {protocol: "ws"} under `serve all`. */
  logFields?: Record<string, string>
  /** A worker failed or exited after start: the tracker stops. */
  onFatal(message: string): void
}

/**
 * One protocol of a running tracker, in the primary: its workers (in this process or a cluster),
 * its TLS pair, and the registry of its metrics. `serve PROTOCOL` runs one; `serve all` one per
 * protocol under one supervisor.
 */
export class ProtocolService<C extends RuntimeConfig = RuntimeConfig> {
  readonly protocol: TrackerSpec<C>['protocol']
  readonly config: C
  readonly count: number
  readonly registry: Registry
  private readonly tlsConfig: TlsConfig | undefined
  private created: Workers | undefined

  constructor(
    private readonly spec: TrackerSpec<C>,
    private readonly host: ServiceHost,
  ) {
    this.protocol = spec.protocol
    this.config = spec.config
    this.count = resolveWorkerCount(spec.config.socket_workers)
    this.tlsConfig = tlsConfigOf(spec.config)
    this.registry = host.registry ?? new Registry()
    const {inForce, reloads} = host.accessList
    registerTrackerMetrics(
      this.registry,
      spec.protocol,
      version,
      host.startedAt,
      {entries: () => inForce.entries, generation: () => inForce.generation, reloads: () => reloads},
      this.onlyProtocol,
    )
  }

  /** The tracker serves this protocol alone (`serve PROTOCOL`), not as one of several (`serve all`). */
  private get onlyProtocol(): boolean {
    return this.host.registry !== undefined
  }

  /** Reads the certificate and key (a bad pair refuses to start) and forks or makes the workers. */
  async create(): Promise<Workers> {
    const tls = this.tlsConfig ? await loadTlsMaterial(this.tlsConfig) : undefined
    this.created = this.makeWorkers(tls)
    return this.created
  }

  /** The workers, once created. */
  get workers(): Workers {
    if (!this.created) throw new Error(`internal: the ${this.protocol} workers were not created`)
    return this.created
  }

  /** What the workers listen on, the protocol's own sockets. */
  async start(): Promise<Listener[]> {
    try {
      return await this.workers.start()
    } catch (error) {
      // In an `all` config the key sits in the protocol's table: "[udp.network] address_ipv4".
      if (error instanceof BindError && !this.onlyProtocol)
        throw BindError.fromFields({...error.toFields(), key: error.key.replace(/^\[/, `[${this.protocol}.`)})
      throw error
    }
  }

  metrics(): Promise<MetricsJson> {
    return this.workers.metrics()
  }

  async close(): Promise<void> {
    await this.created?.close()
  }

  /** A broken certificate or key keeps the previous pair in force; undefined when TLS is off. */
  async reloadTls(): Promise<{ok: boolean; error: string | null} | undefined> {
    if (!this.tlsConfig) return undefined
    try {
      await this.workers.setTls(await loadTlsMaterial(this.tlsConfig))
      this.host.log.info(`${this.protocol}: TLS certificate and key reloaded; new connections use them`)
      return {ok: true, error: null}
    } catch (e) {
      const message = e instanceof TlsError ? e.message : String(e)
      this.host.log.error(`${this.protocol}: TLS reload failed, the previous certificate stays in force: ${message}`)
      return {ok: false, error: message}
    }
  }

  private makeWorkers(tls: TlsMaterial | undefined): Workers {
    const {config, count, spec, host} = this
    const secret = randomBytes(32)
    const epochMs = Date.now()
    if (count === 1) {
      const ctx: WorkerContext<C> = {
        index: 0,
        count: 1,
        config,
        secret,
        epochMs,
        accessList: host.accessList.list,
        log: host.log,
        registry: this.registry,
        tls,
        ownerOf: () => 0,
      }
      return new InProcessWorker(spec.workerModule, ctx)
    }
    return new ClusterWorkers({
      protocol: spec.protocol,
      workerModule: spec.workerModule,
      count,
      config,
      secret,
      epochMs,
      accessListGeneration: host.accessList.list.generation,
      registry: this.registry,
      tls,
      logFields: host.logFields,
      onFatal: message => host.onFatal(message),
    })
  }
}
