import cluster, {type Worker} from 'node:cluster'
import {randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {AccessList, AccessListError, buildSet, readAccessList, type AccessListMode} from '../accesslist/index.js'
import {addWorkerCounts, AggregatorRegistry, collectProcessMetrics, Registry, registerTrackerMetrics, startMetricsServer} from '../metrics/index.js'
import {createLogger, type Logger, type LogLevel} from '../util/log.js'
import {HashSet20} from '../util/hashset20.js'
import {version} from '../version.js'
import {Mesh} from './mesh.js'
import {dropPrivileges} from './privileges.js'
import {takeOverSignals} from './signals.js'
import {loadTlsMaterial, tlsConfigOf, TlsError, type TlsMaterial} from './tls.js'
import {PidFileError, TrackerFiles, type TrackerStatus} from '../process/status.js'

/** The keys every server config has (see src/config); the runtime reads nothing else. */
export interface RuntimeConfig {
  socket_workers: number
  log_level: LogLevel
  pid_file: string
  metrics: {run_prometheus_endpoint: boolean; prometheus_endpoint_address: string}
  privileges: {drop_privileges: boolean; user: string; group: string}
  access_list: {mode: AccessListMode; path: string}
  cleaning: {torrent_cleaning_interval: number}
  /** Every protocol listens on an IPv4 and an IPv6 address ("host:port"). */
  network: {address_ipv4: string; address_ipv6: string}
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
  ports?: {ipv4?: number; ipv6?: number}
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
  /** Bind sockets and serve; returns what it listens on (e.g. "udp 0.0.0.0:6969"). */
  start(): Promise<string[]>
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
  listening: string[]
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

// ---------------------------------------------------------------------------------------------
// Primary side

/**
 * Runs a tracker: one in-process worker when `socket_workers` is 1, else a cluster of worker
 * processes linked by a mesh, each owning a shard of the swarm. Handles the access list, pid and
 * status files, metrics endpoint, signals, privilege drop and fail-fast supervision.
 *
 * The pid file is claimed first, before anything is read or bound: while a live tracker holds
 * it, a second one fails at once (PidFileError) and touches nothing of the first.
 */
export async function runTracker<C extends RuntimeConfig>(
  spec: TrackerSpec<C>,
  options: {installSignals?: boolean; exitOnStop?: boolean} = {},
): Promise<RunningTracker> {
  const log = createLogger(spec.config.log_level)
  const pidFile = spec.config.pid_file
  let files: TrackerFiles
  try {
    files = TrackerFiles.claim(pidFile)
  } catch (error) {
    if (error instanceof PidFileError) throw error
    log.warn(`could not write pid file ${pidFile} (${(error as Error).message}); \`tracker accesslist reload\` will need --pid`)
    files = TrackerFiles.unclaimed(pidFile)
  }
  try {
    return await startTracker(spec, options, log, files)
  } catch (error) {
    files.release()
    throw error
  }
}

async function startTracker<C extends RuntimeConfig>(
  spec: TrackerSpec<C>,
  options: {installSignals?: boolean; exitOnStop?: boolean},
  log: Logger,
  files: TrackerFiles,
): Promise<RunningTracker> {
  const {config, protocol} = spec
  const startedAt = Date.now()
  const count = resolveWorkerCount(config.socket_workers)
  const accessList = new AccessList(config.access_list.mode)
  const reloads = {ok: 0, error: 0}
  /** The list in force: its entries (duplicates counted once) and the attempt that made it so. */
  const inForce = {entries: 0, generation: 1}
  let status: TrackerStatus = {
    protocol,
    pid: process.pid,
    generation: 1,
    startedNs: process.hrtime.bigint().toString(),
    ok: true,
    entries: 0,
    error: null,
    time: '',
    listening: [],
  }

  // A bad list at start refuses to start (AccessListError carries file and line).
  const initialKeys = accessList.mode === 'off' ? undefined : await readAccessList(config.access_list.path)
  accessList.generation = 1
  // A bad certificate or key at start refuses to start, like a bad access list.
  const tlsConfig = tlsConfigOf(config)
  let tls = tlsConfig ? await loadTlsMaterial(tlsConfig) : undefined

  const registry = new Registry()
  registerTrackerMetrics(registry, protocol, version, startedAt, {
    entries: () => inForce.entries,
    generation: () => inForce.generation,
    reloads: () => reloads,
  })

  const secret = randomBytes(32)
  const epochMs = Date.now()
  let resolveDone!: (code: number) => void
  const done = new Promise<number>(resolve => (resolveDone = resolve))
  let stopping = false

  let local: ProtocolWorker | undefined
  let cleaningTimer: NodeJS.Timeout | undefined
  const workers: Worker[] = []
  let meshDir: string | undefined
  // Declared before the workers start: a failing worker shuts down through code that reads it.
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined
  let listening: string[] = []
  const replies = new Map<number, (msg: WorkerReply) => void>()
  let nextRequest = 1

  /** Asks every worker; a worker that has not answered within WORKER_REPLY_MS fails the question. */
  const askAll = async (make: (id: number) => PrimaryMessage): Promise<WorkerReply[]> =>
    Promise.all(
      workers.map(
        (w, i) =>
          new Promise<WorkerReply>((resolve, reject) => {
            const id = nextRequest++
            const timer = setTimeout(() => {
              replies.delete(id)
              reject(new Error(`worker ${i} did not answer within ${WORKER_REPLY_MS / 1000} s`))
            }, WORKER_REPLY_MS)
            replies.set(id, msg => {
              clearTimeout(timer)
              resolve(msg)
            })
            w.send(make(id))
          }),
      ),
    )

  const fail = (message: string): void => {
    if (stopping) return
    log.error(message)
    void shutdown(1)
  }

  if (count === 1) {
    if (initialKeys) await putInForce(initialKeys, 1)
    const ctx: WorkerContext<C> = {
      index: 0,
      count: 1,
      config,
      secret,
      epochMs,
      accessList,
      log,
      registry,
      tls,
      ownerOf: () => 0,
    }
    const {createWorker} = (await import(spec.workerModule)) as {createWorker: WorkerFactory<C>}
    local = await createWorker(ctx)
    listening = await local.start()
    cleaningTimer = setInterval(() => local!.clean(), config.cleaning.torrent_cleaning_interval * 1000)
    cleaningTimer.unref()
  } else {
    meshDir = mkdtempSync(join(tmpdir(), `tracker-${protocol}-`))
    cluster.setupPrimary({exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), serialization: 'advanced', silent: false})
    const boot: WorkerBoot = {
      protocol,
      workerModule: spec.workerModule,
      count,
      meshDir,
      secret: secret.toString('hex'),
      epochMs,
      config,
      accessListGeneration: accessList.generation,
    }
    const phase = new Map<number, (msg: WorkerReply) => void>()
    for (let i = 0; i < count; i++) {
      const worker = cluster.fork({TRACKER_WORKER_BOOT: JSON.stringify({...boot, index: i})})
      workers.push(worker)
      worker.on('message', (msg: WorkerReply) => {
        if (msg.type === 'fatal') return fail(`worker ${i}: ${msg.message}`)
        const reply = msg.id !== undefined ? replies.get(msg.id) : undefined
        if (reply) {
          replies.delete(msg.id!)
          return reply(msg)
        }
        phase.get(i)?.(msg)
      })
      worker.on('exit', (code, signal) => {
        if (!stopping) fail(`worker ${i} (pid ${worker.process.pid}) exited unexpectedly (${signal ?? `code ${code}`}); stopping the tracker`)
      })
    }
    const waitPhase = (type: WorkerReply['type']): Promise<WorkerReply[]> =>
      Promise.all(
        workers.map(
          (_, i) =>
            new Promise<WorkerReply>((resolve, reject) => {
              phase.set(i, msg => (msg.type === type ? resolve(msg) : reject(new Error(`worker ${i}: unexpected ${msg.type}`))))
            }),
        ),
      )
    // Workers get the access list before serving.
    await waitPhase('booted')
    if (initialKeys) await putInForce(initialKeys, 1)
    if (tls) for (const w of workers) w.send({type: 'tls', ...tls} satisfies PrimaryMessage)
    const meshUp = waitPhase('mesh-listening')
    for (const w of workers) w.send({type: 'mesh-listen'} satisfies PrimaryMessage)
    await meshUp
    let replies0: WorkerReply[]
    const net = config.network
    if (splitHostPort(net.address_ipv4)[1] === 0 || splitHostPort(net.address_ipv6)[1] === 0) {
      // Ephemeral ports: worker 0 binds first, and a worker that binds a socket of its own takes
      // the ports it got (it would get other ones otherwise).
      const first = new Promise<WorkerReply>(resolve => phase.set(0, resolve))
      workers[0].send({type: 'start'} satisfies PrimaryMessage)
      const reply = await first
      if (reply.type !== 'listening') throw new Error(`worker 0: unexpected ${reply.type}`)
      const ports = portsOf(reply.listening ?? [])
      const rest = Promise.all(workers.slice(1).map((_, j) => new Promise<WorkerReply>(resolve => phase.set(j + 1, resolve))))
      for (const w of workers.slice(1)) w.send({type: 'start', ports} satisfies PrimaryMessage)
      replies0 = [reply, ...(await rest)]
    } else {
      const started = waitPhase('listening')
      for (const w of workers) w.send({type: 'start'} satisfies PrimaryMessage)
      replies0 = await started
    }
    // Every worker binds the same addresses; list them once.
    listening = [...new Set(replies0.flatMap(r => r.listening ?? []))]
  }

  if (config.metrics.run_prometheus_endpoint) {
    const [host, port] = splitHostPort(config.metrics.prometheus_endpoint_address)
    // Scrapes that come while the workers are being asked share that answer: one question in flight.
    let asking: Promise<string> | undefined
    const askWorkers = async (): Promise<string> => {
      const parts = await askAll(id => ({type: 'metrics', id}))
      const jsons = [await registry.getMetricsAsJSON(), ...parts.map(p => p.metrics!)]
      return AggregatorRegistry.aggregate(jsons as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics()
    }
    const render = count === 1 ? () => registry.metrics() : () => (asking ??= askWorkers().finally(() => (asking = undefined)))
    try {
      metricsServer = await startMetricsServer(host, port, render, registry.contentType)
      const bound = metricsServer.address() as {port: number}
      listening.push(`metrics http://${host.includes(':') ? `[${host}]` : host}:${bound.port}/metrics`)
    } catch (error) {
      await shutdown(1, false, false)
      throw new Error(
        `could not serve metrics on ${config.metrics.prometheus_endpoint_address} ([metrics] prometheus_endpoint_address): ${(error as Error).message}`,
      )
    }
  }

  if (config.privileges.drop_privileges) {
    try {
      dropPrivileges(config.privileges.user, config.privileges.group)
      for (const w of workers) w.send({type: 'drop-privileges'} satisfies PrimaryMessage)
    } catch (error) {
      await shutdown(1, false, false)
      throw error
    }
  }

  status = {...status, entries: inForce.entries, time: new Date().toISOString(), listening}
  await files.writeStatus(status).catch(e => log.warn(`could not write status file: ${(e as Error).message}`))
  for (const line of listening) log.info(`${protocol} tracker listening: ${line}`)
  log.info(`${count} worker${count === 1 ? '' : 's'}; access list mode ${accessList.mode}, ${inForce.entries} entries`)

  /**
   * Puts a list in force without holding up replies for long: the set is built in slices and
   * swapped in one step. Workers get the table of the set the primary built, in parts of
   * PART_BYTES (a memory copy each, no hashing), and swap it in once it is whole.
   */
  async function putInForce(keys: Buffer, generation: number): Promise<void> {
    const set = await buildSet(keys)
    if (workers.length === 0) accessList.replace(set)
    else {
      const split = set.capacity * 20
      await Promise.all(
        workers.map(async w => {
          await sendTo(w, {type: 'access-list-begin', generation, capacity: set.capacity, seed: set.seed, size: set.size})
          for (const [from, to] of [
            [0, split],
            [split, set.tableLength],
          ]) {
            for (let at = from; at < to; at += PART_BYTES) {
              await sendTo(w, {type: 'access-list-part', at, bytes: set.tableSlice(at, Math.min(to, at + PART_BYTES))})
            }
          }
          await new Promise<WorkerReply>(resolve => {
            const id = nextRequest++
            replies.set(id, resolve)
            w.send({type: 'access-list-end', id, generation} satisfies PrimaryMessage)
          })
        }),
      )
    }
    inForce.entries = set.size
  }

  // Reloads run one at a time. A request during one makes one more after it, shared by every
  // request until it starts, so the list in force is always the last one read.
  let running: Promise<TrackerStatus> | undefined
  let queued: Promise<TrackerStatus> | undefined
  function reloadAccessList(): Promise<TrackerStatus> {
    if (queued) return queued
    if (!running) return startReload()
    const next = (): Promise<TrackerStatus> => {
      queued = undefined
      return startReload()
    }
    queued = running.then(next, next)
    return queued
  }
  function startReload(): Promise<TrackerStatus> {
    const attempt: Promise<TrackerStatus> = reloadOnce().finally(() => {
      if (running === attempt) running = undefined
    })
    running = attempt
    return attempt
  }

  async function reloadOnce(): Promise<TrackerStatus> {
    const generation = status.generation + 1
    const startedNs = process.hrtime.bigint().toString()
    let error: string | null = null
    if (accessList.mode !== 'off') {
      try {
        await putInForce(await readAccessList(config.access_list.path), generation)
        reloads.ok++
        log.info(`access list reloaded: ${inForce.entries} entries (generation ${generation})`)
      } catch (e) {
        error = e instanceof AccessListError ? e.message : String(e)
        reloads.error++
        log.error(`access list reload failed, the previous list stays in force: ${error}`)
      }
    } else {
      reloads.ok++
    }
    let tlsResult: TrackerStatus['tls']
    if (tlsConfig) {
      try {
        const material = await loadTlsMaterial(tlsConfig)
        if (workers.length > 0) await askAll(id => ({type: 'tls', id, ...material}))
        local?.setTls?.(material)
        tls = material
        tlsResult = {ok: true, error: null}
        log.info('TLS certificate and key reloaded; new connections use them')
      } catch (e) {
        const message = e instanceof TlsError ? e.message : String(e)
        tlsResult = {ok: false, error: message}
        log.error(`TLS reload failed, the previous certificate stays in force: ${message}`)
      }
    }
    accessList.generation = inForce.generation = generation
    status = {
      ...status,
      generation,
      startedNs,
      ok: error === null,
      entries: inForce.entries,
      error,
      time: new Date().toISOString(),
      ...(tlsResult ? {tls: tlsResult} : {}),
    }
    await files.writeStatus(status).catch(e => log.warn(`could not write status file: ${(e as Error).message}`))
    return status
  }

  /** `exit` false on start-up failures: the caller reports the error, then exits. */
  async function shutdown(code: number, announce = true, exit = options.exitOnStop): Promise<void> {
    if (stopping) return
    stopping = true
    if (announce) log.info('stopping')
    if (cleaningTimer) clearInterval(cleaningTimer)
    metricsServer?.close()
    await local?.close()
    if (workers.length > 0) {
      await Promise.all(
        workers.map(
          w =>
            new Promise<void>(resolve => {
              if (w.isDead()) return resolve()
              const timer = setTimeout(() => w.kill('SIGKILL'), 5000)
              w.once('exit', () => {
                clearTimeout(timer)
                resolve()
              })
              try {
                w.send({type: 'shutdown'} satisfies PrimaryMessage)
              } catch {
                w.kill('SIGTERM')
              }
            }),
        ),
      )
    }
    if (meshDir) rmSync(meshDir, {recursive: true, force: true})
    files.release()
    resolveDone(code)
    if (exit) process.exit(code)
  }

  if (options.installSignals) {
    takeOverSignals({
      SIGUSR1: () => void reloadAccessList(),
      SIGINT: () => void shutdown(0),
      SIGTERM: () => void shutdown(0),
    })
  }

  return {listening, done, stop: () => shutdown(0), reloadAccessList}
}

/** The IPv4 and IPv6 ports in "listening" lines (`udp 1.2.3.4:6969 (...)`, `http://[::1]:80/announce`). */
export function portsOf(lines: string[]): {ipv4?: number; ipv6?: number} {
  const out: {ipv4?: number; ipv6?: number} = {}
  for (const line of lines) {
    const m = /(\[[0-9a-fA-F:.]*\]|\d+\.\d+\.\d+\.\d+):(\d+)/.exec(line)
    if (!m) continue
    if (m[1].startsWith('[')) out.ipv6 ??= Number(m[2])
    else out.ipv4 ??= Number(m[2])
  }
  return out
}

export function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(':')
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1')
  return [host, Number(address.slice(at + 1))]
}

// ---------------------------------------------------------------------------------------------
// Messages between the primary and worker processes

export interface WorkerBoot {
  protocol: string
  workerModule: string
  count: number
  meshDir: string
  secret: string
  epochMs: number
  config: RuntimeConfig
  accessListGeneration: number
  index?: number
}

/** How long the primary waits for a worker's answer (metrics, TLS material) before giving up. */
const WORKER_REPLY_MS = 10_000

/** Bytes of an access list's table per 'access-list-part' message (a memory copy for the worker). */
const PART_BYTES = 160 * 1024

/** Resolves once `msg` is handed to the channel, so that a big list goes out at the pace the worker reads it. */
const sendTo = (w: Worker, msg: PrimaryMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    w.send(msg, error => (error ? reject(error) : resolve()))
  })

export type PrimaryMessage =
  /** An access list comes as the primary's set: begin, parts of its table (see HashSet20), end. */
  | {type: 'access-list-begin'; generation: number; capacity: number; seed: Uint8Array; size: number}
  | {type: 'access-list-part'; at: number; bytes: Uint8Array}
  | {type: 'access-list-end'; id: number; generation: number}
  | {type: 'tls'; id?: number; cert: Buffer | Uint8Array; key: Buffer | Uint8Array}
  | {type: 'mesh-listen'}
  /** `ports`: the ports worker 0 got for a configured port 0 (see WorkerContext.ports). */
  | {type: 'start'; ports?: {ipv4?: number; ipv6?: number}}
  | {type: 'metrics'; id: number}
  | {type: 'drop-privileges'}
  | {type: 'shutdown'}

export interface WorkerReply {
  type: 'booted' | 'mesh-listening' | 'listening' | 'ack' | 'metrics' | 'fatal'
  id?: number
  listening?: string[]
  metrics?: unknown
  message?: string
}

// ---------------------------------------------------------------------------------------------
// Worker side (called from worker-main.ts in each worker process)

export async function runWorkerProcess(boot: Required<WorkerBoot>): Promise<void> {
  const send = (msg: WorkerReply) => process.send!(msg)
  const fatal = (message: string) => {
    try {
      send({type: 'fatal', message})
    } finally {
      setTimeout(() => process.exit(1), 100)
    }
  }
  // The primary coordinates signals; a terminal's Ctrl-C reaches every process of the group.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const) process.on(sig, () => {})
  process.on('disconnect', () => process.exit(1))
  process.on('uncaughtException', error => fatal(`uncaught exception: ${error.stack ?? String(error)}`))

  const config = boot.config
  const log = createLogger(config.log_level, `[worker ${boot.index}] `)
  const accessList = new AccessList(config.access_list.mode)
  accessList.generation = boot.accessListGeneration
  const registry = new Registry()
  const mesh = new Mesh(boot.index, boot.count, boot.meshDir, reason => fatal(`mesh ${reason}`))
  addWorkerCounts(registry, {drops: () => mesh.drops()})
  const ctx: WorkerContext = {
    index: boot.index,
    count: boot.count,
    config,
    secret: Buffer.from(boot.secret, 'hex'),
    epochMs: boot.epochMs,
    accessList,
    log,
    registry,
    mesh,
    ownerOf: (hash, offset) => shardOf(hash, offset, boot.count),
  }
  let worker: ProtocolWorker | undefined
  let cleaningTimer: NodeJS.Timeout | undefined
  /** The access list being received: filled as its parts come, in force at its end. */
  let incoming: HashSet20 | undefined
  collectProcessMetrics(registry)

  process.on('message', (msg: PrimaryMessage) => {
    void (async () => {
      switch (msg.type) {
        case 'access-list-begin':
          incoming = HashSet20.emptyCopy(msg.capacity, msg.seed, msg.size)
          return
        case 'access-list-part':
          incoming!.writeTable(msg.at, msg.bytes)
          return
        case 'access-list-end':
          accessList.replace(incoming!)
          accessList.generation = msg.generation
          incoming = undefined
          send({type: 'ack', id: msg.id})
          return
        case 'tls': {
          const material = {cert: Buffer.from(msg.cert), key: Buffer.from(msg.key)}
          ctx.tls = material
          worker?.setTls?.(material)
          if (msg.id !== undefined) send({type: 'ack', id: msg.id})
          return
        }
        case 'mesh-listen':
          await mesh.listen()
          send({type: 'mesh-listening'})
          return
        case 'start': {
          ctx.ports = msg.ports
          await mesh.connect()
          const {createWorker} = (await import(boot.workerModule)) as {createWorker: WorkerFactory<RuntimeConfig>}
          worker = await createWorker(ctx)
          const listening = await worker.start()
          cleaningTimer = setInterval(() => worker!.clean(), config.cleaning.torrent_cleaning_interval * 1000)
          cleaningTimer.unref()
          send({type: 'listening', listening})
          return
        }
        case 'metrics':
          send({type: 'metrics', id: msg.id, metrics: await registry.getMetricsAsJSON()})
          return
        case 'drop-privileges':
          dropPrivileges(config.privileges.user, config.privileges.group)
          return
        case 'shutdown':
          if (cleaningTimer) clearInterval(cleaningTimer)
          await worker?.close()
          await mesh.close()
          process.exit(0)
      }
    })().catch((error: unknown) => fatal(error instanceof Error ? error.message : String(error)))
  })
  send({type: 'booted'})
}
