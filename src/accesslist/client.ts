import {readFileSync} from 'node:fs'
import {setTimeout as sleep} from 'node:timers/promises'
import {readStatus, statusPathFor, type TrackerStatus} from '../server/status.js'

export interface ReloadOutcome {
  ok: boolean
  /** One line for the operator: entry count on success, the error otherwise. */
  message: string
  status?: TrackerStatus
}

/**
 * Asks the tracker whose pid is in `pidFile` to re-read its access list (SIGUSR1) and waits
 * for its status file to show a new generation.
 */
export async function requestReload(pidFile: string, timeoutMs = 10_000): Promise<ReloadOutcome> {
  let pid: number
  try {
    pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10)
  } catch {
    return {ok: false, message: `no pid file at ${pidFile}: is the tracker running? (set pid_file in its config, or pass --pid FILE)`}
  }
  if (!Number.isInteger(pid) || pid <= 0) return {ok: false, message: `pid file ${pidFile} does not hold a process id`}
  try {
    process.kill(pid, 0)
  } catch {
    return {ok: false, message: `the tracker with pid ${pid} (from ${pidFile}) is not running`}
  }
  const before = readStatus(pidFile)?.generation ?? 0
  process.kill(pid, 'SIGUSR1')
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    await sleep(50)
    const status = readStatus(pidFile)
    if (status && status.generation > before) {
      if (!status.ok) {
        return {ok: false, status, message: `reload failed, the previous list stays in force: ${status.error ?? 'unknown error'}`}
      }
      const tls = status.tls && !status.tls.ok ? `; TLS reload failed, old certificate kept: ${status.tls.error}` : ''
      return {ok: !tls, status, message: `access list reloaded: ${status.entries} entries in force (generation ${status.generation})${tls}`}
    }
  }
  return {ok: false, message: `the tracker (pid ${pid}) did not report a reload within ${timeoutMs / 1000} s (watching ${statusPathFor(pidFile)})`}
}
