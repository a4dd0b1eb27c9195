import {execFileSync} from 'node:child_process'
import {readFileSync, realpathSync} from 'node:fs'
import {basename, dirname, isAbsolute, join} from 'node:path'
import {packageRoot} from '../version.js'

/**
 * Is process `pid` a tracker (`tracker serve ...`)? A pid file can name any process: a stale one
 * names whatever got the pid since, and anyone who can write its directory can make it name
 * another user's process. SIGUSR1 stops most programs and opens the inspector of a Node process
 * that has no handler for it, so the command line is checked first; it is the one thing a pid
 * file's writer cannot forge for a process of someone else.
 *
 * A tracker is a process whose command line runs the CLI's script (bin/run.js, or a link to it
 * such as npm's `tracker`) with `serve`, where that script is bin/run.js of a package named like
 * ours. Linux reads /proc/PID/cmdline (relative paths resolve against /proc/PID/cwd); other Unix
 * systems ask `ps`, whose output loses argument boundaries, so only an absolute script path
 * without spaces can be checked there.
 *
 * `reason` says why it is not one, or why it cannot tell, for a message.
 */
export function checkTracker(pid: number): {verdict: 'tracker'} | {verdict: 'other' | 'unknown'; reason: string} {
  const seen = commandLineOf(pid)
  if (seen === undefined) return {verdict: 'unknown', reason: `the command line of process ${pid} could not be read`}
  const {args, cwd} = seen
  const shown = args.join(' ').slice(0, 200)
  let unresolved = false
  for (let i = 0; i + 1 < args.length; i++) {
    if (args[i + 1] !== 'serve' || !/^(run\.js|tracker)$/.test(basename(args[i]))) continue
    const script = isTrackerScript(args[i], cwd)
    if (script === 'yes') return {verdict: 'tracker'}
    if (script === 'unknown') unresolved = true
  }
  if (unresolved) return {verdict: 'unknown', reason: `the script of process ${pid} (\`${shown}\`) could not be found from here`}
  return {verdict: 'other', reason: `process ${pid} is not a tracker (its command line is \`${shown}\`)`}
}

interface CommandLine {
  args: string[]
  /** Where relative paths in `args` start from, when known. */
  cwd?: string
}

export function commandLineOf(pid: number, via: 'proc' | 'ps' = process.platform === 'linux' ? 'proc' : 'ps'): CommandLine | undefined {
  if (via === 'proc') {
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      // A process that has exited (a zombie) and a kernel thread have none.
      if (raw === '') return {args: []}
      let cwd: string | undefined
      try {
        cwd = realpathSync(`/proc/${pid}/cwd`)
      } catch {
        // another user's process: only absolute paths can be checked
      }
      return {args: raw.replace(/\0$/, '').split('\0'), cwd}
    } catch {
      return undefined
    }
  }
  try {
    const out = execFileSync('ps', ['-ww', '-o', 'command=', '-p', String(pid)], {encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore']})
    const args = out.trim().split(/\s+/)
    return args[0] === '' ? undefined : {args}
  } catch {
    return undefined
  }
}

let ourName: string | undefined

/** Is `script` (as the process was given it) bin/run.js of a package named like ours? */
function isTrackerScript(script: string, cwd: string | undefined): 'yes' | 'no' | 'unknown' {
  if (!isAbsolute(script) && cwd === undefined) return 'unknown'
  let real: string
  try {
    real = realpathSync(isAbsolute(script) ? script : join(cwd!, script))
  } catch {
    return 'unknown'
  }
  if (basename(real) !== 'run.js' || basename(dirname(real)) !== 'bin') return 'no'
  ourName ??= packageName(packageRoot)
  return ourName !== undefined && packageName(dirname(dirname(real))) === ourName ? 'yes' : 'no'
}

function packageName(root: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {name?: string}).name
  } catch {
    return undefined
  }
}
