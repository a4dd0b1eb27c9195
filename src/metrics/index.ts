import {createServer, type Server, type ServerResponse} from 'node:http'
import client from 'prom-client'
import type {SwarmGauges} from '../swarm/index.js'
import {StatsSampler, statsHtml} from './stats.js'

/** The engine's figures a worker registers (defined with the swarm's backend contract). */
export type {SwarmGauges}

export const {Registry, Gauge, Counter, AggregatorRegistry} = client
export type Registry = client.Registry

/**
 * Every metric the tracker exports is defined here, once: name, help and labels.
 * Hot paths never touch prom-client: they bump plain typed-array counters
 * (TrafficStats) that the metrics read at scrape time through `collect`.
 */
export const METRIC = {
  info: {name: 'tracker_info', help: 'Constant 1, labelled with the protocol served and the tracker version', labelNames: ['protocol', 'version']},
  uptime: {name: 'tracker_uptime_seconds', help: 'Seconds since the tracker started'},
  requests: {name: 'tracker_requests_total', help: 'Requests parsed, by type, IP version and worker', labelNames: ['type', 'ip_version', 'worker_index']},
  responses: {
    name: 'tracker_responses_total',
    help: 'Responses and messages sent, by type, IP version and worker',
    labelNames: ['type', 'ip_version', 'worker_index'],
  },
  rxBytes: {
    name: 'tracker_rx_bytes_total',
    help: 'Payload bytes received (UDP datagrams, TCP stream bytes), by IP version and worker',
    labelNames: ['ip_version', 'worker_index'],
  },
  txBytes: {name: 'tracker_tx_bytes_total', help: 'Payload bytes sent, by IP version and worker', labelNames: ['ip_version', 'worker_index']},
  drops: {
    name: 'tracker_dropped_total',
    help: 'Requests dropped without a reply or messages not delivered, by reason and worker',
    labelNames: ['reason', 'worker_index'],
  },
  refusals: {name: 'tracker_refusals_total', help: 'Requests refused with an error, by reason and worker', labelNames: ['reason', 'worker_index']},
  torrents: {name: 'tracker_torrents', help: 'Torrents held in memory, by worker (each worker owns a shard of the info hashes)', labelNames: ['worker_index']},
  peers: {name: 'tracker_peers', help: 'Peers held in memory, by IP version and worker', labelNames: ['ip_version', 'worker_index']},
  seeders: {name: 'tracker_seeders', help: 'Seeders held in memory, by worker', labelNames: ['worker_index']},
  leechers: {name: 'tracker_leechers', help: 'Leechers held in memory, by worker', labelNames: ['worker_index']},
  completed: {name: 'tracker_completed_total', help: 'Completed downloads announced (event=completed) since start, by worker', labelNames: ['worker_index']},
  peersExpired: {name: 'tracker_peers_expired_total', help: 'Peers removed because they stopped announcing, by worker', labelNames: ['worker_index']},
  forwarded: {
    name: 'tracker_forwarded_total',
    help: 'Announces (and WebTorrent messages) handed over the mesh to the worker that owns their torrent, by worker',
    labelNames: ['worker_index'],
  },
  meshFrames: {
    name: 'tracker_mesh_frames_total',
    help: 'Frames between workers (forwarded requests, their answers, scrape parts), by direction (sent, received) and worker',
    labelNames: ['direction', 'worker_index'],
  },
  meshBytes: {
    name: 'tracker_mesh_bytes_total',
    help: 'Bytes between workers over the mesh (frame headers included), by direction (sent, received) and worker',
    labelNames: ['direction', 'worker_index'],
  },
  connections: {name: 'tracker_connections', help: 'Open client connections (HTTP, WebSocket), by worker', labelNames: ['worker_index']},
  accessListEntries: {name: 'tracker_access_list_entries', help: 'Info hashes in the access list in force (0 when mode is off)'},
  accessListGeneration: {name: 'tracker_access_list_generation', help: 'Access-list reload attempts since start, plus one for the initial load'},
  accessListReloads: {name: 'tracker_access_list_reloads_total', help: 'Access-list reloads by result (ok, error)', labelNames: ['result']},
} as const

export const IP_VERSIONS = ['4', '6'] as const

/** Hot-path counters of one worker. Index 0 is IPv4, 1 is IPv6. */
export class TrafficStats {
  readonly requests: [Float64Array, Float64Array]
  readonly responses: [Float64Array, Float64Array]
  readonly rxBytes = new Float64Array(2)
  readonly txBytes = new Float64Array(2)
  readonly drops: Float64Array
  readonly refusals: Float64Array
  /** Requests handed to the worker that owns their torrent. */
  readonly forwarded = new Float64Array(1)

  constructor(
    readonly requestTypes: readonly string[],
    readonly responseTypes: readonly string[],
    readonly dropReasons: readonly string[],
    readonly refusalReasons: readonly string[],
  ) {
    this.requests = [new Float64Array(requestTypes.length), new Float64Array(requestTypes.length)]
    this.responses = [new Float64Array(responseTypes.length), new Float64Array(responseTypes.length)]
    this.drops = new Float64Array(dropReasons.length)
    this.refusals = new Float64Array(refusalReasons.length)
  }
}

/**
 * Each name's index in `names`, by name: the index into TrafficStats' arrays of a request type,
 * response type, drop or refusal reason (`indexes(['a', 'b']).b === 1`). The names are the
 * metric's labels, so the list is the one place a reason is added.
 */
export function indexes<const T extends readonly string[]>(names: T): {readonly [K in T[number]]: number} {
  const out: Record<string, number> = {}
  names.forEach((name, i) => {
    out[name] = i
  })
  return Object.freeze(out) as {readonly [K in T[number]]: number}
}

/**
 * Drops and refusals counted outside a protocol worker's TrafficStats, by reason: the mesh
 * between workers and the scrape router, the same in every protocol.
 */
export interface WorkerCounts {
  drops?(): Record<string, number>
  refusals?(): Record<string, number>
  /** What went over the mesh to and from the other workers. */
  mesh?(): {sentFrames: number; sentBytes: number; receivedFrames: number; receivedBytes: number}
}

const workerCounts = new WeakMap<Registry, WorkerCounts[]>()

/** Adds `counts` to the drops and refusals that `registerWorkerMetrics` reports for this registry's worker. */
export function addWorkerCounts(registry: Registry, counts: WorkerCounts): void {
  const list = workerCounts.get(registry)
  if (list) list.push(counts)
  else workerCounts.set(registry, [counts])
}

/** Registers the per-worker metrics; values are read from `stats` and `swarm` at scrape time. */
export function registerWorkerMetrics(registry: Registry, workerIndex: number, stats: TrafficStats, swarm?: SwarmGauges, connections?: () => number): void {
  const worker_index = String(workerIndex)
  const counterFrom = (
    def: {name: string; help: string; labelNames: readonly string[]},
    fill: (set: (labels: Record<string, string>, v: number) => void) => void,
  ) =>
    new Counter({
      name: def.name,
      help: def.help,
      labelNames: [...def.labelNames],
      registers: [registry],
      collect() {
        this.reset()
        fill((labels, v) => {
          if (v > 0) this.inc(labels, v)
        })
      },
    })
  const gaugeFrom = (
    def: {name: string; help: string; labelNames: readonly string[]},
    fill: (set: (labels: Record<string, string>, v: number) => void) => void,
  ) =>
    new Gauge({
      name: def.name,
      help: def.help,
      labelNames: [...def.labelNames],
      registers: [registry],
      collect() {
        fill((labels, v) => this.set(labels, v))
      },
    })

  counterFrom(METRIC.requests, set => {
    for (let v = 0; v < 2; v++) stats.requestTypes.forEach((type, i) => set({type, ip_version: IP_VERSIONS[v], worker_index}, stats.requests[v][i]))
  })
  counterFrom(METRIC.responses, set => {
    for (let v = 0; v < 2; v++) stats.responseTypes.forEach((type, i) => set({type, ip_version: IP_VERSIONS[v], worker_index}, stats.responses[v][i]))
  })
  counterFrom(METRIC.forwarded, set => set({worker_index}, stats.forwarded[0]))
  counterFrom(METRIC.rxBytes, set => {
    for (let v = 0; v < 2; v++) set({ip_version: IP_VERSIONS[v], worker_index}, stats.rxBytes[v])
  })
  counterFrom(METRIC.txBytes, set => {
    for (let v = 0; v < 2; v++) set({ip_version: IP_VERSIONS[v], worker_index}, stats.txBytes[v])
  })
  const extra = (kind: 'drops' | 'refusals', set: (labels: Record<string, string>, v: number) => void) => {
    for (const counts of workerCounts.get(registry) ?? []) for (const [reason, v] of Object.entries(counts[kind]?.() ?? {})) set({reason, worker_index}, v)
  }
  const mesh = (fill: (t: ReturnType<NonNullable<WorkerCounts['mesh']>>) => void) => {
    for (const counts of workerCounts.get(registry) ?? []) {
      const t = counts.mesh?.()
      if (t) fill(t)
    }
  }
  counterFrom(METRIC.meshFrames, set =>
    mesh(t => {
      set({direction: 'sent', worker_index}, t.sentFrames)
      set({direction: 'received', worker_index}, t.receivedFrames)
    }),
  )
  counterFrom(METRIC.meshBytes, set =>
    mesh(t => {
      set({direction: 'sent', worker_index}, t.sentBytes)
      set({direction: 'received', worker_index}, t.receivedBytes)
    }),
  )
  counterFrom(METRIC.drops, set => {
    stats.dropReasons.forEach((reason, i) => set({reason, worker_index}, stats.drops[i]))
    extra('drops', set)
  })
  counterFrom(METRIC.refusals, set => {
    stats.refusalReasons.forEach((reason, i) => set({reason, worker_index}, stats.refusals[i]))
    if (swarm) for (const [reason, v] of Object.entries(swarm.refusals())) set({reason, worker_index}, v)
    extra('refusals', set)
  })
  if (swarm) {
    gaugeFrom(METRIC.torrents, set => set({worker_index}, swarm.torrents()))
    gaugeFrom(METRIC.peers, set => {
      for (let v = 0 as 0 | 1; v < 2; v++) set({ip_version: IP_VERSIONS[v], worker_index}, swarm.peers(v as 0 | 1))
    })
    gaugeFrom(METRIC.seeders, set => set({worker_index}, swarm.seeders()))
    gaugeFrom(METRIC.leechers, set => set({worker_index}, swarm.leechers()))
    counterFrom(METRIC.completed, set => set({worker_index}, swarm.completed()))
    counterFrom(METRIC.peersExpired, set => set({worker_index}, swarm.peersExpired()))
  }
  if (connections) gaugeFrom(METRIC.connections, set => set({worker_index}, connections()))
}

export interface AccessListGauges {
  entries(): number
  generation(): number
  reloads(): {ok: number; error: number}
}

/** Metrics that exist once per tracker (the primary process): info, uptime, access list, process. */
export function registerTrackerMetrics(
  registry: Registry,
  protocol: string,
  version: string,
  startedAt: number,
  accessList: AccessListGauges,
  processMetrics = true,
): void {
  new Gauge({name: METRIC.info.name, help: METRIC.info.help, labelNames: [...METRIC.info.labelNames], registers: [registry]}).set({protocol, version}, 1)
  new Gauge({
    name: METRIC.uptime.name,
    help: METRIC.uptime.help,
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.set((Date.now() - startedAt) / 1000)
    },
  })
  new Gauge({
    name: METRIC.accessListEntries.name,
    help: METRIC.accessListEntries.help,
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.set(accessList.entries())
    },
  })
  new Gauge({
    name: METRIC.accessListGeneration.name,
    help: METRIC.accessListGeneration.help,
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.set(accessList.generation())
    },
  })
  new Counter({
    name: METRIC.accessListReloads.name,
    help: METRIC.accessListReloads.help,
    labelNames: [...METRIC.accessListReloads.labelNames],
    registers: [registry],
    aggregator: 'max',
    collect() {
      this.reset()
      const r = accessList.reloads()
      this.inc({result: 'ok'}, r.ok)
      this.inc({result: 'error'}, r.error)
    },
  })
  if (processMetrics) collectProcessMetrics(registry)
}

/** Standard process_* and nodejs_* metrics; across workers the primary sums them (RSS, CPU). */
export function collectProcessMetrics(registry: Registry): void {
  client.collectDefaultMetrics({register: registry})
}

/** A registry's metrics as prom-client hands them between processes (getMetricsAsJSON). */
export type MetricsJson = client.MetricObjectWithValues<client.MetricValue<string>>[]

/** The metrics of several processes (a primary and its workers) as one set: counters summed, each metric's aggregator applied. */
export function mergeMetrics(parts: MetricsJson[]): Promise<MetricsJson> {
  return AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).getMetricsAsJSON() as Promise<MetricsJson>
}

/**
 * The Prometheus text of a tracker's protocols. With more than one (`serve all`) every tracker_*
 * series gets a `protocol` label, so that the protocols' series stay apart; process_* and
 * nodejs_* series are the process tree's and are summed. One protocol's text is as it always was.
 */
export async function renderMetrics(protocols: {protocol: string; metrics: MetricsJson}[], shared: MetricsJson[] = []): Promise<string> {
  const label = protocols.length > 1
  const parts = protocols.map(({protocol, metrics}) =>
    label
      ? metrics.map(m =>
          m.name.startsWith('tracker_') ? {...m, values: m.values.map(v => ('protocol' in v.labels ? v : {...v, labels: {...v.labels, protocol}}))} : m,
        )
      : metrics,
  )
  return AggregatorRegistry.aggregate([...parts, ...shared] as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics()
}

/** What a client that asked for another path or method is told, in one place. */
const ENDPOINT_PATHS = "this is a tracker's metrics endpoint: GET /metrics (Prometheus text), /stats (a page), /stats?format=json (the same figures)\n"

/** Headers of every page the endpoint writes for a browser: no caching, no sniffing, nothing loaded or run. */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
}

function reply(res: ServerResponse, status: number, headers: Record<string, string>, body: string): void {
  res.writeHead(status, {...headers, 'content-length': Buffer.byteLength(body)})
  res.end(body) // Node sends no body for HEAD
}

const text = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) =>
  reply(res, status, {...headers, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff'}, body)

/**
 * The metrics endpoint on `host:port`: `/metrics` is the Prometheus text `render` gives, `/stats`
 * the same figures as a page or (`?format=json`, `/stats.json`) as JSON, read through a
 * StatsSampler so that a busy page never asks the workers more than four times a second.
 */
export async function startMetricsServer(host: string, port: number, render: () => Promise<string>, contentType: string): Promise<Server> {
  const stats = new StatsSampler(render)
  const unavailable = (res: ServerResponse) => (error: unknown) => text(res, 500, `metrics unavailable: ${String(error)}\n`)
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, `method not allowed: ${ENDPOINT_PATHS}`, {allow: 'GET, HEAD'})
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const format = path === '/stats.json' ? 'json' : (new URLSearchParams(q < 0 ? '' : url.slice(q + 1)).get('format') ?? 'html')
    if (path === '/metrics') {
      render().then(body => reply(res, 200, {'content-type': contentType}, body), unavailable(res))
    } else if ((path === '/stats' || path === '/stats.json') && (format === 'json' || format === 'html')) {
      stats.stats().then(s => {
        if (format === 'json') reply(res, 200, {...PAGE_HEADERS, 'content-type': 'application/json; charset=utf-8'}, JSON.stringify(s) + '\n')
        else reply(res, 200, {...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8'}, statsHtml(s))
      }, unavailable(res))
    } else if (path === '/stats') {
      text(res, 400, 'format must be html or json, as in /stats?format=json\n')
    } else {
      text(res, 404, `not found: ${ENDPOINT_PATHS}`)
    }
  })
  // A scraper that sends its request slowly or not at all is let go, like a tracker client.
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  await stats.start()
  return server
}
