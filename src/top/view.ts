/**
 * What `tracker top` shows, computed from Prometheus snapshots: gauges from the latest one,
 * rates from the difference of the last two. Pure: no network, no terminal.
 */
import {byLabel, parsePrometheus, type Samples, splitByProtocol, sum} from './prometheus.js'

export interface Snapshot {
  /** ms since the epoch when it was read. */
  at: number
  samples: Samples
}

export function snapshot(text: string, at: number): Snapshot {
  return {at, samples: parsePrometheus(text)}
}

/**
 * Why a read is not a tracker's metrics, or undefined when it is: every tracker serves
 * tracker_info, so an endpoint without it is some other exporter (or not Prometheus at all).
 */
export function notTrackerMetrics(s: Snapshot, url: string): string | undefined {
  if (s.samples.has('tracker_info')) return undefined
  const what = s.samples.size === 0 ? 'no Prometheus metrics at all' : `${s.samples.size} metric${s.samples.size === 1 ? '' : 's'}, none of them tracker_info`
  return `${url} is not a tracker's metrics endpoint (it answered with ${what}): check the URL, or the [metrics] prometheus_endpoint_address of the tracker's config`
}

export interface WorkerRow {
  index: string
  requestsPerSecond: number
  responsesPerSecond: number
  /** Share of all requests, 0-1. */
  share: number
  torrents: number
}

/** One protocol of a tracker serving several (`serve all`). */
export interface ProtocolRow {
  protocol: string
  requestsPerSecond: number
  responsesPerSecond: number
  torrents: number
  peers: number
  connections: number
}

export interface View {
  /** What the tracker serves: "udp", or "udp+http+ws" for `serve all`. */
  protocol: string
  version: string
  uptimeSeconds: number
  swarm: {torrents: number; peersIpv4: number; peersIpv6: number; seeders: number; leechers: number; completed: number; accessListEntries: number}
  /** Per second, from the last two snapshots (zeros until there are two). */
  requests: Record<string, number>
  responses: Record<string, number>
  errorsPerSecond: number
  bytesInPerSecond: number
  bytesOutPerSecond: number
  connections: number
  drops: Record<string, number>
  refusals: Record<string, number>
  /** Worker rows; under `serve all` each protocol's, indexed "udp 0", "http 0", ... */
  workers: WorkerRow[]
  /** One row per protocol when the tracker serves several, else empty. */
  protocols: ProtocolRow[]
  process: {rssBytes: number; heapBytes: number; eventLoopLagSeconds: number; cpuPercent: number}
}

/** Counter increase per second between two snapshots, per label value (restarts count from 0). */
function rates(prev: Snapshot | undefined, cur: Snapshot, name: string, label: string, where: Record<string, string> = {}): Record<string, number> {
  const now = byLabel(cur.samples, name, label, where)
  const out: Record<string, number> = {}
  const seconds = prev ? (cur.at - prev.at) / 1000 : 0
  const before = prev ? byLabel(prev.samples, name, label, where) : new Map<string, number>()
  for (const [k, v] of now) {
    const delta = v - (before.get(k) ?? 0)
    // A counter that went down means the tracker restarted: count from zero.
    out[k] = seconds > 0 ? (delta >= 0 ? delta : v) / seconds : 0
  }
  return out
}

function rate(prev: Snapshot | undefined, cur: Snapshot, name: string, where: Record<string, string> = {}): number {
  if (!prev) return 0
  const seconds = (cur.at - prev.at) / 1000
  if (seconds <= 0) return 0
  const delta = sum(cur.samples, name, where) - sum(prev.samples, name, where)
  return (delta >= 0 ? delta : sum(cur.samples, name, where)) / seconds
}

/** Requests, responses and torrents per worker, from one protocol's samples; `prefix` names the protocol under `serve all`. */
function workerFigures(prev: Snapshot | undefined, cur: Snapshot, prefix = '') {
  const requests = rates(prev, cur, 'tracker_requests_total', 'worker_index')
  const responses = rates(prev, cur, 'tracker_responses_total', 'worker_index')
  const torrents = byLabel(cur.samples, 'tracker_torrents', 'worker_index')
  const indexes = [...new Set([...torrents.keys(), ...Object.keys(requests)])].sort((a, b) => Number(a) - Number(b))
  return indexes.map(index => ({index: prefix + index, requests: requests[index] ?? 0, responses: responses[index] ?? 0, torrents: torrents.get(index) ?? 0}))
}

export function computeView(prev: Snapshot | undefined, cur: Snapshot): View {
  const s = cur.samples
  const infos = (s.get('tracker_info') ?? []).map(i => i.labels)
  const responses = rates(prev, cur, 'tracker_responses_total', 'type')
  const parts = [...splitByProtocol(s)]
  const several = parts.length > 1
  const before = prev && several ? splitByProtocol(prev.samples) : undefined
  const partView = (protocol: string, samples: Samples) => ({
    prev: prev && before?.get(protocol) ? {at: prev.at, samples: before.get(protocol)!} : several ? undefined : prev,
    cur: {at: cur.at, samples},
  })
  const workerList = parts.flatMap(([protocol, samples]) => {
    const v = partView(protocol, samples)
    return workerFigures(v.prev, v.cur, several ? `${protocol} ` : '')
  })
  const allRequests = workerList.reduce((n, w) => n + w.requests, 0)
  const cpu = rate(prev, cur, 'process_cpu_seconds_total')
  return {
    protocol: several ? parts.map(([protocol]) => protocol).join('+') : (infos[0]?.protocol ?? '?'),
    version: infos[0]?.version ?? '?',
    // One uptime per protocol under `serve all`: they started together.
    uptimeSeconds: Math.max(0, ...(s.get('tracker_uptime_seconds') ?? []).map(x => x.value)),
    swarm: {
      torrents: sum(s, 'tracker_torrents'),
      peersIpv4: sum(s, 'tracker_peers', {ip_version: '4'}),
      peersIpv6: sum(s, 'tracker_peers', {ip_version: '6'}),
      seeders: sum(s, 'tracker_seeders'),
      leechers: sum(s, 'tracker_leechers'),
      completed: sum(s, 'tracker_completed_total'),
      // One list for every protocol: each reports it.
      accessListEntries: Math.max(0, ...(s.get('tracker_access_list_entries') ?? []).map(x => x.value)),
    },
    requests: rates(prev, cur, 'tracker_requests_total', 'type'),
    responses,
    errorsPerSecond: (responses.error ?? 0) + (responses.failure ?? 0) + (responses.bad_request ?? 0) + (responses.not_found ?? 0),
    bytesInPerSecond: rate(prev, cur, 'tracker_rx_bytes_total'),
    bytesOutPerSecond: rate(prev, cur, 'tracker_tx_bytes_total'),
    connections: sum(s, 'tracker_connections'),
    drops: rates(prev, cur, 'tracker_dropped_total', 'reason'),
    refusals: rates(prev, cur, 'tracker_refusals_total', 'reason'),
    workers: workerList.map(w => ({
      index: w.index,
      requestsPerSecond: w.requests,
      responsesPerSecond: w.responses,
      share: allRequests > 0 ? w.requests / allRequests : 0,
      torrents: w.torrents,
    })),
    protocols: several
      ? parts.map(([protocol, samples]) => {
          const v = partView(protocol, samples)
          return {
            protocol,
            requestsPerSecond: rate(v.prev, v.cur, 'tracker_requests_total'),
            responsesPerSecond: rate(v.prev, v.cur, 'tracker_responses_total'),
            torrents: sum(samples, 'tracker_torrents'),
            peers: sum(samples, 'tracker_peers'),
            connections: sum(samples, 'tracker_connections'),
          }
        })
      : [],
    process: {
      rssBytes: sum(s, 'process_resident_memory_bytes'),
      heapBytes: sum(s, 'nodejs_heap_size_used_bytes'),
      eventLoopLagSeconds: Math.max(0, ...(s.get('nodejs_eventloop_lag_seconds') ?? []).map(x => x.value)),
      cpuPercent: cpu * 100,
    },
  }
}

/** The per-protocol table of `serve all`, as lines (the plain view and the dashboard show the same). */
export function protocolLines(rows: ProtocolRow[]): string[] {
  if (rows.length === 0) return []
  return [
    'protocol  requests/s  responses/s  torrents     peers  connections',
    ...rows.map(
      r =>
        `${r.protocol.padStart(8)}  ${formatCount(r.requestsPerSecond).padStart(10)}  ${formatCount(r.responsesPerSecond).padStart(11)}  ${formatCount(r.torrents).padStart(8)}  ${formatCount(r.peers).padStart(8)}  ${formatCount(r.connections).padStart(11)}`,
    ),
  ]
}

// ---------------------------------------------------------------------------------------------
// Formatting shared by the live view and the plain snapshot

export function formatCount(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(2) + 'G'
  if (n >= 1e6) return (n / 1e6).toFixed(2) + 'M'
  if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k'
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return (n / 2 ** 30).toFixed(2) + ' GiB'
  if (n >= 2 ** 20) return (n / 2 ** 20).toFixed(1) + ' MiB'
  if (n >= 2 ** 10) return (n / 2 ** 10).toFixed(1) + ' KiB'
  return `${Math.round(n)} B`
}

export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds)
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m ${s % 60}s` : `${m}m ${s % 60}s`
}

const BARS = '▁▂▃▄▅▆▇█'

/** A one-line chart of the last `width` values. */
export function sparkline(values: number[], width: number): string {
  const tail = values.slice(-width)
  const max = Math.max(...tail, 0)
  return tail.map(v => (max <= 0 ? BARS[0] : BARS[Math.min(7, Math.floor((v / max) * 7.999))])).join('')
}

/** The view as plain text (for `--once` and pipes): the same sections as the live screen. */
export function viewText(v: View, endpoint: string, showWorkers = true): string {
  const lines: string[] = []
  const list = (r: Record<string, number>) =>
    Object.entries(r)
      .filter(([, x]) => x > 0)
      .map(([k, x]) => `${k} ${formatCount(x)}/s`)
      .join('  ') || '-'
  lines.push(`tracker ${v.protocol} ${v.version}  up ${formatDuration(v.uptimeSeconds)}  ${endpoint}`)
  lines.push('')
  lines.push(
    `swarm     torrents ${formatCount(v.swarm.torrents)}  peers ${formatCount(v.swarm.peersIpv4)} IPv4 / ${formatCount(v.swarm.peersIpv6)} IPv6  ` +
      `seeders ${formatCount(v.swarm.seeders)}  leechers ${formatCount(v.swarm.leechers)}  completed ${formatCount(v.swarm.completed)}  access list ${formatCount(v.swarm.accessListEntries)}`,
  )
  lines.push(`requests  ${list(v.requests)}`)
  lines.push(`responses ${list(v.responses)}`)
  lines.push(
    `errors    ${formatCount(v.errorsPerSecond)}/s  in ${formatBytes(v.bytesInPerSecond)}/s  out ${formatBytes(v.bytesOutPerSecond)}/s  connections ${formatCount(v.connections)}`,
  )
  lines.push(`drops     ${list(v.drops)}`)
  lines.push(`refusals  ${list(v.refusals)}`)
  lines.push(
    `process   rss ${formatBytes(v.process.rssBytes)}  heap ${formatBytes(v.process.heapBytes)}  loop lag ${(v.process.eventLoopLagSeconds * 1000).toFixed(1)} ms  cpu ${v.process.cpuPercent.toFixed(0)}%`,
  )
  if (v.protocols.length > 0) lines.push('', ...protocolLines(v.protocols))
  if (showWorkers && v.workers.length > 0) {
    lines.push('')
    lines.push('worker  requests/s  responses/s  share  torrents')
    for (const w of v.workers) {
      lines.push(
        `${w.index.padStart(6)}  ${formatCount(w.requestsPerSecond).padStart(10)}  ${formatCount(w.responsesPerSecond).padStart(11)}  ${(w.share * 100).toFixed(0).padStart(4)}%  ${formatCount(w.torrents).padStart(8)}`,
      )
    }
  }
  return lines.join('\n') + '\n'
}
