/**
 * A running tracker's pid and status files: the status format, and claiming, writing and removing
 * the files without following links. The server writes them; `tracker accesslist reload` reads them.
 */
import {randomBytes} from 'node:crypto'
import {closeSync, constants, fstatSync, linkSync, lstatSync, openSync, readSync, renameSync, unlinkSync, writeSync} from 'node:fs'
import {open, rename, unlink} from 'node:fs/promises'
import {resolve} from 'node:path'
import {checkTracker} from './tracker-process.js'

/** What a running tracker reports after start and after every reload (SIGUSR1). */
export interface TrackerStatus {
  protocol: string
  pid: number
  /** Increases by one on every reload attempt, successful or not; attempts run one at a time. */
  generation: number
  /**
   * When this generation's attempt began: `process.hrtime.bigint()` in ns, a monotonic clock that
   * every process of the machine shares, as a decimal string. A client that signals the tracker
   * waits for an attempt that began after it sent the signal.
   */
  startedNs: string
  ok: boolean
  /** Entries of the access list in force (0 when mode is off). */
  entries: number
  error: string | null
  time: string
  listening: string[]
  tls?: {ok: boolean; error: string | null}
}

/** A pid file the tracker will not take: another tracker holds it, or it is a link. */
export class PidFileError extends Error {
  override name = 'PidFileError'
}

const {O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NONBLOCK = 0, O_NOFOLLOW = 0} = constants
/** A new file and never an existing one, nor the target of a link planted at its name. */
const CREATE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
/** Not through a link; a FIFO planted at the name must not block the open. */
const READ = O_RDONLY | O_NOFOLLOW | O_NONBLOCK
const MODE = 0o644

/** `./tracker-udp.pid` -> `./tracker-udp.status.json` */
export function statusPathFor(pidFile: string): string {
  return pidFile.replace(/\.pid$/, '') + '.status.json'
}

/** A name beside `path` that nobody can guess, for a file created exclusively there. */
const tempName = (path: string, suffix: string): string => `${path}.${randomBytes(8).toString('hex')}.${suffix}`

/** A small regular file's text and identity, read without following a link. */
export function readSmallFile(path: string, max = 65536): {text: string; dev: number; ino: number} {
  const fd = openSync(path, READ)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), {code: 'ENOTREG'})
    const buf = Buffer.alloc(Math.min(max, st.size))
    const n = buf.length > 0 ? readSync(fd, buf, 0, buf.length, 0) : 0
    return {text: buf.toString('utf8', 0, n), dev: st.dev, ino: st.ino}
  } finally {
    closeSync(fd)
  }
}

export function readStatus(pidFile: string): TrackerStatus | undefined {
  try {
    return JSON.parse(readSmallFile(statusPathFor(pidFile)).text) as TrackerStatus
  } catch {
    return undefined
  }
}

/** The pid in a pid file's text, or undefined when it holds none. */
export const pidIn = (text: string): number | undefined => (/^\s*([1-9]\d{0,9})\s*$/.test(text) ? Number(text.trim()) : undefined)

/** Absolute paths of the pid files held by trackers of this process (tests run several). */
const heldHere = new Set<string>()

/** Process `pid` exists (it may belong to another user). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** A live tracker holds the pid file that names `pid`; `path` is absolute. */
function heldByLiveTracker(pid: number, path: string): boolean {
  if (pid === process.pid) return heldHere.has(path)
  if (!exists(pid)) return false
  const verdict = checkTracker(pid).verdict
  // One that cannot be checked counts as a tracker while it lives: refusing to start is the
  // safe mistake.
  return verdict === 'tracker' || (verdict === 'unknown' && exists(pid))
}

/**
 * The tracker's pid and status files. The pid file is claimed before any socket is bound: made
 * complete under a name nobody can guess, then hard-linked to its name, which fails if anything
 * (a file, a link) is there already; so of two trackers starting together exactly one gets it.
 * A pid file whose process is gone or is not a tracker is stale and is taken over.
 */
export class TrackerFiles {
  readonly statusPath: string
  private pidIdentity?: {dev: number; ino: number}
  private statusIdentity?: {dev: number; ino: number}
  private released = false

  private constructor(readonly pidPath: string) {
    this.statusPath = statusPathFor(pidPath)
  }

  /** Claims `pidFile`; PidFileError when a live tracker holds it or it is not a regular file. */
  static claim(pidFile: string): TrackerFiles {
    const files = new TrackerFiles(resolve(pidFile))
    const path = files.pidPath
    for (let attempt = 0; attempt < 5; attempt++) {
      const made = files.link(path)
      if (made) {
        files.pidIdentity = made
        heldHere.add(path)
        return files
      }
      let held: {text: string; dev: number; ino: number}
      try {
        held = readSmallFile(path, 64)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT') continue // gone meanwhile: try again
        if (code === 'ELOOP' || code === 'EMLINK') {
          throw new PidFileError(`pid file ${pidFile} is a symbolic link; the tracker does not write through links: remove it or set a different pid_file`)
        }
        if (code === 'ENOTREG') throw new PidFileError(`pid file ${pidFile} is not a regular file: remove it or set a different pid_file`)
        throw error
      }
      const pid = pidIn(held.text)
      if (pid !== undefined && heldByLiveTracker(pid, path)) {
        throw new PidFileError(`another tracker (pid ${pid}) is running with pid file ${pidFile}: stop it or set a different pid_file`)
      }
      files.removeStale(path, held)
    }
    throw new PidFileError(`pid file ${pidFile} kept changing while this tracker tried to claim it: is another tracker starting with it?`)
  }

  /** Status file only, for a tracker that could not write its pid file (it warns and goes on). */
  static unclaimed(pidFile: string): TrackerFiles {
    return new TrackerFiles(resolve(pidFile))
  }

  /** Our pid file at `path`, whole, if nothing is there; its identity, or undefined. */
  private link(path: string): {dev: number; ino: number} | undefined {
    const tmp = tempName(path, 'tmp')
    const fd = openSync(tmp, CREATE, MODE)
    let identity: {dev: number; ino: number}
    try {
      writeSync(fd, `${process.pid}\n`)
      const st = fstatSync(fd)
      identity = {dev: st.dev, ino: st.ino}
    } finally {
      closeSync(fd)
    }
    try {
      linkSync(tmp, path)
      return identity
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EEXIST') return undefined
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
        throw new Error(`${code}: the pid file is made by a hard link, which this filesystem does not allow; put pid_file on another one`)
      }
      throw error
    } finally {
      unlinkSync(tmp)
    }
  }

  /**
   * Removes the stale pid file `seen`, and only it: moved aside first (a rename takes whatever is
   * there at that moment), then deleted if it is the file that was judged; else put back, since
   * another tracker claimed the name meanwhile.
   */
  private removeStale(path: string, seen: {dev: number; ino: number}): void {
    const aside = tempName(path, 'stale')
    try {
      renameSync(path, aside)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    const st = lstatSync(aside)
    if (st.dev === seen.dev && st.ino === seen.ino) {
      unlinkSync(aside)
      return
    }
    try {
      linkSync(aside, path)
    } catch {
      // a third one is there now; the next attempt judges it
    } finally {
      unlinkSync(aside)
    }
  }

  /** Written under a name nobody can guess, created exclusively, then renamed over the status
   * file: a reader never sees half a file, and a link planted at either name is replaced, never
   * followed. */
  async writeStatus(status: TrackerStatus): Promise<void> {
    if (this.released) return
    const tmp = tempName(this.statusPath, 'tmp')
    const file = await open(tmp, CREATE, MODE)
    let identity: {dev: number; ino: number}
    try {
      await file.writeFile(JSON.stringify(status, null, 2) + '\n')
      const st = await file.stat()
      identity = {dev: st.dev, ino: st.ino}
      await file.close()
      await rename(tmp, this.statusPath)
    } catch (error) {
      await file.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      throw error
    }
    this.statusIdentity = identity
    // Stopped while this was written: what release() could not see yet goes now.
    if (this.released) removeIfOurs(this.statusPath, identity)
  }

  /** Removes the pid and status files if they are still the ones this tracker made: a regular
   * file with our identity (and, for the pid file, our pid). Nothing of another tracker's. */
  release(): void {
    if (this.released) return
    this.released = true
    if (this.pidIdentity) {
      heldHere.delete(this.pidPath)
      removeIfOurs(this.pidPath, this.pidIdentity, text => pidIn(text) === process.pid)
    }
    if (this.statusIdentity) removeIfOurs(this.statusPath, this.statusIdentity)
  }
}

function removeIfOurs(path: string, ours: {dev: number; ino: number}, check: (text: string) => boolean = () => true): void {
  try {
    const st = lstatSync(path)
    if (!st.isFile() || st.dev !== ours.dev || st.ino !== ours.ino) return
    if (!check(readSmallFile(path, 64).text)) return
    unlinkSync(path)
  } catch {
    // gone already, or not ours to remove
  }
}
