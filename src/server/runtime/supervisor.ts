import type {Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {parseSocketAddress} from '../../config/address.js'
import {collectProcessMetrics, Registry, renderMetrics, startMetricsServer} from '../../metrics/index.js'
import {PidFileError, TrackerFiles, type TrackerStatus} from '../../process/status.js'
import {createLogger, type Logger} from '../../util/log.js'
import {BindError} from '../listen.js'
import {dropPrivileges} from '../privileges.js'
import {takeOverSignals} from '../signals.js'
import {PrimaryAccessList} from './access-list.js'
import {formatListener, listenerAt, type Listener} from './listener.js'
import {OneAtATime} from './one-at-a-time.js'
import {ProtocolService} from './service.js'
import type {RunningTracker, RuntimeConfig, TrackerSpec} from './worker-api.js'
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
  return runTrackers([spec], options)
}

/**
 * Runs several protocols as one tracker (`serve all`): one pid and status file, one log, one
 * metrics endpoint, one access list, one set of signals; a failure of any protocol stops them all.
 * The shared keys (log, pid file, metrics, privileges, access list) are read from the first spec:
 * the `all` config gives every protocol the same values.
 */
export async function runTrackers(specs: TrackerSpec<RuntimeConfig>[], options: RunOptions = {}): Promise<RunningTracker> {
  const config = specs[0].config
  const log = createLogger(config.log_level, {format: config.log_format})
  const files = claimFiles(config.pid_file, log)
  try {
    return await new Supervisor(specs, options, log, files).start()
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

/** The primary: starts each protocol's workers, serves metrics, reloads, and stops everything on a signal or a failure. */
class Supervisor {
  /** The keys every protocol shares (the first protocol's config holds them). */
  private readonly config: RuntimeConfig
  private readonly startedAt = Date.now()
  private readonly accessList: PrimaryAccessList
  /** The process metrics of the primary (and, with one protocol, its tracker metrics too). */
  private readonly registry = new Registry()
  private readonly services: ProtocolService[]
  private status: TrackerStatus
  private metricsServer: Server | undefined
  private stopping = false
  private resolveDone!: (code: number) => void
  private readonly done: Promise<number>
  private readonly reloads = new OneAtATime(() => this.reloadOnce())

  constructor(
    specs: TrackerSpec<RuntimeConfig>[],
    private readonly options: RunOptions,
    private readonly log: Logger,
    private readonly files: TrackerFiles,
  ) {
    this.config = specs[0].config
    this.accessList = new PrimaryAccessList(this.config.access_list, log)
    const single = specs.length === 1
    if (!single) collectProcessMetrics(this.registry)
    const host = {log, accessList: this.accessList, startedAt: this.startedAt, onFatal: (message: string) => this.fail(message)}
    this.services = specs.map(spec => {
      if (single) return new ProtocolService(spec, {...host, registry: this.registry})
      // Under `serve all` each protocol's lines say whose they are: "[protocol ws] [worker 1] ...".
      const logFields = {protocol: spec.protocol}
      return new ProtocolService(spec, {...host, log: createLogger(this.config.log_level, {format: this.config.log_format, fields: logFields}), logFields})
    })
    this.done = new Promise<number>(resolve => (this.resolveDone = resolve))
    this.status = {
      protocol: single ? specs[0].protocol : 'all',
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
    const listeners: Listener[] = []
    try {
      // A bad certificate or key at start refuses to start, like a bad access list.
      const workers: Workers[] = []
      for (const service of this.services) workers.push(await service.create())
      // Workers get the access list before serving.
      await Promise.all(workers.map(w => w.ready()))
      if (initialKeys) await this.accessList.putInForce(initialKeys, 1, workers)
      for (const service of this.services) listeners.push(...(await service.start()))
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

  /** The Prometheus endpoint: every protocol's metrics, and the primary's process metrics. */
  private async serveMetrics(): Promise<Listener> {
    const address = this.config.metrics.prometheus_endpoint_address
    const {host, port} = parseSocketAddress(address)!
    const single = this.services.length === 1
    const render = async (): Promise<string> => {
      const protocols = await Promise.all(this.services.map(async s => ({protocol: s.protocol, metrics: await s.metrics()})))
      return renderMetrics(protocols, single ? [] : [await this.registry.getMetricsAsJSON()])
    }
    try {
      this.metricsServer = await startMetricsServer(host, port, render, this.registry.contentType)
    } catch (error) {
      throw new BindError('serve metrics on', address, '[metrics] prometheus_endpoint_address', error)
    }
    return listenerAt('metrics', address, (this.metricsServer.address() as AddressInfo).port, {path: '/metrics'})
  }

  /** Once every socket is bound: the primary first, then each worker process. */
  private dropPrivileges(): void {
    dropPrivileges(this.config.privileges.user, this.config.privileges.group)
    for (const service of this.services) service.workers.dropPrivileges()
  }

  /** The status file and the log say what the tracker listens on. */
  private async announce(listeners: Listener[]): Promise<void> {
    const lines = listeners.map(formatListener)
    this.status = {...this.status, entries: this.accessList.inForce.entries, time: new Date().toISOString(), listening: lines}
    await this.writeStatus()
    // "udp tracker listening: udp 0.0.0.0:6969"; the metrics endpoint is the tracker's ("all" for `serve all`).
    const tag = (l: Listener): string =>
      l.service === 'metrics' ? this.status.protocol : l.service === 'https' ? 'http' : l.service === 'wss' ? 'ws' : l.service
    for (const l of listeners) this.log.info(`${tag(l)} tracker listening: ${formatListener(l)}`)
    const counts = this.services.map(s => `${this.services.length > 1 ? `${s.protocol} ` : ''}${s.count} worker${s.count === 1 ? '' : 's'}`).join(', ')
    this.log.info(`${counts}; access list mode ${this.accessList.list.mode}, ${this.accessList.inForce.entries} entries`)
  }

  /** One reload attempt (OneAtATime runs them): the access list, then the TLS files; the status file reports both. */
  private async reloadOnce(): Promise<TrackerStatus> {
    const generation = this.status.generation + 1
    const startedNs = process.hrtime.bigint().toString()
    const error = await this.accessList.reload(
      generation,
      this.services.map(s => s.workers),
    )
    const tls = await this.reloadTls()
    this.accessList.setGeneration(generation)
    this.status = {
      ...this.status,
      generation,
      startedNs,
      ok: error === null,
      entries: this.accessList.inForce.entries,
      error,
      time: new Date().toISOString(),
      ...(tls ? {tls} : {}),
    }
    await this.writeStatus()
    return this.status
  }

  /** Each protocol with TLS on re-reads its pair; one result for the status file (undefined when no protocol has TLS). */
  private async reloadTls(): Promise<TrackerStatus['tls']> {
    const results: {protocol: string; ok: boolean; error: string | null}[] = []
    for (const service of this.services) {
      const result = await service.reloadTls()
      if (result) results.push({protocol: service.protocol, ...result})
    }
    if (results.length === 0) return undefined
    const failed = results.filter(r => !r.ok)
    const single = this.services.length === 1
    return {ok: failed.length === 0, error: failed.length === 0 ? null : failed.map(r => (single ? r.error : `${r.protocol}: ${r.error}`)).join('; ')}
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
    await Promise.all(this.services.map(s => s.close()))
    this.files.release()
    this.resolveDone(code)
    if (exit) process.exit(code)
  }
}
