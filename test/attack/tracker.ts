/**
 * A tracker under attack: `node bin/run.js serve PROTOCOL -c FILE` as a child process, on
 * loopback, seen from the outside only: its pid and its workers' (RSS, open fds), its output,
 * its metrics endpoint, signals.
 */
import {randomBytes} from 'node:crypto'
import {readdirSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import {join} from 'node:path'
import {stringify} from 'smol-toml'
import {descendants, distPath, rssBytes, startProcess, stopProcess, type Started} from '../../loadtest/bench/proc.js'
import {byLabel, parsePrometheus, sum, type Samples} from '../../src/top/prometheus.js'
import {makeCertificate} from '../certs.js'

/** The line a tracker logs once it serves (log_level info). */
export const READY = /\d+ workers?; access list mode/

export type Protocol = 'udp' | 'http' | 'ws'
export const MiB = 2 ** 20
/** This checkout's CLI; `npm run attack -- --bin PATH` attacks another build. */
export const BIN = distPath('../bin/run.js')

/**
 * A random info hash owned by worker `shard` of `workers`: the tracker shards by the first byte
 * modulo the worker count (README, "Workers"), so an attacker can aim at one worker or at all.
 */
export function shardHash(shard: number, workers: number): Buffer {
  const h = randomBytes(20)
  h[0] = h[0] - (h[0] % workers) + shard
  return h
}

/** Config sections (and top-level keys) laid over the suite's defaults. */
export type ConfigPatch = Record<string, string | number | boolean | Record<string, string | number | boolean>>

export interface TrackerSpec {
  protocol: Protocol
  workers: number
  config?: ConfigPatch
  /** Serve HTTPS / wss:// with a fresh self-signed certificate. */
  tls?: boolean
  /** Open-file limit of the tracker (soft and hard), set with prlimit. */
  nofile?: number
  /** Where the pid file goes (default: in the case's directory). */
  pidFile?: string
}

/** Which ports a tracker gets: `port` for the protocol, `metrics` for the Prometheus endpoint. */
export interface Ports {
  port: number
  metrics: number
}

/** Section-by-section merge of `patch` over `base`. */
function merge(base: ConfigPatch, patch: ConfigPatch): ConfigPatch {
  const out: ConfigPatch = {...base}
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k]
    out[k] = typeof v === 'object' && typeof b === 'object' ? {...b, ...v} : v
  }
  return out
}

export class Tracker {
  private stopped = false

  constructor(
    readonly spec: TrackerSpec,
    readonly ports: Ports,
    readonly pidFile: string,
    private readonly started: Started,
  ) {}

  get port(): number {
    return this.ports.port
  }

  get pid(): number {
    return this.started.child.pid!
  }

  get child(): Started['child'] {
    return this.started.child
  }

  output(): string {
    return this.started.output()
  }

  /** False once the process has exited, for whatever reason. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Exited without being asked to. */
  get died(): boolean {
    return !this.alive && !this.stopped
  }

  /** "code 1" or "signal SIGSEGV", and the last line it wrote. */
  deathNote(): string {
    const how = this.child.signalCode ? `signal ${this.child.signalCode}` : `code ${this.child.exitCode}`
    const last = this.output().trim().split('\n').slice(-1)[0] ?? ''
    return `tracker exited (${how}): ${last.slice(0, 160)}`
  }

  /** Worker processes (none with one worker: it serves in the primary). */
  workerPids(): number[] {
    return this.alive ? descendants(this.pid) : []
  }

  /** The pids whose memory and files are the tracker's: the primary and its workers. */
  pids(): number[] {
    return this.alive ? [this.pid, ...descendants(this.pid)] : []
  }

  /** RSS of one of its processes, in bytes (0 when it is gone). */
  rssOfPid(pid: number): number {
    return rssBytes(pid)
  }

  /** RSS of the primary and every worker, in bytes. */
  rss(): number {
    return this.pids().reduce((total, p) => total + rssBytes(p), 0)
  }

  /** Open file descriptors of the primary and every worker. */
  fds(): number {
    let n = 0
    for (const p of this.pids()) {
      try {
        n += readdirSync(`/proc/${p}/fd`).length
      } catch {
        // exited meanwhile
      }
    }
    return n
  }

  /** The metrics endpoint, on a fresh connection; undefined when it does not answer in time. */
  metrics(timeoutMs = 2000): Promise<Samples | undefined> {
    return new Promise(resolve => {
      const req = http.get({host: '127.0.0.1', port: this.ports.metrics, path: '/metrics', agent: false, headers: {connection: 'close'}}, res => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', d => (text += d))
        res.on('end', () => {
          clearTimeout(timer)
          resolve(res.statusCode === 200 ? parsePrometheus(text) : undefined)
        })
        res.on('error', () => resolve(undefined))
      })
      const timer = setTimeout(() => {
        req.destroy()
        resolve(undefined)
      }, timeoutMs)
      req.on('error', () => {
        clearTimeout(timer)
        resolve(undefined)
      })
    })
  }

  /** One metric summed over its samples matching `where`; undefined when the endpoint is down. */
  async metric(name: string, where: Record<string, string> = {}): Promise<number | undefined> {
    const m = await this.metrics()
    return m ? sum(m, name, where) : undefined
  }

  /** "reason N, reason M" of a counter by reason (e.g. tracker_dropped_total), "none", or "?" when unreachable. */
  async byReason(name: string): Promise<string> {
    const m = await this.metrics()
    if (!m) return '?'
    const parts = [...byLabel(m, name, 'reason')].filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`)
    return parts.length > 0 ? parts.join(', ') : 'none'
  }

  /** SIGTERM (SIGKILL after 5 s), then SIGKILL for any worker left behind. */
  async stop(): Promise<void> {
    this.stopped = true
    const tree = this.pids()
    await stopProcess(this.child)
    for (const p of tree.slice(1)) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // gone, as it should be
      }
    }
  }
}

/** Writes the config of `spec` into `dir` and starts the tracker; resolves once it serves. */
export async function startTracker(spec: TrackerSpec, dir: string, ports: Ports, bin = BIN): Promise<Tracker> {
  const name = `${spec.protocol}-${ports.port}`
  const pidFile = spec.pidFile ?? join(dir, `${name}.pid`)
  let config: ConfigPatch = {
    socket_workers: spec.workers,
    log_level: 'info',
    pid_file: pidFile,
    network: {address_ipv4: `127.0.0.1:${ports.port}`, use_ipv6: false},
    metrics: {prometheus_endpoint_address: `127.0.0.1:${ports.metrics}`},
  }
  if (spec.tls) {
    const {cert, key} = makeCertificate(dir, name)
    config = merge(config, {network: {enable_tls: true, tls_certificate_path: cert, tls_private_key_path: key}})
  }
  config = merge(config, spec.config ?? {})
  const file = join(dir, `${name}.toml`)
  writeFileSync(file, stringify(config))
  const node = [process.execPath, bin, 'serve', spec.protocol, '-c', file]
  const [cmd, ...args] = spec.nofile ? ['prlimit', `--nofile=${spec.nofile}:${spec.nofile}`, ...node] : node
  // The mesh's sockets (several workers) go into the case's directory, removed with it.
  const env = {...process.env, TMPDIR: dir}
  const started = await startProcess(cmd, args, output => READY.test(output), {env, timeoutMs: 30_000})
  return new Tracker(spec, ports, pidFile, started)
}
