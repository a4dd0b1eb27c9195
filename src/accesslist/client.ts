import {setTimeout as sleep} from 'node:timers/promises'
import {pidIn, readSmallFile, readStatus, statusPathFor, type TrackerStatus} from '../process/status.js'
import {checkTracker} from '../process/tracker-process.js'

export interface ReloadOutcome {
  ok: boolean
  /** One line for the operator: entry count on success, the error otherwise. */
  message: string
  status?: TrackerStatus
}

/**
 * Asks the tracker whose pid is in `pidFile` to re-read its access list (SIGUSR1) and waits for
 * its status file to report an attempt that began after the signal was sent (a signal that
 * arrives during a reload makes one more after it). Only a process that is a tracker and whose
 * status file names the same pid is signalled.
 */
export async function requestReload(pidFile: string, timeoutMs = 10_000): Promise<ReloadOutcome> {
  let pid: number | undefined
  try {
    pid = pidIn(readSmallFile(pidFile, 64).text)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return {ok: false, message: `no pid file at ${pidFile}: is the tracker running? (set pid_file in its config, or pass --pid FILE)`}
    if (code === 'ELOOP' || code === 'EMLINK')
      return {ok: false, message: `pid file ${pidFile} is a symbolic link: refusing to signal the process it names (a tracker never makes one)`}
    if (code === 'ENOTREG') return {ok: false, message: `${pidFile} is not a regular file, so not a tracker's pid file`}
    return {ok: false, message: `could not read pid file ${pidFile} (${code ?? String(error)})`}
  }
  if (pid === undefined) return {ok: false, message: `pid file ${pidFile} does not hold a process id`}
  if (pid === process.pid) return {ok: false, message: `pid file ${pidFile} names this very process (pid ${pid}), not a tracker`}
  try {
    process.kill(pid, 0)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return {ok: false, message: `the tracker with pid ${pid} (from ${pidFile}) is not running`}
  }
  const check = checkTracker(pid)
  if (check.verdict !== 'tracker') {
    const hint =
      check.verdict === 'unknown' ? `; if it is the tracker, send it SIGUSR1 yourself (kill -USR1 ${pid})` : ": the pid file is stale or not a tracker's"
    return {ok: false, message: `refusing to signal pid ${pid} (from ${pidFile}): ${check.reason}${hint}`}
  }
  const statusFile = statusPathFor(pidFile)
  const named = readStatus(pidFile)?.pid
  if (named !== pid) {
    return {
      ok: false,
      message:
        named === undefined
          ? `refusing to signal pid ${pid} (from ${pidFile}): there is no status file ${statusFile} (a tracker writes it once it is listening)`
          : `refusing to signal pid ${pid} (from ${pidFile}): the status file ${statusFile} names pid ${named}; the two files are not from one running tracker`,
    }
  }
  const sentAt = process.hrtime.bigint()
  try {
    process.kill(pid, 'SIGUSR1')
  } catch (error) {
    return {
      ok: false,
      message: `could not signal the tracker (pid ${pid}): ${(error as NodeJS.ErrnoException).code ?? String(error)}: run this as the tracker's user`,
    }
  }
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    await sleep(50)
    const status = readStatus(pidFile)
    if (status && status.pid === pid && /^\d+$/.test(String(status.startedNs)) && BigInt(status.startedNs) >= sentAt) {
      if (!status.ok) {
        return {ok: false, status, message: `reload failed, the previous list stays in force: ${status.error ?? 'unknown error'}`}
      }
      const tls = status.tls && !status.tls.ok ? `; TLS reload failed, old certificate kept: ${status.tls.error}` : ''
      return {ok: !tls, status, message: `access list reloaded: ${status.entries} entries in force (generation ${status.generation})${tls}`}
    }
  }
  return {ok: false, message: `the tracker (pid ${pid}) did not report a reload within ${timeoutMs / 1000} s (watching ${statusFile})`}
}
