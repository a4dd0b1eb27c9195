/**
 * A small parser for the Prometheus text exposition format (0.0.4): what `tracker top` reads.
 * Lines it cannot read are skipped, never fatal: a dashboard must survive odd input.
 */

export interface Sample {
  labels: Record<string, string>
  value: number
}

/** Metric name -> its samples. */
export type Samples = Map<string, Sample[]>

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  return Number(text)
}

/** Parses `{a="x",b="y\"z"}` starting at `i` (the brace); returns the labels and the end. */
function parseLabels(line: string, i: number): [Record<string, string>, number] | undefined {
  const labels: Record<string, string> = {}
  i++
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++
    if (line[i] === '}') return [labels, i + 1]
    const eq = line.indexOf('=', i)
    if (eq < 0 || line[eq + 1] !== '"') return undefined
    const name = line.slice(i, eq).trim()
    let value = ''
    let k = eq + 2
    for (; k < line.length && line[k] !== '"'; k++) {
      if (line[k] === '\\') {
        const e = line[++k]
        value += e === 'n' ? '\n' : e
      } else {
        value += line[k]
      }
    }
    if (k >= line.length) return undefined
    labels[name] = value
    i = k + 1
  }
}

export function parsePrometheus(text: string): Samples {
  const out: Samples = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    let i = 0
    while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++
    const name = line.slice(0, i)
    let labels: Record<string, string> = {}
    if (line[i] === '{') {
      const parsed = parseLabels(line, i)
      if (!parsed) continue
      ;[labels, i] = parsed
    }
    const text = line.slice(i).trim().split(/\s+/)[0]
    const value = parseValue(text)
    if (name === '' || text === '' || (Number.isNaN(value) && text !== 'NaN')) continue
    let list = out.get(name)
    if (!list) out.set(name, (list = []))
    list.push({labels, value})
  }
  return out
}

/** Sum of a metric's samples whose labels match `where` (all of them when empty). */
export function sum(samples: Samples, name: string, where: Record<string, string> = {}): number {
  let total = 0
  for (const s of samples.get(name) ?? []) {
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value
  }
  return total
}

/** Sums of a metric grouped by one label. */
export function byLabel(samples: Samples, name: string, label: string, where: Record<string, string> = {}): Map<string, number> {
  const out = new Map<string, number>()
  for (const s of samples.get(name) ?? []) {
    if (!Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue
    const key = s.labels[label] ?? ''
    out.set(key, (out.get(key) ?? 0) + s.value)
  }
  return out
}

/** The protocols in the order `tracker serve all` lists them; any other after them, sorted. */
const PROTOCOL_ORDER = ['udp', 'http', 'ws']

/**
 * Each protocol's samples. A tracker serving several protocols labels every series with
 * `protocol`; one serving a single protocol labels none, and tracker_info names it.
 */
export function splitByProtocol(samples: Samples): Map<string, Samples> {
  const names = new Set<string>()
  let labelled = false
  for (const [name, list] of samples)
    for (const s of list) {
      const p = s.labels.protocol
      if (p === undefined) continue
      names.add(p)
      if (name !== 'tracker_info') labelled = true
    }
  if (!labelled) return new Map([[samples.get('tracker_info')?.[0]?.labels.protocol ?? '?', samples]])
  const rank = (p: string) => (PROTOCOL_ORDER.includes(p) ? PROTOCOL_ORDER.indexOf(p) : PROTOCOL_ORDER.length)
  const order = [...names].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
  const out = new Map<string, Samples>(order.map(p => [p, new Map()]))
  for (const [name, list] of samples)
    for (const s of list) {
      const part = s.labels.protocol === undefined ? undefined : out.get(s.labels.protocol)
      if (!part) continue
      let into = part.get(name)
      if (!into) part.set(name, (into = []))
      into.push(s)
    }
  return out
}
