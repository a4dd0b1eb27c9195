import {randomBytes} from 'node:crypto'
import type {Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {parseSocketAddress} from '../../config/address.js'
import {Registry, registerTrackerMetrics, startMetricsServer} from '../../metrics/index.js'
import {createLogger, type Logger} from '../../util/log.js'
import {version} from '../../version.js'
import {BindError} from '../listen.js'
import {dropPrivileges} from '../privileges.js'
import {takeOverSignals} from '../signals.js'
import {PidFileError, TrackerFiles, type TrackerStatus} from '../../process/status.js'
import {loadTlsMaterial, tlsConfigOf, TlsError, type TlsConfig, type TlsMaterial} from '../tls.js'
import {PrimaryAccessList} from './access-list.js'
import {ClusterWorkers} from './cluster.js'
import {InProcessWorker} from './in-process.js'
import {formatListener, listenerAt, type Listener} from './listener.js'
import {OneAtATime} from './one-at-a-time.js'
import {resolveWorkerCount, type RunningTracker, type RuntimeConfig, type TrackerSpec, type WorkerContext} from './worker-api.js'
import type {Workers} from './workers.js'

export interface RunOptions {
  /** Take over SIGUSR1 (reload), SIGINT and SIGTERM (stop) from the early handlers. */
  installSignals?: boolean
  /** Exit the process with the tracker's exit code once it has stopped. */
  exitOnStop?: boolean
}

/**
 * Runs a tracker: one in-process worker when `socket_workers` is 1, else a cluster of worker
 * processes linked by a mesh, each owning a shard of the swarm. Handles the access list, pid and
 * status files, metrics endpoint, signals, privilege drop and fail-fast supervision.
 *
 * The pid file is claimed first, before anything is read or bound: while a live tracker holds
 * it, a second one fails at once (PidFileError) and touches nothing of the first.
 */
export async function runTracker<C extends RuntimeConfig>(spec: TrackerSpec<C>, options: RunOptions = {}): Promise<RunningTracker> {
  const log = createLogger(spec.config.log_level, {format: spec.config.log_format})
  const files = claimFiles(spec.config.pid_file, log)
  try {
    return await new Supervisor(spec, options, log, files).start()
  } catch (error) {
    files.release()
    throw error
  }
}

/** The pid file, or a tracker without one (then `tracker accesslist reload` needs --pid). */
function claimFiles(pidFile: string, log: Logger): TrackerFiles {
  try {
    return TrackerFiles.claim(pidFile)
  } catch (error) {
    if (error instanceof PidFileError) throw error
    log.warn(`could not write pid file ${pidFile} (${(error as Error).message}); \`tracker accesslist reload\` will need --pid`)
    return TrackerFiles.unclaimed(pidFile)
  }
}

/** The primary: starts the workers, serves metrics, reloads, and stops everything on a signal or a failure. */
class Supervisor<C extends RuntimeConfig> {
  private readonly config: C
  private readonly count: number
  private readonly startedAt = Date.now()
  private readonly accessList: PrimaryAccessList
  private readonly tlsConfig: TlsConfig | undefined
  private readonly registry = new Registry()
  private status: TrackerStatus
  private workers: Workers | undefined
  private metricsServer: Server | undefined
  private stopping = false
  private resolveDone!: (code: number) => void
  private readonly done: Promise<number>
  private readonly reloads = new OneAtATime(() => this.reloadOnce())

  constructor(
    private readonly spec: TrackerSpec<C>,
    private readonly options: RunOptions,
    private readonly log: Logger,
    private readonly files: TrackerFiles,
  ) {
    this.config = spec.config
    this.count = resolveWorkerCount(this.config.socket_workers)
    this.accessList = new PrimaryAccessList(this.config.access_list, log)
    this.tlsConfig = tlsConfigOf(this.config)
    this.done = new Promise<number>(resolve => (this.resolveDone = resolve))
    this.status = {
      protocol: spec.protocol,
      pid: process.pid,
      generation: 1,
      startedNs: process.hrtime.bigint().toString(),
      ok: true,
      entries: 0,
      error: null,
      time: '',
      listening: [],
    }
  }

  async start(): Promise<RunningTracker> {
    // A bad list at start refuses to start (AccessListError carries file and line).
    const initialKeys = await this.accessList.readInitial()
    // A bad certificate or key at start refuses to start, like a bad access list.
    const tls = this.tlsConfig ? await loadTlsMaterial(this.tlsConfig) : undefined
    const {inForce, reloads} = this.accessList
    registerTrackerMetrics(this.registry, this.spec.protocol, version, this.startedAt, {
      entries: () => inForce.entries,
      generation: () => inForce.generation,
      reloads: () => reloads,
    })

    const workers = (this.workers = this.makeWorkers(tls))
    let listeners: Listener[]
    try {
      // Workers get the access list before serving.
      await workers.ready()
      if (initialKeys) await this.accessList.putInForce(initialKeys, 1, workers)
      listeners = await workers.start()
      if (this.config.metrics.run_prometheus_endpoint) listeners.push(await this.serveMetrics())
      if (this.config.privileges.drop_privileges) this.dropPrivileges()
    } catch (error) {
      // What started stops (worker processes, sockets bound so far) and the tracker does not start.
      await this.shutdown(1, false, false)
      throw error
    }
    await this.announce(listeners)

    if (this.options.installSignals) {
      takeOverSignals({
        SIGUSR1: () => void this.reloads.request(),
        SIGINT: () => void this.shutdown(0),
        SIGTERM: () => void this.shutdown(0),
      })
    }
    return {listeners, done: this.done, stop: () => this.shutdown(0), reloadAccessList: () => this.reloads.request()}
  }

  private makeWorkers(tls: TlsMaterial | undefined): Workers {
    const {config, count, spec} = this
    const secret = randomBytes(32)
    const epochMs = Date.now()
    if (count === 1) {
      const ctx: WorkerContext<C> = {
        index: 0,
        count: 1,
        config,
        secret,
        epochMs,
        accessList: this.accessList.list,
        log: this.log,
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
      accessListGeneration: this.accessList.list.generation,
      registry: this.registry,
      tls,
      onFatal: message => this.fail(message),
    })
  }

  /** The Prometheus endpoint. */
  private async serveMetrics(): Promise<Listener> {
    const address = this.config.metrics.prometheus_endpoint_address
    const {host, port} = parseSocketAddress(address)!
    const workers = this.workers!
    try {
      this.metricsServer = await startMetricsServer(host, port, () => workers.metrics(), this.registry.contentType)
    } catch (error) {
      throw new BindError('serve metrics on', address, '[metrics] prometheus_endpoint_address', error)
    }
    return listenerAt('metrics', address, (this.metricsServer.address() as AddressInfo).port, {path: '/metrics'})
  }

  /** Once every socket is bound: the primary first, then each worker process. */
  private dropPrivileges(): void {
    dropPrivileges(this.config.privileges.user, this.config.privileges.group)
    this.workers!.dropPrivileges()
  }

  /** The status file and the log say what the tracker listens on. */
  private async announce(listeners: Listener[]): Promise<void> {
    const lines = listeners.map(formatListener)
    this.status = {...this.status, entries: this.accessList.inForce.entries, time: new Date().toISOString(), listening: lines}
    await this.writeStatus()
    for (const line of lines) this.log.info(`${this.spec.protocol} tracker listening: ${line}`)
    const {count} = this
    this.log.info(`${count} worker${count === 1 ? '' : 's'}; access list mode ${this.accessList.list.mode}, ${this.accessList.inForce.entries} entries`)
  }

  /** One reload attempt (OneAtATime runs them): the access list, then the TLS files; the status file reports both. */
  private async reloadOnce(): Promise<TrackerStatus> {
    const generation = this.status.generation + 1
    const startedNs = process.hrtime.bigint().toString()
    const error = await this.accessList.reload(generation, this.workers!)
    const tlsResult = this.tlsConfig ? await this.reloadTls(this.tlsConfig) : undefined
    this.accessList.setGeneration(generation)
    this.status = {
      ...this.status,
      generation,
      startedNs,
      ok: error === null,
      entries: this.accessList.inForce.entries,
      error,
      time: new Date().toISOString(),
      ...(tlsResult ? {tls: tlsResult} : {}),
    }
    await this.writeStatus()
    return this.status
  }

  /** A broken certificate or key keeps the previous pair in force. */
  private async reloadTls(config: TlsConfig): Promise<NonNullable<TrackerStatus['tls']>> {
    try {
      await this.workers!.setTls(await loadTlsMaterial(config))
      this.log.info('TLS certificate and key reloaded; new connections use them')
      return {ok: true, error: null}
    } catch (e) {
      const message = e instanceof TlsError ? e.message : String(e)
      this.log.error(`TLS reload failed, the previous certificate stays in force: ${message}`)
      return {ok: false, error: message}
    }
  }

  private async writeStatus(): Promise<void> {
    await this.files.writeStatus(this.status).catch(e => this.log.warn(`could not write status file: ${(e as Error).message}`))
  }

  private fail(message: string): void {
    if (this.stopping) return
    this.log.error(message)
    void this.shutdown(1)
  }

  /** `exit` false on start-up failures: the caller reports the error, then exits. */
  private async shutdown(code: number, announce = true, exit = this.options.exitOnStop): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    if (announce) this.log.info('stopping')
    this.metricsServer?.close()
    await this.workers?.close()
    this.files.release()
    this.resolveDone(code)
    if (exit) process.exit(code)
  }
}
