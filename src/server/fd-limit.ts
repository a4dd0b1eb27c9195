import {readFileSync} from 'node:fs'
import type {Logger} from '../util/log.js'

/** File descriptors a worker keeps for itself: stdio, epoll, IPC, listeners, mesh, metrics, files. */
const RESERVED_FDS = 64

/** The soft limit on open files of this process (Linux: /proc/self/limits), or undefined when unknown. */
export function openFileLimit(limits = '/proc/self/limits'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'))
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * The connection cap a worker can keep: `max_connections`, lowered (with a warning) to what the
 * open-file limit leaves after the worker's own descriptors. Past the limit, accept() fails with
 * EMFILE and nobody gets in, not even the metrics endpoint; under the cap, eviction still makes
 * room for new clients.
 */
export function connectionCap(configured: number, log: Logger, key: string, limit = openFileLimit()): number {
  if (limit === undefined) return configured
  const usable = Math.max(1, limit - Math.min(RESERVED_FDS, Math.floor(limit / 4)))
  if (configured <= usable) return configured
  log.warn(
    `${key} = ${configured} is more than the open-file limit (${limit}) allows: at most ${usable} connections per worker. ` +
      'Raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) above max_connections.',
  )
  return usable
}
