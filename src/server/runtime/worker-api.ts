/**
 * The contract between the runtime and a protocol's workers: what a worker is given
 * (WorkerContext), what it must do (ProtocolWorker), and what a running tracker offers its caller.
 */
import {availableParallelism} from 'node:os'
import type {AccessList, AccessListMode} from '../../accesslist/index.js'
import type {Registry} from '../../metrics/index.js'
import type {Logger, LogFormat, LogLevel} from '../../util/log.js'
import type {Mesh} from '../mesh.js'
import type {TrackerStatus} from '../../process/status.js'
import type {TlsMaterial} from '../tls.js'
import type {Listener} from './listener.js'

/** The keys every server config has (see src/config); the runtime reads nothing else. */
export interface RuntimeConfig {
  socket_workers: number
  log_level: LogLevel
  log_format: LogFormat
  pid_file: string
  metrics: {run_prometheus_endpoint: boolean; prometheus_endpoint_address: string}
  privileges: {drop_privileges: boolean; user: string; group: string}
  access_list: {mode: AccessListMode; path: string}
  cleaning: {torrent_cleaning_interval: number}
  /** Every protocol listens on an IPv4 and an IPv6 address ("host:port"). */
  network: {address_ipv4: string; address_ipv6: string}
}

/** Ports by IP version (see WorkerContext.ports). */
export interface WorkerPorts {
  ipv4?: number
  ipv6?: number
}

/** What a protocol worker gets from the runtime. */
export interface WorkerContext<C extends RuntimeConfig = RuntimeConfig> {
  index: number
  count: number
  config: C
  /** 32 random bytes made once per tracker and shared by all workers (e.g. UDP connection ids). */
  secret: Buffer
  /** Time base shared by all workers, in ms since the Unix epoch. */
  epochMs: number
  /**
   * Where the configured port is 0 and there are several workers: the ports worker 0 bound. A
   * worker that binds a socket of its own (SO_REUSEPORT) must use them; a socket shared through
   * cluster keeps port 0 (the primary shares one socket for it).
   */
  ports?: WorkerPorts
  accessList: AccessList
  log: Logger
  /** This worker's metrics registry (merged across workers by the primary). */
  registry: Registry
  /** Links to the other workers; undefined when there is only one worker. */
  mesh?: Mesh
  /** Which worker owns the swarm shard of an info hash. */
  ownerOf(infoHash: Uint8Array, offset: number): number
  /** Certificate and key when the config turns TLS on (read and checked by the primary). */
  tls?: TlsMaterial
}

export interface ProtocolWorker {
  /** Bind sockets and serve; returns what it listens on. */
  start(): Promise<Listener[]>
  /** Periodic swarm cleaning (torrents the access list now refuses go too). */
  clean(): void
  /** New certificate and key after a reload, for new connections (servers with TLS). */
  setTls?(material: TlsMaterial): void
  close(): Promise<void>
}

export type WorkerFactory<C extends RuntimeConfig> = (ctx: WorkerContext<C>) => ProtocolWorker | Promise<ProtocolWorker>

export interface TrackerSpec<C extends RuntimeConfig> {
  protocol: 'udp' | 'http' | 'ws'
  config: C
  /** URL of a module exporting `createWorker: WorkerFactory<C>` (worker processes import it). */
  workerModule: string
}

export interface RunningTracker {
  /** What it listens on, each address once (the metrics endpoint last). */
  listeners: Listener[]
  /** Resolves when the tracker has stopped (signal or fatal error); value is the exit code. */
  done: Promise<number>
  stop(): Promise<void>
  reloadAccessList(): Promise<TrackerStatus>
}

export function resolveWorkerCount(socketWorkers: number): number {
  return socketWorkers === 0 ? availableParallelism() : socketWorkers
}

/** aquatic routes by the first byte; so do we, so shards are even for random info hashes. */
export function shardOf(infoHash: Uint8Array, offset: number, count: number): number {
  return infoHash[offset] % count
}

/** Imports a protocol's worker module and makes its worker. */
export async function createProtocolWorker<C extends RuntimeConfig>(workerModule: string, ctx: WorkerContext<C>): Promise<ProtocolWorker> {
  const {createWorker} = (await import(workerModule)) as {createWorker: WorkerFactory<C>}
  return createWorker(ctx)
}

/** Runs the worker's swarm cleaning every `[cleaning] torrent_cleaning_interval` seconds, without keeping the process alive. */
export function startCleaning(worker: ProtocolWorker, config: RuntimeConfig): NodeJS.Timeout {
  const timer = setInterval(() => worker.clean(), config.cleaning.torrent_cleaning_interval * 1000)
  timer.unref()
  return timer
}
