/**
 * The README's quick start on a fresh clone (issue 15 item 1): `npm run bench -- quickstart
 * [--starts N]`. Clones this checkout's HEAD into a temporary directory, runs `npm ci` there and
 * then the README's serve command (`npm start`), timing each start to the first answered UDP
 * connect on 127.0.0.1. The target: answering within 1 s after `npm ci` exits. Then it interrupts
 * a start (SIGKILL, SIGINT) early and requires the next start to answer. Exits 1 if a start is
 * never answered. Every process it starts runs in a process group of its own and is stopped
 * (SIGTERM, then SIGKILL); the clone is removed.
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import dgram from 'node:dgram'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {delimiter, join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {defaultsOf, parseSocketAddress, udpSchema} from '../../src/config/index.js'
import * as udp from '../../src/protocol/udp/index.js'
import {packageRoot} from '../../src/version.js'
import {freePort, groupMembers, holdsUdpPort, tryBind} from './proc.js'

const TARGET_MS = 1000
const ANSWER_TIMEOUT_MS = 15_000
const NPM_CI_TIMEOUT_MS = 10 * 60_000
const OUTPUT_LIMIT = 16 * 1024

/** The commands of README.md's quick-start block (the first ```sh block under "## Quick start"), comments and blank lines removed. */
export function quickStartCommands(readme: string): string[] {
  const section = /^## Quick start$([\s\S]*?)^## /m.exec(readme)?.[1] ?? ''
  const block = /^```sh\n([\s\S]*?)^```$/m.exec(section)?.[1] ?? ''
  return block
    .split('\n')
    .map(line => line.replace(/\s#.*$/, '').trim())
    .filter(line => line !== '')
}

/** The README's serve command, the first quick-start line `npm ci && COMMAND`, as an argv (no shell). */
export function readmeServeCommand(readme: string): string[] {
  const first = quickStartCommands(readme)[0] ?? ''
  const m = /^npm ci && ([\w ./:-]+)$/.exec(first)
  if (!m) throw new Error(`README.md: the quick start's first line is not "npm ci && COMMAND": "${first}"`)
  return m[1].trim().split(/ +/)
}

interface Group {
  child: ChildProcess
  pgid: number
  output: () => string
}

const live = new Set<Group>()

/** Children get this environment: the outer `npm run bench`'s variables and its node_modules/.bin are not theirs. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(p => !p.endsWith(join('node_modules', '.bin')) && !p.includes('node-gyp-bin'))
    .join(delimiter)
  return env
}

/** Starts `argv` in `cwd` in a process group of its own, keeping the last 16 KB of its output. */
function startGroup(argv: string[], cwd: string): Group {
  const child = spawn(argv[0], argv.slice(1), {cwd, env: cleanEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-OUTPUT_LIMIT)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const group = {child, pgid: child.pid!, output: () => output}
  live.add(group)
  return group
}

async function waitGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > deadline) return false
    await sleep(20)
  }
  return true
}

function signalGroup(g: Group, signal: NodeJS.Signals): void {
  try {
    process.kill(-g.pgid, signal)
  } catch {
    // the group is gone
  }
}

/** SIGTERM to the whole group, SIGKILL to what is left after 5 s. */
async function stopGroup(g: Group): Promise<void> {
  signalGroup(g, 'SIGTERM')
  if (!(await waitGone(g.pgid, 5000))) {
    signalGroup(g, 'SIGKILL')
    await waitGone(g.pgid, 2000)
  }
  live.delete(g)
}

/** Runs `argv` to its end (bounded by `timeoutMs`); throws with its output unless it exits 0. */
async function runToEnd(argv: string[], cwd: string, timeoutMs: number): Promise<{ms: number; exitedAt: number; output: string}> {
  const start = performance.now()
  const g = startGroup(argv, cwd)
  const code = await new Promise<number | null>(resolve => {
    const timer = setTimeout(() => signalGroup(g, 'SIGKILL'), timeoutMs)
    g.child.once('exit', c => {
      clearTimeout(timer)
      resolve(c)
    })
  })
  const exitedAt = performance.now()
  await stopGroup(g)
  if (code !== 0)
    throw new Error(`\`${argv.join(' ')}\` in ${cwd} ${code === null ? `was killed after ${timeoutMs / 1000} s` : `exited with ${code}`}:\n${g.output()}`)
  return {ms: exitedAt - start, exitedAt, output: g.output()}
}

/** Sends UDP connects to 127.0.0.1:`port` every 20 ms until one is answered: the ms from `since`, or undefined if `g` ended or none came in time. */
async function firstAnswer(g: Group, port: number, since: number): Promise<number | undefined> {
  const socket = dgram.createSocket('udp4')
  const request = new Uint8Array(16)
  const transactionId = (Math.random() * 2 ** 32) >>> 0
  udp.writeConnectRequest(request, transactionId)
  try {
    return await new Promise<number | undefined>(resolve => {
      const finish = (ms: number | undefined): void => {
        clearInterval(timer)
        resolve(ms)
      }
      socket.on('message', msg => {
        const r = udp.parseResponse(msg, msg.length, 6)
        if (r?.action === udp.ACTION_CONNECT && r.transactionId === transactionId) finish(performance.now() - since)
      })
      socket.on('error', () => {}) // ICMP port unreachable while nothing listens yet
      const timer = setInterval(() => {
        if (g.child.exitCode !== null || g.child.signalCode !== null || performance.now() - since > ANSWER_TIMEOUT_MS) finish(undefined)
        else socket.send(request, port, '127.0.0.1')
      }, 20)
    })
  } finally {
    socket.close()
  }
}

/** How the serve command is run: the README's command as it is when its default ports are free, with flags otherwise. */
interface Serve {
  argv: string[]
  port: number
  how: string
}

async function chooseServe(readmeArgv: string[]): Promise<Serve> {
  const d = defaultsOf(udpSchema)
  const v4 = parseSocketAddress(d.network.address_ipv4)!
  const v6 = parseSocketAddress(d.network.address_ipv6)!
  const metrics = parseSocketAddress(d.metrics.prometheus_endpoint_address)!
  const taken: string[] = []
  if ((await tryBind('udp4', v4.host, v4.port)) === undefined) taken.push(`udp ${d.network.address_ipv4}`)
  if ((await tryBind('udp6', v6.host, v6.port)) === undefined) taken.push(`udp ${d.network.address_ipv6}`)
  if ((await tryBind('tcp', metrics.host, metrics.port)) === undefined) taken.push(`tcp ${d.metrics.prometheus_endpoint_address}`)
  const readme = readmeArgv.join(' ')
  if (taken.length === 0)
    return {
      argv: readmeArgv,
      port: v4.port,
      how: `\`${readme}\` as the README has it (${d.network.address_ipv4}, ${d.network.address_ipv6}, metrics ${d.metrics.prometheus_endpoint_address})`,
    }
  const port = await freePort('udp')
  const flags = ['--ipv4', `127.0.0.1:${port}`, '--no-ipv6', '--metrics', '127.0.0.1:0']
  const argv = [...readmeArgv, ...(readmeArgv[0] === 'npm' ? ['--'] : []), ...flags]
  return {argv, port, how: `\`${argv.join(' ')}\`: could not bind ${taken.join(', ')} (taken, or no IPv6), so not on the defaults`}
}

interface Row {
  name: string
  answeredMs?: number
  note: string
}

/** One start of `serve`, timed from `since` (default: its spawn) to the first answer, then stopped. */
async function timedStart(serve: Serve, cwd: string, since?: number): Promise<{ms?: number; output: string}> {
  const t0 = since ?? performance.now()
  const g = startGroup(serve.argv, cwd)
  const ms = await firstAnswer(g, serve.port, t0)
  if (ms !== undefined && !holdsUdpPort(groupMembers(g.pgid), serve.port)) {
    await stopGroup(g)
    throw new Error(`127.0.0.1:${serve.port} was answered by a process that is not the one started; is another tracker starting there?`)
  }
  await stopGroup(g)
  return {ms, output: g.output()}
}

/** Top-level entries of `dir` that are not in `before`. */
const newEntries = (dir: string, before: Set<string>): string[] => readdirSync(dir).filter(e => !before.has(e))

export interface QuickstartResult {
  text: string
  ok: boolean
}

export async function benchQuickstart(o: {starts: number}, log: (line: string) => void): Promise<QuickstartResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tracker-quickstart-'))
  const onSignal = (): void => {
    for (const g of live) signalGroup(g, 'SIGKILL')
    rmSync(dir, {recursive: true, force: true})
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const git = (...args: string[]): string => {
      const r = spawnSync('git', ['-C', packageRoot, ...args], {encoding: 'utf8', timeout: 60_000})
      if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr || r.error?.message}`)
      return r.stdout.trim()
    }
    const head = git('rev-parse', 'HEAD')
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== ''
    const clone = join(dir, 'clone')
    log(`quickstart: cloning ${head.slice(0, 12)} into ${clone}`)
    const cloned = await runToEnd(['git', 'clone', '--quiet', '--no-checkout', packageRoot, clone], dir, 120_000)
    await runToEnd(['git', '-C', clone, 'checkout', '--quiet', '--detach', head], dir, 60_000)
    log('quickstart: npm ci --prefer-offline (builds the addons and dist/)')
    const ci = await runToEnd(['npm', 'ci', '--prefer-offline', '--no-audit', '--no-fund'], clone, NPM_CI_TIMEOUT_MS)
    const readmeArgv = readmeServeCommand(readFileSync(join(clone, 'README.md'), 'utf8'))
    const serve = await chooseServe(readmeArgv)
    const rows: Row[] = []
    const failures: string[] = []
    const record = (name: string, r: {ms?: number; output: string}, note = ''): void => {
      rows.push({name, answeredMs: r.ms, note})
      if (r.ms === undefined) failures.push(`${name}: not answered within ${ANSWER_TIMEOUT_MS / 1000} s:\n${r.output}`)
    }
    // Nothing may be left from one case to the next but what `npm ci` made.
    const afterCi = new Set(readdirSync(clone))
    const reset = (): void => {
      for (const e of newEntries(clone, afterCi)) rmSync(join(clone, e), {recursive: true, force: true})
    }

    log(`quickstart: ${o.starts} start(s) of ${serve.argv.join(' ')}`)
    const starts: number[] = []
    for (let i = 1; i <= o.starts; i++) {
      const r = await timedStart(serve, clone, i === 1 ? ci.exitedAt : undefined)
      record(i === 1 ? 'start 1, timed from the exit of npm ci' : `start ${i}`, r)
      if (r.ms !== undefined) starts.push(r.ms)
    }
    const flags = serve.argv.includes('--') ? serve.argv.slice(serve.argv.indexOf('--') + 1) : []
    const direct = [process.execPath, 'bin/run.js', 'serve', 'udp', ...flags]
    record('`node bin/run.js serve udp` (no npm), for comparison', await timedStart({...serve, argv: direct}, clone))

    for (const signal of ['SIGKILL', 'SIGINT'] as const) {
      // Early in npm, early in the tracker, and once it serves (its pid file written).
      for (const when of [100, 300, 'answered'] as const) {
        reset()
        const t0 = performance.now()
        const g = startGroup(serve.argv, clone)
        if (when === 'answered') await firstAnswer(g, serve.port, t0)
        else await sleep(when)
        signalGroup(g, signal)
        const at = when === 'answered' ? 'once it answered' : `at ${when} ms`
        if (!(await waitGone(g.pgid, 5000))) failures.push(`${signal} ${at}: the process group outlived it by 5 s`)
        await stopGroup(g)
        const left = newEntries(clone, afterCi)
        record(`${signal} to a start ${at}, then a start`, await timedStart(serve, clone), left.length > 0 ? `left: ${left.join(', ')}` : 'left nothing')
      }
    }
    reset()

    const addons = ['udp_batch', 'tcp_batch'].filter(a => existsSync(join(clone, 'native', 'build', 'Release', `${a}.node`)))
    const sorted = [...starts].sort((a, b) => a - b)
    const ms = (v: number | undefined): string => (v === undefined ? 'NOT ANSWERED' : `${Math.round(v)} ms`)
    const head2 = ['case', 'first UDP connect answered after', '']
    const body = rows.map(r => [r.name, ms(r.answeredMs), r.note])
    if (sorted.length > 0)
      body.splice(o.starts, 0, [
        `starts 1-${o.starts}: min / median / max`,
        `${ms(sorted[0])} / ${ms(sorted[Math.floor((sorted.length - 1) / 2)])} / ${ms(sorted.at(-1))}`,
        '',
      ])
    const widths = head2.map((h, i) => Math.max(h.length, ...body.map(b => b[i].length)))
    const line = (cells: string[]): string => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |'
    const first = rows[0]?.answeredMs
    const out = [
      `# Quick start on a fresh clone of ${head.slice(0, 12)} (HEAD${dirty ? '; its uncommitted changes are not in the clone' : ''})`,
      `git clone: ${Math.round(cloned.ms)} ms; npm ci --prefer-offline: ${(ci.ms / 1000).toFixed(1)} s; addons built: ${addons.join(', ') || 'none'}`,
      `serve command: ${serve.how}`,
      line(head2),
      line(widths.map(w => '-'.repeat(w))),
      ...body.map(line),
      `target: answered within ${TARGET_MS / 1000} s after npm ci exits: ${first !== undefined && first < TARGET_MS ? 'met' : 'MISSED'} (${ms(first)})`,
      ...failures.map(f => `FAILED ${f}`),
    ]
    return {text: out.join('\n') + '\n', ok: failures.length === 0}
  } finally {
    for (const g of live) await stopGroup(g)
    rmSync(dir, {recursive: true, force: true})
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}
