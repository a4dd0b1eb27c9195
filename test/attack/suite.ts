/**
 * The attack suite's frame: what an attack is, the context it runs in (a temp dir, ports, the
 * trackers it started, everything to close afterwards), one case run with a hard time bound, and
 * the table.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {BIN, startTracker, type Ports, type Tracker, type TrackerSpec} from './tracker.js'

export interface Outcome {
  held: boolean
  /** Short and numeric: what was measured. */
  evidence: string
}

/**
 * How many workers an attack's trackers run with: `any` with `--workers N` (1 by default),
 * `multi` with at least 2 (the class needs several), `both` with 1 and with max(N, 2) (the
 * worker count changes the code path), `one` with 1 (a per-worker limit seen from outside).
 */
export type WorkerPlan = 'any' | 'multi' | 'both' | 'one'

export interface Attack {
  /** `<class>.<what>`: the class number of issue 13, or `held` for the classes that already held. */
  name: string
  /** The server as the table shows it: udp, http, "http node-io", https, ws, wss, "ws node-io", cli. */
  server: string
  workers: WorkerPlan
  /** A few seconds: also run by `npm test` (test/attack.test.ts). */
  fast?: boolean
  /** The case is cut off (not held) after this many seconds, even if the tracker hangs it. */
  budgetS: number
  run(ctx: Context): Promise<Outcome>
}

export interface Case {
  attack: Attack
  workers: number
}

export interface Result {
  attack: string
  server: string
  workers: number
  held: boolean
  evidence: string
  seconds: number
}

export interface SuiteOptions {
  quick: boolean
  /** The tracker CLI to attack (bin/run.js of a build); this checkout's by default. */
  bin?: string
  /** Progress lines (stderr in the runner). */
  log: (line: string) => void
}

/** Ports below the ephemeral range (32768-60999), derived from our pid as the soak does. */
const portBase = (): number => 10_000 + (process.pid % 1000) * 12

/** Contexts not yet cleaned up: the runner closes them if it is interrupted. */
export const openContexts = new Set<Context>()

export class Context {
  readonly dir: string
  private readonly cleanups: (() => unknown)[] = []
  readonly trackers: Tracker[] = []

  constructor(
    readonly workers: number,
    readonly options: SuiteOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'tracker-attack-'))
    openContexts.add(this)
  }

  get quick(): boolean {
    return this.options.quick
  }

  /** The tracker CLI under attack. */
  get bin(): string {
    return this.options.bin ?? BIN
  }

  /** `full` seconds, or `quick` with --quick. */
  seconds(full: number, quick: number): number {
    return this.quick ? quick : full
  }

  log(line: string): void {
    this.options.log(line)
  }

  /** Ports of tracker `slot` (0 for the one under attack, 1 for a second one). */
  ports(slot = 0, shift = 0): Ports {
    const port = portBase() + shift + 2 * slot
    return {port, metrics: port + 1}
  }

  /** Starts a tracker with this case's worker count (unless the spec says otherwise); it is stopped at the end. */
  /** False for the "http node-io" variants: HTTP trackers on Node's sockets (batched_io = false). */
  httpBatchedIo = true

  async tracker(spec: Omit<TrackerSpec, 'workers'> & {workers?: number}, slot = 0): Promise<Tracker> {
    const full = {...spec, workers: spec.workers ?? this.workers}
    if (spec.protocol === 'http' && !this.httpBatchedIo) {
      const network = (spec.config?.network ?? {}) as Record<string, string | number | boolean>
      full.config = {...spec.config, network: {...network, batched_io: false}}
    }
    let t: Tracker
    try {
      t = await startTracker(full, this.dir, this.ports(slot), this.bin)
    } catch (error) {
      // Someone else holds the port: try once more elsewhere.
      if (!/EADDRINUSE/.test(String(error))) throw error
      t = await startTracker(full, this.dir, this.ports(slot, 6), this.bin)
    }
    this.trackers.push(t)
    this.defer(() => t.stop())
    return t
  }

  /** Runs `fn` at the end of the case (last registered first), whatever happened. */
  defer(fn: () => unknown): void {
    this.cleanups.push(fn)
  }

  /** Registers something with destroy() or close() to be closed at the end. */
  own<T extends {destroy(): unknown} | {close(): unknown}>(thing: T): T {
    this.defer(() => ('destroy' in thing ? thing.destroy() : thing.close()))
    return thing
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        await fn()
      } catch {
        // cleaning up what is already gone
      }
    }
    rmSync(this.dir, {recursive: true, force: true})
    openContexts.delete(this)
  }
}

/** The cases of `attacks` for `--workers N`. */
export function expand(attacks: Attack[], workers: number): Case[] {
  const many = Math.max(2, workers)
  return attacks.flatMap(attack => {
    const counts = {any: [workers], multi: [many], both: [1, many], one: [1]}[attack.workers]
    return counts.map(w => ({attack, workers: w}))
  })
}

export const serverLabel = (c: {server: string; workers: number}): string => (c.workers === 1 ? c.server : `${c.server} (${c.workers} workers)`)

/**
 * Runs one case: its own temp dir and trackers, cut off after its budget; a tracker that died
 * makes it "not held" whatever the attack concluded. Everything it opened is closed after.
 */
export async function runCase(c: Case, options: SuiteOptions): Promise<Result> {
  const started = Date.now()
  const ctx = new Context(c.workers, options)
  let outcome: Outcome
  let timer: NodeJS.Timeout | undefined
  try {
    const run = c.attack.run(ctx)
    run.catch(() => {})
    const budget = new Promise<Outcome>(resolve => {
      timer = setTimeout(() => resolve({held: false, evidence: `did not finish within its ${c.attack.budgetS} s budget`}), c.attack.budgetS * 1000)
    })
    outcome = await Promise.race([run, budget])
  } catch (error) {
    outcome = {held: false, evidence: `attack failed: ${(error as Error).message.split('\n')[0].slice(0, 200)}`}
  } finally {
    clearTimeout(timer)
  }
  const dead = ctx.trackers.find(t => t.died)
  if (dead) outcome = {held: false, evidence: `${dead.deathNote()}; ${outcome.evidence}`}
  await ctx.cleanup()
  return {
    attack: c.attack.name,
    server: c.attack.server,
    workers: c.workers,
    held: outcome.held,
    evidence: outcome.evidence,
    seconds: (Date.now() - started) / 1000,
  }
}

/** `attack | server | held | evidence`, aligned. */
export function formatTable(results: Result[]): string {
  const rows = [['attack', 'server', 'held', 'evidence'], ...results.map(r => [r.attack, serverLabel(r), r.held ? 'held' : 'NOT HELD', r.evidence])]
  const widths = [0, 1, 2].map(i => Math.max(...rows.map(r => r[i].length)))
  const line = (r: string[]) => `| ${r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell)).join(' | ')} |`
  return [line(rows[0]), `| ${widths.map(w => '-'.repeat(w)).join(' | ')} | --- |`, ...rows.slice(1).map(line)].join('\n') + '\n'
}
