/** The loop of a worker process in a multi-worker tracker: it does what the primary's messages say (see ipc.ts). */
import {AccessList} from '../../accesslist/index.js'
import {addWorkerCounts, collectProcessMetrics, Registry} from '../../metrics/index.js'
import {HashSet20} from '../../util/hashset20.js'
import {createLogger} from '../../util/log.js'
import {BindError} from '../listen.js'
import {Mesh} from '../mesh.js'
import {dropPrivileges} from '../privileges.js'
import type {PrimaryMessage, WorkerBoot, WorkerReply} from './ipc.js'
import {createProtocolWorker, shardOf, startCleaning, type ProtocolWorker, type WorkerContext} from './worker-api.js'

export async function runWorkerProcess(boot: Required<WorkerBoot>): Promise<void> {
  const send = (msg: WorkerReply) => process.send!(msg)
  const fatal = (message: string, bind?: BindError) => {
    try {
      send({type: 'fatal', message, ...(bind ? {bind: bind.toFields()} : {})})
    } finally {
      setTimeout(() => process.exit(1), 100)
    }
  }
  // The primary coordinates signals; a terminal's Ctrl-C reaches every process of the group.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const) process.on(sig, () => {})
  process.on('disconnect', () => process.exit(1))
  process.on('uncaughtException', error => fatal(`uncaught exception: ${error.stack ?? String(error)}`))

  const worker = new WorkerProcess(boot, send, fatal)
  process.on('message', (msg: PrimaryMessage) => {
    worker.handle(msg).catch((error: unknown) => fatal(error instanceof Error ? error.message : String(error), error instanceof BindError ? error : undefined))
  })
  send({type: 'booted'})
}

class WorkerProcess {
  private readonly ctx: WorkerContext
  private readonly mesh: Mesh
  private worker: ProtocolWorker | undefined
  private cleaningTimer: NodeJS.Timeout | undefined
  /** The access list being received: filled as its parts come, in force at its end. */
  private incoming: HashSet20 | undefined

  constructor(
    private readonly boot: Required<WorkerBoot>,
    private readonly send: (msg: WorkerReply) => void,
    fatal: (message: string) => void,
  ) {
    const config = boot.config
    const log = createLogger(config.log_level, {format: config.log_format, fields: {...boot.logFields, worker: boot.index}})
    const accessList = new AccessList(config.access_list.mode)
    accessList.generation = boot.accessListGeneration
    const registry = new Registry()
    const mesh = (this.mesh = new Mesh(boot.index, boot.count, boot.meshDir, reason => fatal(`mesh ${reason}`)))
    addWorkerCounts(registry, {drops: () => mesh.drops(), mesh: () => mesh.traffic})
    this.ctx = {
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
    collectProcessMetrics(registry)
  }

  async handle(msg: PrimaryMessage): Promise<void> {
    const {ctx, send} = this
    switch (msg.type) {
      case 'access-list-begin':
        this.incoming = HashSet20.emptyCopy(msg.capacity, msg.seed, msg.size)
        return
      case 'access-list-part':
        this.incoming!.writeTable(msg.at, msg.bytes)
        return
      case 'access-list-end':
        ctx.accessList.replace(this.incoming!)
        ctx.accessList.generation = msg.generation
        this.incoming = undefined
        send({type: 'ack', id: msg.id})
        return
      case 'tls': {
        const material = {cert: Buffer.from(msg.cert), key: Buffer.from(msg.key)}
        ctx.tls = material
        this.worker?.setTls?.(material)
        if (msg.id !== undefined) send({type: 'ack', id: msg.id})
        return
      }
      case 'mesh-listen':
        await this.mesh.listen()
        send({type: 'mesh-listening'})
        return
      case 'prepare':
        await this.mesh.connect()
        this.worker = await createProtocolWorker(this.boot.workerModule, ctx)
        send({type: 'prepared'})
        return
      case 'start': {
        ctx.ports = msg.ports
        const worker = this.worker!
        const listening = await worker.start()
        this.cleaningTimer = startCleaning(worker, ctx.config)
        send({type: 'listening', listening})
        return
      }
      case 'metrics':
        send({type: 'metrics', id: msg.id, metrics: await ctx.registry.getMetricsAsJSON()})
        return
      case 'drop-privileges':
        dropPrivileges(ctx.config.privileges.user, ctx.config.privileges.group)
        return
      case 'shutdown':
        if (this.cleaningTimer) clearInterval(this.cleaningTimer)
        await this.worker?.close()
        await this.mesh.close()
        process.exit(0)
    }
  }
}
