import dgram from 'node:dgram'
import {readFileSync, readdirSync, readlinkSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {spawn, type ChildProcess} from 'node:child_process'
import {setTimeout as sleep} from 'node:timers/promises'

const TICKS_PER_SECOND = 100 // Linux USER_HZ

/** CPU time (user + system) of one process, in milliseconds; 0 when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[11] = utime, fields[12] = stime (fields 14 and 15 of proc(5), counted from state)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND
  } catch {
    return 0
  }
}

/** Direct and indirect children of `pid` (cluster workers). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(entry))
      children.set(ppid, list)
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

/** Live processes of process group `pgid` (a detached child and everything it started). */
export function groupMembers(pgid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const [state, , pgrp] = fields.slice(fields.lastIndexOf(')') + 2).split(' ')
      if (state !== 'Z' && Number(pgrp) === pgid) out.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return out
}

/** One of `pids` holds a UDP socket (IPv4 or IPv6) bound to `port`: whoever answers there is one of them. */
export function holdsUdpPort(pids: number[], port: number): boolean {
  const inodes = new Set<string>()
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = ''
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // f[1] = local address as HEXADDR:HEXPORT, f[9] = inode
      if (f.length > 9 && Number.parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16) === port) inodes.add(f[9])
    }
  }
  for (const pid of pids) {
    let fds: string[] = []
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
        if (m && inodes.has(m[1])) return true
      } catch {
        // closed meanwhile
      }
    }
  }
  return false
}

/** Binds `host:port` for a moment: the port it got, or undefined when it is taken (or the family is missing). */
export async function tryBind(kind: 'udp4' | 'udp6' | 'tcp', host: string, port: number): Promise<number | undefined> {
  if (kind === 'tcp') {
    const server = createServer()
    const bound = await new Promise<number | undefined>(resolve => {
      server.once('error', () => resolve(undefined))
      server.listen({port, host, exclusive: true}, () => resolve((server.address() as {port: number}).port))
    })
    if (bound !== undefined) await new Promise(resolve => server.close(resolve))
    return bound
  }
  const socket = dgram.createSocket({type: kind, ipv6Only: kind === 'udp6'})
  const bound = await new Promise<number | undefined>(resolve => {
    socket.once('error', () => resolve(undefined))
    socket.bind({port, address: host, exclusive: true}, () => resolve(socket.address().port))
  })
  await new Promise<void>(resolve => {
    try {
      socket.close(resolve)
    } catch {
      resolve() // a failed bind may leave it closed already
    }
  })
  return bound
}

/** A port free on 127.0.0.1 now, for UDP or TCP. */
export async function freePort(kind: 'udp' | 'tcp'): Promise<number> {
  const port = await tryBind(kind === 'udp' ? 'udp4' : 'tcp', '127.0.0.1', 0)
  if (port === undefined) throw new Error(`no free ${kind} port on 127.0.0.1`)
  return port
}

/** CPU time of a process and all its descendants, in ms. */
export function treeCpuMs(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + cpuMs(p), 0)
}

export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /VmRSS:\s+(\d+) kB/.exec(status)
    return m ? Number(m[1]) * 1024 : 0
  } catch {
    return 0
  }
}

export interface Started {
  child: ChildProcess
  output: () => string
}

/** Spawn a process, keep its output for error reports, and wait until `ready` says so. */
export async function startProcess(
  cmd: string,
  args: string[],
  ready: (output: string) => boolean | Promise<boolean>,
  options: {cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number} = {},
): Promise<Started> {
  const child = spawn(cmd, args, {cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout!.on('data', d => (output += d))
  child.stderr!.on('data', d => (output += d))
  const deadline = Date.now() + (options.timeoutMs ?? 15_000)
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode} before it was ready:\n${output}`)
    if (await ready(output)) return {child, output: () => output}
    await sleep(50)
  }
  child.kill('SIGKILL')
  throw new Error(`${cmd} was not ready within ${(options.timeoutMs ?? 15_000) / 1000} s:\n${output}`)
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

/** A compiled file of this project, e.g. distPath('loadtest/bench/servers/udp-ceiling.js'). */
export const distPath = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url))

/**
 * Starts our `tracker serve PROTOCOL` with one worker (or `extra.workers`) on 127.0.0.1:PORT (no
 * IPv6), quiet, metrics on a free port (or `extra.metrics`); `extra` adds TOML lines to [network]
 * and [protocol].
 */
export function startOurs(
  protocol: 'udp' | 'http' | 'ws',
  dir: string,
  port: number,
  ready: () => Promise<boolean>,
  extra: {network?: string; protocol?: string; metrics?: string; env?: NodeJS.ProcessEnv; workers?: number} = {},
): Promise<Started> {
  const cfg = join(dir, `ours-${port}.toml`)
  writeFileSync(
    cfg,
    `socket_workers = ${extra.workers ?? 1}
log_level = "warn"
pid_file = "${join(dir, `ours-${port}.pid`)}"
[network]
address_ipv4 = "127.0.0.1:${port}"
use_ipv6 = false
${extra.network ?? ''}
[protocol]
${extra.protocol ?? ''}
[metrics]
prometheus_endpoint_address = "${extra.metrics ?? '127.0.0.1:0'}"
`,
  )
  return startProcess(process.execPath, [bin, 'serve', protocol, '-c', cfg], ready, {env: {...process.env, ...extra.env}})
}
