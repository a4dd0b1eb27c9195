import cluster, {type Worker} from 'node:cluster'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseSocketAddress} from '../../config/address.js'
import {mergeMetrics, type MetricsJson, type Registry} from '../../metrics/index.js'
import type {HashSet20} from '../../util/hashset20.js'
import {BindError} from '../listen.js'
import type {TlsMaterial} from '../tls.js'
import {BOOT_ENV, PART_BYTES, sendTo, WORKER_REPLY_MS, type PrimaryMessage, type WorkerBoot, type WorkerReply} from './ipc.js'
import {formatListener, type Listener} from './listener.js'
import type {RuntimeConfig, WorkerPorts} from './worker-api.js'
import type {Workers} from './workers.js'

export interface ClusterOptions {
  protocol: string
  workerModule: string
  count: number
  config: RuntimeConfig
  secret: Buffer
  epochMs: number
  accessListGeneration: number
  /** The primary's registry (the tracker's own metrics), merged with the workers'. */
  registry: Registry
  /** Certificate and key at start, when the config turns TLS on. */
  tls?: TlsMaterial
  /** Who logs, before each worker's index (see WorkerBoot). */
  logFields?: Record<string, string>
  /** A worker failed or exited: the tracker must stop. */
  onFatal(message: string): void
}

/**
 * `socket_workers` > 1: worker processes forked through node:cluster, linked by a mesh (unix
 * sockets in a directory of their own), each owning a shard of the swarm. Forked at construction,
 * so that a failing worker finds them to shut down.
 */
export class ClusterWorkers implements Workers {
  private readonly workers: Worker[] = []
  private readonly meshDir: string
  /** Questions waiting for their answer, by id. */
  private readonly replies = new Map<number, (msg: WorkerReply) => void>()
  private nextRequest = 1
  /** Who waits for each worker's next message outside a question (start-up phases). */
  private readonly phase = new Map<number, (msg: WorkerReply) => void>()
  private readonly booted: Promise<WorkerReply[]>
  private closing = false
  /** Scrapes that come while the workers are being asked share that answer: one question in flight. */
  private asking: Promise<MetricsJson> | undefined
  /** Until every worker listens, a worker's failure fails the start (the supervisor then stops the rest). */
  private started = false
  private failStart!: (error: Error) => void
  private readonly startFailed = new Promise<never>((_, reject) => (this.failStart = reject))

  constructor(private readonly o: ClusterOptions) {
    this.meshDir = mkdtempSync(join(tmpdir(), `tracker-${o.protocol}-`))
    cluster.setupPrimary({exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), serialization: 'advanced', silent: false})
    const boot: WorkerBoot = {
      protocol: o.protocol,
      workerModule: o.workerModule,
      count: o.count,
      meshDir: this.meshDir,
      secret: o.secret.toString('hex'),
      epochMs: o.epochMs,
      config: o.config,
      accessListGeneration: o.accessListGeneration,
      logFields: o.logFields,
    }
    this.startFailed.catch(() => {})
    for (let i = 0; i < o.count; i++) this.fork(boot, i)
    this.booted = this.waitPhase('booted')
  }

  /** `step`, or the first worker failure while it runs. */
  private duringStart<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.startFailed])
  }

  /** A worker failed: during start-up the start fails (a bind error stays one), later the tracker stops. */
  private failed(message: string, reply?: WorkerReply): void {
    if (this.started) this.o.onFatal(message)
    else this.failStart(reply?.bind ? BindError.fromFields(reply.bind) : new Error(message))
  }

  private fork(boot: WorkerBoot, i: number): void {
    const worker = cluster.fork({[BOOT_ENV]: JSON.stringify({...boot, index: i})})
    this.workers.push(worker)
    worker.on('message', (msg: WorkerReply) => {
      if (msg.type === 'fatal') return this.failed(`worker ${i}: ${msg.message}`, msg)
      const reply = msg.id !== undefined ? this.replies.get(msg.id) : undefined
      if (reply) {
        this.replies.delete(msg.id!)
        return reply(msg)
      }
      this.phase.get(i)?.(msg)
    })
    worker.on('exit', (code, signal) => {
      if (!this.closing) this.failed(`worker ${i} (pid ${worker.process.pid}) exited unexpectedly (${signal ?? `code ${code}`}); stopping the tracker`)
    })
  }

  async ready(): Promise<void> {
    await this.duringStart(this.booted)
  }

  /**
   * Workers get the table of the set the primary built, in parts of PART_BYTES (a memory copy
   * each, no hashing), and swap it in once it is whole.
   */
  async putInForce(set: HashSet20, generation: number): Promise<void> {
    const split = set.capacity * 20
    const sent = Promise.all(
      this.workers.map(async (w, i) => {
        await sendTo(w, {type: 'access-list-begin', generation, capacity: set.capacity, seed: set.seed, size: set.size})
        for (const [from, to] of [
          [0, split],
          [split, set.tableLength],
        ]) {
          for (let at = from; at < to; at += PART_BYTES) {
            await sendTo(w, {type: 'access-list-part', at, bytes: set.tableSlice(at, Math.min(to, at + PART_BYTES))})
          }
        }
        await this.ask(i, id => ({type: 'access-list-end', id, generation}))
      }),
    )
    await (this.started ? sent : this.duringStart(sent))
  }

  /** Workers serve once they have the access list and the mesh is up. */
  async start(): Promise<Listener[]> {
    if (this.o.tls) for (const w of this.workers) w.send({type: 'tls', ...this.o.tls} satisfies PrimaryMessage)
    const meshUp = this.waitPhase('mesh-listening')
    for (const w of this.workers) w.send({type: 'mesh-listen'} satisfies PrimaryMessage)
    await this.duringStart(meshUp)
    // Loading and building the protocol worker is most of a start: every worker does it at once,
    // and each can take the others' frames before any of them serves a client.
    const prepared = this.waitPhase('prepared')
    for (const w of this.workers) w.send({type: 'prepare'} satisfies PrimaryMessage)
    await this.duringStart(prepared)
    const net = this.o.config.network
    const ephemeral = parseSocketAddress(net.address_ipv4)!.port === 0 || parseSocketAddress(net.address_ipv6)!.port === 0
    const replies = await this.duringStart(this.startInOrder(ephemeral))
    this.started = true
    // Every worker binds the same addresses; list them once.
    const distinct = new Map<string, Listener>()
    for (const l of replies.flatMap(r => r.listening ?? [])) if (!distinct.has(formatListener(l))) distinct.set(formatListener(l), l)
    return [...distinct.values()]
  }

  /**
   * One worker after another, in index order, binds and serves: sockets of their own
   * (SO_REUSEPORT) then join each group in worker order, which UDP steering needs
   * (udp/steering.ts). With ephemeral ports a worker binding a socket of its own takes the ports
   * worker 0 got (it would get other ones).
   */
  private async startInOrder(ephemeral: boolean): Promise<WorkerReply[]> {
    const replies: WorkerReply[] = []
    let ports: WorkerPorts | undefined
    for (const [i, w] of this.workers.entries()) {
      const reply = new Promise<WorkerReply>(resolve => this.phase.set(i, resolve))
      w.send({type: 'start', ...(ports ? {ports} : {})} satisfies PrimaryMessage)
      const r = await reply
      if (r.type !== 'listening') throw new Error(`worker ${i}: unexpected ${r.type}`)
      if (i === 0 && ephemeral) ports = portsByFamily(r.listening ?? [])
      replies.push(r)
    }
    return replies
  }

  async setTls(material: TlsMaterial): Promise<void> {
    await this.askAll(id => ({type: 'tls', id, ...material}))
  }

  metrics(): Promise<MetricsJson> {
    this.asking ??= this.askMetrics().finally(() => (this.asking = undefined))
    return this.asking
  }

  private async askMetrics(): Promise<MetricsJson> {
    const parts = await this.askAll(id => ({type: 'metrics', id}))
    return mergeMetrics([await this.o.registry.getMetricsAsJSON(), ...parts.map(p => p.metrics as MetricsJson)])
  }

  dropPrivileges(): void {
    for (const w of this.workers) w.send({type: 'drop-privileges'} satisfies PrimaryMessage)
  }

  /** Asks each worker to shut down; one that has not exited within 5 s is killed. */
  async close(): Promise<void> {
    this.closing = true
    await Promise.all(
      this.workers.map(
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
    rmSync(this.meshDir, {recursive: true, force: true})
  }

  /** Resolves when every worker has sent its next message, which must be of `type`. */
  private waitPhase(type: WorkerReply['type']): Promise<WorkerReply[]> {
    return Promise.all(
      this.workers.map(
        (_, i) =>
          new Promise<WorkerReply>((resolve, reject) => {
            this.phase.set(i, msg => (msg.type === type ? resolve(msg) : reject(new Error(`worker ${i}: unexpected ${msg.type}`))))
          }),
      ),
    )
  }

  /** Asks every worker; a worker that has not answered within WORKER_REPLY_MS fails the question. */
  private askAll(make: (id: number) => PrimaryMessage): Promise<WorkerReply[]> {
    return Promise.all(this.workers.map((_, i) => this.ask(i, make, WORKER_REPLY_MS)))
  }

  /** Asks worker `i`; with `limitMs`, a worker that has not answered by then fails the question. */
  private ask(i: number, make: (id: number) => PrimaryMessage, limitMs?: number): Promise<WorkerReply> {
    return new Promise<WorkerReply>((resolve, reject) => {
      const id = this.nextRequest++
      const timer =
        limitMs === undefined
          ? undefined
          : setTimeout(() => {
              this.replies.delete(id)
              reject(new Error(`worker ${i} did not answer within ${limitMs / 1000} s`))
            }, limitMs)
      this.replies.set(id, msg => {
        clearTimeout(timer)
        resolve(msg)
      })
      this.workers[i].send(make(id))
    })
  }
}

/** The ports a worker listens on, by IP version (the first of each). */
function portsByFamily(listeners: Listener[]): WorkerPorts {
  const out: WorkerPorts = {}
  for (const l of listeners) {
    if (l.family === 6) out.ipv6 ??= l.port
    else out.ipv4 ??= l.port
  }
  return out
}
