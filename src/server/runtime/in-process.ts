import type {MetricsJson} from '../../metrics/index.js'
import type {HashSet20} from '../../util/hashset20.js'
import type {TlsMaterial} from '../tls.js'
import type {Listener} from './listener.js'
import {createProtocolWorker, startCleaning, type ProtocolWorker, type RuntimeConfig, type WorkerContext} from './worker-api.js'
import type {Workers} from './workers.js'

/** `socket_workers` = 1: the one worker runs in the primary's process and shares its access list and registry. */
export class InProcessWorker<C extends RuntimeConfig> implements Workers {
  private worker: ProtocolWorker | undefined
  private cleaningTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly workerModule: string,
    private readonly ctx: WorkerContext<C>,
  ) {}

  async ready(): Promise<void> {}

  async putInForce(set: HashSet20): Promise<void> {
    this.ctx.accessList.replace(set)
  }

  async start(): Promise<Listener[]> {
    this.worker = await createProtocolWorker(this.workerModule, this.ctx)
    const listeners = await this.worker.start()
    this.cleaningTimer = startCleaning(this.worker, this.ctx.config)
    return listeners
  }

  async setTls(material: TlsMaterial): Promise<void> {
    this.worker?.setTls?.(material)
  }

  metrics(): Promise<MetricsJson> {
    return this.ctx.registry.getMetricsAsJSON()
  }

  dropPrivileges(): void {}

  async close(): Promise<void> {
    if (this.cleaningTimer) clearInterval(this.cleaningTimer)
    await this.worker?.close()
  }
}
