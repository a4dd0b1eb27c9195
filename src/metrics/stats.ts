/**
 * The `/stats` page of the metrics endpoint: the figures of the merged Prometheus text, as JSON
 * and as a small self-refreshing HTML page, for people without Prometheus. The figures are the
 * ones `tracker top` computes (src/top/view.ts), grouped by protocol.
 */
import {splitByProtocol} from '../top/prometheus.js'
import {computeView, formatCount, formatDuration, snapshot, type Snapshot, type View} from '../top/view.js'

/** Swarm and traffic figures of one protocol, or of all of them together. */
export interface SwarmFigures {
  torrents: number
  peers: {ipv4: number; ipv6: number}
  seeders: number
  leechers: number
  /** Completed downloads announced since start. */
  completed: number
  /** Open client connections (HTTP, WebSocket; 0 for UDP). */
  connections: number
  /** Requests per second by type (announce, scrape, connect, ...): the types seen since start. */
  requestsPerSecond: Record<string, number>
}

export interface WorkerFigures {
  index: number
  requestsPerSecond: number
  responsesPerSecond: number
  torrents: number
}

export interface ProtocolFigures extends SwarmFigures {
  protocol: string
  workers: WorkerFigures[]
}

/** What `/stats?format=json` answers. The README documents every field. */
export interface Stats {
  version: string
  uptimeSeconds: number
  /** When the figures were read, ISO 8601. */
  time: string
  /** Seconds between the two samples the rates come from; 0 when there is no earlier one (rates are then 0). */
  rateWindowSeconds: number
  protocols: ProtocolFigures[]
  totals: SwarmFigures
}

/** Rates to the hundredth: what a page or a script needs, without 0.30000000000000004. */
const round = (n: number): number => Math.round(n * 100) / 100

function swarmFigures(v: View): SwarmFigures {
  return {
    torrents: v.swarm.torrents,
    peers: {ipv4: v.swarm.peersIpv4, ipv6: v.swarm.peersIpv6},
    seeders: v.swarm.seeders,
    leechers: v.swarm.leechers,
    completed: v.swarm.completed,
    connections: v.connections,
    requestsPerSecond: Object.fromEntries(Object.entries(v.requests).map(([type, r]) => [type, round(r)])),
  }
}

/** The figures of `cur`, with rates against `prev` (an earlier sample of the same endpoint). */
export function statsFrom(prev: Snapshot | undefined, cur: Snapshot): Stats {
  const prevParts = prev ? splitByProtocol(prev.samples) : undefined
  const protocols = [...splitByProtocol(cur.samples)].map(([protocol, samples]): ProtocolFigures => {
    const before = prevParts?.get(protocol)
    const v = computeView(before && prev ? {at: prev.at, samples: before} : undefined, {at: cur.at, samples})
    return {
      protocol,
      ...swarmFigures(v),
      workers: v.workers.map(w => ({
        index: Number(w.index),
        requestsPerSecond: round(w.requestsPerSecond),
        responsesPerSecond: round(w.responsesPerSecond),
        torrents: w.torrents,
      })),
    }
  })
  const info = cur.samples.get('tracker_info')?.[0]?.labels ?? {}
  return {
    version: info.version ?? '?',
    // Uptime is one figure per process tree; should it come once per protocol, they agree.
    uptimeSeconds: round(Math.max(0, ...(cur.samples.get('tracker_uptime_seconds') ?? []).map(s => s.value))),
    time: new Date(cur.at).toISOString(),
    rateWindowSeconds: prev && cur.at > prev.at ? round((cur.at - prev.at) / 1000) : 0,
    protocols,
    totals: swarmFigures(computeView(prev, cur)),
  }
}

const ESCAPES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}

/** Text made safe for HTML content and quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, c => ESCAPES[c])
}

/** Seconds between the page's reloads. */
export const STATS_REFRESH_SECONDS = 5

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}p{margin:.2em 0;color:#555}
table{border-collapse:collapse;margin:.3em 0}th,td{padding:.2em .8em;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}tr.total td{font-weight:bold}`

const row = (cells: unknown[], tag = 'td', cls = ''): string =>
  `<tr${cls ? ` class="${cls}"` : ''}>${cells.map(c => `<${tag}>${escapeHtml(c)}</${tag}>`).join('')}</tr>`

const totalRate = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)
const perSecond = (n: number): string => `${formatCount(round(n))}/s`

function swarmCells(name: string, f: SwarmFigures): unknown[] {
  return [
    name,
    formatCount(f.torrents),
    formatCount(f.peers.ipv4),
    formatCount(f.peers.ipv6),
    formatCount(f.seeders),
    formatCount(f.leechers),
    formatCount(f.completed),
    formatCount(f.connections),
    perSecond(totalRate(f.requestsPerSecond)),
  ]
}

function protocolSection(p: ProtocolFigures): string {
  const types = Object.entries(p.requestsPerSecond)
  const parts = [`<h2>${escapeHtml(p.protocol)}</h2>`]
  parts.push(
    types.length === 0
      ? '<p>No requests yet.</p>'
      : `<table><thead>${row(['request', 'per second'], 'th')}</thead><tbody>${types.map(([t, r]) => row([t, perSecond(r)])).join('')}</tbody></table>`,
  )
  if (p.workers.length > 0)
    parts.push(
      `<table><thead>${row(['worker', 'requests/s', 'responses/s', 'torrents'], 'th')}</thead><tbody>` +
        p.workers.map(w => row([w.index, perSecond(w.requestsPerSecond), perSecond(w.responsesPerSecond), formatCount(w.torrents)])).join('') +
        '</tbody></table>',
    )
  return parts.join('\n')
}

/** The page: every value escaped, no script, no external resource; it reloads itself. */
export function statsHtml(s: Stats): string {
  const head = ['protocol', 'torrents', 'peers IPv4', 'peers IPv6', 'seeders', 'leechers', 'completed', 'connections', 'requests/s']
  const rows = s.protocols.map(p => row(swarmCells(p.protocol, p)))
  if (s.protocols.length > 1) rows.push(row(swarmCells('all', s.totals), 'td', 'total'))
  const window = s.rateWindowSeconds > 0 ? `rates over the last ${s.rateWindowSeconds} s` : 'rates from the next reload on'
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${STATS_REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>tracker ${escapeHtml(s.version)} stats</title>
<style>${STYLE}</style>
</head>
<body>
<h1>tracker ${escapeHtml(s.version)}</h1>
<p>up ${escapeHtml(formatDuration(s.uptimeSeconds))} &middot; ${escapeHtml(window)} &middot; read ${escapeHtml(s.time)} &middot; reloads every ${STATS_REFRESH_SECONDS} s</p>
<p><a href="stats?format=json">JSON</a> &middot; <a href="metrics">Prometheus</a></p>
<table><thead>${row(head, 'th')}</thead><tbody>${rows.join('')}</tbody></table>
${s.protocols.map(protocolSection).join('\n')}
</body>
</html>
`
}

/**
 * Reads the figures for `/stats`, bounded: whatever the number of requests, the workers are
 * asked for their metrics at most once per `cacheMs` (requests meanwhile share one read), and
 * two samples are kept for the rates. Rates compare the new read with the latest kept sample
 * that is at least `windowMs` older; the new read is kept when the newest kept one is that old,
 * so the window is 1-2 s under steady viewing, and the time since the last view otherwise.
 */
export class StatsSampler {
  private older?: Snapshot
  private newer?: Snapshot
  private last?: {result: Promise<Stats>; doneAt?: number}

  constructor(
    private readonly render: () => Promise<string>,
    private readonly now: () => number = Date.now,
    private readonly cacheMs = 250,
    private readonly windowMs = 1000,
  ) {}

  /** The first sample, so that the first page view already has rates. A failure is forgotten: the first view reads one. */
  async start(): Promise<void> {
    try {
      this.newer = snapshot(await this.render(), this.now())
    } catch {
      this.newer = undefined
    }
  }

  /** The figures, from a read at most `cacheMs` old (a failed read is cached too). */
  stats(): Promise<Stats> {
    const last = this.last
    if (last && (last.doneAt === undefined || this.now() - last.doneAt < this.cacheMs)) return last.result
    const entry: {result: Promise<Stats>; doneAt?: number} = {result: this.read()}
    const done = () => {
      entry.doneAt = this.now()
    }
    entry.result.then(done, done)
    this.last = entry
    return entry.result
  }

  private async read(): Promise<Stats> {
    const cur = snapshot(await this.render(), this.now())
    let base: Snapshot | undefined
    if (!this.newer || cur.at - this.newer.at >= this.windowMs) {
      base = this.newer
      this.older = this.newer
      this.newer = cur
    } else {
      // Younger than the window: compare with the one before (at least a window older), if any.
      base = this.older ?? this.newer
    }
    return statsFrom(base, cur)
  }
}
