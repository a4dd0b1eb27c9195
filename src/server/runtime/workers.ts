import type {MetricsJson} from '../../metrics/index.js'
import type {HashSet20} from '../../util/hashset20.js'
import type {TlsMaterial} from '../tls.js'
import type {Listener} from './listener.js'

/**
 * The primary's handle on a tracker's workers: one in this process (InProcessWorker), or a
 * cluster of worker processes linked by a mesh (ClusterWorkers). The supervisor drives both the
 * same way: ready, putInForce (the initial list), start; then reloads, metrics, close.
 */
export interface Workers {
  /** Resolves once the workers can take an access list. */
  ready(): Promise<void>
  /** Puts an access list's set in force in every worker, at reload `generation`. */
  putInForce(set: HashSet20, generation: number): Promise<void>
  /** Binds and serves; what the workers listen on, each address once. */
  start(): Promise<Listener[]>
  /** New certificate and key after a reload, for new connections. */
  setTls(material: TlsMaterial): Promise<void>
  /** The metrics of the primary's registry and every worker's, merged across workers. */
  metrics(): Promise<MetricsJson>
  /** Workers that run in processes of their own drop theirs (the primary has dropped its own). */
  dropPrivileges(): void
  close(): Promise<void>
}
