/** Messages between the primary and its worker processes (cluster IPC, 'advanced' serialization). */
import type {Worker} from 'node:cluster'
import type {BindErrorFields} from '../listen.js'
import type {Listener} from './listener.js'
import type {RuntimeConfig, WorkerPorts} from './worker-api.js'

/** What a worker process is started with (JSON in its environment: TRACKER_WORKER_BOOT). */
export interface WorkerBoot {
  protocol: string
  workerModule: string
  count: number
  meshDir: string
  secret: string
  epochMs: number
  config: RuntimeConfig
  accessListGeneration: number
  /** Who logs, before the worker's index: {protocol: "ws"} when the tracker serves several protocols. */
  logFields?: Record<string, string>
  index?: number
}

/** The environment variable that carries a worker's WorkerBoot. */
export const BOOT_ENV = 'TRACKER_WORKER_BOOT'

/** How long the primary waits for a worker's answer (metrics, TLS material) before giving up. */
export const WORKER_REPLY_MS = 10_000

/** Bytes of an access list's table per 'access-list-part' message (a memory copy for the worker). */
export const PART_BYTES = 160 * 1024

export type PrimaryMessage =
  /** An access list comes as the primary's set: begin, parts of its table (see HashSet20), end. */
  | {type: 'access-list-begin'; generation: number; capacity: number; seed: Uint8Array; size: number}
  | {type: 'access-list-part'; at: number; bytes: Uint8Array}
  | {type: 'access-list-end'; id: number; generation: number}
  | {type: 'tls'; id?: number; cert: Buffer | Uint8Array; key: Buffer | Uint8Array}
  | {type: 'mesh-listen'}
  /** Connect the mesh and build the protocol worker (every worker at once; nothing is bound yet). */
  | {type: 'prepare'}
  /** `ports`: the ports worker 0 got for a configured port 0 (see WorkerContext.ports). */
  | {type: 'start'; ports?: WorkerPorts}
  | {type: 'metrics'; id: number}
  | {type: 'drop-privileges'}
  | {type: 'shutdown'}

export interface WorkerReply {
  type: 'booted' | 'mesh-listening' | 'prepared' | 'listening' | 'ack' | 'metrics' | 'fatal'
  id?: number
  listening?: Listener[]
  metrics?: unknown
  message?: string
  /** With 'fatal': the socket that could not be bound, raised again as a BindError by the primary. */
  bind?: BindErrorFields
}

/** Resolves once `msg` is handed to the channel, so that a big list goes out at the pace the worker reads it. */
export const sendTo = (w: Worker, msg: PrimaryMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    w.send(msg, error => (error ? reject(error) : resolve()))
  })
