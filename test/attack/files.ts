/**
 * Class 8: files and signals. Symlinks planted where the tracker writes (pid file, the status
 * file's temporary name) must not make it write through them; a second tracker must not take a
 * live one's pid file; `accesslist reload --pid` must signal only a tracker.
 */
import {execFile, spawn} from 'node:child_process'
import {readFileSync, symlinkSync, unlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {waitFor} from './net.js'
import type {Attack, Context} from './suite.js'

/** Runs `tracker ARGS` (bin/run.js); resolves with its exit code and output, killed after `ms`. */
function cli(ctx: Context, args: string[], ms = 15_000): Promise<{code: number | null; output: string}> {
  return new Promise(resolve => {
    execFile(process.execPath, [ctx.bin, ...args], {timeout: ms}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
      resolve({code, output: `${stdout}${stderr}`.trim()})
    })
  })
}

/** A file of the attacker's that the tracker must never write. */
function victim(ctx: Context, name: string): {path: string; intact: () => boolean; now: () => string} {
  const path = join(ctx.dir, name)
  const content = `precious ${name}\n`
  writeFileSync(path, content)
  const now = () => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return '(gone)'
    }
  }
  return {path, intact: () => now() === content, now}
}

const show = (text: string) => JSON.stringify(text.replace(/\s+/g, ' ').trim().slice(0, 32))
/** oclif's wrapped error lines as one line. */
const oneLine = (output: string) =>
  output
    .replace(/^\s*›\s*/gm, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 110)

const pidSymlink: Attack = {
  name: '8.files.pid-symlink',
  server: 'udp',
  workers: 'any',
  fast: true,
  budgetS: 30,
  async run(ctx) {
    const v = victim(ctx, 'victim-pid.txt')
    const pidFile = join(ctx.dir, 'tracker.pid')
    symlinkSync(v.path, pidFile)
    let started = 'started'
    try {
      const t = await ctx.tracker({protocol: 'udp', pidFile})
      const afterStart = v.intact()
      const seen = v.now()
      await t.stop()
      return {
        held: afterStart && v.intact(),
        evidence: `${started}; target ${afterStart ? 'unchanged' : `overwritten with ${show(seen)}`} while running, ${v.intact() ? 'unchanged' : `now ${show(v.now())}`} after stop`,
      }
    } catch (error) {
      // What it said, after startProcess's own first line.
      started = `refused to start (${oneLine((error as Error).message.split('\n').slice(1).join('\n'))})`
      return {held: v.intact(), evidence: `${started}; target ${v.intact() ? 'unchanged' : `now ${show(v.now())}`}`}
    }
  },
}

/** The pid Linux hands out next, and after it. */
function nextPids(count: number): number[] {
  const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'))
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
  // Pids wrap around to 300 (RESERVED_PIDS) past pid_max.
  return Array.from({length: count}, (_, i) => (last + 1 + i < max ? last + 1 + i : 300 + (last + 1 + i - max)))
}

const statusSymlink: Attack = {
  name: '8.files.status-symlink',
  server: 'udp',
  workers: 'any',
  fast: true,
  budgetS: 30,
  async run(ctx) {
    const v = victim(ctx, 'victim-status.txt')
    const pidFile = join(ctx.dir, 'tracker.pid')
    const tmpName = (pid: number) => `${pidFile.replace(/\.pid$/, '')}.status.json.${pid}.tmp`
    // Before start: links at the temporary names of the next 300 pids (one of them will be the tracker's).
    const range = nextPids(300)
    for (const pid of range) symlinkSync(v.path, tmpName(pid))
    const t = await ctx.tracker({protocol: 'udp', pidFile})
    const inRange = range.includes(t.pid)
    const afterStart = v.intact()
    const seenAtStart = v.now()
    // Before a reload the pid is known (the pid file says it): a link at exactly its name.
    try {
      unlinkSync(tmpName(t.pid))
    } catch {
      // the tracker moved it away
    }
    symlinkSync(v.path, tmpName(t.pid))
    const generation = async () => (await t.metric('tracker_access_list_generation')) ?? 0
    process.kill(t.pid, 'SIGUSR1')
    const reloaded = await waitFor(async () => (await generation()) >= 2, 5000)
    const afterReload = v.intact()
    return {
      held: afterStart && afterReload,
      evidence:
        `tracker pid ${t.pid} ${inRange ? 'among' : 'outside'} the ${range.length} planted pids ${range[0]}-${range[range.length - 1]}; ` +
        `target ${afterStart ? 'unchanged' : `overwritten (${show(seenAtStart)})`} at start, ` +
        `${afterReload ? 'unchanged' : `overwritten (${show(v.now())})`} after ${reloaded ? 'a reload' : 'SIGUSR1 (no reload seen)'}`,
    }
  },
}

const secondTracker: Attack = {
  name: '8.files.second-tracker',
  server: 'udp',
  workers: 'any',
  fast: true,
  budgetS: 40,
  async run(ctx) {
    const pidFile = join(ctx.dir, 'shared.pid')
    const first = await ctx.tracker({protocol: 'udp', pidFile})
    let refusal = ''
    try {
      // Ports of its own: only the pid file is shared.
      const second = await ctx.tracker({protocol: 'udp', pidFile}, 1)
      await second.stop()
    } catch (error) {
      refusal = (error as Error).message
    }
    const exited = /exited with [1-9]/.test(refusal)
    const namesFirst = refusal.includes(String(first.pid))
    const reload = await cli(ctx, ['accesslist', 'reload', '--pid', pidFile, '--timeout', '5'])
    return {
      held: exited && namesFirst && reload.code === 0 && first.alive,
      evidence:
        `second tracker ${refusal ? `refused to start${exited ? ' (non-zero exit)' : ''}, ${namesFirst ? 'naming' : 'not naming'} pid ${first.pid}` : 'started and ran (then stopped)'}; ` +
        `reload of the first: exit ${reload.code} (${oneLine(reload.output)})`,
    }
  },
}

const reloadForeignPid: Attack = {
  name: '8.files.reload-foreign-pid',
  server: 'cli',
  workers: 'one',
  fast: true,
  budgetS: 30,
  async run(ctx) {
    const sleeper = spawn('sleep', ['60'], {stdio: 'ignore'})
    ctx.defer(() => sleeper.kill('SIGKILL'))
    const pidFile = join(ctx.dir, 'not-a-tracker.pid')
    writeFileSync(pidFile, `${sleeper.pid}\n`)
    const reload = await cli(ctx, ['accesslist', 'reload', '--pid', pidFile, '--timeout', '3'])
    await new Promise(resolve => setTimeout(resolve, 200))
    const alive = sleeper.exitCode === null && sleeper.signalCode === null
    return {
      held: alive && reload.code !== 0,
      evidence: `sleep ${alive ? 'still alive' : `killed (${sleeper.signalCode ?? sleeper.exitCode})`}; reload exit ${reload.code} (${oneLine(reload.output)})`,
    }
  },
}

export const FILE_ATTACKS: Attack[] = [pidSymlink, statusSymlink, secondTracker, reloadForeignPid]
