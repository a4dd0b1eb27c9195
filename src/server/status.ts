import {readFileSync} from 'node:fs'
import {rename, unlink, writeFile} from 'node:fs/promises'
import {unlinkSync, writeFileSync} from 'node:fs'

/** What a running tracker reports after start and after every reload (SIGUSR1). */
export interface TrackerStatus {
  protocol: string
  pid: number
  /** Increases by one on every reload attempt, successful or not. */
  generation: number
  ok: boolean
  /** Entries of the access list in force (0 when mode is off). */
  entries: number
  error: string | null
  time: string
  listening: string[]
  tls?: {ok: boolean; error: string | null}
}

/** `./tracker-udp.pid` -> `./tracker-udp.status.json` */
export function statusPathFor(pidFile: string): string {
  return pidFile.replace(/\.pid$/, '') + '.status.json'
}

export function writePidFile(pidFile: string): void {
  writeFileSync(pidFile, `${process.pid}\n`)
}

/** Removes the pid and status files, but only when they are ours: a second tracker that failed
 * to start must not delete the files of the one that is running. */
export function removePidFiles(pidFile: string): void {
  try {
    if (Number(readFileSync(pidFile, 'utf8').trim()) !== process.pid) return
  } catch {
    return
  }
  for (const path of [pidFile, statusPathFor(pidFile)]) {
    try {
      unlinkSync(path)
    } catch {
      // already gone
    }
  }
}

/** Written to a temporary file and renamed, so a reader never sees half a file. */
export async function writeStatus(pidFile: string, status: TrackerStatus): Promise<void> {
  const path = statusPathFor(pidFile)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(status, null, 2) + '\n')
  await rename(tmp, path).catch(async error => {
    await unlink(tmp).catch(() => {})
    throw error
  })
}

export function readStatus(pidFile: string): TrackerStatus | undefined {
  try {
    return JSON.parse(readFileSync(statusPathFor(pidFile), 'utf8')) as TrackerStatus
  } catch {
    return undefined
  }
}
