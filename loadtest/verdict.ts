/**
 * Whether a run measured anything, and if not, what it saw: no replies at all, only malformed
 * replies, or only error replies (with their text), with a hint at the usual cause.
 */
import type {LoadReport} from './report.js'
import {formatNumber} from './report.js'

const KIND: Record<LoadReport['protocol'], string> = {udp: 'a UDP (BEP 15)', http: 'an HTTP', ws: 'a WebTorrent'}

const sum = (map: Record<string, number>): number => Object.values(map).reduce((a, b) => a + b, 0)

/** The three most frequent texts of `map` with their counts. */
function top(map: Record<string, number>, quote: boolean): string {
  const entries = Object.entries(map).sort((a, b) => b[1] - a[1])
  const shown = entries.slice(0, 3).map(([text, n]) => `${quote ? JSON.stringify(text) : text} × ${formatNumber(n)}`)
  if (entries.length > 3) shown.push(`${entries.length - 3} more`)
  return shown.join(', ')
}

/** What came back, as a list of phrases. */
function seen(r: LoadReport): string[] {
  const out: string[] = []
  if (r.responses.connect) out.push(`${formatNumber(r.responses.connect)} connect replies`)
  if (r.responses.error) out.push(`${formatNumber(r.responses.error)} error replies: ${top(r.errors, true)}`)
  if (r.responses.malformed) out.push(`${formatNumber(r.responses.malformed)} malformed replies: ${top(r.malformed, false)}`)
  if (r.extra['late replies']) out.push(`${formatNumber(r.extra['late replies'])} replies that matched no request in flight`)
  if (r.unanswered) {
    const why = sum(r.networkErrors) > 0 ? ` (${top(r.networkErrors, false)})` : ''
    out.push(`${formatNumber(r.unanswered)} requests unanswered${why}`)
  }
  return out
}

/** The usual cause of what was seen, or '' when the tracker's own texts say it. */
function hint(r: LoadReport): string {
  const errors = Object.keys(r.errors).join('\n')
  const malformed = Object.keys(r.malformed).join('\n')
  if (/not allowed|not authori[sz]ed|whitelist|blacklist|not registered|unregistered/i.test(errors))
    return `If the tracker has an access list, allow the simulated torrents: \`tracker loadtest ${r.protocol} --write-info-hashes FILE\` writes them.`
  if (r.protocol === 'udp' && /^an announce reply of 8 bytes/m.test(malformed))
    return 'opentracker answers 8 bytes to an announce for a torrent off its whitelist: did its -w file load (a relative path needs -d DIR)?'
  if (r.responses.malformed > 0) return `Is it ${KIND[r.protocol]} tracker?`
  if (r.responses.error > 0) return Object.keys(r.errors).every(text => /^HTTP \d+$/.test(text)) ? 'Does it serve /announce and /scrape?' : ''
  if (r.responses.connect)
    return 'It answers connects, then drops announces and scrapes: an access list that drops silently, or a connection id it does not take back?'
  return `Is ${KIND[r.protocol]} tracker listening there?`
}

/** Usable replies: announces and scrapes (a UDP connect alone measures nothing). */
const usable = (r: LoadReport): number => (r.responses.announce ?? 0) + (r.responses.scrape ?? 0)

/** Set when no usable reply came back: the command prints it and exits 1. */
export function problemOf(r: LoadReport): string | undefined {
  if (usable(r) > 0) return undefined
  const errors = r.responses.error > 0
  const malformed = r.responses.malformed > 0
  const head =
    errors && malformed
      ? 'only error and malformed replies'
      : errors
        ? 'only error replies'
        : malformed
          ? 'only malformed replies'
          : r.responses.connect || r.extra['late replies']
            ? 'no announce or scrape replies'
            : 'no replies at all'
  const what = seen(r)
  return (
    `${head} from ${r.target} in ${formatNumber(r.durationSeconds)} s (${formatNumber(r.requestsSent)} requests sent` +
    `${r.warmup.requestsSent ? `, and ${formatNumber(r.warmup.requestsSent)} in the warm-up before` : ''})` +
    `${what.length ? `: ${what.join('; ')}` : ''}.${hint(r) ? ` ${hint(r)}` : ''}`
  )
}

/** Worth a look, though something usable came back. */
export function warningsOf(r: LoadReport): string[] {
  if (usable(r) === 0) return []
  const out: string[] = []
  const requests = r.settings.requests
  if ((r.responses.announce ?? 0) === 0 && requests.weight_announce > 0)
    out.push(
      `no announce got a usable reply (${formatNumber(r.responses.scrape ?? 0)} scrapes did); besides those: ${seen(r).join('; ') || 'nothing'}.${hint(r) ? ` ${hint(r)}` : ''}`,
    )
  else if (r.responses.malformed > 0) {
    const share = (100 * r.responses.malformed) / Math.max(1, sum(r.responses))
    out.push(`${formatNumber(r.responses.malformed)} replies (${formatNumber(share)}%) could not be read: ${top(r.malformed, false)}`)
  }
  return out
}
